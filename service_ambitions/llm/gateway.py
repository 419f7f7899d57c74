"""The gateway: the one place every LLM call passes through.

A call goes in as an :class:`LLMRequest` (stage, instructions, prompt, message history,
output type) and comes back as an :class:`LLMAnswer` (validated output, usage, transcript).
Every call goes: cache lookup → run-wide cap on requests in flight and rate limits (live),
or the provider's batch API (batch mode, ``batching.py``) → budget → pydantic-ai model
request with the output type's validation (``structured.py``) → cache store. Exceptions
are translated into ours here (``failures.py``), so nothing above the gateway knows
whether an answer came from the cache, a provider or the offline model.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, TypeVar

import pydantic_ai
from pydantic import ValidationError
from pydantic_ai import ModelSettings, UsageLimits
from pydantic_ai.messages import ModelMessagesTypeAdapter
from pydantic_ai.models import Model
from pydantic_ai.models.concurrency import ConcurrencyLimitedModel

from service_ambitions.cache.format import CachedAnswer, CacheEntry, cache_key, key_scope
from service_ambitions.cache.store import ResultCache
from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.errors import (
    CacheUnavailable,
    ProviderError,
    ProviderRefused,
    ProviderUnreachable,
    ServiceAmbitionsError,
)
from service_ambitions.core.events import CacheEntryRejected, CacheProblem, EventSink, RetryScheduled, ThrottleChanged
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend
from service_ambitions.llm.batching import BatchLane
from service_ambitions.llm.budget import Budget, BudgetedModel
from service_ambitions.llm.chains import display_name, tell_fallback
from service_ambitions.llm.failures import spent_by, translated
from service_ambitions.llm.keys import OutputType, key_history, key_settings
from service_ambitions.llm.limits import AdaptiveLimiter, CircuitBreaker, RateLimiter
from service_ambitions.llm.pacing import PaceEvents, pace_observer
from service_ambitions.llm.requests import ImportedLookup, LLMAnswer, LLMRequest
from service_ambitions.llm.structured import Exchange, ask_structured, first_request
from service_ambitions.llm.transport import retry_observer

__all__ = ["Gateway"]

OutputT = TypeVar("OutputT")


class Gateway:
    """Runs LLM calls for every stage, with at most ``max_in_flight`` model requests at a time.

    Create it inside the running event loop that will use it.
    """

    def __init__(
        self,
        models: Mapping[Stage, Model],
        *,
        max_in_flight: int,
        model_settings: ModelSettings | None = None,
        output_retries: int = 2,
        cache: ResultCache | None = None,
        cache_mode: CacheMode = CacheMode.READ,
        on_event: EventSink | None = None,
        budget: Budget | None = None,
        rate: RateLimiter | None = None,
        breaker: CircuitBreaker | None = None,
        usage_limits: UsageLimits | None = None,
        reuse_imported: bool = False,
        batch: BatchLane | None = None,
        unreachable_after: int | None = None,
    ) -> None:
        # Our progress display owns the terminal; pydantic-ai's first-run banner would
        # land in the middle of it (it shows for editable installs, as in a checkout).
        pydantic_ai.BANNER_ENABLED = False
        # The limiter wraps the model, so the cap counts requests to the provider (output
        # retries included) and not the agent's own work before and after them.
        self.limiter = AdaptiveLimiter(max_in_flight)
        self._max_output_tokens = int((model_settings or {}).get("max_tokens") or 4096)
        self._names = {stage: display_name(model) for stage, model in models.items()}
        self._raw = dict(models)
        """The models as resolved: what prices, names and endpoints are read from."""
        self._batch = batch
        if batch is not None:
            # Batched requests wait in the provider's queue, not in ours: no cap, no rate.
            self._models = {
                stage: self._budgeted(stage, batch.wrap(model, self._names[stage]), budget)
                for stage, model in models.items()
            }
        else:
            self._models = {
                stage: ConcurrencyLimitedModel(self._budgeted(stage, model, budget), self.limiter)
                for stage, model in models.items()
            }
        self._budget = budget
        self._rate = rate
        self._breaker = breaker
        self._usage_limits = usage_limits
        self._model_settings = model_settings
        self._output_retries = output_retries
        self._endpoints = {stage: model.base_url for stage, model in models.items()}
        self._cache = cache if cache_mode is not CacheMode.OFF else None
        self._mode = cache_mode
        self._writing = True
        self._emit: EventSink = on_event or (lambda event: None)
        self._key_settings = key_settings(model_settings)
        self._outputs: dict[type[Any], OutputType] = {}
        self._rejected: set[str] = set()
        self._reuse_imported = reuse_imported
        self._refused: ProviderRefused | None = None
        """The first refusal (bad key, unknown model, no quota): no later call is sent."""
        self._unreachable_after = unreachable_after
        self._unreachable = 0
        """Calls in a row that could not connect, while no call has reached a provider."""
        self._reached = False
        self._imports_served: set[str] = set()
        """Keys of the imported answers used so far (see ``ImportedLookup.after``)."""

    def _budgeted(self, stage: Stage, model: Model, budget: Budget | None) -> Model:
        # Below the concurrency cap: a request reserves once it has a slot, not while it queues.
        if budget is None:
            return model
        return BudgetedModel(
            model,
            budget,
            max_output_tokens=self._max_output_tokens,
            stage=stage,
            label=self._names[stage],
            batch=self._batch is not None,
        )

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
        key = self._key(request) if self._cache is not None or self._batch is not None else None
        if key is not None and self._cache is not None and self._mode in (CacheMode.READ, CacheMode.READONLY):
            try:
                hit = self._cached(key, request)
            except CacheUnavailable as exc:
                self._give_up_cache(exc, reading=True)
                hit = None
            if hit is not None:
                return hit
        if self._reuse_imported and request.imported is not None and self._mode is not CacheMode.REFRESH:
            imported = self._imported(request, request.imported)
            if imported is not None:
                return imported
        answer = await self._asked(request, key)
        writing = self._writing and self._mode in (CacheMode.READ, CacheMode.REFRESH)
        if key is not None and self._cache is not None and writing:
            try:
                self._store(key, request, answer)
            except CacheUnavailable as exc:
                self._give_up_cache(exc, reading=False)
            else:
                answer = dataclasses.replace(answer, key=key)
        if self._batch is not None and key is not None:
            self._batch.collected(key)  # in the cache now (if any): a resumed run asks afresh
        return answer

    async def _asked(self, request: LLMRequest[OutputT], key: str | None) -> LLMAnswer[OutputT]:
        """The model's answer, live or through a batch; none once the provider refused the run's calls."""
        if self._refused is not None:
            # The provider refused the key, the model or the quota: every call would fail alike,
            # and one started before the run stopped would be one more refused request.
            refused = self._refused
            raise ProviderRefused(refused.message, stage=request.stage, model=refused.model, hint=refused.hint)
        try:
            answer = await (self._call_model(request) if self._batch is None else self._call_batched(request, key))
        except ProviderRefused as exc:
            self._refused = exc
            raise
        except ProviderError as exc:
            self._count_unreachable(exc)
            raise
        self._reached = True
        return answer

    def _count_unreachable(self, exc: ProviderError) -> None:
        """A provider no call of the run has reached, after calls in a row: stop the run, not every service.

        Raises:
            ProviderUnreachable: the limit was reached.
        """
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

    def _give_up_cache(self, exc: CacheUnavailable, *, reading: bool) -> None:
        """Go on without the cache (or without writing to it), saying so once."""
        if self._cache is None or not (reading or self._writing):
            return
        if reading:
            self._cache = None
        self._writing = False  # answers already cached are still read, unless reading failed too
        self._emit(CacheProblem(reason=exc.user_message, reading=reading))

    def peek(self, request: LLMRequest[OutputT]) -> OutputT | None:
        """The cached answer to ``request``, if there is a usable one; never calls a model.

        For planning (``run --dry-run``): no event is emitted and nothing is written.
        """
        if self._cache is None or self._mode not in (CacheMode.READ, CacheMode.READONLY):
            return None
        found = self._cache.lookup(self._key(request))
        if not isinstance(found, CachedAnswer):
            return None
        try:
            output: OutputT = self._output(request.output_type).adapter.validate_json(found.output_json)
        except ValidationError:
            return None
        return output

    def estimate_input_tokens(self, request: LLMRequest[Any]) -> int:
        """Roughly the input tokens ``request`` would use (about four characters a token)."""
        return self._prompt_chars(request) // 4

    def estimate_shared_tokens(self, request: LLMRequest[Any]) -> int:
        """Roughly the tokens of ``request`` every call of its stage shares: the output schema and the instructions.

        They lead the request, so providers that cache prompt prefixes can bill them at
        their cached price.
        """
        return (len(request.instructions) + self._output(request.output_type).schema_chars) // 4

    @property
    def max_output_tokens(self) -> int:
        """The longest answer a call may return."""
        return self._max_output_tokens

    def _key(self, request: LLMRequest[Any]) -> str:
        output = self._output(request.output_type)
        scope = output.scopes.get(request.stage)
        if scope is None:
            scope = output.scopes[request.stage] = key_scope(
                stage=request.stage,
                model=self._names[request.stage],
                endpoint=self._endpoints[request.stage],
                settings=self._key_settings,
                output_schema=output.schema,
            )
        return cache_key(
            scope=scope, instructions=request.instructions, prompt=request.prompt, history=key_history(request.history)
        )

    def _output(self, output_type: type[Any]) -> OutputType:
        # Adapters and schemas cost milliseconds to build; a run has a handful of output types.
        if output_type not in self._outputs:
            self._outputs[output_type] = OutputType.of(output_type)
        return self._outputs[output_type]

    def _cached(self, key: str, request: LLMRequest[OutputT]) -> LLMAnswer[OutputT] | None:
        assert self._cache is not None
        found = self._cache.lookup(key)
        if found is None:
            return None
        if isinstance(found, CachedAnswer):
            try:
                output = self._output(request.output_type).adapter.validate_json(found.output_json)
            except ValidationError as exc:
                found = f"output no longer valid: {str(exc).splitlines()[0]}"
            else:
                return LLMAnswer(output, found.entry.model, found.entry.spend, (), cached=True, key=key)
        if key not in self._rejected:
            # Reported once; the fresh answer then replaces the entry (except in readonly mode).
            self._rejected.add(key)
            self._emit(CacheEntryRejected(stage=request.stage, key=key[:16], reason=found))
        return None

    def _imported(self, request: LLMRequest[OutputT], lookup: ImportedLookup) -> LLMAnswer[OutputT] | None:
        """An answer ``migrate cache`` imported for this service, stage and plateau, when it fits this call."""
        if self._cache is None:
            return None
        payload = self._cache.imported(lookup.key)
        if payload is None:
            return None
        built_on_import = lookup.after is not None and lookup.after in self._imports_served
        try:
            output = self._output(request.output_type).adapter.validate_python(lookup.convert(payload, built_on_import))
        except (ValueError, ValidationError) as exc:
            if lookup.key not in self._rejected:
                self._rejected.add(lookup.key)
                reason = f"imported answer {lookup.key} does not fit: {str(exc).splitlines()[0]}"
                self._emit(CacheEntryRejected(stage=request.stage, key=lookup.key, reason=reason))
            return None
        self._imports_served.add(lookup.key)
        return LLMAnswer(output, "imported", Spend.priced(None), (), cached=True, imported=True)

    def _store(self, key: str, request: LLMRequest[Any], answer: LLMAnswer[Any]) -> None:
        assert self._cache is not None
        output_type = self._output(request.output_type)
        entry = CacheEntry(
            stage=request.stage,
            model=answer.model,
            created=self._cache.now(),
            schema_sha256=output_type.sha256,
            spend=answer.spend,
        )
        self._cache.store(
            key,
            entry,
            output_json=output_type.adapter.dump_json(answer.output, by_alias=True),
            transcript=ModelMessagesTypeAdapter.dump_json(list(answer.messages)),
            output_schema=output_type.schema,
        )

    def _prompt_chars(self, request: LLMRequest[Any]) -> int:
        return len(request.instructions) + len(request.prompt) + self._output(request.output_type).schema_chars

    def _estimated_tokens(self, request: LLMRequest[Any]) -> int:
        return self._prompt_chars(request) // 4 + self._max_output_tokens // 4

    async def _call_model(self, request: LLMRequest[OutputT]) -> LLMAnswer[OutputT]:
        model = self._names[request.stage]

        def on_retry(wait_s: float, reason: str) -> None:
            self._emit(RetryScheduled(stage=request.stage, model=model, wait_s=wait_s, reason=reason))
            if reason == "HTTP 429" and self.limiter.slow_down():
                self._emit(ThrottleChanged(limit=self.limiter.limit, reason="rate limited (HTTP 429)"))

        # The transport reports retries to whichever call is waiting: this task's context.
        retry_observer.set(on_retry)
        pace_observer.set(PaceEvents(self._emit))
        wrapped = self._raw[request.stage]
        provider = f"{wrapped.system}@{wrapped.base_url}"
        exchange = Exchange()
        with translated(request.stage, self._names[request.stage], self._raw[request.stage], exchange):
            async with self._breaker.call(provider) if self._breaker else contextlib.nullcontext():
                if self._rate is not None:
                    await self._rate.wait(self._estimated_tokens(request))
                output = await self._ask_model(request, exchange)
            self.limiter.succeeded()
        return self._answer(request, output, exchange)

    async def _call_batched(self, request: LLMRequest[OutputT], key: str | None) -> LLMAnswer[OutputT]:
        """The call through the provider's batch API: saved while it waits, resumed where an earlier run left it."""
        lane = self._batch
        assert lane is not None
        assert key is not None
        model = self._models[request.stage]
        exchange = Exchange()
        lane.entered()
        try:
            with translated(request.stage, self._names[request.stage], self._raw[request.stage], exchange):
                output = await self._ask_model(
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
        return dataclasses.replace(self._answer(request, output, exchange, batched=True), batched=True)

    async def _ask_model(self, request: LLMRequest[OutputT], exchange: Exchange, **batched: Any) -> OutputT:
        output: OutputT = await ask_structured(
            self._models[request.stage],
            self._output(request.output_type).tool,
            instructions=request.instructions,
            prompt=request.prompt,
            history=request.history,
            settings=self._model_settings,
            retries=self._output_retries,
            limits=self._usage_limits,
            exchange=exchange,
            **batched,
        )
        return output

    def _answer(
        self, request: LLMRequest[OutputT], output: OutputT, exchange: Exchange, *, batched: bool = False
    ) -> LLMAnswer[OutputT]:
        wrapped = self._raw[request.stage]
        spend = spent_by(exchange.messages, offline=wrapped.system == "function", live_prices=batched)
        tell_fallback(wrapped, request.stage, exchange.messages, self._emit)
        return LLMAnswer(output, self._names[request.stage], spend, exchange.messages)
