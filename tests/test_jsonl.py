from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from service_ambitions.core.errors import InputError
from service_ambitions.inputs.entries import Accepted, QuarantineRecord, Rejected
from service_ambitions.inputs.jsonl import JsonlWriter, read_services


def test_reads_lines_in_order_and_rejects_what_is_not_a_service(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    good = json.dumps({"service_id": "a", "name": "A", "description": "x", "colour": "teal"})
    path.write_bytes(
        b"\xef\xbb\xbf" + good.encode() + b"\r\n"  # BOM and CRLF, as some editors write
        b"\n"
        b"\xff\xfe broken\n" + json.dumps({"service_id": "b", "name": "", "description": "x"}).encode() + b"\n"
    )
    entries = list(read_services(path))

    assert isinstance(entries[0], Accepted)
    assert entries[0].service.model_extra == {"colour": "teal"}
    assert [(type(e).__name__, e.line) for e in entries] == [("Accepted", 1), ("Rejected", 3), ("Rejected", 4)]
    assert isinstance(entries[1], Rejected)
    assert entries[1].reason.startswith("not UTF-8")
    assert isinstance(entries[2], Rejected)
    assert "name: String should have at least 1 character" in entries[2].reason


def test_missing_file_fails_when_called(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read input"):
        read_services(tmp_path / "missing.jsonl")


def test_writer_opens_lazily_and_writes_whole_lines(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "q.jsonl"
    with JsonlWriter(path) as writer:
        assert not path.exists()
        writer.write(QuarantineRecord(kind="input", line=3, reason="bad"))
        assert path.read_text() == '{"kind":"input","line":3,"reason":"bad"}\n'  # flushed, nulls left out
    assert writer.count == 1


def test_a_durable_writer_syncs_at_most_every_interval_and_always_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd))
    now = [0.0]
    writer = JsonlWriter(tmp_path / "out.jsonl", durable=True, clock=lambda: now[0])
    for _ in range(5):
        writer.write('{"a": 1}')  # within one interval: written, not yet synced
    assert synced == []
    now[0] += JsonlWriter.SYNC_INTERVAL_S
    writer.write('{"a": 2}')
    assert len(synced) == 1
    writer.write('{"a": 3}')
    writer.close()
    assert len(synced) == 2  # what was left is on disk before the file is closed
    assert (tmp_path / "out.jsonl").read_text().count("\n") == 7
