"""runs/lock.py: one live run per output, whatever the spelling of its path."""

from __future__ import annotations

from pathlib import Path

import pytest

from service_ambitions.core.errors import OutputError
from service_ambitions.runs.lock import output_lock


def test_one_writer_per_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with output_lock(out, tmp_path / "runs"):
        with (
            pytest.raises(OutputError, match="is being written by a run that is still going"),
            output_lock(tmp_path / "." / "out.jsonl", tmp_path / "runs"),
        ):
            pass
        with output_lock(tmp_path / "other.jsonl", tmp_path / "runs"):
            pass  # another output is free
    with output_lock(out, tmp_path / "runs"):
        pass  # released when the first run ended
    with output_lock(Path("-"), tmp_path / "runs"), output_lock(Path("-"), tmp_path / "runs"):
        pass  # standard output is never locked
