"""Typed events: everything a run does, as it happens.

The pipeline emits them to an observer; the CLI's progress display and summary read
them, and run journals will store them one JSON line each. They carry no prompt text
and no secrets.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, model_validator

from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend

__all__ = [
    "ENVELOPE_VERSION",
    "LEVELS",
    "BatchState",
    "BatchSubmitted",
    "BatchUpdated",
    "BudgetWarning",
    "CacheEntryRejected",
    "CacheProblem",
    "CallFailed",
    "CallFinished",
    "CallStarted",
    "Event",
    "EventSink",
    "FallbackUsed",
    "FileWritten",
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
    "ServiceSkipped",
    "ServiceStarted",
    "ThrottleChanged",
    "as_envelope",
    "enveloped",
    "event_level",
    "from_line",
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


class ServiceSkipped(_Event):
    """A resumed run found the service done in the output already: it is not done again."""

    type: Literal["service_skipped"] = "service_skipped"
    service_id: str


class ServiceDeferred(_Event):
    """A service was left unfinished because the budget ran out; a resumed run will do it."""

    type: Literal["service_deferred"] = "service_deferred"
    service_id: str
    reason: str


class BudgetWarning(_Event):
    """Spending reached the warning threshold (``warn_cost``); the run goes on. Told once a run."""

    type: Literal["budget_warning"] = "budget_warning"
    spent_usd: Decimal
    threshold_usd: Decimal
    budget_usd: Decimal | None = None
    """The run's ``max_cost``, if it has one."""


class FileWritten(_Event):
    """A file the command wrote, as it stands once written: what ``runs verify`` checks later."""

    type: Literal["file_written"] = "file_written"
    path: str
    why: str
    """What it is: ``output`` or ``quarantine``."""
    bytes: int
    lines: int
    sha256: str


class LineQuarantined(_Event):
    """An input line was not a usable service."""

    type: Literal["line_quarantined"] = "line_quarantined"
    line: int
    reason: str


_LEGACY_SPEND = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "cost_usd")


class _CallUsage(_Event):
    """What the requests of one call used and cost, as the provider reported it."""

    service_id: str | None = None
    stage: Stage
    model: str
    latency_ms: float = 0.0
    """From the call's start to its end, ``queue_ms`` included."""
    queue_ms: float = 0.0
    """Of that, the time its requests waited for a slot under ``max_in_flight``."""
    spend: Spend = Spend()
    """For a cache hit: what the original call used and cost (not spent again)."""

    @model_validator(mode="before")
    @classmethod
    def _flat_spend(cls, data: Any) -> Any:
        """Event files written before :class:`Spend` held its fields flat on the event."""
        if not isinstance(data, dict) or "spend" in data or not any(name in data for name in _LEGACY_SPEND):
            return data
        data = dict(data)
        spend = {name: data.pop(name) for name in _LEGACY_SPEND if name in data}
        live = data.pop("live_cost_usd", None)
        if data.get("batch") and live is not None and spend.get("cost_usd") is not None:
            spend |= {"batch_cost_usd": spend["cost_usd"], "batch_live_usd": live}
        return data | {"spend": spend}


class CallStarted(_Event):
    """A call went to the gateway; it ends in ``call_finished`` or ``call_failed``."""

    type: Literal["call_started"] = "call_started"
    service_id: str | None = None
    stage: Stage


class CallFinished(_CallUsage):
    """An LLM call returned a validated answer, from the model or from the cache."""

    type: Literal["call_finished"] = "call_finished"
    cached: bool = False
    """True for a cache hit; the spend is then that of the original call, not spent again."""
    batch: bool = False
    """Answered through the provider's batch API (priced at batch rates; the spend tells the live price too)."""
    calls: int = 1
    """How many calls the event stands for: a service read from its snapshot tells its
    cached calls in one event per stage and model, with their usage added up."""
    replayed: bool = False
    """True for those snapshot events: no ``call_started`` came before them."""


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


class FallbackUsed(_Event):
    """A call of a stage with a fallback chain was answered by a model after the first (the first failed)."""

    type: Literal["fallback_used"] = "fallback_used"
    stage: Stage
    model: str


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


class BatchSubmitted(_Event):
    """A batch of requests went to a provider's batch API."""

    type: Literal["batch_submitted"] = "batch_submitted"
    batch_id: str
    model: str
    requests: int
    status: str = "submitted"
    """The provider's word for it as submitted (OpenAI: validating)."""


class BatchState(BaseModel):
    """A provider batch's state as last seen, and once it ended how its requests fared."""

    status: str
    """The provider's word: validating, in_progress, finalizing, completed, expired, failed, cancelled…"""
    ended: bool = False
    succeeded: int | None = None
    """Once ended: requests answered."""
    failed: int | None = None
    """Once ended: requests the provider answered with an error."""
    unrun: int | None = None
    """Once ended: requests the batch expired or was cancelled before running (they may be sent again)."""
    message: str | None = None
    """The provider's reason, for a batch that failed validation."""


class BatchUpdated(_Event, BatchState):
    """A batch changed state, as its provider tells it; an ended one says how its requests fared."""

    type: Literal["batch_updated"] = "batch_updated"
    batch_id: str


Event = Annotated[
    RunStarted
    | RunFinished
    | ServiceStarted
    | ServiceCompleted
    | ServiceFailed
    | ServiceDeferred
    | ServiceSkipped
    | LineQuarantined
    | CallStarted
    | CallFinished
    | CallFailed
    | CacheEntryRejected
    | CacheProblem
    | RetryScheduled
    | ThrottleChanged
    | LimitsLearned
    | FallbackUsed
    | LimitWaited
    | ProviderPaused
    | BatchSubmitted
    | BatchUpdated
    | BudgetWarning
    | FileWritten,
    Field(discriminator="type"),
]

EventSink = Callable[[Event], None]
"""Receives every event; must return quickly (it runs on the event loop)."""


_LEVELS = {
    "fallback_used": "warning",
    "limit_waited": "debug",
    "batch_updated": "debug",
    "service_failed": "error",
    "service_skipped": "debug",
    "retry_scheduled": "warning",
    "throttle_changed": "warning",
    "provider_paused": "warning",
    "cache_entry_rejected": "warning",
    "cache_problem": "warning",
    "line_quarantined": "warning",
    "service_deferred": "warning",
    "budget_warning": "warning",
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


ENVELOPE_VERSION = 2
"""The shape of an event line: 2 is the envelope below; 1 (no ``v``) was the event's own fields with ``time``."""

_ENVELOPE_KEYS = frozenset({"type", "stage", "service_id"})
_EXCLUDED = set(_ENVELOPE_KEYS)
_EVENT = TypeAdapter(Event)


def enveloped(event: Event, *, run_id: str, ts: str) -> str:
    """One event as a JSON line's text (no newline), in the envelope every consumer reads.

    ``v``, ``ts`` (ISO 8601, UTC), ``level``, ``run_id``, ``type``, ``stage`` and
    ``service_id`` where the event has them, and the rest under ``data``: one serialisation
    in pydantic-core for the payload, the envelope's few keys around it.
    """
    stage = getattr(event, "stage", None)
    service_id = getattr(event, "service_id", None)
    level = event_level(event.type, getattr(event, "status", None))
    data = event.model_dump_json(exclude=_EXCLUDED)
    where = f', "stage": "{stage}"' if stage else ""
    if service_id is not None:
        where += f', "service_id": {_json_string(service_id)}'
    return (
        f'{{"v": {ENVELOPE_VERSION}, "ts": "{ts}", "level": "{level}", "run_id": {_json_string(run_id)}, '
        f'"type": "{event.type}"{where}, "data": {data}}}'
    )


@functools.lru_cache(maxsize=4096)
def _json_string(text: str) -> str:
    """A string as JSON (run ids and service ids recur: each is encoded once)."""
    return json.dumps(text)


def from_line(record: dict[str, Any]) -> Event:
    """The event of one line, in either shape (the envelope, or version 1's flat fields with ``time``).

    Raises:
        pydantic.ValidationError: not an event this release knows.
    """
    if record.get("v") == ENVELOPE_VERSION:
        fields = {key: record[key] for key in _ENVELOPE_KEYS if record.get(key) is not None}
        return _EVENT.validate_python({**record.get("data", {}), **fields})
    return _EVENT.validate_python({key: value for key, value in record.items() if key != "time"})


def as_envelope(record: dict[str, Any], run_id: str) -> dict[str, Any]:
    """A line of either shape as the envelope (version 1 lines are lifted into it; their level is derived)."""
    if record.get("v") == ENVELOPE_VERSION:
        return record
    data = {key: value for key, value in record.items() if key not in ("time", *_ENVELOPE_KEYS)}
    envelope: dict[str, Any] = {
        "v": ENVELOPE_VERSION,
        "ts": record.get("time"),
        "level": event_level(str(record.get("type", "")), record.get("status")),
        "run_id": run_id,
        "type": record.get("type"),
    }
    envelope |= {key: record[key] for key in ("stage", "service_id") if record.get(key) is not None}
    return envelope | {"data": data}
