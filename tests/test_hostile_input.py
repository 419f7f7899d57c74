"""Hostile input lines cost one line, never the run: deep nesting, huge lines, binary garbage."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.inputs.entries import Accepted, Rejected
from service_ambitions.inputs.jsonl import RAW_PREFIX_CHARS, read_services

from .conftest import read_jsonl

runner = CliRunner()
GOOD = {"service_id": "good", "name": "Good", "description": "A fine service."}


def _write(path: Path, *lines: bytes) -> Path:
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


def test_each_hostile_line_is_quarantined_with_a_bounded_prefix(tmp_path: Path) -> None:
    deep = b'{"service_id": "deep", "name": "n", "description": "d", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    nested_a_little_too_much = json.dumps({**GOOD, "service_id": "d65", "x": json.loads("[" * 64 + "]" * 64)})
    huge = json.dumps({**GOOD, "service_id": "huge", "description": "x" * 3_000_000}).encode()
    garbage = bytes(b for b in range(256) if b != ord("\n")) * 40
    source = _write(
        tmp_path / "in.jsonl",
        json.dumps(GOOD).encode(),
        deep,
        nested_a_little_too_much.encode(),
        huge,
        garbage,
        json.dumps({**GOOD, "service_id": "last"}).encode(),
    )
    entries = list(read_services(source, max_line_bytes=1 << 20))
    assert [e.service.service_id for e in entries if isinstance(e, Accepted)] == ["good", "last"]
    rejected = {e.line: e for e in entries if isinstance(e, Rejected)}
    assert rejected[2].reason == "nested more than 64 levels deep"
    assert rejected[3].reason == "nested more than 64 levels deep"
    assert rejected[4].reason == f"line of {len(huge) + 1:,} bytes is longer than the limit of 1,048,576"
    assert rejected[5].reason.startswith("not UTF-8 text")
    assert all(len(entry.raw) <= RAW_PREFIX_CHARS + 40 for entry in rejected.values())


def test_the_cli_quarantines_them_and_goes_on(tmp_path: Path) -> None:
    source = _write(
        tmp_path / "in.jsonl",
        json.dumps(GOOD).encode(),
        b"[" * 3_000,
        json.dumps({**GOOD, "service_id": "big", "description": "y" * 5000}).encode(),
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(source), "-o", str(out), "--model", "offline"], env={"SA_MAX_LINE_BYTES": "4096"}
    )
    assert result.exit_code == 9, result.output
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == ["good"]  # type: ignore[index]
    reasons = [row["reason"] for row in read_jsonl(tmp_path / "out.quarantine.jsonl")]
    assert reasons == ["nested more than 64 levels deep", "line of 5,057 bytes is longer than the limit of 4,096"]
    assert "Traceback" not in result.output
