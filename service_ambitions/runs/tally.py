"""The one fold over a run's events: the numbers behind the live panel, the summary, ``report`` and resumed totals.

Everything here is derived from events (see :mod:`service_ambitions.core.events`); nothing
is counted that an event does not say, and the panel, the summary, the run's counts and
``report`` all read one :class:`Tally`, so they never disagree.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from service_ambitions.core.events import (
    BatchState,
    BatchSubmitted,
    BatchUpdated,
    BudgetWarning,
    CacheEntryRejected,
    CacheProblem,
    CallFailed,
    CallFinished,
    CallStarted,
    Event,
    FallbackUsed,
    LimitsLearned,
    LimitWaited,
    LineQuarantined,
    ProviderPaused,
    RetryScheduled,
    RunStarted,
    ServiceCompleted,
    ServiceDeferred,
    ServiceFailed,
    ServiceStarted,
    ThrottleChanged,
)
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend

__all__ = ["BatchRow", "Tally", "UsageRow"]


class UsageRow(BaseModel):
    """Calls, tokens and money for one stage, model or service (or all of them)."""

    model_config = ConfigDict(extra="forbid")

    key: str
    calls: int = 0
    cached: int = 0
    spend: Spend = Spend()
    """What live calls (and failed calls the provider billed) used and cost."""
    saved_usd: Decimal = Decimal(0)
    """What the cache hits cost when they were made."""
    retries: int = 0
    failures: int = 0
    """Services that failed at this stage (for a model or service row: 0)."""
    failed_calls: int = 0
    """Calls that failed after reaching the provider; their requests, tokens and cost are in ``spend``."""
    batch_calls: int = 0
    """Calls answered through a provider's batch API; their cost (at batch prices) is in ``spend``."""

    @property
    def hit_rate(self) -> float:
        """Share of calls answered from the cache."""
        return self.cached / self.calls if self.calls else 0.0

    def add(self, event: CallFinished | CallFailed) -> None:
        """Count one call: an answer, a cache hit, or a failure the provider billed."""
        if isinstance(event, CallFailed):
            if not event.spend.billed:
                return  # it reached no provider: nothing was billed
            self.failed_calls += 1
        else:
            self.calls += event.calls
            if event.cached:
                self.cached += event.calls
                self.saved_usd += event.spend.cost_usd
                return
            if event.batch:
                self.batch_calls += event.calls
        self.spend += event.spend


class BatchRow(BatchState):
    """One provider batch: its id, model and requests, its state as last seen, and how its requests fared."""

    model_config = ConfigDict(extra="forbid")

    batch_id: str
    model: str
    requests: int


class Tally:
    """Counts a run's events: the numbers behind the progress display, the summary and ``report``.

    ``by_service`` keeps a usage row per service too (``report --by-service``).
    """

    def __init__(self, *, by_service: bool = False) -> None:
        self.started = 0
        self.completed = 0
        self.quarantined_lines = 0
        self.features = 0
        self.dropped_items = 0
        self.totals = UsageRow(key="total")
        self.stages: dict[Stage, UsageRow] = {}
        """Usage per stage, in the order stages were first seen."""
        self.models: dict[str, UsageRow] = {}
        """Usage per model, in the order models were first seen."""
        self.services: dict[str, UsageRow] | None = {} if by_service else None
        self.stage_models: dict[Stage, str] = {}
        """The model that answered each stage last."""
        self.failures: dict[str, ServiceFailed] = {}
        """Services failed and not done since (a resumed segment may do them), each with its latest failure."""
        self.rejected_entries: list[CacheEntryRejected] = []
        self.cache_problems: list[CacheProblem] = []
        self.retry_wait_s = 0.0
        self.deferred = 0
        self.throttled_to: int | None = None
        self.paused: dict[str, float] = {}
        """Providers paused now, with the pause length."""
        self.in_flight: dict[Stage, int] = dict.fromkeys(Stage, 0)
        """Calls started and not yet finished, per stage."""
        self.fallbacks: Counter[str] = Counter()
        """Calls a fallback model answered, by model."""
        self.limit_wait_s = 0.0
        """Time requests waited for room under providers' announced limits (they overlap)."""
        self.learned_limits: dict[str, tuple[int | None, int | None]] = {}
        """Per provider, the requests and tokens per minute it announced."""
        self.call_seconds: dict[Stage, float] = dict.fromkeys(Stage, 0.0)
        """Time calls took from request to validated answer, added up per stage (they overlap)."""
        self.budget_warning: BudgetWarning | None = None
        """Spending reached the run's warning threshold (``warn_cost``), if it did."""
        self.batches: dict[str, BatchRow] = {}
        """Batch mode: every provider batch, in the order submitted, as last seen."""

    @classmethod
    def of(cls, events: Iterable[Event], *, by_service: bool = False) -> Tally:
        """The tally of ``events`` (a run's recorded ones, read back)."""
        tally = cls(by_service=by_service)
        for event in events:
            tally(event)
        return tally

    def stage(self, stage: Stage) -> UsageRow:
        """The usage row of ``stage`` (empty when none of its calls has ended)."""
        row = self.stages.get(stage)
        if row is None:
            row = self.stages[stage] = UsageRow(key=stage)
        return row

    def __call__(self, event: Event) -> None:
        """Count one event."""
        match event:
            case ServiceStarted() | ServiceCompleted() | ServiceFailed() | ServiceDeferred() | RunStarted():
                self._count_progress(event)
            case LineQuarantined():
                self.quarantined_lines += 1
            case CallStarted() | CallFinished() | CallFailed() | CacheEntryRejected() | CacheProblem():
                self._count_calls(event)
            case BatchSubmitted() | BatchUpdated():
                self._count_batch(event)
            case BudgetWarning():
                self.budget_warning = event
            case _:
                self._count_pressure(event)

    def _count_progress(
        self, event: ServiceStarted | ServiceCompleted | ServiceFailed | ServiceDeferred | RunStarted
    ) -> None:
        """Services started, done, failed and left for a resumed run."""
        match event:
            case ServiceStarted():
                self.started += 1
            case ServiceCompleted():
                self._count_completed(event)
            case ServiceFailed():
                self._count_failed(event)
            case ServiceDeferred():
                self.deferred += 1
            case RunStarted():
                self.deferred = 0  # what a budget left undone is the latest segment's to say

    def _count_calls(self, event: CallStarted | CallFinished | CallFailed | CacheEntryRejected | CacheProblem) -> None:
        """Calls in flight and ended, and what the cache could not give."""
        match event:
            case CallStarted():
                self.in_flight[event.stage] += 1
            case CallFinished() | CallFailed():
                self._count_call(event)
            case CacheEntryRejected():
                self.rejected_entries.append(event)
            case CacheProblem():
                self.cache_problems.append(event)

    def _count_call(self, event: CallFinished | CallFailed) -> None:
        if not (isinstance(event, CallFinished) and event.replayed):
            self.in_flight[event.stage] = max(0, self.in_flight[event.stage] - 1)
            self.call_seconds[event.stage] += event.latency_ms / 1000
        if isinstance(event, CallFailed) and not event.spend.billed:
            return  # it reached no provider: nothing was billed
        if isinstance(event, CallFinished):
            self.stage_models[event.stage] = event.model
        else:
            self.stage_models.setdefault(event.stage, event.model)
        rows = [self.totals, self.stage(event.stage), self._row(self.models, event.model)]
        if self.services is not None and event.service_id:
            rows.append(self._row(self.services, event.service_id))
        for row in rows:
            row.add(event)

    @staticmethod
    def _row(rows: dict[str, UsageRow], key: str) -> UsageRow:
        row = rows.get(key)
        if row is None:
            row = rows[key] = UsageRow(key=key)
        return row

    def _count_failed(self, event: ServiceFailed) -> None:
        self._forget_failure(event.service_id)
        self.failures[event.service_id] = event
        self.totals.failures += 1
        if event.stage:
            self.stage(event.stage).failures += 1

    def _count_completed(self, event: ServiceCompleted) -> None:
        self.completed += 1
        self.features += event.features
        self.dropped_items += event.dropped_items
        # Failed in an earlier segment of the run, done now: no longer a failure.
        self._forget_failure(event.service_id)

    def _forget_failure(self, service_id: str) -> None:
        earlier = self.failures.pop(service_id, None)
        if earlier is not None:
            self.totals.failures -= 1
            if earlier.stage:
                self.stage(earlier.stage).failures -= 1

    def _count_batch(self, event: BatchSubmitted | BatchUpdated) -> None:
        if isinstance(event, BatchSubmitted):
            self.batches[event.batch_id] = BatchRow(
                batch_id=event.batch_id, model=event.model, requests=event.requests, status=event.status
            )
            return
        row = self.batches.get(event.batch_id)
        if row is None:
            return
        row.status = event.status
        row.ended = event.ended or row.ended
        for name in ("succeeded", "failed", "unrun", "message"):
            if (value := getattr(event, name)) is not None:
                setattr(row, name, value)

    def _count_pressure(self, event: Event) -> None:
        """Retries, throttling and paused providers."""
        match event:
            case RetryScheduled():
                self.totals.retries += 1
                self.stage(event.stage).retries += 1
                self.retry_wait_s += event.wait_s
            case ThrottleChanged():
                self.throttled_to = event.limit
            case LimitsLearned():
                self.learned_limits[event.provider] = (event.requests_per_minute, event.tokens_per_minute)
            case LimitWaited():
                self.limit_wait_s += event.wait_s
            case FallbackUsed():
                self.fallbacks[event.model] += 1
            case ProviderPaused(paused_s=0):
                self.paused.pop(event.provider, None)
            case ProviderPaused():
                self.paused[event.provider] = event.paused_s

    @property
    def failed(self) -> int:
        """Services failed and not done since."""
        return len(self.failures)

    @property
    def spend(self) -> Spend:
        """What the run's live and failed calls used and cost."""
        return self.totals.spend

    @property
    def cost(self) -> Decimal:
        """USD spent on calls with a known price."""
        return self.totals.spend.cost_usd

    @property
    def saved(self) -> Decimal:
        """What the calls answered from the cache cost when they were made."""
        return self.totals.saved_usd

    @property
    def unpriced_calls(self) -> int:
        """Calls without a known price (their cost is not in :attr:`cost`)."""
        return self.totals.spend.unpriced

    @property
    def failed_calls(self) -> int:
        """Calls that failed after reaching the provider; their usage is counted all the same."""
        return self.totals.failed_calls

    @property
    def batches_running(self) -> int:
        """Batch mode: batches submitted and not yet ended."""
        return sum(1 for row in self.batches.values() if not row.ended)

    @property
    def requests_in_batches(self) -> int:
        """Batch mode: requests in batches that have not ended (waiting on the provider)."""
        return sum(row.requests for row in self.batches.values() if not row.ended)

    @property
    def total_requests(self) -> int:
        """Requests the provider answered and billed, all stages (failed calls' included)."""
        return self.totals.spend.requests

    @property
    def total_calls(self) -> int:
        """Calls answered so far, all stages."""
        return self.totals.calls

    @property
    def total_cached(self) -> int:
        """Calls answered from the cache so far, all stages."""
        return self.totals.cached

    @property
    def prefix_cached_share(self) -> float | None:
        """Share of the input tokens billed that the provider served from its prompt cache (None: none billed)."""
        spend = self.totals.spend
        return spend.cache_read_tokens / spend.input_tokens if spend.input_tokens else None
