"""Model names to pydantic-ai models: ``offline`` or any ``provider:model`` pydantic-ai knows.

Resolution happens before any work starts, so a missing key or an unknown provider is one
clear line at the start of a run instead of a failure on the first call.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

import httpx2
from pydantic_ai.exceptions import UserError
from pydantic_ai.models import Model, infer_model
from pydantic_ai.providers import Provider, infer_provider, infer_provider_class

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.install import install_source
from service_ambitions.llm.names import is_offline
from service_ambitions.llm.offline import offline_model
from service_ambitions.llm.plugins import PluginModel, ProviderPlugin, installed_plugins, is_built_in

__all__ = ["resolve_model"]

_KEY_VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_OPTIONAL_GROUP = re.compile(r"`([\w-]+)` optional group")


def resolve_model(name: str, *, http_client: httpx2.AsyncClient | None = None, batch: bool = False) -> Model:
    """The model called ``name``.

    ``PREFIX:NAME`` goes to an installed provider plug-in with that prefix (``plugins.py``).
    ``openai:NAME`` uses the Chat Completions API, which OpenAI-compatible servers
    (vLLM, LiteLLM, LM Studio, llama.cpp…) speak; ``openai-responses:NAME`` selects the
    Responses API. Base URLs and keys come from the provider's usual environment
    variables (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``…).

    Args:
        name: ``offline`` or ``provider:model``.
        http_client: the client providers send requests through (with retries, see
            ``llm/transport.py``); None leaves each provider its default client.
        batch: for batch mode: ``openai:NAME`` then uses the Responses API, the one
            OpenAI's batch API takes (the model, and so the cache key, stays the same).

    Raises:
        ConfigError: the name is unknown, its provider package is missing, or its
            credentials are not set.
    """
    if is_offline(name):
        return offline_model()
    provider, separator, model_name = name.partition(":")
    if not separator or not provider or not model_name:
        raise ConfigError(
            f"model {name!r} is not a 'provider:model' name",
            hint="for example openai:gpt-4o-mini, anthropic:claude-haiku-4-5, or offline",
        )
    installed = installed_plugins()
    plugin = installed.get(provider)
    if plugin is not None:
        return _from_plugin(plugin, name, model_name)
    broken = next((broken for broken in installed.broken if broken.name == provider), None)
    if broken is not None and not is_built_in(provider):
        raise ConfigError(
            f"model {name!r} needs the {provider!r} plug-in, which is installed but cannot be used: {broken.reason}",
            hint=f"fix or reinstall the package behind {broken.value!r}; `service-ambitions models` lists plug-ins",
        )
    # Messages name the model as the user typed it, never the internal alias.
    api = "openai-responses" if batch else "openai-chat"
    internal = f"{api}:{model_name}" if provider == "openai" else name
    try:
        return infer_model(internal, provider_factory=_provider_factory(http_client))
    except (UserError, ValueError) as exc:  # ValueError: a provider pydantic-ai does not know
        raise _explain(name, str(exc)) from exc
    except ImportError as exc:
        group = _OPTIONAL_GROUP.search(str(exc))
        extra = group.group(1) if group else provider
        raise ConfigError(
            f"model {name!r} needs the {provider!r} provider package, which is not installed",
            hint=(
                f"in a checkout: uv sync --extra {extra}; for an installed tool: uv tool install --reinstall "
                f"--with 'pydantic-ai-slim[{extra}]' {install_source()} (or pipx inject)"
            ),
        ) from exc


def _from_plugin(plugin: ProviderPlugin, name: str, model_name: str) -> Model:
    """The plug-in's model, named and priced by it; its failure is one line naming the plug-in."""
    try:
        model = plugin.factory(model_name)
    except Exception as exc:  # a plug-in's failure is said in one line, never a traceback
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(
            f"the {plugin.prefix!r} plug-in cannot give model {name!r}: {reason}",
            hint="see `service-ambitions models` for the installed plug-ins, or try --model offline",
        ) from exc
    if not isinstance(model, Model):
        raise ConfigError(
            f"the {plugin.prefix!r} plug-in gave a {type(model).__name__} for {name!r}, not a pydantic-ai model",
            hint="the plug-in's factory must return a pydantic_ai.models.Model",
        )
    return PluginModel(model, plugin, model_name)


def _provider_factory(http_client: httpx2.AsyncClient | None) -> Callable[[str], Provider[Any]]:
    def make(provider: str) -> Provider[Any]:
        if http_client is None:
            return _without_sdk_retries(infer_provider(provider))
        provider_class = infer_provider_class(provider)
        try:
            return _without_sdk_retries(provider_class(http_client=http_client))  # type: ignore[call-arg]
        except TypeError:
            # A provider whose SDK takes no HTTP client keeps its own (and its own retries).
            return provider_class()

    return make


def _without_sdk_retries(provider: Provider[Any]) -> Provider[Any]:
    """The provider with its SDK client's own retries off: the HTTP transport retries (``transport.py``).

    Set on the client once rather than as ``max_retries`` in the model settings: with that,
    pydantic-ai copies the SDK client for every request (the SDKs take it per client only),
    and each copy looks up the platform again in a worker thread — about 0.6 ms a request.
    """
    client = getattr(provider, "client", None)
    if isinstance(getattr(client, "max_retries", None), int):
        client.max_retries = 0  # type: ignore[union-attr]
    return provider


def _explain(name: str, message: str) -> ConfigError:
    variable = _KEY_VARIABLE.search(message)
    if message.startswith("Set the") and variable:
        return ConfigError(
            f"{variable.group(1)} is not set, and model {name!r} needs it",
            hint=f"export {variable.group(1)}=..., or try --model offline",
        )
    suggestion = _did_you_mean(name)
    hint = f"did you mean {suggestion}? Or try --model offline" if suggestion else "or try --model offline"
    return ConfigError(f"cannot use model {name!r}: {message.splitlines()[0]}", hint=hint)


def _did_you_mean(name: str) -> str | None:
    """The known model name closest to ``name`` (pydantic-ai's curated list), if one is close."""
    from pydantic_ai.models import known_model_names

    known = [known.replace("openai-chat:", "openai:") for known in known_model_names()]
    provider, _, model_name = name.partition(":")
    providers = sorted({known_name.partition(":")[0] for known_name in known})
    if provider not in providers:
        close_provider = difflib.get_close_matches(provider, providers, n=1, cutoff=0.6)
        return f"{close_provider[0]}:{model_name}" if close_provider else None
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
    return close[0] if close else None
