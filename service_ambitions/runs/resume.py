"""How a run continues after a stop: which run, what it already wrote, and putting it in order.

The output is appended one complete line per service, flushed and fsynced, so a crash at
any point leaves only whole lines, except perhaps a torn last one, which :func:`recover_output`
drops before a resumed run appends.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import InputError, OutputError, ResumeMismatch
from service_ambitions.core.secrets import scrub
from service_ambitions.runs.journal import Manifest, RunStatus, current_process, file_sha256, read_manifest

__all__ = [
    "OpenedRun",
    "RunIdentity",
    "check_resumable",
    "find_run",
    "new_run_id",
    "open_run",
    "recover_output",
    "recover_quarantine",
    "refuse_overwrite",
    "restore_input_order",
    "same_file",
]


def find_run(runs_dir: Path, *, run_id: str | None, output: Path, command: str = "run") -> tuple[Path, Manifest] | None:
    """The run of ``command`` to resume: ``run_id``, or the latest such run that wrote ``output``.

    None when no run wrote ``output`` and ``output`` holds nothing yet (a run killed
    while starting, or never started): the caller starts a new run. Records no run
    vouches for are never appended to blindly.

    Raises:
        ResumeMismatch: there is no run ``run_id``, or ``output`` holds records no run journal knows.
    """
    if run_id is not None:
        manifest = read_manifest(runs_dir / run_id)
        if manifest is None:
            raise ResumeMismatch(f"no run {run_id!r} in {runs_dir}", hint="run without --resume to start a new run")
        if manifest.command != command:
            raise ResumeMismatch(
                f"run {run_id} was made by {manifest.command!r}; `{command} --resume` cannot continue it",
                hint=f"resume it with `{manifest.command} --resume`",
            )
        return runs_dir / run_id, manifest
    target = str(output.resolve())
    candidates = [
        (directory, manifest)
        for directory in (runs_dir.iterdir() if runs_dir.is_dir() else [])
        if (manifest := read_manifest(directory)) is not None
        and manifest.output_path == target
        and manifest.command == command
    ]
    if not candidates:
        if output.exists() and output.stat().st_size > 0:
            raise ResumeMismatch(
                f"no run journal in {runs_dir} wrote {output}, which is not empty",
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


def new_run_id(clock: Callable[[], datetime]) -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix."""
    return f"{clock().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunIdentity:
    """What a run is made of: what a resumed run must still match, and what its manifest records."""

    command: str
    fingerprint: str
    """SHA-256 of everything that affects results."""
    parts: dict[str, str]
    """The same, part by part (models, seed, prompts…), so a refused resume can name what changed."""
    settings: dict[str, Any]
    """The settings as the run used them (no secrets: keys are never settings)."""
    command_line: tuple[str, ...] = ()
    """The command as the user gave it (``service-ambitions run … -o …``), for the hint that continues it."""


@dataclass(frozen=True)
class OpenedRun:
    """A run ready to go: new, or an earlier one being continued."""

    directory: Path
    manifest: Manifest
    done: set[str]
    """Service ids already in the output of the run being resumed."""
    seen_lines: set[int]
    """Input lines already quarantined by it."""
    resuming: bool
    """False for a new run, also when --resume found nothing to resume."""
    previous_output: Path | None = None
    """Where an earlier output at the same path was moved, so a new run destroys nothing."""
    restarted: str | None = None
    """Why ``--resume --force`` started afresh instead (settings changed: one file, one set of settings)."""


def open_run(
    runs_dir: Path,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    identity: RunIdentity,
    *,
    resume: bool = False,
    run_id: str | None = None,
    force: bool = False,
    clock: Callable[[], datetime] = utc_now,
    started: datetime | None = None,
) -> OpenedRun:
    """The run's directory and manifest, and what a resumed run already has.

    ``started`` is when the job began (before models were resolved), so the run's recorded
    time is the time the user waited; it defaults to now.

    A new run never truncates what is there: an earlier output (and quarantine file) at
    the same path is moved to ``NAME.prev`` first (:attr:`OpenedRun.previous_output`).

    Raises:
        InputError: the input cannot be read, the output would overwrite it, or the
            quarantine file would be the output.
        OutputError: an earlier output or quarantine file cannot be moved aside.
        ResumeMismatch: the run to resume does not match the input or settings (unless ``force``).
    """
    input_sha = _input_sha256(input_path)
    refuse_overwrite(input_path, output_path, quarantine_path)
    if same_file(output_path, quarantine_path):
        raise InputError(
            "the quarantine file would be the output", path=str(output_path), hint="choose another --quarantine or -o"
        )
    found = find_run(runs_dir, run_id=run_id, output=output_path, command=identity.command) if resume else None
    restarted = None
    if found is not None:
        directory, manifest = found
        if check_resumable(manifest, input_sha, identity, force=force):
            # --force with other settings: records of two settings never share one file.
            restarted = f"run {manifest.run_id} was made with other settings, so a new run starts"
            found = None
    if found is not None:
        directory, manifest = found
        manifest = manifest.model_copy(
            update={
                "status": RunStatus.RUNNING,
                **current_process(),
                "resumed": manifest.resumed + 1,
                "input_sha256": input_sha,
                "fingerprint": identity.fingerprint,
                "fingerprint_parts": identity.parts,
                "stop_reason": None,
            }
        )
        return OpenedRun(directory, manifest, recover_output(output_path), recover_quarantine(quarantine_path), True)
    # An earlier run's files are kept aside, never truncated; its quarantine file would be
    # mistaken for this run's.
    previous = _keep_aside(output_path)
    _keep_aside(quarantine_path)
    new_id = new_run_id(clock)
    manifest = Manifest(
        run_id=new_id,
        command=identity.command,
        tool_version=version("service-ambitions"),
        status=RunStatus.RUNNING,
        **current_process(),
        started=started or clock(),
        updated=clock(),
        input_path=str(input_path.resolve()),
        input_sha256=input_sha,
        output_path=str(_where(output_path)),
        quarantine_path=str(quarantine_path.resolve()),
        fingerprint=identity.fingerprint,
        fingerprint_parts=identity.parts,
        settings=identity.settings,
        command_line=[scrub(word) for word in identity.command_line] or None,
    )
    return OpenedRun(runs_dir / new_id, manifest, set(), set(), False, previous, restarted)


def _keep_aside(path: Path) -> Path | None:
    """Move a non-empty earlier file at ``path`` to ``path.prev`` (replacing an older one); where it went.

    Raises:
        OutputError: it cannot be moved.
    """
    if str(path) == "-":
        return None
    try:
        if not path.is_file():
            return None  # nothing there, or a device or pipe (/dev/null, a FIFO): written through, never moved
        if path.stat().st_size == 0:
            path.unlink()
            return None
        kept = path.with_name(path.name + ".prev")
        os.replace(path, kept)
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}", hint="choose a writable place for -o") from exc
    return kept


def check_resumable(manifest: Manifest, input_sha: str, identity: RunIdentity, *, force: bool) -> bool:
    """Refuse to continue a run whose input or result-affecting settings changed, naming what changed.

    Returns:
        True when ``force`` overrode changed result-affecting settings: the caller starts a
        new run rather than mix two settings' records in one file.

    Raises:
        ResumeMismatch: something changed and ``force`` is not set.
    """
    changed = []
    if manifest.input_sha256 != input_sha:
        changed.append("the input file changed")
    if manifest.fingerprint != identity.fingerprint:
        parts = sorted(
            name
            for name in identity.parts.keys() | manifest.fingerprint_parts.keys()
            if identity.parts.get(name) != manifest.fingerprint_parts.get(name)
        )
        what = ", ".join(parts) if parts and manifest.fingerprint_parts else "settings, reference data or prompts"
        changed.append(f"{what} changed (they affect results)")
    if changed and not force:
        raise ResumeMismatch(
            f"cannot resume run {manifest.run_id}: {' and '.join(changed)}",
            hint="use --force to resume anyway (with other settings: a new run, the earlier output kept aside), "
            "or run without --resume to start again",
        )
    return manifest.fingerprint != identity.fingerprint


def refuse_overwrite(input_path: Path, *outputs: Path) -> None:
    """Stop before a command writes over the file it reads.

    Raises:
        InputError: one of ``outputs`` is ``input_path`` (by any name or link).
    """
    if any(same_file(input_path, output) for output in outputs):
        raise InputError("the output would overwrite the input", path=str(input_path), hint="choose another -o")


def same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one file: by identity (hard links, symlinks), not by spelling."""
    if str(one) == "-" or str(other) == "-":
        return False
    if one.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False  # one of them does not exist yet


def _where(path: Path) -> Path:
    """The absolute path, or ``-`` for standard output."""
    return path if str(path) == "-" else path.resolve()


def _input_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror}", path=str(path)) from exc
