"""How a run continues after a stop: which run, what it already wrote, and putting it in order.

The output is appended one complete line per service, flushed and fsynced, so a crash at
any point leaves only whole lines, except perhaps a torn last one, which :func:`recover_output`
drops before a resumed run appends.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..errors import ResumeMismatch
from .records import Manifest, read_manifest

__all__ = ["find_run", "recover_output", "recover_quarantine", "restore_input_order"]


def find_run(runs_dir: Path, *, run_id: str | None, output: Path) -> tuple[Path, Manifest] | None:
    """The run to resume: ``run_id``, or the latest run that wrote ``output``.

    None when no run wrote ``output`` and ``output`` holds nothing yet (a run killed
    while starting, or never started): the caller starts a new run. Records no run
    vouches for are never appended to blindly.

    Raises:
        ResumeMismatch: there is no run ``run_id``, or ``output`` holds records no run record knows.
    """
    if run_id is not None:
        manifest = read_manifest(runs_dir / run_id)
        if manifest is None:
            raise ResumeMismatch(f"no run {run_id!r} in {runs_dir}", hint="run without --resume to start a new run")
        if manifest.command != "run":
            raise ResumeMismatch(
                f"run {run_id} was made by {manifest.command!r}, which cannot be resumed", hint="run it again"
            )
        return runs_dir / run_id, manifest
    target = str(output.resolve())
    candidates = [
        (directory, manifest)
        for directory in (runs_dir.iterdir() if runs_dir.is_dir() else [])
        if (manifest := read_manifest(directory)) is not None
        and manifest.output_path == target
        and manifest.command == "run"
    ]
    if not candidates:
        if output.exists() and output.stat().st_size > 0:
            raise ResumeMismatch(
                f"no run record in {runs_dir} wrote {output}, which is not empty",
                hint="give the run with --run-id, or run without --resume to start again",
            )
        return None
    return max(candidates, key=lambda pair: pair[1].started)


def restore_input_order(output: Path, quarantine: Path, positions: dict[str, int]) -> None:
    """After a resumed run: records in input order, and no quarantine entry for a service now done.

    A resumed run appends; a service that failed before and succeeded now lands after
    services that follow it in the input. The output is then rewritten in input order,
    atomically (a temporary file, fsynced, renamed over it), so a crash leaves either the
    old file or the new one. Services the resumed run completed leave the quarantine file.
    """
    lines = _raw_lines(output)
    ids = [_service_id(line) for line in lines]
    keys = [positions.get(service_id or "", len(positions)) for service_id in ids]
    if keys != sorted(keys):
        ordered = [line for _, line in sorted(zip(keys, lines, strict=True), key=lambda pair: pair[0])]
        _replace(output, ordered)
    done = {service_id for service_id in ids if service_id}
    if quarantine.exists():
        entries = _raw_lines(quarantine)
        kept = _current_quarantine(entries, done)
        if not kept:
            quarantine.unlink()
        elif len(kept) != len(entries):
            _replace(quarantine, kept)


def _raw_lines(path: Path) -> list[bytes]:
    with path.open("rb") as handle:
        return [line for line in handle if line.strip()]


def _service_id(line: bytes) -> str | None:
    service = json.loads(line).get("service")
    return str(service["service_id"]) if isinstance(service, dict) and "service_id" in service else None


def _current_quarantine(entries: list[bytes], done: set[str]) -> list[bytes]:
    """Entries still true: not for a service now done, and only the latest failure of each service."""
    latest: dict[str, int] = {}
    records = [json.loads(line) for line in entries]
    for index, record in enumerate(records):
        if record.get("kind") == "service":
            latest[str(record.get("service_id"))] = index
    return [
        line
        for index, (line, record) in enumerate(zip(entries, records, strict=True))
        if record.get("kind") != "service"
        or (record.get("service_id") not in done and latest[str(record.get("service_id"))] == index)
    ]


def _replace(path: Path, lines: list[bytes]) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.writelines(lines)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def recover_output(path: Path) -> set[str]:
    """The service ids already written to ``path``, after dropping a torn last line.

    A run stopped mid-write (``kill -9``, power loss) can leave a last line without its
    newline or with half its JSON; it is cut off so the resumed run appends whole lines.
    """
    services = (record.get("service") for record in _whole_lines(path))
    return {service["service_id"] for service in services if isinstance(service, dict) and "service_id" in service}


def recover_quarantine(path: Path) -> set[int]:
    """Input line numbers already quarantined in ``path`` (a torn last line is dropped)."""
    return {int(record["line"]) for record in _whole_lines(path) if record.get("kind") == "input"}


def _whole_lines(path: Path) -> list[dict[str, Any]]:
    """Every complete JSON line of ``path``; the file is cut back to the last of them."""
    records: list[dict[str, Any]] = []
    if not path.exists():
        return records
    good_until = 0
    with path.open("rb") as handle:
        for line in handle:
            try:
                record = json.loads(line) if line.endswith(b"\n") else None
            except ValueError:
                record = None
            if not isinstance(record, dict):
                break
            records.append(record)
            good_until += len(line)
    if good_until != path.stat().st_size:
        with path.open("r+b") as handle:
            handle.truncate(good_until)
    return records
