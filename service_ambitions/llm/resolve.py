"""Model names to pydantic-ai models: ``offline`` or any ``provider:model`` pydantic-ai knows.

Resolution happens before any work starts, so a missing key or an unknown provider is one
clear line at the start of a run instead of a failure on the first call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx2
from pydantic_ai.exceptions import UserError
from pydantic_ai.models import Model, infer_model
from pydantic_ai.providers import Provider, infer_provider, infer_provider_class

from ..errors import ConfigError
from .offline import OFFLINE_MODEL_NAME, offline_model

__all__ = ["is_offline", "resolve_model"]

_KEY_VARIABLE = re.compile(r"`([A-Z][A-Z0-9_]+)`")
_OPTIONAL_GROUP = re.compile(r"`([\w-]+)` optional group")


def is_offline(name: str) -> bool:
    """True for the built-in synthetic model."""
    return name == OFFLINE_MODEL_NAME


def resolve_model(name: str, *, http_client: httpx2.AsyncClient | None = None) -> Model:
    """The model called ``name``.

    ``openai:NAME`` uses the Chat Completions API, which OpenAI-compatible servers
    (vLLM, LiteLLM, LM Studio, llama.cpp…) speak; ``openai-responses:NAME`` selects the
    Responses API. Base URLs and keys come from the provider's usual environment
    variables (``OPENAI_BASE_URL``, ``OPENAI_API_KEY``, ``ANTHROPIC_API_KEY``…).

    Args:
        name: ``offline`` or ``provider:model``.
        http_client: the client providers send requests through (with retries, see
            ``llm/transport.py``); None leaves each provider its default client.

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
    if provider == "openai":
        name = f"openai-chat:{model_name}"
    try:
        return infer_model(name, provider_factory=_provider_factory(http_client))
    except (UserError, ValueError) as exc:  # ValueError: a provider pydantic-ai does not know
        raise _explain(name, str(exc)) from exc
    except ImportError as exc:
        group = _OPTIONAL_GROUP.search(str(exc))
        extra = group.group(1) if group else provider
        raise ConfigError(
            f"model {name!r} needs the {provider!r} provider package, which is not installed",
            hint=f"install it with: uv pip install 'pydantic-ai-slim[{extra}]'",
        ) from exc


def _provider_factory(http_client: httpx2.AsyncClient | None) -> Callable[[str], Provider[Any]]:
    def make(provider: str) -> Provider[Any]:
        if http_client is None:
            return infer_provider(provider)
        provider_class = infer_provider_class(provider)
        try:
            return provider_class(http_client=http_client)  # type: ignore[call-arg]
        except TypeError:
            # A provider whose SDK takes no HTTP client keeps its own (and its own retries).
            return provider_class()

    return make


def _explain(name: str, message: str) -> ConfigError:
    variable = _KEY_VARIABLE.search(message)
    if message.startswith("Set the") and variable:
        return ConfigError(
            f"{variable.group(1)} is not set, and model {name!r} needs it",
            hint=f"export {variable.group(1)}=..., or try --model offline",
        )
    return ConfigError(f"cannot use model {name!r}: {message.splitlines()[0]}", hint="or try --model offline")
