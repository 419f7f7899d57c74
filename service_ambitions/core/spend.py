"""What calls cost: the one value type for requests, tokens and money.

A failed call's billed requests, a call's event, a cache entry's original usage, a record
entry's call group, a row of ``report``, a run's counts and an ``eval`` side all hold a
:class:`Spend`, so addition, the zero, the unknown price and the JSON form are defined
here once. Money is :class:`~decimal.Decimal` (JSON: a decimal string); a cost that could
not be priced is counted in ``unpriced`` and never added as $0.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["ModelPrice", "Spend"]


class Spend(BaseModel):
    """Requests the provider answered and billed, their tokens, and what they cost.

    ``Spend()`` is zero; ``a + b`` adds field by field. ``cost_usd`` is the priced part;
    ``unpriced`` counts the calls (or responses) without a price, whose cost is not in it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    requests: int = 0
    input_tokens: int = 0
    cache_read_tokens: int = 0
    """Input tokens the provider served from its prompt (prefix) cache: part of ``input_tokens``, billed lower."""
    cache_write_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    """Output tokens the model spent thinking (part of ``output_tokens`` where providers count them so)."""
    cost_usd: Decimal = Decimal(0)
    unpriced: int = 0
    """Calls whose cost is unknown (an unpriced model, a response without usage)."""
    batch_cost_usd: Decimal = Decimal(0)
    """Of ``cost_usd``: what requests answered through a provider's batch API cost, at batch prices."""
    batch_live_usd: Decimal = Decimal(0)
    """What those same batch requests would have cost at live prices."""

    @model_validator(mode="before")
    @classmethod
    def _unknown_cost(cls, data: Any) -> Any:
        """Files written before this type said an unknown cost as ``"cost_usd": null``."""
        if isinstance(data, dict) and "cost_usd" in data and data["cost_usd"] is None:
            data = {**data, "cost_usd": Decimal(0), "unpriced": max(1, int(data.get("unpriced") or 0))}
        return data

    @classmethod
    def priced(cls, cost: Decimal | None, **counts: int) -> Spend:
        """One call's spend: ``cost`` None means it could not be priced."""
        return cls(cost_usd=cost or Decimal(0), unpriced=int(cost is None), **counts)

    def __add__(self, other: Spend) -> Spend:
        # Sums of valid spends are valid: no validation (a cached run adds a dozen per service).
        return Spend.model_construct(
            requests=self.requests + other.requests,
            input_tokens=self.input_tokens + other.input_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced=self.unpriced + other.unpriced,
            batch_cost_usd=self.batch_cost_usd + other.batch_cost_usd,
            batch_live_usd=self.batch_live_usd + other.batch_live_usd,
        )

    @property
    def cost(self) -> Decimal | None:
        """What it cost, or None when any part is unpriced."""
        return None if self.unpriced else self.cost_usd

    @property
    def batch_saved_usd(self) -> Decimal:
        """What batch prices saved against live ones."""
        return self.batch_live_usd - self.batch_cost_usd

    @property
    def billed(self) -> bool:
        """Whether any request reached the provider (and was billed)."""
        return self.requests > 0


class ModelPrice(BaseModel):
    """What a model costs, in USD per million tokens: from the settings' ``prices:`` or a provider plug-in.

    Overrides genai-prices for that model (a self-hosted or new model, a negotiated rate).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    input: Decimal
    """Per million input tokens."""
    output: Decimal
    """Per million output tokens."""
    cached_input: Decimal | None = None
    """Per million input tokens served from the provider's prompt cache; unset: as ``input``."""
    batch_input: Decimal | None = None
    """Per million input tokens through the batch API; unset: as ``input``."""
    batch_output: Decimal | None = None
    """Per million output tokens through the batch API; unset: as ``output``."""
    per_request: Decimal = Decimal(0)
    """A fee for every request, whatever its tokens."""

    def of(self, input_tokens: int, output_tokens: int, cached_tokens: int = 0, *, batch: bool = False) -> Decimal:
        """The price of one request with these token counts (at batch rates with ``batch``)."""
        input_rate = (self.batch_input if batch else None) or self.input
        output_rate = (self.batch_output if batch else None) or self.output
        cached_rate = self.cached_input if self.cached_input is not None else input_rate
        fresh = input_tokens - cached_tokens
        tokens = fresh * input_rate + cached_tokens * cached_rate + output_tokens * output_rate
        return tokens / Decimal(1_000_000) + self.per_request
