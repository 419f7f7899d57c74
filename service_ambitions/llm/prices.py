"""What a model will be charged, and where the figure comes from: the settings, a plug-in, or genai-prices.

For ``models prices``: the same sources a run prices its calls with, read by name without
resolving the model (no key needed), per million tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version

from genai_prices import Usage, calc_price

from service_ambitions.core.spend import ModelPrice
from service_ambitions.llm.names import is_offline
from service_ambitions.llm.plugins import installed_plugins

__all__ = ["PriceQuote", "quote"]

_MILLION = 1_000_000


@dataclass(frozen=True)
class PriceQuote:
    """A model's price per million tokens and its source; ``price`` None when none is known."""

    model: str
    source: str
    price: ModelPrice | None


def quote(name: str, prices: Mapping[str, ModelPrice]) -> PriceQuote:
    """What ``name`` is charged at, first source first: the settings, the offline model, a plug-in, genai-prices."""
    if name in prices:
        return PriceQuote(name, "settings (prices:)", prices[name])
    if is_offline(name):
        return PriceQuote(name, "the offline model (free)", ModelPrice(input=Decimal(0), output=Decimal(0)))
    provider, _, model_name = name.partition(":")
    found = installed_plugins().plugins.get(provider)
    if found is not None:
        plugin, package = found
        price = plugin.price(model_name) if plugin.price is not None else None
        return PriceQuote(name, f"plug-in {provider} ({package})", price)
    return PriceQuote(name, f"genai-prices {version('genai-prices')} (bundled)", _genai_price(provider, model_name))


def _genai_price(provider: str, model_name: str) -> ModelPrice | None:
    """genai-prices' price for the model, per million tokens; None when it does not know it."""
    provider_id = "openai" if provider.startswith("openai") else provider

    def per_million(usage: Usage, *, batch: bool = False) -> Decimal:
        context = {"processing": "batch"} if batch else None
        calculated = calc_price(usage, model_ref=model_name, provider_id=provider_id, price_context=context)
        return calculated.total_price

    try:
        input_price = per_million(Usage(input_tokens=_MILLION))
        output_price = per_million(Usage(output_tokens=_MILLION))
        cached = per_million(Usage(input_tokens=_MILLION, cache_read_tokens=_MILLION))
        batch_input = per_million(Usage(input_tokens=_MILLION), batch=True)
        batch_output = per_million(Usage(output_tokens=_MILLION), batch=True)
    except LookupError:
        return None
    return ModelPrice(
        input=input_price,
        output=output_price,
        cached_input=cached,
        batch_input=batch_input,
        batch_output=batch_output,
    )
