"""Pull metrics: a run's events as Prometheus metrics, served on 127.0.0.1 while the run lasts.

``run --metrics-port PORT`` (and ``map``) starts :func:`served_metrics`; every event the
run emits also goes to :class:`PrometheusMetrics`, so the metrics say what the events
say — the same fold as the panel, the summary and ``report``. Names follow the OTLP
export's (``sa_calls``, ``sa_cache_hits``, ``sa_tokens``, ``sa_cost_usd``,
``sa_calls_in_flight``, ``sa_queue_wait``, ``sa_retries``), with Prometheus's suffixes
(``_total`` for counters, ``_seconds`` for durations). See ``docs/observability.md``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.events import (
    CallFailed,
    CallFinished,
    CallStarted,
    Event,
    LimitWaited,
    ProviderPaused,
    RetryScheduled,
    ServiceCompleted,
    ServiceDeferred,
    ServiceFailed,
    ServiceSkipped,
    ServiceStarted,
    ThrottleChanged,
)

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["PrometheusMetrics", "served_metrics"]

_SECONDS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120, 300)


class PrometheusMetrics:
    """The run's metrics, kept from its events."""

    def __init__(self, max_in_flight: int | None = None) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry: CollectorRegistry = CollectorRegistry()
        r, call = self.registry, ["stage", "model"]
        self.calls = Counter("sa_calls", "LLM calls answered, cached or not", call, registry=r)
        self.cache_hits = Counter("sa_cache_hits", "Calls answered from the cache", call, registry=r)
        self.failed = Counter("sa_calls_failed", "Calls that failed (after their retries)", call, registry=r)
        self.requests = Counter("sa_requests", "Requests the provider answered and billed", call, registry=r)
        self.tokens = Counter(
            "sa_tokens", "Tokens billed, by kind: input, cached (of input), output", [*call, "kind"], registry=r
        )
        self.cost = Counter("sa_cost_usd", "USD spent by live and failed calls", call, registry=r)
        self.retries = Counter("sa_retries", "Requests retried, by cause", [*call, "reason"], registry=r)
        self.services = Counter("sa_services", "Services by how they ended (or started)", ["state"], registry=r)
        self.in_flight = Gauge("sa_calls_in_flight", "Calls in progress", ["stage"], registry=r)
        self.queue_wait = Histogram(
            "sa_queue_wait_seconds", "Time a call waited for a slot", ["stage"], buckets=_SECONDS, registry=r
        )
        self.call_time = Histogram(
            "sa_call_seconds", "Time in the call, its wait for a slot left out", ["stage"], buckets=_SECONDS, registry=r
        )
        self.cap = Gauge("sa_max_in_flight", "The cap on requests in flight now (cut after 429s)", registry=r)
        self.paused = Gauge("sa_provider_paused", "1 while the breaker pauses a provider", ["provider"], registry=r)
        self.limit_wait = Counter(
            "sa_rate_limit_wait_seconds", "Time requests waited under announced rate limits", registry=r
        )
        if max_in_flight is not None:
            self.cap.set(max_in_flight)
        self.port: int | None = None
        """Where they are served, once they are (see :func:`served_metrics`)."""

    def __call__(self, event: Event) -> None:
        """Count one event."""
        match event:
            case CallStarted():
                self.in_flight.labels(event.stage.value).inc()
            case CallFinished() | CallFailed():
                self._call_ended(event)
            case ServiceStarted() | ServiceCompleted() | ServiceFailed() | ServiceDeferred() | ServiceSkipped():
                self.services.labels(event.type.removeprefix("service_")).inc()
            case _:
                self._pressure(event)

    def _call_ended(self, event: CallFinished | CallFailed) -> None:
        stage, labels = event.stage.value, (event.stage.value, event.model)
        if not (isinstance(event, CallFinished) and event.replayed):
            self.in_flight.labels(stage).dec()
            self.queue_wait.labels(stage).observe(event.queue_ms / 1000)
            self.call_time.labels(stage).observe(max(0.0, event.latency_ms - event.queue_ms) / 1000)
        if isinstance(event, CallFailed):
            self.failed.labels(*labels).inc()
        elif event.cached:
            self.calls.labels(*labels).inc(event.calls)
            self.cache_hits.labels(*labels).inc(event.calls)
            return
        else:
            self.calls.labels(*labels).inc(event.calls)
        spend = event.spend
        self.requests.labels(*labels).inc(spend.requests)
        self.tokens.labels(*labels, "input").inc(spend.input_tokens)
        self.tokens.labels(*labels, "cached").inc(spend.cache_read_tokens)
        self.tokens.labels(*labels, "output").inc(spend.output_tokens)
        self.cost.labels(*labels).inc(float(spend.cost_usd))

    def _pressure(self, event: Event) -> None:
        match event:
            case RetryScheduled():
                self.retries.labels(event.stage.value, event.model, event.reason).inc()
            case ThrottleChanged():
                self.cap.set(event.limit)
            case ProviderPaused():
                self.paused.labels(event.provider).set(1 if event.paused_s else 0)
            case LimitWaited():
                self.limit_wait.inc(event.wait_s)
            case _:
                pass


@contextmanager
def served_metrics(port: int, *, max_in_flight: int | None = None) -> Iterator[PrometheusMetrics]:
    """Serve the run's metrics on ``127.0.0.1:port`` until the block ends; yield the sink that keeps them.

    Raises:
        ConfigError: the port cannot be listened on (in use, or not allowed).
    """
    from prometheus_client import start_http_server

    metrics = PrometheusMetrics(max_in_flight)
    try:
        server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    except OSError as exc:
        raise ConfigError(
            f"cannot serve metrics on 127.0.0.1:{port}: {exc.strerror or exc}",
            hint="choose another --metrics-port, or leave it out",
        ) from exc
    metrics.port = server.server_port  # the one given, or the one picked for 0
    try:
        yield metrics
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
