"""Provider plug-ins: backends pydantic-ai does not know, added by installing a package.

A plug-in package declares an entry point in the ``service_ambitions.providers`` group
whose object is a :class:`ProviderPlugin` (or a function without arguments that returns
one)::

    [project.entry-points."service_ambitions.providers"]
    acme = "acme_gateway.plugin:PLUGIN"

Models named ``PREFIX:NAME`` then come from the plug-in's ``factory(NAME)``, a pydantic-ai
``Model``; they mix with built-in models in fallback chains (``acme:big,openai:gpt-4o-mini``).
A plug-in may price its models (:class:`ModelPrice`, per million tokens) so budgets,
``--dry-run`` and reports count them, and may hint at the limits its backend keeps
(:class:`PluginHints`). A plug-in that cannot be loaded, or that claims a built-in prefix,
is named in one line (``models``, ``validate``) and left out; the built-in providers work
whatever the plug-ins do.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import ModelRequestParameters
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from service_ambitions.core.spend import ModelPrice

if TYPE_CHECKING:
    from pydantic_ai.models import Model

__all__ = [
    "ENTRY_POINT_GROUP",
    "LIVE_COST",
    "BrokenPlugin",
    "InstalledPlugins",
    "PluginHints",
    "PluginModel",
    "PricedModel",
    "ProviderPlugin",
    "installed_plugins",
    "is_built_in",
    "plugin_hints",
    "with_price",
]

ENTRY_POINT_GROUP = "service_ambitions.providers"
LIVE_COST = "service_ambitions_live_cost"
"""Where a priced batch response keeps what it would have cost live (``provider_details``)."""
_PREFIX = re.compile(r"^[a-z][a-z0-9_-]*$")
_RESERVED = frozenset({"offline", "openai-chat", "openai-responses"})


@dataclass(frozen=True)
class PluginHints:
    """Limits the plug-in's backend keeps; a run uses them where its settings set none."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_in_flight: int | None = None


@dataclass(frozen=True)
class ProviderPlugin:
    """A backend for models named ``prefix:NAME``."""

    prefix: str
    """The part of a model name before the colon, e.g. ``acme`` for ``acme:big``."""
    factory: Callable[[str], Model]
    """The pydantic-ai model for ``NAME`` (the part after the colon). Raise ValueError for a name it does not serve."""
    description: str = ""
    price: Callable[[str], ModelPrice | None] | None = None
    """The price of model ``NAME``; None (or no function): unpriced, as genai-prices would leave it."""
    hints: PluginHints = field(default_factory=PluginHints)


@dataclass(frozen=True)
class BrokenPlugin:
    """An entry point that did not give a usable plug-in, and why, in one line."""

    name: str
    value: str
    reason: str


@dataclass(frozen=True)
class InstalledPlugins:
    """The plug-ins found in this environment, by prefix, and those left out."""

    plugins: dict[str, tuple[ProviderPlugin, str]]
    """Prefix → the plug-in and the distribution that installed it."""
    broken: list[BrokenPlugin]

    def get(self, prefix: str) -> ProviderPlugin | None:
        """The plug-in for ``prefix``, if one is installed and usable."""
        found = self.plugins.get(prefix)
        return found[0] if found else None


class PricedModel(WrapperModel):
    """A model priced by a price of its own (the settings' ``prices:``, or its plug-in's), not by genai-prices."""

    def __init__(self, wrapped: Model, price: ModelPrice | None) -> None:
        super().__init__(wrapped)
        self._price = price

    @property
    def price(self) -> ModelPrice | None:
        """The price of this model, if it has one of its own."""
        return self._price

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """The wrapped model's response, with its cost at this model's price (where it has one)."""
        response = await self.wrapped.request(messages, model_settings, model_request_parameters)
        if self._price is not None and response.state != "suspended":
            usage = response.usage
            batch = bool(response.provider_details and response.provider_details.get("processing") == "batch")
            tokens = (usage.input_tokens, usage.output_tokens, usage.cache_read_tokens)
            response.usage.cost = self._price.of(*tokens, batch=batch)
            if batch:  # what the same request costs live, for the saving reports show
                live = str(self._price.of(*tokens))
                response.provider_details = {**(response.provider_details or {}), LIVE_COST: live}
        return response


class PluginModel(PricedModel):
    """A plug-in's model: named ``prefix:NAME`` in records and reports, priced by its plug-in (or the settings)."""

    def __init__(self, wrapped: Model, plugin: ProviderPlugin, name: str, price: ModelPrice | None = None) -> None:
        super().__init__(wrapped, price or (plugin.price(name) if plugin.price is not None else None))
        self.plugin = plugin
        self._name = name

    @property
    def system(self) -> str:
        """The plug-in's prefix: what reports and the cache key name the provider by."""
        return self.plugin.prefix

    @property
    def model_name(self) -> str:
        """The name after the prefix, as the user gave it."""
        return self._name


def with_price(model: Model, price: ModelPrice | None) -> Model:
    """``model`` priced at ``price`` (the settings' ``prices:`` entry for it), or as it was without one."""
    if price is None:
        return model
    if isinstance(model, PluginModel):
        return PluginModel(model.wrapped, model.plugin, model.model_name, price)
    if isinstance(model, PricedModel):
        return PricedModel(model.wrapped, price)
    return PricedModel(model, price)


def plugin_hints(models: Iterable[Model]) -> PluginHints:
    """The tightest of the hints of the plug-ins among ``models`` (fallback chains looked into)."""
    from pydantic_ai.models.fallback import FallbackModel

    hints: list[PluginHints] = []
    for model in models:
        members = model.models if isinstance(model, FallbackModel) else [model]
        hints += [member.plugin.hints for member in members if isinstance(member, PluginModel)]

    def tightest(values: Iterable[int | None]) -> int | None:
        return min((value for value in values if value), default=None)

    return PluginHints(
        requests_per_minute=tightest(hint.requests_per_minute for hint in hints),
        tokens_per_minute=tightest(hint.tokens_per_minute for hint in hints),
        max_in_flight=tightest(hint.max_in_flight for hint in hints),
    )


def installed_plugins() -> InstalledPlugins:
    """Every plug-in installed in this environment (read once per process)."""
    return _scan(tuple(entry_points(group=ENTRY_POINT_GROUP)))


@functools.cache
def _scan(found: Iterable[EntryPoint]) -> InstalledPlugins:
    plugins: dict[str, tuple[ProviderPlugin, str]] = {}
    broken: list[BrokenPlugin] = []
    for point in found:
        try:
            plugin = _load(point)
        except Exception as exc:  # a plug-in's failure is named, never raised
            broken.append(BrokenPlugin(point.name, point.value, f"{type(exc).__name__}: {str(exc).splitlines()[0]}"))
            continue
        problem = _problem(plugin, plugins)
        if problem is not None:
            broken.append(BrokenPlugin(point.name, point.value, problem))
            continue
        package = point.dist.name if point.dist is not None else "?"
        plugins[plugin.prefix] = (plugin, package)
    return InstalledPlugins(plugins, broken)


def _load(point: EntryPoint) -> ProviderPlugin:
    loaded = point.load()
    plugin = loaded() if callable(loaded) and not isinstance(loaded, ProviderPlugin) else loaded
    if not isinstance(plugin, ProviderPlugin):
        raise TypeError(f"it gives a {type(plugin).__name__}, not a ProviderPlugin")
    return plugin


def _problem(plugin: ProviderPlugin, taken: dict[str, tuple[ProviderPlugin, str]]) -> str | None:
    """Why a loaded plug-in cannot be used, if it cannot."""
    if not _PREFIX.match(plugin.prefix):
        return f"its prefix {plugin.prefix!r} is not a lower-case name (letters, digits, '-', '_')"
    if plugin.prefix in _RESERVED or is_built_in(plugin.prefix):
        return f"its prefix {plugin.prefix!r} is a built-in provider's"
    if plugin.prefix in taken:
        return f"its prefix {plugin.prefix!r} is taken by the plug-in of {taken[plugin.prefix][1]}"
    return None


def is_built_in(prefix: str) -> bool:
    """Whether pydantic-ai has a provider of this name."""
    from pydantic_ai.providers import infer_provider_class

    try:
        infer_provider_class(prefix)
    except ValueError:
        return False
    except ImportError:
        return True  # known, its package is just not installed
    return True
