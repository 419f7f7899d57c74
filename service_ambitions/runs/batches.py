"""A batch-mode run's provider batches, read back from its events: for ``report`` and ``runs show``."""

from __future__ import annotations

from pathlib import Path

from service_ambitions.runs.journal import Manifest, read_events, read_manifest
from service_ambitions.runs.suspended import SuspendedStore
from service_ambitions.runs.tally import BatchRow, Tally

__all__ = ["RunDetails", "run_details"]


class RunDetails(Manifest):
    """What ``runs show`` prints: the manifest, and for a batch run its batches and what still waits."""

    batches: list[BatchRow] | None = None
    requests_waiting: int | None = None
    """Requests in provider batches that no run has collected yet."""


def run_details(directory: Path) -> RunDetails:
    """The manifest of the run in ``directory``, with its batches if it made any.

    Raises:
        FileNotFoundError: there is no run journal there.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise FileNotFoundError(directory / "manifest.json")
    details = RunDetails.model_validate(manifest.model_dump())
    tally = Tally.of(read_events(directory))
    if tally.batches:
        details.batches = list(tally.batches.values())
        details.requests_waiting = len(SuspendedStore(directory))
    return details
