"""Run journals: what a run did, kept in its own directory.

Every run gets a directory under the runs directory, named by its id, holding:

- ``manifest.json``: tool version, input path and SHA-256, output paths, a copy of
  the settings (which hold no secrets: keys live in the provider's own variables), the
  fingerprint of everything that affects results, status and counts. Rewritten
  atomically (temporary file, then rename) whenever the status changes.
- ``events.jsonl``: one typed event per line, in the envelope of ``core/events.py``
  (``v``, ``ts``, ``level``, ``run_id``, ``type``, ``stage``, ``service_id``, ``data``);
  files written before it (flat events with ``time``) read the same.

Reports, ``runs`` and resume read journals through these functions, never by file name.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import OutputError
from service_ambitions.core.events import Event, FileWritten, enveloped, from_line
from service_ambitions.core.secrets import scrub
from service_ambitions.core.spend import Spend
from service_ambitions.runs.tally import Tally

__all__ = [
    "TERMINATE",
    "EventTail",
    "Manifest",
    "RunCounts",
    "RunJournal",
    "RunStatus",
    "current_process",
    "file_sha256",
    "file_written",
    "follow_events",
    "journal_error",
    "read_events",
    "read_manifest",
    "tally_run",
]


class RunStatus(StrEnum):
    """Where a run stands."""

    RUNNING = "running"
    COMPLETED = "completed"
    INTERRUPTED = "interrupted"
    """Stopped by Ctrl-C, or found dead (``kill -9``, a crash, a power cut) without saying so."""
    TERMINATED = "terminated"
    """Stopped by SIGTERM (a service manager, a CI timeout, ``kill``)."""
    BUDGET_STOPPED = "budget_stopped"
    DETACHED = "detached"
    """Batch mode: everything left waits on provider batches; ``runs collect`` carries it on."""
    FAILED = "failed"


class RunCounts(BaseModel):
    """What a run got done, and what its calls used and cost."""

    model_config = ConfigDict(extra="forbid")

    services_completed: int = 0
    services_failed: int = 0
    services_deferred: int = 0
    lines_quarantined: int = 0
    calls: int = 0
    cached_calls: int = 0
    failed_calls: int = 0
    """Calls that failed after reaching the provider; their tokens and cost are in ``spend``."""
    spend: Spend = Spend()
    """Requests the provider answered (and billed), those of failed calls included, their tokens and cost."""

    @model_validator(mode="before")
    @classmethod
    def _flat_spend(cls, data: Any) -> Any:
        """Manifests written before :class:`Spend` held requests, tokens and cost flat."""
        if isinstance(data, dict) and "spend" not in data:
            data = dict(data)
            names = {"requests": "requests", "input_tokens": "input_tokens", "output_tokens": "output_tokens"}
            spend: dict[str, Any] = {new: data.pop(old) for old, new in names.items() if old in data}
            spend["cost_usd"] = data.pop("cost_usd", "0")
            spend["unpriced"] = data.pop("unpriced_calls", 0)
            data["spend"] = spend
        return data

    @classmethod
    def from_tally(cls, tally: Tally) -> RunCounts:
        """The counts of a run's events."""
        return cls(
            services_completed=tally.completed,
            services_failed=tally.failed,
            services_deferred=tally.deferred,
            lines_quarantined=tally.quarantined_lines,
            calls=tally.total_calls,
            cached_calls=tally.total_cached,
            failed_calls=tally.failed_calls,
            spend=tally.spend,
        )


class Manifest(BaseModel):
    """The manifest of one run: what it was asked, how it stands, what it got done."""

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
    fingerprint_parts: dict[str, str] = Field(default_factory=dict)
    """The same, part by part, so a refused resume can name what changed (empty in older journals)."""
    settings: dict[str, Any]
    command_line: list[str] | None = None
    """The command that started the run, word by word as the user gave it (secrets scrubbed)."""
    counts: RunCounts = Field(default_factory=RunCounts)
    resumed: int = 0
    """How many times the run was continued with --resume."""
    stop_reason: str | None = None
    pid: int | None = None
    """The process running it, while it runs: a run whose process is gone is shown as interrupted."""
    host: str | None = None
    """The machine that process runs on (a process elsewhere cannot be checked)."""
    files: dict[str, FileWritten] = Field(default_factory=dict)
    """The files the run wrote, by what they are (``output``, ``quarantine``), as they stood when it ended."""


def file_written(path: Path, why: str) -> FileWritten:
    """The record of a file as it stands: its size, lines and SHA-256."""
    digest = hashlib.sha256()
    size = lines = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            lines += block.count(b"\n")
    return FileWritten(path=str(path.resolve()), why=why, bytes=size, lines=lines, sha256=digest.hexdigest())


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class RunJournal:
    """Writes one run's manifest and events; an event sink for the pipeline.

    A journal that cannot be written once the run is under way (a full disk, say) does
    not stop the run mid-service: the first failure is kept in :attr:`problem`, later
    writes are skipped, and the job reports it when the run ends.
    """

    def __init__(self, directory: Path, manifest: Manifest, *, clock: Callable[[], datetime] = utc_now) -> None:
        self.directory = directory
        self.manifest = manifest
        self._clock = clock
        self.problem: OutputError | None = None
        """The first failure to write the journal, if any."""
        try:
            # Owner-only, like the cache: journals name inputs and may quote what providers said.
            directory.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            directory.mkdir(mode=0o700, exist_ok=True)
            _drop_torn_tail(directory / "events.jsonl")
            descriptor = os.open(directory / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            self._events: IO[str] = os.fdopen(descriptor, "a", encoding="utf-8")
            self._write_manifest()
        except OSError as exc:
            raise journal_error(directory, exc) from exc

    def __call__(self, event: Event) -> None:
        """Append one event in its envelope, as a line (scrubbed of secrets, whatever it carries)."""
        if self.problem is not None:
            return
        if isinstance(event, FileWritten):
            self.manifest.files[event.why] = event  # kept in the manifest when the run ends
        line = scrub(enveloped(event, run_id=self.manifest.run_id, ts=self._clock().isoformat()) + "\n")
        try:
            self._events.write(line)
            self._events.flush()
        except OSError as exc:
            self.problem = journal_error(self.directory, exc)

    def save(self) -> None:
        """Write the manifest atomically: readers never see half a file."""
        try:
            self._write_manifest()
        except OSError as exc:
            self.problem = self.problem or journal_error(self.directory, exc)

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

    def __enter__(self) -> RunJournal:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def journal_error(directory: Path, exc: OSError) -> OutputError:
    """The one-line error for run journals that cannot be written."""
    return OutputError(
        f"cannot write the run journals in {directory}: {exc.strerror or exc}",
        hint="free some space, or set --runs-dir (SA_RUNS_DIR) to a writable directory",
    )


TERMINATE = "SIGTERM"
"""The cancellation message of a run stopped by SIGTERM (``task.cancel(TERMINATE)``)."""


def read_manifest(directory: Path) -> Manifest | None:
    """The manifest in ``directory``, or None if there is none or it is unreadable.

    A manifest that says ``running`` while its process is gone (``kill -9``, a crash)
    is read as ``interrupted``: journals tell the truth, not the last thing written.
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
    """Whether the run's process still runs; True when that cannot be known (older journals, other hosts)."""
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


def tally_run(directory: Path) -> Tally:
    """The counts of every segment of the run journaled in ``directory``: one run, one total.

    A resumed run appends to the same events; services that failed in one segment and
    were done in a later one count as done.
    """
    return Tally.of(read_events(directory))


def read_events(directory: Path) -> list[Event]:
    """Every event a run journaled (for reports and tests).

    A torn last line (a process killed mid-write, a full disk) is skipped.
    """
    events: list[Event] = []
    with (directory / "events.jsonl").open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            try:
                data = json.loads(line)
            except ValueError:
                continue  # a line torn by a crash or a full disk, with a later segment's events after it
            events.append(from_line(data))
    return events


def _drop_torn_tail(path: Path) -> None:
    """Cut a last line left unfinished (a crash, a full disk) before a resumed run appends to the file."""
    try:
        with path.open("rb+") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return
            start = max(0, size - (1 << 20))
            handle.seek(start)
            tail = handle.read()
            cut = tail.rfind(b"\n")
            handle.truncate(start + cut + 1 if cut >= 0 else start)
    except FileNotFoundError:
        return


class EventTail:
    """The whole lines of a run's event file, read as they are written: ``runs tail -f`` and the web's stream.

    A line still being written is left for a later read, whole. :meth:`ended` says when
    following can stop — the manifest, not one event, says whether the run runs (a resumed
    run's earlier ``run_finished`` does not end it, a process gone with ``kill -9`` does);
    the lines written before that are read by one more :meth:`new_lines`.
    """

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._handle = (directory / "events.jsonl").open(encoding="utf-8", errors="replace")

    def new_lines(self) -> list[str]:
        """Every whole line written since the last call (without its newline)."""
        found: list[str] = []
        while True:
            line = self._handle.readline()
            if not line.endswith("\n"):
                self._handle.seek(self._handle.tell() - len(line))  # being written: read it whole later
                return found
            found.append(line.rstrip("\n"))

    def ended(self) -> bool:
        """Whether the run is no longer running (finished, stopped, or its process gone)."""
        manifest = read_manifest(self._directory)
        return manifest is None or manifest.status is not RunStatus.RUNNING

    def close(self) -> None:
        """Close the file."""
        self._handle.close()

    def __enter__(self) -> EventTail:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def follow_events(
    directory: Path, *, follow: bool = False, sleep: Callable[[float], None] = time.sleep
) -> Iterator[str]:
    """Every event line of the run in ``directory`` as it was written (JSON).

    With ``follow``, new ones too, until the run no longer runs and every line it wrote has been read.
    """
    with EventTail(directory) as tail:
        while True:
            yield from tail.new_lines()
            if not follow:
                return
            if tail.ended():
                yield from tail.new_lines()  # written before the status changed
                return
            sleep(0.2)
