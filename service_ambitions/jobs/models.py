"""``models``: the models a run can name — the offline one, pydantic-ai's providers, installed plug-ins."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from service_ambitions.config.settings import Settings

__all__ = ["BrokenPluginRow", "ModelsReport", "PluginRow", "PriceRow", "models_report", "price_rows"]


class PluginRow(BaseModel):
    """One usable provider plug-in."""

    model_config = ConfigDict(extra="forbid")

    prefix: str
    package: str
    description: str
    priced: bool
    """Whether it prices its models (budgets, ``--dry-run`` and reports then count them)."""
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_in_flight: int | None = None


class BrokenPluginRow(BaseModel):
    """An installed plug-in left out, and why."""

    model_config = ConfigDict(extra="forbid")

    name: str
    entry_point: str
    reason: str


class ModelsReport(BaseModel):
    """What ``models --json`` prints."""

    model_config = ConfigDict(extra="forbid")

    built_in: list[str]
    """Ways to name a model without a plug-in."""
    plugins: list[PluginRow]
    broken: list[BrokenPluginRow]


def models_report() -> ModelsReport:
    """The offline model, pydantic-ai's ``provider:model`` names, and every installed plug-in."""
    from service_ambitions.llm.plugins import installed_plugins

    installed = installed_plugins()
    plugins = [
        PluginRow(
            prefix=prefix,
            package=package,
            description=plugin.description,
            priced=plugin.price is not None,
            requests_per_minute=plugin.hints.requests_per_minute,
            tokens_per_minute=plugin.hints.tokens_per_minute,
            max_in_flight=plugin.hints.max_in_flight,
        )
        for prefix, (plugin, package) in sorted(installed.plugins.items())
    ]
    broken = [BrokenPluginRow(name=b.name, entry_point=b.value, reason=b.reason) for b in installed.broken]
    built_in = [
        "offline (synthetic answers: no key, no network)",
        "provider:model for any provider pydantic-ai knows, e.g. openai:gpt-4o-mini, anthropic:claude-haiku-4-5",
        "a fallback chain: first,second (each may be any of these, plug-ins included)",
    ]
    return ModelsReport(built_in=built_in, plugins=plugins, broken=broken)


class PriceRow(BaseModel):
    """What one model is charged, per million tokens, and where the figures come from."""

    model_config = ConfigDict(extra="forbid")

    model: str
    source: str
    known: bool
    input: Decimal | None = None
    cached_input: Decimal | None = None
    output: Decimal | None = None
    batch_input: Decimal | None = None
    batch_output: Decimal | None = None
    per_request: Decimal | None = None


def price_rows(settings: Settings, model: str | None = None) -> list[PriceRow]:
    """The prices of ``model``, or of every model the settings name (fallbacks included)."""
    from service_ambitions.core.models import RUN_STAGES
    from service_ambitions.llm.prices import quote

    names = [model] if model else sorted({name for stage in RUN_STAGES for name in settings.model_chain(stage)})
    rows = []
    for name in names:
        found = quote(name, settings.prices)
        price = found.price
        figures = price.model_dump() if price is not None else {}
        rows.append(PriceRow(model=name, source=found.source, known=price is not None, **figures))
    return rows
