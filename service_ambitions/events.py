"""Typed events: everything a run does, as it happens.

The pipeline emits them to an observer; the CLI's progress display and summary read
them, and run records will store them one JSON line each. They carry no prompt text
and no secrets.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from .models import Stage

__all__ = [
    "LEVELS",
    "CacheEntryRejected",
    "CacheProblem",
    "CallFailed",
    "CallFinished",
    "CallStarted",
    "Event",
    "EventSink",
    "LimitWaited",
    "LimitsLearned",
    "LineQuarantined",
    "ProviderPaused",
    "RetryScheduled",
    "RunFinished",
    "RunStarted",
    "ServiceCompleted",
    "ServiceDeferred",
    "ServiceFailed",
    "ServiceStarted",
    "Tally",
    "ThrottleChanged",
    "event_level",
]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunStarted(_Event):
    """A run began, or a stopped run was resumed."""

    type: Literal["run_started"] = "run_started"
    run_id: str
    resumed: bool = False
    already_done: int = 0
    """Services found complete in the output when resuming; they are skipped."""


class RunFinished(_Event):
    """A run ended: completed, interrupted or failed."""

    type: Literal["run_finished"] = "run_finished"
    run_id: str
    status: str
    reason: str | None = None


class ServiceStarted(_Event):
    """Work on a service began."""

    type: Literal["service_started"] = "service_started"
    service_id: str


class ServiceCompleted(_Event):
    """A service's evolution was written to the output."""

    type: Literal["service_completed"] = "service_completed"
    service_id: str
    features: int
    dropped_items: int


class ServiceFailed(_Event):
    """A service could not be completed; it went to the quarantine file."""

    type: Literal["service_failed"] = "service_failed"
    service_id: str
    stage: Stage | None
    reason: str
    request_id: str | None = None
    """The provider's id of the failed request, when it sent one (``x-request-id``)."""


class ServiceDeferred(_Event):
    """A service was left unfinished because the budget ran out; a resumed run will do it."""

    type: Literal["service_deferred"] = "service_deferred"
    service_id: str
    reason: str


class LineQuarantined(_Event):
    """An input line was not a usable service."""

    type: Literal["line_quarantined"] = "line_quarantined"
    line: int
    reason: str


class _CallUsage(_Event):
    """What the requests of one call used and cost, as the provider reported it."""

    service_id: str | None = None
    stage: Stage
    model: str
    latency_ms: float = 0.0
    cost_usd: str | None = None
    """What the call cost (for a cache hit: what it cost originally); None when unknown."""
    requests: int
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0


class CallStarted(_Event):
    """A call went to the gateway; it ends in ``call_finished`` or ``call_failed``."""

    type: Literal["call_started"] = "call_started"
    service_id: str | None = None
    stage: Stage


class CallFinished(_CallUsage):
    """An LLM call returned a validated answer, from the model or from the cache."""

    type: Literal["call_finished"] = "call_finished"
    cached: bool = False
    """True for a cache hit; the usage is then that of the original call, not spent again."""
    calls: int = 1
    """How many calls the event stands for: a service read from its record entry tells its
    cached calls in one event per stage and model, with their usage added up."""
    replayed: bool = False
    """True for those record-entry events: no ``call_started`` came before them."""


class CallFailed(_CallUsage):
    """An LLM call failed after its requests reached the provider: they were billed all the same.

    Answers that kept failing validation, a token limit crossed after the answer, a provider
    error after some output retries: every response counts, so reports match the bill. A
    call that failed before any request was answered (a budget stop, a provider that never
    answered) ends here too, with ``requests`` 0, and counts as nothing billed.
    """

    type: Literal["call_failed"] = "call_failed"
    reason: str


class RetryScheduled(_Event):
    """A provider request failed in a way worth retrying; it is sent again after ``wait_s``."""

    type: Literal["retry_scheduled"] = "retry_scheduled"
    stage: Stage
    model: str
    wait_s: float
    reason: str
    """What failed: ``HTTP 429``, ``HTTP 503``, ``ConnectError``…"""


class LimitsLearned(_Event):
    """A provider announced its rate limits in its answers' headers; requests to it are paced to them."""

    type: Literal["limits_learned"] = "limits_learned"
    provider: str
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None


class LimitWaited(_Event):
    """A request waited for room under a provider's announced limits before it was sent."""

    type: Literal["limit_waited"] = "limit_waited"
    provider: str
    wait_s: float


class ThrottleChanged(_Event):
    """The cap on requests in flight changed: cut after a rate limit, restored as calls succeed."""

    type: Literal["throttle_changed"] = "throttle_changed"
    limit: int
    reason: str


class ProviderPaused(_Event):
    """A provider failed too many calls in a row: new calls to it wait (``paused_s`` 0: resumed)."""

    type: Literal["provider_paused"] = "provider_paused"
    provider: str
    paused_s: float


class CacheEntryRejected(_Event):
    """A cache entry could not be used (corrupt, or no longer valid); the call was made instead."""

    type: Literal["cache_entry_rejected"] = "cache_entry_rejected"
    stage: Stage
    key: str
    """The first characters of the entry's key."""
    reason: str


class CacheProblem(_Event):
    """The cache could not be used at all (damaged, full, read-only): the run goes on without it."""

    type: Literal["cache_problem"] = "cache_problem"
    reason: str
    reading: bool
    """True: answers are no longer read from the cache either; False: only writing stopped."""


Event = Annotated[
    RunStarted
    | RunFinished
    | ServiceStarted
    | ServiceCompleted
    | ServiceFailed
    | ServiceDeferred
    | LineQuarantined
    | CallStarted
    | CallFinished
    | CallFailed
    | CacheEntryRejected
    | CacheProblem
    | RetryScheduled
    | ThrottleChanged
    | LimitsLearned
    | LimitWaited
    | ProviderPaused,
    Field(discriminator="type"),
]

EventSink = Callable[[Event], None]
"""Receives every event; must return quickly (it runs on the event loop)."""


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
        self.limit_wait_s = 0.0
        """Time requests waited for room under providers' announced limits (they overlap)."""
        self.learned_limits: dict[str, tuple[int | None, int | None]] = {}
        """Per provider, the requests and tokens per minute it announced."""
        self.call_seconds: dict[Stage, float] = dict.fromkeys(Stage, 0.0)
        """Time calls took from request to validated answer, added up per stage (they overlap)."""

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
            case ProviderPaused(paused_s=0):
                self.paused.pop(event.provider, None)
            case ProviderPaused():
                self.paused[event.provider] = event.paused_s

    @property
    def total_requests(self) -> int:
        """Requests the provider answered and billed, all stages (failed calls' included)."""
        return sum(self.requests.values())

    @property
    def total_calls(self) -> int:
        """Calls answered so far, all stages."""
        return sum(self.calls.values())

    @property
    def total_cached(self) -> int:
        """Calls answered from the cache so far, all stages."""
        return sum(self.cached.values())


_LEVELS = {
    "limit_waited": "debug",
    "service_failed": "error",
    "retry_scheduled": "warning",
    "throttle_changed": "warning",
    "provider_paused": "warning",
    "cache_entry_rejected": "warning",
    "cache_problem": "warning",
    "line_quarantined": "warning",
    "service_deferred": "warning",
}
LEVELS = ("debug", "info", "warning", "error")


def event_level(event_type: str, status: str | None = None) -> str:
    """How much an event deserves attention: ``info``, ``warning`` or ``error``; calls are ``debug``."""
    if event_type == "run_finished":
        return "info" if status in (None, "completed") else "warning"
    if event_type in ("call_finished", "call_started"):
        return "debug"
    if event_type == "call_failed":
        return "warning"
    return _LEVELS.get(event_type, "info")
