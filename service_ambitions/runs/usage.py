"""Usage and cost of a run, read back from its events: the data behind ``report``.

Every figure comes from the run's ``events.jsonl``: live calls count their tokens and
cost; cache hits count what they would have cost ("saved"); a call without a known
price is counted as unpriced, never as $0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import datetime
from importlib.metadata import version
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from service_ambitions.core.events import Event
from service_ambitions.runs.journal import Manifest, read_events, read_manifest
from service_ambitions.runs.tally import BatchRow, Tally, UsageRow

__all__ = ["UsageReport", "build_report", "list_runs"]


class FailureRow(BaseModel):
    """A service that failed, and why."""

    service_id: str
    stage: str | None
    reason: str
    request_id: str | None = None


class UsageReport(BaseModel):
    """Everything ``report`` shows; ``--json`` prints exactly this."""

    model_config = ConfigDict(extra="forbid")

    run_id: str
    command: str = "run"
    """The command that made the run: ``run`` or ``map``."""
    status: str
    started: datetime
    updated: datetime
    wall_s: float
    input_path: str
    output_path: str
    price_data: str = Field(description="genai-prices version whose bundled prices were used.")
    totals: UsageRow
    by_stage: list[UsageRow]
    by_model: list[UsageRow]
    by_service: list[UsageRow] | None = None
    retry_wait_s: float = 0.0
    """Time calls spent waiting to be retried (rate limits, server errors)."""
    failures: list[FailureRow] = Field(default_factory=list)
    failures_by_cause: dict[str, int] = Field(default_factory=dict)
    """Failed services counted by cause: the reason up to its first colon (e.g. "provider answered HTTP 400")."""
    batches: list[BatchRow] = Field(default_factory=list)
    """The provider batches of a batch-mode run, as submitted and as they ended."""


def build_report(directory: Path, *, by_service: bool = False) -> UsageReport:
    """The report of the run journaled in ``directory``.

    Raises:
        FileNotFoundError: there is no run journal there.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise FileNotFoundError(directory / "manifest.json")
    return _aggregate(manifest, read_events(directory), by_service=by_service)


def _aggregate(manifest: Manifest, events: Iterable[Event], *, by_service: bool) -> UsageReport:
    tally = Tally.of(events, by_service=by_service)
    failures = [
        FailureRow(service_id=event.service_id, stage=event.stage, reason=event.reason, request_id=event.request_id)
        for event in tally.failures.values()
    ]
    return UsageReport(
        run_id=manifest.run_id,
        command=manifest.command,
        status=manifest.status,
        started=manifest.started,
        updated=manifest.updated,
        wall_s=(manifest.updated - manifest.started).total_seconds(),
        input_path=manifest.input_path,
        output_path=manifest.output_path,
        price_data=f"genai-prices {version('genai-prices')} (bundled)",
        totals=tally.totals,
        by_stage=[row for row in tally.stages.values() if row.calls or row.failed_calls or row.retries or row.failures],
        by_model=list(tally.models.values()),
        by_service=list(tally.services.values()) if tally.services is not None else None,
        retry_wait_s=round(tally.retry_wait_s, 3),
        failures=failures,
        failures_by_cause=dict(Counter(failure.reason.split(":")[0] for failure in failures).most_common()),
        batches=list(tally.batches.values()),
    )


def list_runs(runs_dir: Path) -> list[Manifest]:
    """Every recorded run, newest first."""
    if not runs_dir.is_dir():
        return []
    manifests = [manifest for directory in runs_dir.iterdir() if (manifest := read_manifest(directory))]
    return sorted(manifests, key=lambda manifest: manifest.started, reverse=True)
