"""Inputs nobody here wrote and answers that are merely schema-valid, through the CLI.

The earlier service-ambitions tool's files (roles as lists of objects, faceted catalogues
with labels and ``{id, label}`` options, 1.0 records) and a provider that fills the JSON
Schema it is sent at random (any level, any enum value, any list length the schema allows).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import read_jsonl
from .fake_openai import COMPLETIONS
from .schema_fill import SchemaFiller

runner = CliRunner()
EARLIER = Path(__file__).parent / "fixtures" / "earlier-tool"
LABELS = {1: "Initial", 2: "Managed", 3: "Defined", 4: "Quantitatively Managed", 5: "Optimizing"}


@pytest.fixture
def legacy_config(tmp_path: Path) -> Path:
    path = tmp_path / "legacy.yaml"
    path.write_text(f"reference:\n  catalogues: [{EARLIER / 'applications.json'}]\n", encoding="utf-8")
    return path


def test_the_earlier_tools_services_run_offline_and_keep_their_roles(tmp_path: Path, legacy_config: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["-c", str(legacy_config), "run", str(EARLIER / "services.jsonl"), "-o", str(out), "--model", "offline"]
    )
    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    given = read_jsonl(EARLIER / "services.jsonl")
    assert [record["service"] for record in records] == given  # kept losslessly, roles and nulls included
    facets = [
        item["facets"]
        for record in records
        for plateau in record["plateaus"]  # type: ignore[attr-defined]
        for feature in plateau["features"]
        for item in feature["mappings"]["applications"]
    ]
    assert facets
    assert all(f["service_type"] in ("ui", "api", "batch") for f in facets)


def test_the_earlier_tools_records_migrate_and_map(tmp_path: Path, legacy_config: Path) -> None:
    migrated = tmp_path / "migrated.jsonl"
    result = runner.invoke(app, ["migrate", "records", str(EARLIER / "evolutions-1.0.jsonl"), "-o", str(migrated)])
    assert result.exit_code == 0, result.output
    record = read_jsonl(migrated)[0]
    assert record["service"]["jobs_to_be_done"][2]["role"][1]["role_id"] == "ROL0106"  # type: ignore[index]
    mapped = tmp_path / "mapped.jsonl"
    result = runner.invoke(
        app,
        [
            "-c",
            str(legacy_config),
            "map",
            str(EARLIER / "evolutions-1.0.jsonl"),
            "-o",
            str(mapped),
            "--model",
            "offline",
        ],
    )
    assert result.exit_code == 0, result.output
    features = [f for p in read_jsonl(mapped)[0]["plateaus"] for f in p["features"]]  # type: ignore[attr-defined]
    assert all(f["mappings"]["applications"] for f in features)
    # A 1.0 label that does not match its level ("defined" at level 1) is read as the level's.
    assert all(f["score"]["label"] == LABELS[f["score"]["level"]] for f in features)


def test_a_rejected_line_names_each_problem_once_in_terminal_and_quarantine(tmp_path: Path) -> None:
    services = tmp_path / "in.jsonl"
    jobs = [{"name": f"job {i}", "role": 7.5 if i % 2 else True} for i in range(24)]
    bad = {"service_id": "bad", "name": "Bad", "description": "d", "jobs_to_be_done": jobs}
    good = {"service_id": "good", "name": "Good", "description": "d"}
    services.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["run", str(services), "-o", str(out), "--model", "offline"])
    assert result.exit_code == 9, result.output
    reason = "jobs_to_be_done[*].role: expected text or an object or a list, got true or false (12 times)"
    quarantined = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert quarantined[0]["reason"] == f"not a valid service: {reason}"
    dry = runner.invoke(app, ["run", str(services), "-o", str(out), "--model", "offline", "--dry-run"])
    assert reason in " ".join(dry.output.split())


@pytest.mark.parametrize("seed", [1, 2])
def test_any_schema_valid_answer_completes_every_service_without_output_retries(
    respx_mock: respx.MockRouter,
    openai_env: None,
    tmp_path: Path,
    legacy_config: Path,
    seed: int,
) -> None:
    filler = SchemaFiller(seed=seed)
    respx_mock.post(COMPLETIONS).mock(side_effect=filler)
    out = tmp_path / "out.jsonl"
    services = EARLIER / "services.jsonl"
    args = ["-c", str(legacy_config), "run", str(services), "-o", str(out), "--model", "openai:gpt-4o-mini"]
    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    records = read_jsonl(out)
    assert len(records) == 2
    calls_per_service = 1 + 5 + 5 * 1  # descriptions, features per plateau, mapping per plateau and catalogue
    assert len(filler.requests) == 2 * calls_per_service  # not one output retry
    scores = [f["score"] for r in records for p in r["plateaus"] for f in p["features"]]  # type: ignore[attr-defined]
    assert scores
    assert all(s["label"] == LABELS[s["level"]] for s in scores)
    sent = [json.dumps(r["tools"][0]["function"]["parameters"]) for r in filler.requests]
    features = [schema for schema in sent if "justification" in schema]
    assert len(features) == 10
    assert all('"level"' in schema and '"label"' not in schema for schema in features)


def test_a_features_only_record_may_name_its_role_as_a_list(tmp_path: Path) -> None:
    service = {"service_id": "svc-library", "name": "Library", "description": "Lends books."}
    feature = {"feature_id": "F1", "name": "Online renewals", "description": "Renew loans online."}
    roles = [{"role_id": "academics", "name": "Academics"}, {"role_id": "learners", "name": "Learners"}]
    source = tmp_path / "features.jsonl"
    source.write_text(json.dumps({"service": service, "features": [{**feature, "role": roles}]}) + "\n")
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["map", str(source), "-o", str(out), "--model", "offline"])
    assert result.exit_code == 0, result.output
    mapped = read_jsonl(out)[0]["plateaus"][0]["features"][0]  # type: ignore[index]
    assert mapped["customer_type"] == "academics"
