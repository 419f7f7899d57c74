"""Golden files: the offline run of ``examples/`` and its CSV and Markdown views, as they should be.

The examples go through the whole CLI on the offline model (seed 0); the records, the CSV
tables and the Markdown roadmaps are compared with ``tests/golden/`` field by field, with
what differs between two identical runs masked (the run id, the time, the tool version).
A change in prompts, reference data, output types or the offline model changes them: look
at the diff, and if the change is meant, refresh them on purpose::

    uv run poe golden-refresh        # = uv run pytest tests/test_golden.py --refresh-golden

The HTML page is not kept: it carries its services as compressed JSON, so a diff of it
would say nothing the records' diff does not.
"""

from __future__ import annotations

import csv
import difflib
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "services.jsonl"
MASK = "<masked>"
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
_VOLATILE_META = ("run_id", "created", "generator")
_SHOWN = 25
"""Differences listed in a failure; the rest are counted."""

pytestmark = pytest.mark.golden
runner = CliRunner()


@pytest.fixture(scope="module")
def produced(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The records and views of the examples, written by the CLI once for the module."""
    folder = tmp_path_factory.mktemp("golden")
    env = {"SA_RUNS_DIR": str(folder / "runs"), "SA_CACHE_DIR": str(folder / "cache")}
    output = folder / "evolutions.jsonl"
    made = runner.invoke(app, ["run", str(EXAMPLES), "-o", str(output), "--model", "offline", "--seed", "0"], env=env)
    assert made.exit_code == 0, made.output
    for args in (["-o", str(folder / "csv")], ["-f", "md", "-o", str(folder / "md")]):
        exported = runner.invoke(app, ["export", str(output), *args], env=env)
        assert exported.exit_code == 0, exported.output
    return folder


def _masked_record(record: dict[str, Any]) -> dict[str, Any]:
    meta = dict(record["meta"])
    meta.update(dict.fromkeys(_VOLATILE_META, MASK))
    return {**record, "meta": meta}


def _masked_text(text: str) -> str:
    return _RUN_ID.sub(MASK, text)


def _differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every field path where ``actual`` differs from ``expected``, with both values."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = []
        for key in sorted(set(expected) | set(actual), key=str):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual:
                found.append(f"{where}: missing (expected {json.dumps(expected[key])[:80]})")
            elif key not in expected:
                found.append(f"{where}: not expected (got {json.dumps(actual[key])[:80]})")
            else:
                found += _differences(expected[key], actual[key], where)
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        found = [f"{path}: {len(actual)} items, expected {len(expected)}"] if len(expected) != len(actual) else []
        for index, (left, right) in enumerate(zip(expected, actual, strict=False)):
            found += _differences(left, right, f"{path}[{index}]")
        return found
    if expected != actual:
        return [f"{path}: expected {json.dumps(expected)[:80]}, got {json.dumps(actual)[:80]}"]
    return []


def _report(what: str, differences: list[str]) -> str:
    shown = "\n  ".join(differences[:_SHOWN])
    more = f"\n  … and {len(differences) - _SHOWN} more" if len(differences) > _SHOWN else ""
    return (
        f"{what} differs from tests/golden/ in {len(differences)} place(s):\n  {shown}{more}\n"
        "If the change is meant, refresh the golden files: uv run poe golden-refresh"
    )


def _read_records(path: Path) -> dict[str, dict[str, Any]]:
    records = [_masked_record(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return {record["service"]["service_id"]: record for record in records}


def _refresh(produced: Path) -> None:
    if GOLDEN.exists():
        shutil.rmtree(GOLDEN)
    GOLDEN.mkdir()
    records = _read_records(produced / "evolutions.jsonl").values()
    (GOLDEN / "evolutions.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    for kind in ("csv", "md"):
        (GOLDEN / kind).mkdir()
        for source in sorted((produced / kind).iterdir()):
            (GOLDEN / kind / source.name).write_text(_masked_text(source.read_text(encoding="utf-8-sig")))


def test_records_are_the_golden_ones(produced: Path, request: pytest.FixtureRequest) -> None:
    if request.config.getoption("--refresh-golden"):
        _refresh(produced)
    expected = _read_records(GOLDEN / "evolutions.jsonl")
    actual = _read_records(produced / "evolutions.jsonl")
    differences = _differences(expected, actual)
    assert not differences, _report("the offline run of examples/", differences)


@pytest.mark.parametrize("kind", ["csv", "md"])
def test_views_are_the_golden_ones(produced: Path, kind: str) -> None:
    expected_files = sorted(path.name for path in (GOLDEN / kind).iterdir())
    actual_files = sorted(path.name for path in (produced / kind).iterdir())
    assert actual_files == expected_files, _report(
        f"the {kind} files", [f"expected {expected_files}, got {actual_files}"]
    )
    differences: list[str] = []
    for name in expected_files:
        expected = (GOLDEN / kind / name).read_text(encoding="utf-8")
        actual = _masked_text((produced / kind / name).read_text(encoding="utf-8-sig"))
        if kind == "csv":
            rows = (list(csv.DictReader(expected.splitlines())), list(csv.DictReader(actual.splitlines())))
            differences += _differences({name: rows[0]}, {name: rows[1]})
        elif expected != actual:
            diff = difflib.unified_diff(expected.splitlines(), actual.splitlines(), f"golden/{name}", name, lineterm="")
            differences += list(diff)[2:]
    assert not differences, _report(f"the {kind} view", differences)
