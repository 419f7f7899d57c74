"""A batch-mode run's provider batches, read back from its events: for ``report`` and ``runs show``."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from pydantic import ConfigDict

from service_ambitions.core.events import BatchState, BatchSubmitted, BatchUpdated, Event
from service_ambitions.runs.records import Manifest, read_events, read_manifest
from service_ambitions.runs.suspended import SuspendedStore

__all__ = ["BatchRow", "RunDetails", "batch_rows", "run_details"]


class BatchRow(BatchState):
    """One provider batch: its id, model and requests, its state as last seen, and how its requests fared."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str
    model: str
    requests: int


def batch_rows(events: Iterable[Event]) -> list[BatchRow]:
    """Every batch the events tell of, in the order submitted, each as last seen."""
    rows: dict[str, BatchRow] = {}
    for event in events:
        if isinstance(event, BatchSubmitted):
            rows[event.batch_id] = BatchRow(
                batch_id=event.batch_id, model=event.model, requests=event.requests, status=event.status
            )
        elif isinstance(event, BatchUpdated) and (row := rows.get(event.batch_id)) is not None:
            row.status = event.status
            row.ended = event.ended or row.ended
            for name in ("succeeded", "failed", "unrun", "message"):
                if (value := getattr(event, name)) is not None:
                    setattr(row, name, value)
    return list(rows.values())


class RunDetails(Manifest):
    """What ``runs show`` prints: the manifest, and for a batch run its batches and what still waits."""

    batches: list[BatchRow] | None = None
    requests_waiting: int | None = None
    """Requests in provider batches that no run has collected yet."""


def run_details(directory: Path) -> RunDetails:
    """The manifest of the run in ``directory``, with its batches if it made any.

    Raises:
        FileNotFoundError: there is no run record there.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise FileNotFoundError(directory / "manifest.json")
    details = RunDetails.model_validate(manifest.model_dump())
    if batches := batch_rows(read_events(directory)):
        details.batches = batches
        details.requests_waiting = len(SuspendedStore(directory))
    return details
