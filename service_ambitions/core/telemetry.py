"""Telemetry: OpenTelemetry spans and ``sa_`` metrics, sent with logfire when a token is present.

Library code records through the OpenTelemetry API only (:data:`tracer`, :class:`Metrics`),
which does nothing until :func:`configure_telemetry` is called — the CLI calls it once.
Without a logfire token (or an OTLP endpoint) nothing is configured, nothing leaves the
machine and nothing is printed.

Prompts and answers stay out of spans unless the user opts in (``--allow-prompt-logging``):
pydantic-ai's instrumentation is told to leave content out, and our own spans carry only
ids, stage, model, counts and cost — never text and never a key.
"""

from __future__ import annotations

import os
import sys
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry import metrics, trace

__all__ = ["Metrics", "SlotWait", "configure_telemetry", "slot_wait", "tracer"]

tracer = trace.get_tracer("service_ambitions")
"""Spans for runs, services and stages; a no-op until telemetry is configured."""


class SlotWait:
    """Seconds one call's requests waited for a slot under the cap on requests in flight (output retries too)."""

    def __init__(self) -> None:
        self.seconds = 0.0


slot_wait: ContextVar[SlotWait | None] = ContextVar("slot_wait", default=None)
"""Set for the duration of a call (``pipeline/calls.py``); the limiter (``llm/limits.py``) adds each wait to it."""


@dataclass
class Metrics:
    """The run's instruments, all prefixed ``sa_``."""

    _meter: metrics.Meter = field(default_factory=lambda: metrics.get_meter("service_ambitions"))

    def __post_init__(self) -> None:
        self.calls = self._meter.create_counter("sa_calls", description="LLM calls answered, cached or not")
        self.cache_hits = self._meter.create_counter("sa_cache_hits", description="Calls answered from the cache")
        self.tokens = self._meter.create_counter("sa_tokens", description="Tokens used by live calls")
        self.cost = self._meter.create_counter("sa_cost_usd", unit="USD", description="Spend of live calls")
        self.in_flight = self._meter.create_up_down_counter("sa_calls_in_flight", description="Calls in progress")
        self.latency = self._meter.create_histogram(
            "sa_stage_latency", unit="ms", description="Time from a call's request to its validated answer"
        )
        self.queue_wait = self._meter.create_histogram(
            "sa_queue_wait", unit="ms", description="Time a call's requests waited for a slot under max_in_flight"
        )
        self.retries = self._meter.create_counter("sa_retries", description="Requests retried, by cause")


_EXPORT_VARIABLES = ("LOGFIRE_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_telemetry(*, allow_prompt_logging: bool = False) -> bool:
    """Send spans and metrics to logfire (or an OTLP endpoint) when one is configured.

    With nowhere to send them, nothing is configured at all: the OpenTelemetry API stays
    a no-op, so spans cost nothing (a configured pipeline still scrubs and processes each
    span locally, which on a fully cached run is most of the work). Returns whether
    telemetry was configured.
    """
    if not any(os.environ.get(name) for name in _EXPORT_VARIABLES) and not Path(".logfire").is_dir():
        _leave_logfire_out()
        return False
    import logfire

    logfire.configure(
        send_to_logfire="if-token-present",
        console=False,
        service_name="service-ambitions",
        inspect_arguments=False,
    )
    logfire.instrument_pydantic_ai(include_content=allow_prompt_logging)
    return True


def _leave_logfire_out() -> None:
    """Let pydantic-ai's ``logfire_api`` use its no-op stand-in rather than import all of logfire.

    ``logfire_api`` imports the real logfire whenever it is installed (it is: it sends
    telemetry when asked), which is 0.2-0.4 s of a live run's start-up on two cores for
    spans that would go nowhere. A ``None`` in ``sys.modules`` makes that import fail
    as if logfire were absent; nothing else in a run imports it.
    """
    if "logfire" not in sys.modules and "logfire_api" not in sys.modules:
        sys.modules["logfire"] = None  # type: ignore[assignment]  # Python's documented way to block an import
