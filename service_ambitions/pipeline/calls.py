"""One LLM call of a service, as the run sees it: traced, measured and told as an event.

The pipeline decides *which* calls a service needs; this module holds what every one of
them does around the gateway, so ``CallFinished`` and ``CallFailed`` are built in one
place and every billed request (answered or not) reaches the events and the ledger.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel

from service_ambitions.core.errors import BudgetExceeded, ProviderError
from service_ambitions.core.events import CallFailed, CallFinished, CallStarted, EventSink
from service_ambitions.core.models import Service, Stage
from service_ambitions.core.spend import Spend
from service_ambitions.core.telemetry import Metrics, SlotWait, slot_wait, tracer

if TYPE_CHECKING:
    from service_ambitions.llm.gateway import Gateway
    from service_ambitions.llm.requests import LLMAnswer, LLMRequest

__all__ = ["MeasuredCalls"]


class MeasuredCalls:
    """Asks the gateway on behalf of a service and reports each call."""

    def __init__(self, gateway: Gateway | Callable[[], Gateway], emit: EventSink) -> None:
        """``gateway`` may be a function that gives it (``run`` builds it at the first call, once)."""
        self._gateway = gateway if callable(gateway) else lambda: gateway
        self._emit = emit
        self._metrics: Metrics | None = None
        self.spent: dict[str, Decimal] = {}
        """What each running service's calls have cost so far (answered from the cache: nothing);
        :meth:`forget` drops a service once it ends, so a long run keeps nothing per service."""
        self.answered = 0
        """Calls answered (or failed) so far, all services."""
        self._progress = asyncio.Event()

    async def progressed(self) -> None:
        """Return after the next call of any service is answered or fails."""
        await self._progress.wait()

    def nudge(self) -> None:
        """Wake whoever waits on :meth:`progressed` (a service ended)."""
        progressed, self._progress = self._progress, asyncio.Event()
        progressed.set()

    def budget_room(self) -> Decimal | None:
        """The budget left beyond what is spent and held; None without a budget or before any call."""
        return self._gateway().budget_room() if self.answered else None

    def forget(self, service_id: str) -> Decimal:
        """What ``service_id``'s calls cost, forgotten: the service has ended."""
        return self.spent.pop(service_id, Decimal(0))

    def _count(self, service_id: str, cost: Decimal | None) -> None:
        self.answered += 1
        self.spent[service_id] = self.spent.get(service_id, Decimal(0)) + (cost or Decimal(0))
        self.nudge()

    async def ask(self, request: LLMRequest[BaseModel], service: Service) -> LLMAnswer[BaseModel]:
        """The gateway's answer to ``request``, with its span, metrics and event.

        Raises:
            ProviderError, BudgetExceeded: as the gateway does; requests they billed are
                reported first (``CallFailed``).
        """
        attributes = {"service_id": service.service_id, "stage": request.stage.value}
        gateway = self._gateway()
        metrics = self._metrics = self._metrics or Metrics()
        started = time.perf_counter()
        waited = SlotWait()
        self._emit(CallStarted(service_id=service.service_id, stage=request.stage))
        metrics.in_flight.add(1, attributes)
        token = slot_wait.set(waited)
        try:
            with tracer.start_as_current_span(request.stage.value, attributes=attributes) as span:
                try:
                    answer = await gateway.ask(request)
                except ProviderError as exc:
                    span.set_attribute("provider_request_id", exc.request_id or "")
                    raise
                span.set_attributes(_call_attributes(answer, waited))
        except (ProviderError, BudgetExceeded) as exc:
            # Every started call ends in an event (the live panel counts calls in flight);
            # one that reached no provider says so with no requests.
            self._failed(service, request.stage, exc, started, waited)
            self._count(service.service_id, exc.spent.cost_usd if exc.spent is not None else None)
            raise
        finally:
            slot_wait.reset(token)
            metrics.in_flight.add(-1, attributes)
        latency_ms = _elapsed_ms(started)
        queue_ms = round(waited.seconds * 1000, 1)
        spend = answer.spend
        labels = {"stage": request.stage.value, "model": answer.model}
        metrics.calls.add(1, labels)
        metrics.latency.record(latency_ms - queue_ms, labels)
        metrics.queue_wait.record(queue_ms, labels)
        if answer.cached:
            metrics.cache_hits.add(1, labels)
        else:
            metrics.tokens.add(spend.input_tokens + spend.output_tokens, labels)
            metrics.cost.add(float(spend.cost_usd), labels)
        self._count(service.service_id, None if answer.cached else spend.cost_usd)
        self._emit(
            CallFinished(
                service_id=service.service_id,
                stage=request.stage,
                model=answer.model,
                cached=answer.cached,
                batch=answer.batched,
                latency_ms=latency_ms,
                queue_ms=queue_ms,
                spend=spend,
            )
        )
        return answer

    def _failed(
        self, service: Service, stage: Stage, exc: ProviderError | BudgetExceeded, started: float, waited: SlotWait
    ) -> None:
        """The requests of a failed call were billed: count them like any other."""
        self._emit(
            CallFailed(
                service_id=service.service_id,
                stage=stage,
                model=exc.model or self._gateway().model_name(stage),
                latency_ms=_elapsed_ms(started),
                queue_ms=round(waited.seconds * 1000, 1),
                spend=exc.spent or Spend(),
                reason=exc.message,
            )
        )


def _call_attributes(answer: LLMAnswer[BaseModel], waited: SlotWait) -> dict[str, str | bool | float]:
    """What a call's span tells: model, cache, cost, the provider's request id, and the wait for a slot."""
    last = answer.messages[-1] if answer.messages else None
    request_id = getattr(last, "provider_response_id", None) or ""
    return {
        "model": answer.model,
        "cached": answer.cached,
        "cost": str(answer.spend.cost),
        "provider_request_id": request_id,
        "queue_wait_ms": round(waited.seconds * 1000, 1),
    }


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)
