"""The counts of a run, kept from its events: the numbers behind the live panel, the summary and resumed totals.

Everything here is derived from events (see :mod:`.events`); nothing is counted that an
event does not say, so the panel, the summary and ``report`` never disagree.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

from service_ambitions.core.events import (
    BatchSubmitted,
    BatchUpdated,
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

__all__ = ["Tally"]


class Tally:
    """Counts a run's events: the numbers behind the progress display and the summary."""

    def __init__(self) -> None:
        self.started = 0
        self.completed = 0
        self.failed = 0
        self.quarantined_lines = 0
        self.features = 0
        self.dropped_items = 0
        self.calls: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self.requests: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self.input_tokens: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self.output_tokens: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self.cache_read_tokens: dict[Stage, int] = dict.fromkeys(Stage, 0)
        """Input tokens the provider served from its prompt (prefix) cache, part of ``input_tokens``."""
        self.cached: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self.models: dict[Stage, str] = {}
        self.failures: list[ServiceFailed] = []
        self._failed_ids: set[str] = set()
        self.rejected_entries: list[CacheEntryRejected] = []
        self.cache_problems: list[CacheProblem] = []
        self.retries: dict[Stage, int] = dict.fromkeys(Stage, 0)
        self.retry_wait_s = 0.0
        self.deferred = 0
        self.throttled_to: int | None = None
        self.paused: dict[str, float] = {}
        """Providers paused now, with the pause length."""
        self.cost = Decimal(0)
        self.unpriced_calls = 0
        self.failed_calls = 0
        """Calls that failed after reaching the provider; their usage is counted all the same."""
        self.in_flight: dict[Stage, int] = dict.fromkeys(Stage, 0)
        """Calls started and not yet finished, per stage."""
        self.saved = Decimal(0)
        """What the calls answered from the cache cost when they were made."""
        self.fallbacks: Counter[str] = Counter()
        """Calls a fallback model answered, by model."""
        self.limit_wait_s = 0.0
        """Time requests waited for room under providers' announced limits (they overlap)."""
        self.learned_limits: dict[str, tuple[int | None, int | None]] = {}
        """Per provider, the requests and tokens per minute it announced."""
        self.call_seconds: dict[Stage, float] = dict.fromkeys(Stage, 0.0)
        """Time calls took from request to validated answer, added up per stage (they overlap)."""
        self.batches: dict[str, tuple[int, bool]] = {}
        """Batch mode: per provider batch, its requests and whether it has ended."""

    def __call__(self, event: Event) -> None:
        """Count one event."""
        match event:
            case ServiceStarted():
                self.started += 1
            case ServiceCompleted():
                self._count_completed(event)
            case ServiceFailed():
                self.failed += 1
                self.failures.append(event)
                self._failed_ids.add(event.service_id)
            case ServiceDeferred():
                self.deferred += 1
            case RunStarted():
                self.deferred = 0  # what a budget left undone is the latest segment's to say
            case LineQuarantined():
                self.quarantined_lines += 1
            case CallStarted():
                self.in_flight[event.stage] += 1
            case CallFinished():
                self._count_call(event)
            case CallFailed():
                self._count_failed_call(event)
            case CacheEntryRejected():
                self.rejected_entries.append(event)
            case CacheProblem():
                self.cache_problems.append(event)
            case _:
                self._count_pressure(event)

    def _count_call(self, event: CallFinished) -> None:
        self.calls[event.stage] += event.calls
        self.models[event.stage] = event.model
        if not event.replayed:
            self.in_flight[event.stage] = max(0, self.in_flight[event.stage] - 1)
            self.call_seconds[event.stage] += event.latency_ms / 1000
        if event.cached:
            self.cached[event.stage] += event.calls
            if event.cost_usd is not None:
                self.saved += Decimal(event.cost_usd)
            return
        self._count_usage(event)

    def _count_completed(self, event: ServiceCompleted) -> None:
        self.completed += 1
        self.features += event.features
        self.dropped_items += event.dropped_items
        if event.service_id in self._failed_ids:
            # Failed in an earlier segment of the run, done now: no longer a failure.
            self._failed_ids.discard(event.service_id)
            self.failed -= 1
            self.failures = [f for f in self.failures if f.service_id != event.service_id]

    def _count_failed_call(self, event: CallFailed) -> None:
        self.in_flight[event.stage] = max(0, self.in_flight[event.stage] - 1)
        self.call_seconds[event.stage] += event.latency_ms / 1000
        if not event.requests:
            return  # it reached no provider: nothing was billed
        self.failed_calls += 1
        self.models.setdefault(event.stage, event.model)
        self._count_usage(event)

    def _count_usage(self, event: CallFinished | CallFailed) -> None:
        """Requests, tokens and money the provider billed for one call."""
        if event.cost_usd is None:
            self.unpriced_calls += 1
        else:
            self.cost += Decimal(event.cost_usd)
        self.requests[event.stage] += event.requests
        self.input_tokens[event.stage] += event.input_tokens
        self.output_tokens[event.stage] += event.output_tokens
        self.cache_read_tokens[event.stage] += event.cache_read_tokens

    def _count_pressure(self, event: Event) -> None:
        """Retries, throttling and paused providers."""
        match event:
            case RetryScheduled():
                self.retries[event.stage] += 1
                self.retry_wait_s += event.wait_s
            case ThrottleChanged():
                self.throttled_to = event.limit
            case LimitsLearned():
                self.learned_limits[event.provider] = (event.requests_per_minute, event.tokens_per_minute)
            case LimitWaited():
                self.limit_wait_s += event.wait_s
            case FallbackUsed():
                self.fallbacks[event.model] += 1
            case BatchSubmitted():
                self.batches[event.batch_id] = (event.requests, False)
            case BatchUpdated(ended=True) if event.batch_id in self.batches:
                self.batches[event.batch_id] = (self.batches[event.batch_id][0], True)
            case ProviderPaused(paused_s=0):
                self.paused.pop(event.provider, None)
            case ProviderPaused():
                self.paused[event.provider] = event.paused_s

    @property
    def batches_running(self) -> int:
        """Batch mode: batches submitted and not yet ended."""
        return sum(1 for _, ended in self.batches.values() if not ended)

    @property
    def requests_in_batches(self) -> int:
        """Batch mode: requests in batches that have not ended (waiting on the provider)."""
        return sum(requests for requests, ended in self.batches.values() if not ended)

    @property
    def total_requests(self) -> int:
        """Requests the provider answered and billed, all stages (failed calls' included)."""
        return sum(self.requests.values())

    @property
    def total_calls(self) -> int:
        """Calls answered so far, all stages."""
        return sum(self.calls.values())

    @property
    def prefix_cached_share(self) -> float | None:
        """Share of the input tokens billed that the provider served from its prompt cache (None: none billed)."""
        billed = sum(self.input_tokens.values())
        return sum(self.cache_read_tokens.values()) / billed if billed else None

    @property
    def total_cached(self) -> int:
        """Calls answered from the cache so far, all stages."""
        return sum(self.cached.values())
