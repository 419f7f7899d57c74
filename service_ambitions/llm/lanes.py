"""How a call reaches a model: the live lane, the batch lane, and the guard in front of either.

Both lanes answer a request the same way (:class:`Lane`): ask the stage's model for the
output type's tool with pydantic-ai's validation (``structured.py``), translate failures
into ours (``failures.py``) and count what the responses cost. The live lane's model is
the layered stack of ``layers.py``; the batch lane's goes through the provider's batch API
(``batching.py``) and can pick up a call another process left waiting.
:class:`RefusalGuard` sits in front of the lane and stops sending once the provider has
refused the run's calls or has never been reached.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

from opentelemetry.metrics import Counter
from pydantic_ai import ModelSettings, UsageLimits
from pydantic_ai.models import Model

from service_ambitions.core.errors import ProviderError, ProviderRefused, ProviderUnreachable, ServiceAmbitionsError
from service_ambitions.core.events import EventSink, RetryScheduled, ThrottleChanged
from service_ambitions.core.models import Stage
from service_ambitions.core.telemetry import Metrics
from service_ambitions.llm.batching import BatchLane
from service_ambitions.llm.chains import tell_fallback
from service_ambitions.llm.failures import spent_by, translated
from service_ambitions.llm.keys import OutputTypes
from service_ambitions.llm.limits import AdaptiveLimiter
from service_ambitions.llm.pacing import PaceEvents, pace_observer
from service_ambitions.llm.requests import LLMAnswer, LLMRequest
from service_ambitions.llm.structured import Exchange, Resumed, SuspendedHook, ask_structured, first_request
from service_ambitions.llm.transport import retry_observer

__all__ = ["BatchedLane", "CallSettings", "Lane", "LaneModels", "LiveLane", "RefusalGuard"]

OutputT = TypeVar("OutputT")


class Lane(Protocol):
    """A way to a model's answer; ``key`` is the call's cache key, when it has one."""

    async def answer(self, request: LLMRequest[OutputT], key: str | None) -> LLMAnswer[OutputT]:
        """The model's validated answer to ``request``.

        Raises:
            ProviderError: the provider refused or failed the call, or the answer stayed invalid.
        """
        ...


@dataclass(frozen=True)
class CallSettings:
    """What every call of a run sends and allows: model settings, output retries, token limits."""

    model_settings: ModelSettings | None = None
    output_retries: int = 2
    usage_limits: UsageLimits | None = None

    @property
    def max_output_tokens(self) -> int:
        """The longest answer a call may return."""
        return int((self.model_settings or {}).get("max_tokens") or 4096)


@dataclass(frozen=True)
class LaneModels:
    """What a lane asks with: the stage's models as resolved and as wrapped, their names, the output types."""

    raw: Mapping[Stage, Model]
    """The models as resolved: endpoints, prices and whether one is the offline model."""
    wrapped: Mapping[Stage, Model]
    """The models as asked, with the lane's layers around them."""
    names: Mapping[Stage, str]
    outputs: OutputTypes
    settings: CallSettings
    emit: EventSink


class _ModelLane:
    """What both lanes share: asking a stage's model, and counting what the answer cost."""

    def __init__(self, models: LaneModels) -> None:
        self._raw = models.raw
        self._models = models.wrapped
        self._names = models.names
        self._outputs = models.outputs
        self._settings = models.settings
        self._emit = models.emit

    async def _ask(
        self,
        request: LLMRequest[OutputT],
        exchange: Exchange,
        *,
        on_suspended: SuspendedHook | None = None,
        resume: Resumed | None = None,
    ) -> OutputT:
        output: OutputT = await ask_structured(
            self._models[request.stage],
            self._outputs.of(request.output_type).tool,
            instructions=request.instructions,
            prompt=request.prompt,
            history=request.history,
            settings=self._settings.model_settings,
            retries=self._settings.output_retries,
            limits=self._settings.usage_limits,
            exchange=exchange,
            on_suspended=on_suspended,
            resume=resume,
        )
        return output

    def _answer(
        self, request: LLMRequest[OutputT], output: OutputT, exchange: Exchange, *, batched: bool = False
    ) -> LLMAnswer[OutputT]:
        raw = self._raw[request.stage]
        spend = spent_by(exchange.messages, offline=raw.system == "function", live_prices=batched)
        tell_fallback(raw, request.stage, exchange.messages, self._emit)
        return LLMAnswer(output, self._names[request.stage], spend, exchange.messages, batched=batched)


class LiveLane(_ModelLane):
    """Calls answered as they are asked, through the layered models of ``layers.py``."""

    def __init__(self, models: LaneModels, limiter: AdaptiveLimiter) -> None:
        super().__init__(models)
        self.limiter = limiter
        self._metrics: Metrics | None = None

    def _retries(self) -> Counter:
        """The ``sa_retries`` counter (made at the first retry: the meter is the one configured by then)."""
        self._metrics = self._metrics or Metrics()
        return self._metrics.retries

    async def answer(self, request: LLMRequest[OutputT], key: str | None) -> LLMAnswer[OutputT]:
        """The model's answer; a 429 the transport retried cuts the cap on requests in flight."""
        model = self._names[request.stage]

        def on_retry(wait_s: float, reason: str) -> None:
            self._emit(RetryScheduled(stage=request.stage, model=model, wait_s=wait_s, reason=reason))
            self._retries().add(1, {"stage": request.stage.value, "model": model, "reason": reason})
            if reason == "HTTP 429" and self.limiter.slow_down():
                self._emit(ThrottleChanged(limit=self.limiter.limit, reason="rate limited (HTTP 429)"))

        # The transport reports retries and pacing to whichever call is waiting: this task's context.
        retry_observer.set(on_retry)
        pace_observer.set(PaceEvents(self._emit))
        exchange = Exchange()
        with translated(request.stage, model, self._raw[request.stage], exchange):
            output = await self._ask(request, exchange)
        self.limiter.succeeded()
        return self._answer(request, output, exchange)


class BatchedLane(_ModelLane):
    """Calls answered through the provider's batch API: saved while they wait, resumed where a run left them."""

    def __init__(self, models: LaneModels, lane: BatchLane) -> None:
        """``models.wrapped`` are the raw models as ``lane.wrap`` batches them (and budgeted, with a budget)."""
        super().__init__(models)
        self.lane = lane

    async def answer(self, request: LLMRequest[OutputT], key: str | None) -> LLMAnswer[OutputT]:
        """The answer once its batch has it; the call leaves the lane's record once it ends either way."""
        assert key is not None  # nosec B101  # the gateway keys every batched call: that is how a waiting one is found again
        lane = self.lane
        model = self._models[request.stage]
        exchange = Exchange()
        lane.entered()
        try:
            with translated(request.stage, self._names[request.stage], self._raw[request.stage], exchange):
                output = await self._ask(
                    request,
                    exchange,
                    on_suspended=functools.partial(lane.suspended, key, request.stage, model),
                    resume=lane.resumed(key, first_request(request.prompt, request.instructions)),
                )
        except ServiceAmbitionsError:
            lane.collected(key)  # it ended: a resumed run asks afresh rather than re-reading a failure
            raise
        finally:
            lane.left()
        return self._answer(request, output, exchange, batched=True)


class RefusalGuard:
    """In front of a lane: no call is sent once the provider refused the run's calls or was never reached.

    A refusal (bad key, unknown model, no quota) would come back for every call alike. A
    provider no call of the run has reached, after ``unreachable_after`` calls in a row
    that could not connect, stops the run rather than failing every service.
    """

    def __init__(self, lane: Lane, *, unreachable_after: int | None = None) -> None:
        self._lane = lane
        self._unreachable_after = unreachable_after
        self._refused: ProviderRefused | None = None
        self._unreachable = 0
        """Calls in a row that could not connect, while no call has reached a provider."""
        self._reached = False

    async def answer(self, request: LLMRequest[OutputT], key: str | None) -> LLMAnswer[OutputT]:
        """The lane's answer, unless the run's calls are refused.

        Raises:
            ProviderRefused: the provider refused this run's calls (or never answered them).
        """
        if self._refused is not None:
            # A call started before the run stopped would be one more refused request.
            refused = self._refused
            raise ProviderRefused(refused.message, stage=request.stage, model=refused.model, hint=refused.hint)
        try:
            answer = await self._lane.answer(request, key)
        except ProviderRefused as exc:
            self._refused = exc
            raise
        except ProviderError as exc:
            self._count_unreachable(exc)
            raise
        self._reached = True
        return answer

    def _count_unreachable(self, exc: ProviderError) -> None:
        """Raises ProviderUnreachable once the limit of calls in a row that could not connect is reached."""
        if not exc.unreachable:
            self._reached = True  # it answered, if only with an error: it is there
            return
        if self._reached or self._unreachable_after is None:
            return
        self._unreachable += 1
        if self._unreachable >= self._unreachable_after:
            self._refused = ProviderUnreachable(
                f"{exc.message}; {self._unreachable} calls in a row could not connect and none has reached "
                "the provider in this run, so the run stops",
                stage=exc.stage,
                model=exc.model,
                hint="check the address (OPENAI_BASE_URL or the provider's), the network and any proxy, "
                "then continue with --resume",
            )
            raise self._refused from exc
