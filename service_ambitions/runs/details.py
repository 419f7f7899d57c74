"""What ``runs show`` prints besides the manifest: each service's state, and a batch run's batches."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from service_ambitions.core.errors import ServiceAmbitionsError
from service_ambitions.core.events import (
    CallFailed,
    CallFinished,
    Event,
    ServiceCompleted,
    ServiceDeferred,
    ServiceFailed,
    ServiceSkipped,
    ServiceStarted,
)
from service_ambitions.inputs.entries import Accepted
from service_ambitions.inputs.jsonl import read_services
from service_ambitions.runs.journal import Manifest, file_written, read_events, read_manifest
from service_ambitions.runs.suspended import SuspendedStore
from service_ambitions.runs.tally import BatchRow, Tally

__all__ = ["FileCheck", "RunDetails", "ServiceState", "run_details", "service_states", "verify_files"]


class ServiceState(BaseModel):
    """Where one service of a run stands, as its events (and its input) tell it."""

    model_config = ConfigDict(extra="forbid")

    service_id: str
    state: str
    """``done``, ``cached`` (done, every call from the cache), ``failed``, ``skipped`` (done before a
    resume), ``deferred`` (left by the budget), ``unfinished`` (started, then the run stopped) or
    ``not started``."""
    reason: str | None = None


class RunDetails(Manifest):
    """What ``runs show`` prints: the manifest, each service's state, and for a batch run its batches."""

    service_states: dict[str, int] | None = None
    """How many services are in each state."""
    services: list[ServiceState] | None = None
    batches: list[BatchRow] | None = None
    requests_waiting: int | None = None
    """Requests in provider batches that no run has collected yet."""


def service_states(events: Iterable[Event], input_ids: Iterable[str] = ()) -> list[ServiceState]:
    """Each service's latest state, in the order first seen; services of the input never seen are ``not started``."""
    states: dict[str, ServiceState] = {}
    billed: set[str] = set()
    for event in events:
        if isinstance(event, CallFinished | CallFailed):
            if event.service_id and not (isinstance(event, CallFinished) and event.cached):
                billed.add(event.service_id)
            continue
        state = _state_of(event, billed)
        if state is not None:
            states.pop(state.service_id, None)
            states[state.service_id] = state
    for service_id in input_ids:
        states.setdefault(service_id, ServiceState(service_id=service_id, state="not started"))
    return list(states.values())


def _state_of(event: Event, billed: set[str]) -> ServiceState | None:
    match event:
        case ServiceStarted():
            billed.discard(event.service_id)
            return ServiceState(service_id=event.service_id, state="unfinished")
        case ServiceCompleted():
            done = "done" if event.service_id in billed else "cached"
            return ServiceState(service_id=event.service_id, state=done)
        case ServiceFailed():
            return ServiceState(service_id=event.service_id, state="failed", reason=event.reason)
        case ServiceDeferred():
            return ServiceState(service_id=event.service_id, state="deferred", reason=event.reason)
        case ServiceSkipped():
            return ServiceState(service_id=event.service_id, state="skipped")
        case _:
            return None


def run_details(directory: Path) -> RunDetails:
    """The manifest of the run in ``directory``, with each service's state and its batches if it made any.

    Raises:
        FileNotFoundError: there is no run journal there.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise FileNotFoundError(directory / "manifest.json")
    details = RunDetails.model_validate(manifest.model_dump())
    events = read_events(directory)
    services = service_states(events, _input_ids(Path(manifest.input_path)) if manifest.command == "run" else ())
    details.services = services
    details.service_states = dict(Counter(state.state for state in services))
    tally = Tally.of(events)
    if tally.batches:
        details.batches = list(tally.batches.values())
        details.requests_waiting = len(SuspendedStore(directory))
    return details


def _input_ids(path: Path) -> list[str]:
    """The service ids of the run's input, if it is still there to read."""
    try:
        with contextlib.closing(read_services(path)) as entries:
            return [entry.service.service_id for entry in entries if isinstance(entry, Accepted)]
    except (ServiceAmbitionsError, OSError):  # the input moved or is unreadable: only the events say anything
        return []


class FileCheck(BaseModel):
    """One file a run wrote, against what is on disk now."""

    model_config = ConfigDict(extra="forbid")

    why: str
    path: str
    state: str
    """``unchanged``, ``changed`` or ``missing``."""
    written_sha256: str
    sha256: str | None = None
    written_lines: int
    lines: int | None = None


def verify_files(manifest: Manifest) -> list[FileCheck]:
    """Whether the files the run wrote (as its manifest keeps them) are still what it wrote."""
    checks = []
    for why, written in manifest.files.items():
        path = Path(written.path)
        if not path.is_file():
            checks.append(
                FileCheck(
                    why=why,
                    path=written.path,
                    state="missing",
                    written_sha256=written.sha256,
                    written_lines=written.lines,
                )
            )
            continue
        now = file_written(path, why)
        state = "unchanged" if now.sha256 == written.sha256 else "changed"
        checks.append(
            FileCheck(
                why=why,
                path=written.path,
                state=state,
                written_sha256=written.sha256,
                sha256=now.sha256,
                written_lines=written.lines,
                lines=now.lines,
            )
        )
    return checks
