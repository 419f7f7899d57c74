"""diff: services, features (added, removed, renamed), levels and mappings between two runs' records."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.inputs.records import read_records
from service_ambitions.views.diff import diff_runs

from .conftest import read_jsonl

runner = CliRunner()
FIXTURES = Path(__file__).parent / "fixtures" / "earlier-tool"


def _feature(
    fid: str, name: str, level: int, items: list[str], role: str = "learners", text: str = ""
) -> dict[str, Any]:
    return {
        "feature_id": fid,
        "name": name,
        "description": text or f"Lets learners {name.lower()} without waiting for staff to answer.",
        "score": {"level": level, "label": "Initial", "justification": "Because."},
        "customer_type": "learners",
        "mappings": {"applications": [{"item": item} for item in items]},
    }


def _record(service_id: str, name: str, features: list[dict[str, Any]], description: str = "Now.") -> dict[str, Any]:
    return {
        "meta": {
            "schema_version": "2.0",
            "run_id": "r",
            "created": "2026-11-01T00:00:00Z",
            "generator": "test",
            "models": {"descriptions": "m", "features": "m", "mapping": "m"},
            "seed": 0,
            "synthetic": False,
            "reference": None,
        },
        "service": {"service_id": service_id, "name": name, "description": "Helps."},
        "plateaus": [
            {
                "plateau": 1,
                "plateau_id": "p1",
                "plateau_name": "Foundational",
                "service_description": description,
                "features": features,
            }
        ],
    }


def _write(path: Path, records: list[dict[str, Any]], extra: str = "") -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records) + extra, encoding="utf-8")
    return path


def test_services_features_levels_and_mappings_that_changed(tmp_path: Path) -> None:
    old = _write(
        tmp_path / "old.jsonl",
        [
            _record(
                "a",
                "Admissions",
                [
                    _feature("f1", "Track an application", 1, ["APP-1"]),
                    _feature("f2", "Book an interview slot", 2, ["APP-2"]),
                    _feature("f3", "Pay the fee online", 1, []),
                ],
            ),
            _record("same", "Same", [_feature("s1", "Stay as it is", 3, ["APP-9"])]),
            _record("gone", "Gone", []),
        ],
    )
    new = _write(
        tmp_path / "new.jsonl",
        [
            _record(
                "a",
                "Admissions",
                [
                    _feature("f1", "Track an application", 3, ["APP-1", "APP-4"]),  # level and a mapping
                    _feature(
                        "f9",
                        "Book an interview time slot",
                        2,
                        ["APP-2"],  # renamed: it reads alike
                        text="Lets learners book an interview slot without waiting for staff to answer.",
                    ),
                    _feature("f7", "Chat with an adviser at night", 1, []),  # added; f3 removed
                ],
                description="Later.",
            ),
            _record("same", "Same", [_feature("s1", "Stay as it is", 3, ["APP-9"])]),
            _record("new", "New", []),
        ],
    )
    changes = diff_runs(read_records(old), read_records(new))

    assert (changes.services_added, changes.services_removed, changes.unchanged) == (["new"], ["gone"], 1)
    (service,) = changes.changed
    assert service.service_id == "a"
    assert service.descriptions_changed == [1]
    assert [(r.old_name, r.new_name) for r in service.renamed] == [
        ("Book an interview slot", "Book an interview time slot")
    ]
    assert [ref.name for ref in service.added] == ["Chat with an adviser at night"]
    assert [ref.name for ref in service.removed] == ["Pay the fee online"]
    assert [(s.name, s.before, s.after) for s in service.scores] == [("Track an application", 1, 3)]
    (mapping,) = service.mappings
    assert (mapping.catalogue, mapping.gained, mapping.lost) == ("applications", ["APP-4"], [])


def test_older_records_are_migrated_and_unreadable_lines_skipped_with_reasons(tmp_path: Path) -> None:
    old = FIXTURES / "evolutions-1.0.jsonl"
    records = read_jsonl(old)
    new = _write(tmp_path / "new.jsonl", [], extra='{"meta": {"schema_version": "9.9"}}\nnot json\n')
    changes = diff_runs(read_records(old), read_records(new))
    assert changes.migrated == len(records)
    assert len(changes.services_removed) == len(records)
    reasons = [(line.side, line.line, line.reason) for line in changes.skipped]
    assert [(side, line) for side, line, _ in reasons] == [("new", 1), ("new", 2)]
    assert "unknown schema version '9.9'" in reasons[0][2]


def test_the_command_prints_text_safely_and_json_whole(tmp_path: Path) -> None:
    hostile = "<script>alert(1)</script> [red]{{ x }}[/red] \x1b[2J"
    old = _write(tmp_path / "old.jsonl", [_record("a", "A", [_feature("f1", "Old name", 1, [])])])
    new = _write(tmp_path / "new.jsonl", [_record("a", "A", [_feature("f2", hostile, 1, [], text="Other.")])])

    text = runner.invoke(app, ["diff", str(old), str(new)])
    assert text.exit_code == 0, text.output
    assert "<script>alert(1)</script> [red]{{ x }}[/red]" in text.stdout  # shown as typed, never as markup
    assert "\x1b" not in text.stdout
    assert "1 services in both runs: 1 changed" in text.stdout

    document = runner.invoke(app, ["diff", str(old), str(new), "--json"])
    assert document.exit_code == 0
    parsed = json.loads(document.stdout)
    assert parsed["changed"][0]["added"][0]["name"] == hostile
    assert parsed["changed"][0]["removed"][0]["name"] == "Old name"

    missing = runner.invoke(app, ["diff", str(tmp_path / "nope.jsonl"), str(new)])
    assert missing.exit_code != 0
    assert "nope.jsonl" in missing.stderr
