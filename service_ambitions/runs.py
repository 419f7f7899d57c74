"""Run records and the output file: what a run did, and how a run continues after a stop.

Every run gets a directory under the runs directory, named by its id, holding:

- ``manifest.json``: tool version, input path and SHA-256, output paths, a snapshot of
  the settings (which hold no secrets: keys live in the provider's own variables), the
  fingerprint of everything that affects results, status and counts. Rewritten
  atomically (temporary file, then rename) whenever the status changes.
- ``events.jsonl``: one typed event per line, with its time.

The output is appended one complete line per service, flushed and fsynced, so a crash at
any point leaves only whole lines, except perhaps a torn last one, which :func:`recover_output`
drops before a resumed run appends.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; outputs are not locked there
    fcntl = None  # type: ignore[assignment]

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from .clock import utc_now
from .errors import OutputError, ResumeMismatch
from .events import Event, Tally
from .secrets import scrub

__all__ = [
    "TERMINATE",
    "Manifest",
    "RunCounts",
    "RunRecorder",
    "RunStatus",
    "current_process",
    "file_sha256",
    "find_run",
    "output_lock",
    "read_events",
    "read_manifest",
    "recover_output",
    "recover_quarantine",
    "restore_input_order",
    "tally_run",
]

_EVENT = TypeAdapter(Event)


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    """Stopped by Ctrl-C, or found dead (``kill -9``, a crash, a power cut) without saying so."""
    TERMINATED = "terminated"
    """Stopped by SIGTERM (a service manager, a CI timeout, ``kill``)."""
    BUDGET_STOPPED = "budget_stopped"
    FAILED = "failed"


class RunCounts(BaseModel):
    """What a run got done."""

    model_config = ConfigDict(extra="forbid")

    services_completed: int = 0
    services_failed: int = 0
    lines_quarantined: int = 0
    calls: int = 0
    cached_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    services_deferred: int = 0
    cost_usd: str = "0"
    unpriced_calls: int = 0
    requests: int = 0
    """Requests the provider answered (and billed), those of failed calls included."""
    failed_calls: int = 0
    """Calls that failed after reaching the provider; their tokens and cost are counted."""

    @classmethod
    def from_tally(cls, tally: Tally) -> RunCounts:
        """The counts of a run's events."""
        return cls(
            services_completed=tally.completed,
            services_failed=tally.failed,
            lines_quarantined=tally.quarantined_lines,
            calls=tally.total_calls,
            cached_calls=tally.total_cached,
            input_tokens=sum(tally.input_tokens.values()),
            output_tokens=sum(tally.output_tokens.values()),
            services_deferred=tally.deferred,
            cost_usd=str(tally.cost),
            unpriced_calls=tally.unpriced_calls,
            requests=tally.total_requests,
            failed_calls=tally.failed_calls,
        )


class Manifest(BaseModel):
    """The record of one run."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    command: str = "run"
    """The command that made the run: ``run`` or ``map``."""
    tool_version: str
    status: RunStatus
    started: datetime
    updated: datetime
    input_path: str
    input_sha256: str
    output_path: str
    quarantine_path: str
    fingerprint: str
    """SHA-256 of every setting, model, reference file and prompt that affects results."""
    settings: dict[str, Any]
    counts: RunCounts = Field(default_factory=RunCounts)
    resumed: int = 0
    """How many times the run was continued with --resume."""
    stop_reason: str | None = None
    pid: int | None = None
    """The process running it, while it runs: a run whose process is gone is shown as interrupted."""
    host: str | None = None
    """The machine that process runs on (a process elsewhere cannot be checked)."""


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunRecorder:
    """Writes one run's manifest and events; an event sink for the pipeline.

    A record that cannot be written once the run is under way (a full disk, say) does
    not stop the run mid-service: the first failure is kept in :attr:`problem`, later
    writes are skipped, and the job reports it when the run ends.
    """

    def __init__(self, directory: Path, manifest: Manifest, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.directory = directory
        self.manifest = manifest
        self._clock = clock
        self.problem: OutputError | None = None
        """The first failure to write a record, if any."""
        try:
            # Owner-only, like the cache: records name inputs and may quote what providers said.
            directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.mkdir(mode=0o700, exist_ok=True)
            descriptor = os.open(directory / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._events: IO[str] = os.fdopen(descriptor, "a", encoding="utf-8")
            self._write_manifest()
        except OSError as exc:
            raise _records_error(directory, exc) from exc

    def __call__(self, event: Event) -> None:
        """Append one event, with its time, as a line (scrubbed of secrets, whatever it carries)."""
        if self.problem is not None:
            return
        # The event's own JSON, with its time first: one serialisation, in pydantic-core.
        line = scrub(f'{{"time": "{self._clock().isoformat()}", {event.model_dump_json()[1:]}\n')
        try:
            self._events.write(line)
            self._events.flush()
        except OSError as exc:
            self.problem = _records_error(self.directory, exc)

    def save(self) -> None:
        """Write the manifest atomically: readers never see half a file."""
        try:
            self._write_manifest()
        except OSError as exc:
            self.problem = self.problem or _records_error(self.directory, exc)

    def _write_manifest(self) -> None:
        self.manifest.updated = self._clock()
        target = self.directory / "manifest.json"
        temporary = target.with_suffix(".json.tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(scrub(self.manifest.model_dump_json(indent=2)))
        os.replace(temporary, target)

    def finish(self, status: RunStatus, counts: RunCounts, reason: str | None = None) -> None:
        """Record how the run ended."""
        self.manifest.status = status
        self.manifest.counts = counts
        self.manifest.stop_reason = reason
        self.save()

    def close(self) -> None:
        """Flush events to disk."""
        with contextlib.suppress(OSError):  # a failure to write them is already in `problem`
            self._events.flush()
            os.fsync(self._events.fileno())
        with contextlib.suppress(OSError):
            self._events.close()

    def __enter__(self) -> RunRecorder:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _records_error(directory: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write the run records in {directory}: {exc.strerror or exc}",
        hint="free some space, or set --runs-dir (SA_RUNS_DIR) to a writable directory",
    )


@contextmanager
def output_lock(output: Path, runs_dir: Path) -> Iterator[None]:
    """Hold the one-writer lock of ``output`` while the block runs.

    The lock is an advisory ``flock`` on a file under ``runs_dir/.locks`` named by the
    output's real path, so two runs on one output (under any spelling of its path) never
    write it at once. The kernel releases it when its process ends, however it ends, so a
    killed run's lock is simply taken over. Standard output (``-``) is not locked; neither
    is anything on a platform without ``flock``.

    Raises:
        OutputError: another live run holds the lock.
    """
    if str(output) == "-" or fcntl is None:
        yield
        return
    locks = runs_dir / ".locks"
    try:
        locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        name = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:32]
        descriptor = os.open(locks / f"{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise _records_error(locks, exc) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "another process"
            raise OutputError(
                f"{output} is being written by a run that is still going (process {holder})",
                hint="wait for it to finish or stop it; two runs never write one output",
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


TERMINATE = "SIGTERM"
"""The cancellation message of a run stopped by SIGTERM (``task.cancel(TERMINATE)``)."""


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory``, or None if there is none or it is unreadable.

    A manifest that says ``running`` while its process is gone (``kill -9``, a crash)
    is read as ``interrupted``: records tell the truth, not the last thing written.
    """
    try:
        manifest = Manifest.model_validate_json((directory / "manifest.json").read_bytes())
    except (OSError, ValidationError):
        return None
    if manifest.status is RunStatus.RUNNING and not _alive(manifest):
        reason = f"its process ({manifest.pid}) ended without saying how: killed, crashed or powered off"
        manifest = manifest.model_copy(update={"status": RunStatus.INTERRUPTED, "stop_reason": reason})
    return manifest


def current_process() -> dict[str, Any]:
    """The ``pid`` and ``host`` fields of a manifest written by this process."""
    return {"pid": os.getpid(), "host": socket.gethostname()}


def _alive(manifest: Manifest) -> bool:
    """Whether the run's process still runs; True when that cannot be known (older records, other hosts)."""
    if manifest.pid is None or manifest.host != socket.gethostname() or manifest.pid == os.getpid():
        return True
    try:
        os.kill(manifest.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process with that id: cannot tell, assume it runs
    cmdline = Path(f"/proc/{manifest.pid}/cmdline")
    if cmdline.exists():
        # The id may have been reused by another program since.
        command = cmdline.read_bytes()
        return b"service_ambitions" in command or b"service-ambitions" in command
    return True


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


def tally_run(directory: Path) -> Tally:
    """The counts of every segment of the run recorded in ``directory``: one run, one total.

    A resumed run appends to the same events; services that failed in one segment and
    were done in a later one count as done.
    """
    tally = Tally()
    for event in read_events(directory):
        tally(event)
    return tally


def read_events(directory: Path) -> list[Event]:
    """Every event a run recorded (for reports and tests).

    A torn last line (a process killed mid-write, a full disk) is skipped.
    """
    events: list[Event] = []
    with (directory / "events.jsonl").open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            data = json.loads(line)
            data.pop("time", None)
            events.append(_EVENT.validate_python(data))
    return events
