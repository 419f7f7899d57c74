"""`map`: evolution and features-only input, catalogue selection, round trips and the shared gateway."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import respx
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import load_settings
from service_ambitions.jobs.run import remap
from service_ambitions.jobs.setup import prepare

from .conftest import EXAMPLES, read_jsonl
from .fake_openai import BASE_URL, COMPLETIONS, FakeOpenAI
from .test_pipeline import scripted

runner = CliRunner()
LEGACY = Path(__file__).parent / "fixtures" / "legacy-1.0.jsonl"


@pytest.fixture
def evolutions(tmp_path: Path) -> Path:
    """Two offline evolutions of the examples."""
    out = tmp_path / "evolutions.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--max-services", "2"]
    assert runner.invoke(app, args).exit_code == 0
    return out


def map_cli(*args: str) -> Any:
    return runner.invoke(app, ["map", *args, "--model", "offline"])


def content(record: dict[str, Any]) -> list[list[tuple[str, str]]]:
    """What mapping decides: each feature's mappings, by plateau."""
    return [
        [(f["feature_id"], json.dumps(f["mappings"], sort_keys=True)) for f in plateau["features"]]
        for plateau in record["plateaus"]
    ]


def test_map_output_reads_back_through_map_and_migrate(evolutions: Path, tmp_path: Path) -> None:
    once, twice, migrated = tmp_path / "once.jsonl", tmp_path / "twice.jsonl", tmp_path / "migrated.jsonl"

    assert map_cli(str(evolutions), "-o", str(once)).exit_code == 0
    assert map_cli(str(once), "-o", str(twice)).exit_code == 0
    result = runner.invoke(app, ["migrate", "records", str(once), "-o", str(migrated)])

    assert result.exit_code == 0
    assert "migrated 0, already current (2.0) 2, failed 0" in result.stdout
    assert migrated.read_bytes() == once.read_bytes()
    original, first, second = read_jsonl(evolutions), read_jsonl(once), read_jsonl(twice)
    assert [content(r) for r in first] == [content(r) for r in second] == [content(r) for r in original]
    schema = json.loads(runner.invoke(app, ["schema"]).stdout)
    for record in first:
        jsonschema.validate(record, schema)
        assert record["meta"]["run_id"] != original[0]["meta"]["run_id"]  # type: ignore[index]


def test_catalogue_option_maps_only_that_catalogue_and_keeps_the_others(evolutions: Path, tmp_path: Path) -> None:
    source = read_jsonl(evolutions)[0]
    for plateau in source["plateaus"]:  # type: ignore[attr-defined]
        for feature in plateau["features"]:
            feature["mappings"] = {"applications": [], "data": [{"item": "kept-as-given", "facets": None}]}
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps(source) + "\n")
    out = tmp_path / "out.jsonl"

    result = map_cli(str(edited), "-o", str(out), "--catalogue", "applications")

    assert result.exit_code == 0, result.output
    features = [f for p in read_jsonl(out)[0]["plateaus"] for f in p["features"]]  # type: ignore[index]
    assert all(f["mappings"]["data"] == [{"item": "kept-as-given", "facets": None}] for f in features)
    assert "technologies" not in features[0]["mappings"]
    assert any(f["mappings"]["applications"] for f in features)
    assert all(m["facets"] is not None for f in features for m in f["mappings"]["applications"])


def test_unknown_catalogue_is_a_config_error(evolutions: Path) -> None:
    result = map_cli(str(evolutions), "-o", "out.jsonl", "--catalogue", "apps")
    assert result.exit_code == 4
    assert "unknown catalogue 'apps'" in result.output
    assert "applications" in result.output


def test_features_only_records_with_and_without_service_blocks(tmp_path: Path) -> None:
    service = {"service_id": "svc-library", "name": "Library", "description": "Lends books and e-resources."}
    feature = {"feature_id": "F1", "name": "Online renewals", "description": "Renew loans online."}
    services = tmp_path / "services.jsonl"
    services.write_text(json.dumps(service) + "\n")
    source = tmp_path / "features.jsonl"
    lines = [
        {"service": service, "features": [{**feature, "customer_type": "learners", "plateau": 2}]},
        {"service_id": "svc-library", "features": [{**feature, "role": {"role_id": "academics"}}]},
        {"service_id": "svc-missing", "features": [{**feature, "customer_type": "learners"}]},
        {"service": {**service, "service_id": "svc-x"}, "features": [{**feature, "customer_type": "x", "plateau": 9}]},
        {"features": [{**feature, "customer_type": "learners", "colour": "blue"}], "service": service},
    ]
    source.write_text("".join(json.dumps(line) + "\n" for line in lines))
    out = tmp_path / "out.jsonl"

    result = map_cli(str(source), "-o", str(out), "--service-file", str(services))

    assert result.exit_code == 9, result.output
    records = read_jsonl(out)
    assert len(records) == 1
    record: dict[str, Any] = records[0]
    assert record["meta"]["models"] == {"descriptions": "input", "features": "input", "mapping": "offline"}
    assert [p["plateau_name"] for p in record["plateaus"]] == ["Enhanced"]
    assert record["plateaus"][0]["features"][0]["score"] is None
    assert set(record["plateaus"][0]["features"][0]["mappings"]) == {"applications", "data", "technologies"}
    reasons = {row["line"]: row["reason"] for row in read_jsonl(tmp_path / "out.quarantine.jsonl")}
    assert "duplicate service_id 'svc-library'" in reasons[2]  # type: ignore[operator]
    assert "'svc-missing' is not in the --service-file" in reasons[3]  # type: ignore[operator]
    assert "plateau 9 is not one of the reference plateaus" in reasons[4]  # type: ignore[operator]
    assert "colour" in reasons[5]  # type: ignore[operator]


def test_service_file_fills_a_missing_service_block(tmp_path: Path) -> None:
    source = tmp_path / "features.jsonl"
    feature = {
        "feature_id": "F1",
        "name": "Online offers",
        "description": "Offers online.",
        "customer_type": "learners",
    }
    source.write_text(json.dumps({"service_id": "svc-admissions", "features": [feature]}) + "\n")

    without = map_cli(str(source), "-o", str(tmp_path / "a.jsonl"))
    with_file = map_cli(str(source), "-o", "-", "--service-file", str(EXAMPLES / "services.jsonl"))

    assert without.exit_code == 9
    assert with_file.exit_code == 0, with_file.output
    record = json.loads(with_file.stdout.splitlines()[0])
    assert record["service"]["name"] == "Undergraduate admissions"
    assert record["plateaus"][0]["plateau"] == 1  # no plateau given: the first


def test_service_id_maps_one_service_to_stdout(evolutions: Path) -> None:
    wanted = read_jsonl(evolutions)[1]["service"]["service_id"]  # type: ignore[index]

    result = map_cli(str(evolutions), "-o", "-", "--service-id", str(wanted))
    missing = map_cli(str(evolutions), "-o", "-", "--service-id", "svc-nothing")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert json.loads(lines[0])["service"]["service_id"] == wanted
    assert missing.exit_code == 3
    assert "no record for service 'svc-nothing'" in missing.output


def test_legacy_records_are_mapped_directly(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    result = map_cli(str(LEGACY), "-o", str(out), "--catalogue", "technologies")

    assert result.exit_code == 9  # the broken lines of the fixture
    records = read_jsonl(out)
    assert [r["meta"]["legacy"]["schema_version"] for r in records] == ["1.0", "1.0"]  # type: ignore[index]
    library: dict[str, Any] = records[0]
    assert library["meta"]["reference"] is None  # 1.0 never said what it was made with: not invented now
    feature = library["plateaus"][0]["features"][0]
    assert feature["mappings"]["applications"] == [{"item": "library-system", "facets": {"interaction": "read"}}]
    assert "technologies" in feature["mappings"]


async def test_ids_outside_the_catalogue_are_dropped_and_counted(tmp_path: Path, evolutions: Path) -> None:
    calls = 0

    async def script(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse | None:
        nonlocal calls
        calls += 1
        ids = [line.split("`")[1] for line in prompt.splitlines() if line.startswith("- `")]
        answer = {"mappings": [{"feature_id": i, "items": [{"item": "invented-id"}]} for i in ids]}
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, answer)])

    prepared = prepare(load_settings(), model_factory=lambda name: scripted(script), stages=("mapping",))
    out = tmp_path / "out.jsonl"

    result = await remap(prepared, evolutions, out, tmp_path / "q.jsonl", catalogues=["data"])

    assert result.status == "completed"
    records = read_jsonl(out)
    assert calls == 2 * 5  # one call per service and plateau, for the one catalogue
    assert all(r["meta"]["dropped_items"] > 0 for r in records)  # type: ignore[index]
    assert all(f["mappings"]["data"] == [] for r in records for p in r["plateaus"] for f in p["features"])  # type: ignore[index]

    again = await remap(prepared, evolutions, tmp_path / "again.jsonl", tmp_path / "q2.jsonl", catalogues=["data"])
    assert again.status == "completed"
    assert calls == 2 * 5  # the second run is answered by the cache


def test_map_through_openai_makes_only_mapping_calls_and_is_cached(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, evolutions: Path
) -> None:
    import pydantic_ai.models

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)  # respx answers; nothing leaves
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-map-secret")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    fake = FakeOpenAI(usage=(500, 40))
    route = respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    args = ["map", str(evolutions), "--model", "openai:gpt-4o-mini", "--catalogue", "technologies"]

    first = runner.invoke(app, [*args, "-o", str(tmp_path / "a.jsonl")])
    assert first.exit_code == 0, first.output
    assert route.call_count == 2 * 5  # 2 services x 5 plateaus x 1 catalogue
    assert all("## Catalogue: Technologies" in json.dumps(body["messages"]) for body in fake.requests)
    second = runner.invoke(app, [*args, "-o", str(tmp_path / "b.jsonl")])
    assert second.exit_code == 0, second.output
    assert route.call_count == 2 * 5  # all from the cache
    assert content(read_jsonl(tmp_path / "a.jsonl")[0]) == content(read_jsonl(tmp_path / "b.jsonl")[0])

    report = runner.invoke(app, ["report", "--json"])
    assert report.exit_code == 0, report.output
    document = json.loads(report.stdout)
    assert document["command"] == "map"
    assert document["totals"]["calls"] == 10
    assert document["totals"]["cached"] == 10  # the second map: everything from the cache
    assert float(document["totals"]["saved_usd"]) > 0
    assert [row["key"] for row in document["by_stage"]] == ["mapping"]
    manifest = (tmp_path / "runs" / document["run_id"] / "manifest.json").read_text()
    assert '"command": "map"' in manifest
    assert "sk-test-map-secret" not in manifest


def test_a_map_run_is_not_what_run_resume_continues(evolutions: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert map_cli(str(evolutions), "-o", str(out)).exit_code == 0

    resumed = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--resume"]
    )

    assert resumed.exit_code == 8
    assert "no run journal" in resumed.output
    assert "which is not empty" in resumed.output


def test_mapping_again_keeps_the_records_own_reference_hashes(evolutions: Path, tmp_path: Path) -> None:
    source = read_jsonl(evolutions)[0]
    source["meta"]["reference"]["plateaus"] = "hash-of-other-plateaus"  # type: ignore[index]
    source["meta"]["reference"]["catalogues"]["data"] = "hash-of-an-older-data-catalogue"  # type: ignore[index]
    edited = tmp_path / "edited.jsonl"
    edited.write_text(json.dumps(source) + "\n")
    out = tmp_path / "out.jsonl"

    assert map_cli(str(edited), "-o", str(out), "--catalogue", "applications").exit_code == 0

    reference = read_jsonl(out)[0]["meta"]["reference"]  # type: ignore[index]
    assert reference["plateaus"] == "hash-of-other-plateaus"
    assert reference["catalogues"]["data"] == "hash-of-an-older-data-catalogue"  # not mapped: unchanged
    assert (
        reference["catalogues"]["applications"]
        == read_jsonl(evolutions)[0]["meta"]["reference"]["catalogues"]["applications"]
    )  # type: ignore[index]


def test_dry_run_counts_mapping_calls_and_cache_hits_without_calling(evolutions: Path, tmp_path: Path) -> None:
    cache = ["--cache-dir", str(tmp_path / "map-cache")]  # not the one the evolutions' run filled
    out = tmp_path / "out.jsonl"
    assert map_cli(str(evolutions), "-o", str(out), "--catalogue", "data", *cache).exit_code == 0

    plan = runner.invoke(
        app, ["map", str(evolutions), "-o", str(tmp_path / "plan.jsonl"), "--model", "offline", "--dry-run", *cache]
    )

    assert plan.exit_code == 0, plan.output
    assert not (tmp_path / "plan.jsonl").exists()
    row = next(line.split("│") for line in plan.stdout.splitlines() if "│ mapping" in line)
    calls, cached = (int(cell.strip().replace(",", "")) for cell in row[3:5])
    assert calls == 2 * 5 * 3  # 2 records x 5 plateaus x 3 catalogues
    assert cached == 2 * 5  # the data catalogue's calls
    assert "│ features" not in plan.stdout


def test_an_unknown_service_id_is_an_input_error_for_the_plan_too(evolutions: Path) -> None:
    plan = map_cli(str(evolutions), "-o", "out.jsonl", "--service-id", "svc-nothing", "--dry-run")

    assert plan.exit_code == 3
    assert "no record for service 'svc-nothing'" in plan.output


def test_map_resume_continues_a_map_run_in_input_order(evolutions: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert map_cli(str(evolutions), "-o", str(out)).exit_code == 0
    whole = out.read_text().splitlines()
    out.write_text("\n".join(whole[:2]) + "\n")  # as if stopped after two records

    resumed = map_cli(str(evolutions), "-o", str(out), "--resume")

    assert resumed.exit_code == 0, resumed.output
    ids = [json.loads(line)["service"]["service_id"] for line in out.read_text().splitlines()]
    assert ids == [json.loads(line)["service"]["service_id"] for line in whole]
    listing = json.loads(runner.invoke(app, ["runs", "list", "--json"]).stdout)
    assert [run["resumed"] for run in listing if run["command"] == "map"] == [1]  # one map run, resumed once
    refused = runner.invoke(
        app, ["map", str(evolutions), "-o", str(out), "--model", "offline", "--resume", "--seed", "5"]
    )
    assert refused.exit_code == 8
    assert "seed changed" in refused.stderr
