"""Usage and cost of a run, read back from its events: the data behind ``report``.

Every figure comes from the run's ``events.jsonl``: live calls count their tokens and
cost; cache hits count what they would have cost ("saved"); a call without a known
price is counted as unpriced, never as $0.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from service_ambitions.core.events import (
    CallFailed,
    CallFinished,
    Event,
    RetryScheduled,
    ServiceCompleted,
    ServiceFailed,
)
from service_ambitions.runs.batches import BatchRow, batch_rows
from service_ambitions.runs.records import Manifest, read_events, read_manifest

__all__ = ["UsageReport", "UsageRow", "build_report", "list_runs"]


class UsageRow(BaseModel):
    """Calls, tokens and money for one stage, model or service (or all of them)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    calls: int = 0
    cached: int = 0
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    """Input tokens the provider served from its own prompt cache (billed lower)."""
    reasoning_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    """Spent by live calls."""
    saved_usd: Decimal = Decimal(0)
    """What the cache hits would have cost."""
    unpriced_calls: int = 0
    retries: int = 0
    failures: int = 0
    failed_calls: int = 0
    """Calls that failed after reaching the provider; their requests, tokens and cost are counted above."""
    batch_calls: int = 0
    """Calls answered through a provider's batch API; their cost (at batch prices) is in ``cost_usd``."""
    batch_cost_usd: Decimal = Decimal(0)
    """What the batch calls cost, at batch prices."""
    batch_live_usd: Decimal = Decimal(0)
    """What the same requests would have cost at live prices (batch calls with a known price of both)."""

    @property
    def batch_saved_usd(self) -> Decimal:
        """What batch prices saved against live ones."""
        return self.batch_live_usd - self.batch_cost_usd

    @property
    def hit_rate(self) -> float:
        """Share of calls answered from the cache."""
        return self.cached / self.calls if self.calls else 0.0

    def add(self, event: CallFinished | CallFailed) -> None:
        """Count one call: an answer, a cache hit, or a failure the provider billed."""
        cost = Decimal(event.cost_usd) if event.cost_usd is not None else None
        if isinstance(event, CallFailed):
            if not event.requests:
                return  # it reached no provider: nothing was billed
            self.failed_calls += 1
        else:
            self.calls += event.calls
            if event.cached:
                self.cached += event.calls
                self.saved_usd += cost or 0
                return
        self.requests += event.requests
        self.input_tokens += event.input_tokens
        self.output_tokens += event.output_tokens
        self.cache_read_tokens += event.cache_read_tokens
        self.reasoning_tokens += event.reasoning_tokens
        if cost is None:
            self.unpriced_calls += 1
        else:
            self.cost_usd += cost
        if isinstance(event, CallFinished) and event.batch:
            self.batch_calls += event.calls
            if cost is not None and event.live_cost_usd is not None:
                self.batch_cost_usd += cost
                self.batch_live_usd += Decimal(event.live_cost_usd)


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
    """The report of the run recorded in ``directory``.

    Raises:
        FileNotFoundError: there is no run record there.
    """
    manifest = read_manifest(directory)
    if manifest is None:
        raise FileNotFoundError(directory / "manifest.json")
    return _aggregate(manifest, read_events(directory), by_service=by_service)


def _aggregate(manifest: Manifest, events: Sequence[Event], *, by_service: bool) -> UsageReport:
    totals = UsageRow(key="total")
    stages: dict[str, UsageRow] = {}
    models: dict[str, UsageRow] = {}
    services: dict[str, UsageRow] = {}
    failures: list[FailureRow] = []
    failed: dict[str, ServiceFailed] = {}
    retry_wait = 0.0
    for event in events:
        if isinstance(event, CallFinished | CallFailed):
            rows = [totals, stages.setdefault(event.stage, UsageRow(key=event.stage))]
            rows.append(models.setdefault(event.model, UsageRow(key=event.model)))
            if event.service_id:
                rows.append(services.setdefault(event.service_id, UsageRow(key=event.service_id)))
            for row in rows:
                row.add(event)
        elif isinstance(event, RetryScheduled):
            retry_wait += event.wait_s
            for row in (totals, stages.setdefault(event.stage, UsageRow(key=event.stage))):
                row.retries += 1
        elif isinstance(event, ServiceFailed):
            failed[event.service_id] = event
        elif isinstance(event, ServiceCompleted):
            # Retried by a resumed segment and done: no longer a failure of the run.
            failed.pop(event.service_id, None)
    for event in failed.values():
        failures.append(
            FailureRow(service_id=event.service_id, stage=event.stage, reason=event.reason, request_id=event.request_id)
        )
        totals.failures += 1
        if event.stage:
            stages.setdefault(event.stage, UsageRow(key=event.stage)).failures += 1
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
        totals=totals,
        by_stage=list(stages.values()),
        by_model=list(models.values()),
        by_service=list(services.values()) if by_service else None,
        retry_wait_s=round(retry_wait, 3),
        failures=failures,
        failures_by_cause=dict(Counter(failure.reason.split(":")[0] for failure in failures).most_common()),
        batches=batch_rows(events),
    )


def list_runs(runs_dir: Path) -> list[Manifest]:
    """Every recorded run, newest first."""
    if not runs_dir.is_dir():
        return []
    manifests = [manifest for directory in runs_dir.iterdir() if (manifest := read_manifest(directory))]
    return sorted(manifests, key=lambda manifest: manifest.started, reverse=True)
