"""`migrate records`: schema 1.0 records as older tools write them, current records, broken lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.inputs.migrations import MigrationFailed, migrate_record, migrate_records

from .conftest import read_jsonl

runner = CliRunner()
LEGACY = Path(__file__).parent / "fixtures" / "legacy-1.0.jsonl"


def schema_validator() -> jsonschema.Draft202012Validator:
    result = runner.invoke(app, ["schema"])
    return jsonschema.Draft202012Validator(json.loads(result.stdout))


def features_by_id(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature_id"]: f for plateau in record["plateaus"] for f in plateau["features"]}


def test_legacy_records_migrate_with_their_views_merged_and_nothing_lost(tmp_path: Path) -> None:
    out, quarantine = tmp_path / "out.jsonl", tmp_path / "out.quarantine.jsonl"

    report = migrate_records(LEGACY, out, quarantine)

    assert (report.migrated, report.current, report.failed) == (2, 0, 4)
    records = read_jsonl(out)
    assert [r["service"]["service_id"] for r in records] == ["svc-lib", "svc-it"]  # type: ignore[index]
    validator = schema_validator()
    for record in records:
        validator.validate(record)
    library: dict[str, Any] = records[0]
    features = features_by_id(library)
    # Own mappings win (and keep their facets); empty ones come from the mappings view.
    assert features["FEAT-001"]["mappings"]["applications"] == [
        {"item": "library-system", "facets": {"interaction": "read"}}
    ]
    assert [m["item"] for m in features["FEAT-002"]["mappings"]["applications"]] == ["library-system", "vle"]
    # A feature listed only in the roles view is kept, with the role as its customer type.
    assert features["FEAT-003"]["customer_type"] == "partners"
    assert features["FEAT-003"]["mappings"]["data"] == [{"item": "student-record", "facets": None}]
    # A label in other case is the level's label.
    assert features["FEAT-002"]["score"]["label"] == "Defined"
    legacy = library["meta"]["legacy"]
    assert legacy["schema_version"] == "1.0"
    assert legacy["catalogue_hash"] == "3f2a9c"
    assert legacy["context_window"] == 128000
    assert legacy["models"]["search"] == "openai:gpt-4o-search"
    assert {"role_id": "academics", "name": "Academics", "description": "Teaching staff"} in legacy["roles"]
    assert legacy["catalogue_items"]["applications"]["vle"] == "Virtual learning environment"
    assert legacy["unplaced_mappings"] == [
        {"plateau": 1, "field": "applications", "item": "vle", "feature_id": "FEAT-999"}
    ]
    assert library["meta"]["models"]["mapping"] == "openai:gpt-4.1-mini"
    helpdesk: dict[str, Any] = records[1]
    assert helpdesk["meta"]["seed"] is None
    assert set(helpdesk["meta"]["models"].values()) == {"openai:gpt-4o"}
    assert helpdesk["meta"]["legacy"]["schemas"] == {"features": "v1"}


def test_failed_lines_go_to_quarantine_with_their_reason(tmp_path: Path) -> None:
    out, quarantine = tmp_path / "out.jsonl", tmp_path / "out.quarantine.jsonl"

    migrate_records(LEGACY, out, quarantine)

    reasons = {row["line"]: row["reason"] for row in read_jsonl(quarantine)}
    assert set(reasons) == {3, 4, 5, 6}
    assert reasons[3].startswith("not valid JSON")  # type: ignore[union-attr]
    assert "unknown schema version '0.9'" in reasons[4]  # type: ignore[operator]
    assert "meta.created" in reasons[5]  # type: ignore[operator]
    assert "no meta.schema_version" in reasons[6]  # type: ignore[operator]


def test_migrating_twice_changes_nothing(tmp_path: Path) -> None:
    first, second = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    migrate_records(LEGACY, first, tmp_path / "q1.jsonl")

    report = migrate_records(first, second, tmp_path / "q2.jsonl")

    assert (report.migrated, report.current, report.failed) == (0, 2, 0)
    assert second.read_bytes() == first.read_bytes()
    assert not (tmp_path / "q2.jsonl").exists()


def test_dry_run_counts_and_writes_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"

    result = runner.invoke(app, ["migrate", "records", str(LEGACY), "-o", str(out), "--dry-run", "--json"])

    assert result.exit_code == 9
    counts = json.loads(result.stdout)
    assert (counts["migrated"], counts["already_current"], counts["failed"]) == (2, 0, 4)
    assert counts["from_versions"] == {"1.0": 3, "0.9": 1}
    assert not out.exists()
    assert not (tmp_path / "out.quarantine.jsonl").exists()


def test_cli_writes_to_stdout_and_refuses_unknown_targets(tmp_path: Path) -> None:
    clean = tmp_path / "clean.jsonl"
    clean.write_text(LEGACY.read_text().splitlines()[0] + "\n")

    result = runner.invoke(app, ["migrate", "records", str(clean), "-o", "-"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["meta"]["schema_version"] == "2.0"

    refused = runner.invoke(app, ["migrate", "records", str(clean), "-o", "x.jsonl", "--to", "1.0"])
    assert refused.exit_code == 3
    assert "cannot migrate to '1.0'" in refused.output

    same = runner.invoke(app, ["migrate", "records", str(clean), "-o", str(clean)])
    assert same.exit_code == 3
    assert "overwrite the input" in same.output


def test_a_score_that_cannot_be_read_fails_with_the_field_named() -> None:
    record = json.loads(LEGACY.read_text().splitlines()[1])
    record["plateaus"][0]["features"][0]["score"] = {"level": 9, "label": "Beyond", "justification": "x"}

    with pytest.raises(MigrationFailed, match=r"plateaus\[\*\]\.features\[\*\]\.score\.level"):
        migrate_record(record)


@pytest.mark.parametrize(
    "plateaus",
    [
        "not a list",
        [{"plateau": 1, "features": [{"feature_id": ["a", "list"]}]}],
        [{"plateau": 1, "features": "abc", "roles": [{"role_id": "x", "features": [3]}]}],
        [{"plateau": 1, "features": [], "mappings": {"applications": [{"id": "a", "mappings": [7, None]}]}}],
        [{"plateau": 1, "features": [{"feature_id": "f", "mappings": {"data": "oops"}, "score": 3}]}],
    ],
)
def test_malformed_legacy_records_fail_with_a_reason_and_never_crash(plateaus: Any) -> None:
    record = json.loads(LEGACY.read_text().splitlines()[1])
    record["plateaus"] = plateaus

    with pytest.raises(MigrationFailed):
        migrate_record(record)


def test_a_label_that_does_not_match_its_level_is_corrected_and_listed() -> None:
    record = json.loads(LEGACY.read_text().splitlines()[0])
    record["plateaus"][0]["features"][0]["score"] = {"level": 3, "label": "Managed", "justification": "x"}

    migrated, changed = migrate_record(record)

    assert changed
    assert migrated.plateaus[0].features[0].score is not None
    assert migrated.plateaus[0].features[0].score.label == "Defined"
    assert migrated.meta.legacy is not None
    assert migrated.meta.legacy["relabelled_scores"] == ["FEAT-001"]  # FEAT-002's "defined" differs only in case
