"""The spending cap of a run: reserve a call's worst case before it goes, settle after.

Prices come from genai-prices (bundled, no network), through pydantic-ai's usage where a
call has happened and through ``calc_price`` for the estimate before it. A call reserves
the most it could cost — its prompt, plus the longest answer allowed, for every output
retry it may need — so that however many calls run at once, what is spent never passes
the limit. A reservation that does not fit waits for the calls in flight to settle; when
what is spent plus the next reservation would pass the limit, the budget is exhausted: no
new call starts, and the calls in flight finish and settle at what they really cost.

An unknown price is never taken as $0.
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

from genai_prices import Usage, calc_price
from pydantic_ai.exceptions import ModelAPIError
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.fallback import FallbackModel
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from service_ambitions.core.errors import BudgetExceeded
from service_ambitions.core.models import Stage
from service_ambitions.llm.plugins import LIVE_COST, PricedModel

__all__ = ["Budget", "BudgetedModel", "call_price", "response_price", "worst_case_cost"]

_CHARS_PER_TOKEN = 3
"""Conservative: real prompts run nearer 4 characters a token, so estimates err high."""


def call_price(model: Model, input_tokens: int, output_tokens: int, *, batch: bool = False) -> Decimal | None:
    """What one request with these token counts costs, or None when the price is unknown.

    For a fallback chain, the dearest of its models: any of them may answer. ``batch``
    asks for the provider's batch price (genai-prices knows them; the live price where
    it has none).
    """
    if isinstance(model, FallbackModel):
        prices = [call_price(member, input_tokens, output_tokens, batch=batch) for member in model.models]
        return None if None in prices else max(price for price in prices if price is not None)
    if model.system == "function":  # the offline model
        return Decimal(0)
    if isinstance(model, PricedModel):  # priced by the settings or its plug-in (a plug-in's may have none)
        return model.price.of(input_tokens, output_tokens, batch=batch) if model.price is not None else None
    try:
        return calc_price(
            Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            model_ref=model.model_name,
            provider_id=model.system,
            price_context={"processing": "batch"} if batch else None,
        ).total_price
    except LookupError:
        return None


def worst_case_cost(
    model: Model, prompt_chars: int, max_output_tokens: int, attempts: int, *, batch: bool = False
) -> Decimal | None:
    """The most a call may cost: each attempt re-sends the conversation, answers included."""
    input_tokens = prompt_chars // _CHARS_PER_TOKEN + 1
    total = Decimal(0)
    for attempt in range(attempts):
        price = call_price(model, input_tokens + attempt * max_output_tokens, max_output_tokens, batch=batch)
        if price is None:
            return None
        total += price
    return total


class Budget:
    """A run's spending limit in USD. Only the event loop's thread touches it.

    A call reserves its worst case before it starts and settles to what it really cost
    as soon as it ends. When a reservation does not fit only because of what calls in
    flight have reserved, it waits for them to settle (they usually cost a fraction of
    their reservation); the budget is spent only when what has been spent plus the next
    call's reservation would pass the limit.
    """

    def __init__(self, limit: Decimal, *, spent_before: Decimal = Decimal(0)) -> None:
        """A budget of ``limit`` for the whole run; ``spent_before`` is what its earlier segments spent (resume)."""
        self.limit = limit
        self.spent_before = spent_before
        self.spent = spent_before
        self.reserved = Decimal(0)
        self.largest = Decimal(0)
        """The largest reservation so far: what the last call of a service may need to hold."""
        self.exhausted = False
        self.unpriced_calls = 0
        self._settled = asyncio.Event()

    async def reserve(self, amount: Decimal, *, stage: Stage, model: str) -> Decimal:
        """Hold ``amount`` for a call about to start, waiting for calls in flight to settle if need be.

        Raises:
            BudgetExceeded: what is spent plus this call's worst case would pass the limit;
                nothing is held, and every later reservation fails too.
        """
        while True:
            if self.exhausted or self.spent + amount > self.limit:
                self.exhausted = True
                earlier = f", ${self.spent_before:.4f} of it before this resume" if self.spent_before else ""
                raise BudgetExceeded(
                    f"the budget of ${self.limit} for the whole run is reached: ${self.spent:.4f} spent{earlier}, "
                    f"and the next call could cost up to ${amount:.4f} (together ${self.spent + amount:.4f})",
                    stage=stage,
                    model=model,
                )
            if self.spent + self.reserved + amount <= self.limit:
                self.largest = max(self.largest, amount)
                self.reserved += amount
                return amount
            await self._settled.wait()  # the event of this moment: a settle sets it

    def settle(self, reserved: Decimal, actual: Decimal | None) -> None:
        """Replace a reservation with what the call cost; an unknown cost counts as the reservation."""
        self.reserved -= reserved
        self.spent += reserved if actual is None else actual
        settled, self._settled = self._settled, asyncio.Event()
        settled.set()


def response_price(response: ModelResponse, *, live: bool = False) -> Decimal | None:
    """What one response cost, as pydantic-ai prices it (genai-prices); None when unknown.

    An answer from a batch is priced at batch rates (pydantic-ai marks it); ``live`` asks
    what it would have cost as a live request instead, for the saving ``report`` shows.
    """
    if response.usage.cost is not None and not live:
        return response.usage.cost
    if live and response.provider_details and LIVE_COST in response.provider_details:
        return Decimal(str(response.provider_details[LIVE_COST]))  # priced by the settings or a plug-in
    if live and response.provider_details and "processing" in response.provider_details:
        details = {key: value for key, value in response.provider_details.items() if key != "processing"}
        response = dataclasses.replace(response, provider_details=details)
    try:
        return response.cost().total_price
    except (LookupError, ValueError, AssertionError):
        return None  # an unknown model or a response without usage: unpriced, never $0


class BudgetedModel(WrapperModel):
    """A model whose every request first reserves its worst case from the run's budget.

    Reserving per request, not per call, means an output retry reserves only when it is
    sent: a call is charged for the attempts it really makes. The worst case of a request
    is its messages and tools as sent, plus the longest answer allowed; it is settled to
    the response's price as soon as the response arrives. A request the provider failed
    (an HTTP error after the retries) was not billed and settles at $0; a cancelled one
    keeps its reservation, since what the provider billed is unknown.
    """

    def __init__(
        self,
        wrapped: Model,
        budget: Budget,
        *,
        max_output_tokens: int,
        stage: Stage,
        label: str,
        batch: bool = False,
    ) -> None:
        super().__init__(wrapped)
        self._budget = budget
        self._max_output_tokens = max_output_tokens
        self._stage = stage
        self._label = label
        self._offline = wrapped.system == "function"
        self._batch = batch
        self._held: dict[str, Decimal] = {}
        """Reservations of requests waiting in a batch, by their suspended response's id."""

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Reserve, send, settle.

        A request that went into a batch comes back suspended: its reservation is held
        until a later check brings its answer (a check from another process, which holds
        none, reserves afresh).
        """
        waiting = messages[-1] if messages else None
        reserved = (
            self._held.pop(waiting.provider_response_id or "", None) if isinstance(waiting, ModelResponse) else None
        )
        if reserved is None:
            reserved = await self._reserve(messages, model_request_parameters)
        try:
            response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        except ModelAPIError:
            self._budget.settle(reserved, Decimal(0))  # the provider refused or failed it: nothing billed
            raise
        except BaseException:
            self._budget.settle(reserved, None)
            raise
        if response.state == "suspended" and response.provider_response_id:
            self._held[response.provider_response_id] = reserved
            return response
        self._budget.settle(reserved, Decimal(0) if self._offline else response_price(response))
        return response

    async def _reserve(self, messages: list[ModelMessage], parameters: ModelRequestParameters) -> Decimal:
        worst = Decimal(0) if self._offline else self._worst_case(messages, parameters)
        if worst is None:
            self._budget.unpriced_calls += 1
            worst = Decimal(0)
        return await self._budget.reserve(worst, stage=self._stage, model=self._label)

    def _worst_case(self, messages: list[ModelMessage], parameters: ModelRequestParameters) -> Decimal | None:
        tools = sum(len(str(tool.parameters_json_schema)) for tool in parameters.output_tools)
        chars = len(ModelMessagesTypeAdapter.dump_json(messages)) + tools
        return worst_case_cost(self.wrapped, chars, self._max_output_tokens, attempts=1, batch=self._batch)
