"""reports.py: the maintenance commands' --json documents are report models."""

from __future__ import annotations

import json
from pathlib import Path

from service_ambitions.cache.maintenance import RowProblem, ValidationReport
from service_ambitions.jobs.reports import CacheValidationReport, MigrationReport, PurgeReport


def test_validation_counts_problems_by_kind() -> None:
    found = ValidationReport(
        good=3, problems=[RowProblem(None, "unsafe", "outside", 4), RowProblem("r:x", "corrupt", "c", 5)]
    )
    document = json.loads(CacheValidationReport.of(found).model_dump_json())
    assert (document["good"], document["unsafe"], document["corrupt"], document["schema_invalid"]) == (3, 1, 1, 0)
    assert document["problems"][0] == {"key": None, "kind": "unsafe", "reason": "outside", "rowid": 4}


def test_purge_and_migration_reports() -> None:
    purge = PurgeReport.of({("mapping", "offline"): 2, ("features", "offline"): 1})
    assert purge.removed == 3
    migration = MigrationReport.of(
        migrated=1, current=2, from_versions={"1.0": 1}, failures=[(4, "bad")], output=Path("o.jsonl"), quarantine=None
    )
    assert (migration.failed, migration.output, migration.failures[0].line) == (1, "o.jsonl", 4)
