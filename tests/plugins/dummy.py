"""A provider plug-in as a package would ship it: models ``dummy:NAME`` answered by the offline model.

Priced at $1 per million input tokens and $2 per million output tokens, with a limit hint,
so a whole pipeline through it shows the plug-in's prices and hints at work.
"""

from __future__ import annotations

from decimal import Decimal

from pydantic_ai.models import Model
from pydantic_ai.models.function import FunctionModel

from service_ambitions.core.spend import ModelPrice
from service_ambitions.llm.offline import offline_answer
from service_ambitions.llm.plugins import PluginHints, ProviderPlugin


def _model(name: str) -> Model:
    if name == "refuses":
        raise ValueError("no such model at this gateway")
    return FunctionModel(lambda messages, info: offline_answer(messages, info), model_name=name)


def _price(name: str) -> ModelPrice | None:
    return None if name == "free" else ModelPrice(input=Decimal(1), output=Decimal(2))


PLUGIN = ProviderPlugin(
    prefix="dummy",
    factory=_model,
    description="the tests' in-house gateway",
    price=_price,
    hints=PluginHints(requests_per_minute=6000, max_in_flight=3),
)


def make_plugin() -> ProviderPlugin:
    """An entry point may name a function that returns the plug-in."""
    return ProviderPlugin(prefix="dummy-two", factory=_model)


def broken() -> ProviderPlugin:
    raise RuntimeError("cannot reach the licence server")


CLAIMS_OPENAI = ProviderPlugin(prefix="openai", factory=_model)
NOT_A_PLUGIN = object()
