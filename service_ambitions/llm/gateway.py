"""The gateway: the one place every LLM call passes through, composed of small layers once per run.

A call goes in as an :class:`LLMRequest` (stage, instructions, prompt, message history,
output type) and comes back as an :class:`LLMAnswer` (validated output, spend, transcript).
:func:`compose_gateway` builds the layers a run configured, once:

- the cache layer (``answers.py``): an answer already known under the call's key, or from
  an answer source behind it (``imported.py``), is returned without asking a model; a new
  answer is stored;
- the refusal guard (``lanes.py``): nothing is sent once the provider refused the run's calls;
- a lane (``lanes.py``): live, through the model layers of ``layers.py`` (breaker, rate,
  cap on requests in flight, budget), or through the provider's batch API (``batching.py``,
  budgeted too); both ask with the output type's validation (``structured.py``) and
  translate failures into ours (``failures.py``).

Nothing above the gateway knows whether an answer came from the cache, a provider or the
offline model.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any, TypeVar

import pydantic_ai
from pydantic_ai.models import Model

from service_ambitions.cache.store import ResultCache
from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.events import EventSink
from service_ambitions.core.models import Stage
from service_ambitions.llm.answers import AnswerSource, CachedAnswers
from service_ambitions.llm.batching import BatchLane
from service_ambitions.llm.budget import Budget, BudgetedModel
from service_ambitions.llm.chains import display_name
from service_ambitions.llm.keys import CallKeys, OutputTypes
from service_ambitions.llm.lanes import BatchedLane, CallSettings, Lane, LaneModels, LiveLane, RefusalGuard
from service_ambitions.llm.layers import live_model
from service_ambitions.llm.limits import AdaptiveLimiter, CircuitBreaker, RateLimiter
from service_ambitions.llm.requests import LLMAnswer, LLMRequest

__all__ = ["Gateway", "compose_gateway"]

OutputT = TypeVar("OutputT")


class Gateway:
    """Answers LLM calls for every stage: from the cache layer when it knows the answer, else from the lane.

    Build it with :func:`compose_gateway`, inside the running event loop that will use it.
    """

    def __init__(
        self,
        names: Mapping[Stage, str],
        lane: Lane,
        *,
        keys: CallKeys,
        outputs: OutputTypes,
        settings: CallSettings,
        answers: CachedAnswers | None = None,
        budget: Budget | None = None,
        batch: BatchLane | None = None,
    ) -> None:
        self._names = names
        self._lane = lane
        self._keys = keys
        self._outputs = outputs
        self._settings = settings
        self._answers = answers
        self._budget = budget
        self._batch = batch

    def budget_room(self) -> Decimal | None:
        """What the run may still spend, with a last call's worst case still fitting; None without a budget.

        A call reserves its worst case before it goes, so a service whose estimated cost just
        fits would be stopped at its last call: that headroom is kept out of the room.
        """
        budget = self._budget
        if budget is None:
            return None
        return budget.limit - budget.spent - budget.reserved - budget.largest

    def model_name(self, stage: Stage) -> str:
        """The model that answers ``stage``, as records and reports show it."""
        return self._names[stage]

    async def ask(self, request: LLMRequest[OutputT]) -> LLMAnswer[OutputT]:
        """Get a validated answer to ``request``, from the cache when it holds one.

        Raises:
            OutputInvalid: the model's answer still failed validation after the output retries.
            ProviderRefused: the provider rejected the key or the model, or the quota is spent.
            ProviderError: the provider refused or failed the request.
            BudgetExceeded: the call could take the run's spending past its budget; it was not made.
        """
        key = self._keys(request) if self._answers is not None or self._batch is not None else None
        if key is not None and self._answers is not None:
            known = self._answers.read(request, key)
            if known is not None:
                return known
        answer = await self._lane.answer(request, key)
        if key is not None and self._answers is not None:
            answer = self._answers.write(request, key, answer)
        if self._batch is not None and key is not None:
            self._batch.collected(key)  # in the cache now (if any): a resumed run asks afresh
        return answer

    def peek(self, request: LLMRequest[OutputT]) -> OutputT | None:
        """The cached answer to ``request``, if there is a usable one; never calls a model.

        For planning (``run --dry-run``): no event is emitted and nothing is written.
        """
        if self._answers is None:
            return None
        return self._answers.peek(request, self._keys(request))

    def estimate_input_tokens(self, request: LLMRequest[Any]) -> int:
        """Roughly the input tokens ``request`` would use (about four characters a token)."""
        schema = self._outputs.of(request.output_type).schema_chars
        return (len(request.instructions) + len(request.prompt) + schema) // 4

    def estimate_shared_tokens(self, request: LLMRequest[Any]) -> int:
        """Roughly the tokens of ``request`` every call of its stage shares: the output schema and the instructions.

        They lead the request, so providers that cache prompt prefixes can bill them at
        their cached price.
        """
        return (len(request.instructions) + self._outputs.of(request.output_type).schema_chars) // 4

    @property
    def max_output_tokens(self) -> int:
        """The longest answer a call may return."""
        return self._settings.max_output_tokens


def compose_gateway(
    models: Mapping[Stage, Model],
    *,
    max_in_flight: int,
    settings: CallSettings | None = None,
    cache: ResultCache | None = None,
    cache_mode: CacheMode = CacheMode.READ,
    source: AnswerSource | None = None,
    ttls: Mapping[Stage, timedelta] | None = None,
    on_event: EventSink | None = None,
    budget: Budget | None = None,
    rate: RateLimiter | None = None,
    breaker: CircuitBreaker | None = None,
    batch: BatchLane | None = None,
    unreachable_after: int | None = None,
) -> Gateway:
    """The gateway with the layers given, composed once: cache (with ``source`` behind it), guard, lane.

    ``batch`` picks the batch lane (no cap, rate or breaker: batched requests wait in the
    provider's queue, not in ours); otherwise the live lane with at most ``max_in_flight``
    requests at a time.
    """
    # Our progress display owns the terminal; pydantic-ai's first-run banner would
    # land in the middle of it (it shows for editable installs, as in a checkout).
    pydantic_ai.BANNER_ENABLED = False
    settings = settings or CallSettings()
    emit: EventSink = on_event or (lambda event: None)
    names = {stage: display_name(model) for stage, model in models.items()}
    outputs = OutputTypes()
    ceiling = settings.max_output_tokens
    lane: Lane
    if batch is not None:
        batched: dict[Stage, Model] = {}
        for stage, model in models.items():
            wrapped = batch.wrap(model, names[stage])
            if budget is not None:
                wrapped = BudgetedModel(
                    wrapped, budget, max_output_tokens=ceiling, stage=stage, label=names[stage], batch=True
                )
            batched[stage] = wrapped
        lane = BatchedLane(LaneModels(models, batched, names, outputs, settings, emit), batch)
    else:
        # The cap wraps the model, so it counts requests to the provider (output retries
        # included) and not the agent's own work before and after them.
        limiter = AdaptiveLimiter(max_in_flight)
        live = {
            stage: live_model(
                model,
                stage=stage,
                label=names[stage],
                limiter=limiter,
                max_output_tokens=ceiling,
                budget=budget,
                rate=rate,
                breaker=breaker,
            )
            for stage, model in models.items()
        }
        lane = LiveLane(LaneModels(models, live, names, outputs, settings, emit), limiter)
    answers = (
        CachedAnswers(cache, cache_mode, outputs, emit, source, ttls)
        if cache is not None and cache_mode is not CacheMode.OFF
        else None
    )
    keys = CallKeys(names, {stage: model.base_url for stage, model in models.items()}, settings.model_settings, outputs)
    return Gateway(
        names,
        RefusalGuard(lane, unreachable_after=unreachable_after),
        keys=keys,
        outputs=outputs,
        settings=settings,
        answers=answers,
        budget=budget,
        batch=batch,
    )
