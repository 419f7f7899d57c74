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
from decimal import Decimal

from genai_prices import Usage, calc_price
from pydantic_ai.models import Model
from pydantic_ai.models.fallback import FallbackModel

from ..errors import BudgetExceeded
from ..models import Stage

__all__ = ["Budget", "call_price", "worst_case_cost"]

_CHARS_PER_TOKEN = 3
"""Conservative: real prompts run nearer 4 characters a token, so estimates err high."""


def call_price(model: Model, input_tokens: int, output_tokens: int) -> Decimal | None:
    """What one request with these token counts costs, or None when the price is unknown.

    For a fallback chain, the dearest of its models: any of them may answer.
    """
    if isinstance(model, FallbackModel):
        prices = [call_price(member, input_tokens, output_tokens) for member in model.models]
        return None if None in prices else max(price for price in prices if price is not None)
    if model.system == "function":  # the offline model
        return Decimal(0)
    try:
        return calc_price(
            Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            model_ref=model.model_name,
            provider_id=model.system,
        ).total_price
    except LookupError:
        return None


def worst_case_cost(model: Model, prompt_chars: int, max_output_tokens: int, attempts: int) -> Decimal | None:
    """The most a call may cost: each attempt re-sends the conversation, answers included."""
    input_tokens = prompt_chars // _CHARS_PER_TOKEN + 1
    total = Decimal(0)
    for attempt in range(attempts):
        price = call_price(model, input_tokens + attempt * max_output_tokens, max_output_tokens)
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

    def __init__(self, limit: Decimal) -> None:
        self.limit = limit
        self.spent = Decimal(0)
        self.reserved = Decimal(0)
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
                raise BudgetExceeded(
                    f"the budget of ${self.limit} is reached: ${self.spent:.4f} spent, and the next call could "
                    f"cost up to ${amount:.4f} (together ${self.spent + amount:.4f})",
                    stage=stage,
                    model=model,
                )
            if self.spent + self.reserved + amount <= self.limit:
                self.reserved += amount
                return amount
            await self._settled.wait()  # the event of this moment: a settle sets it

    def settle(self, reserved: Decimal, actual: Decimal | None) -> None:
        """Replace a reservation with what the call cost; an unknown cost counts as the reservation."""
        self.reserved -= reserved
        self.spent += reserved if actual is None else actual
        settled, self._settled = self._settled, asyncio.Event()
        settled.set()
