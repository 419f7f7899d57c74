"""What a call's cache key is made of, and the output types it names.

Two calls with the same key get the same answer, however it was obtained (live, from a
batch, offline): the key covers the stage, model, endpoint, the settings that change the
answer, the output schema, the instructions, the prompt and the message history — and
nothing that only changes how a request travels or when it was made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import ModelSettings
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter

from service_ambitions.cache.format import cache_key, canonical_json, key_scope
from service_ambitions.core.models import Stage
from service_ambitions.llm.requests import LLMRequest
from service_ambitions.llm.structured import OutputTool

__all__ = ["CallKeys", "OutputType", "OutputTypes", "key_history", "key_settings"]

# Settings that change how a request travels, not what the model answers: not part of the key.
# Settings that change how a request travels or is billed, never the answer: not part of the
# key (prompt caching serves the same prefix cheaper; it cannot change what comes back).
_TRANSPORT_SETTINGS = frozenset(
    {"timeout", "request_timeout", "first_event_timeout", "max_retries", "extra_headers", "cache"}
)
# Message fields that differ between two identical conversations: not part of the key.
_VOLATILE_FIELDS = frozenset(
    {"timestamp", "run_id", "conversation_id", "provider_response_id", "provider_details", "tool_call_id"}
)


@dataclass(frozen=True)
class OutputType:
    """One output type's adapter, output tool, schema and schema hash, built once per run."""

    adapter: TypeAdapter[Any]
    tool: OutputTool
    schema: dict[str, Any]
    sha256: str
    schema_chars: int
    """Length of the schema as JSON: it travels with every request, so estimates count it."""
    scopes: dict[Stage, str] = field(default_factory=dict)
    """Per stage, the part of the cache key shared by all calls (see ``key_scope``)."""

    @classmethod
    def of(cls, output_type: type[Any]) -> OutputType:
        """Build it for ``output_type`` (costs milliseconds: keep it)."""
        adapter: TypeAdapter[Any] = TypeAdapter(output_type)
        schema = adapter.json_schema()
        encoded = canonical_json(schema)
        tool = OutputTool.of(adapter, schema, None)
        return cls(adapter, tool, schema, hashlib.sha256(encoded).hexdigest(), len(encoded))


class OutputTypes:
    """Every output type's :class:`OutputType`, built at first use and kept for the run (a handful of types)."""

    def __init__(self) -> None:
        self._built: dict[type[Any], OutputType] = {}

    def of(self, output_type: type[Any]) -> OutputType:
        """The adapter, tool, schema and hash of ``output_type``."""
        built = self._built.get(output_type)
        if built is None:
            built = self._built[output_type] = OutputType.of(output_type)
        return built


class CallKeys:
    """The cache key of each call: its stage's scope (model, endpoint, settings, schema) and its own messages."""

    def __init__(
        self,
        names: Mapping[Stage, str],
        endpoints: Mapping[Stage, str | None],
        model_settings: ModelSettings | None,
        outputs: OutputTypes,
    ) -> None:
        self._names = names
        self._endpoints = endpoints
        self._settings = key_settings(model_settings)
        self._outputs = outputs

    def __call__(self, request: LLMRequest[Any]) -> str:
        """The key ``request``'s answer is stored under."""
        output = self._outputs.of(request.output_type)
        scope = output.scopes.get(request.stage)
        if scope is None:
            scope = output.scopes[request.stage] = key_scope(
                stage=request.stage,
                model=self._names[request.stage],
                endpoint=self._endpoints[request.stage],
                settings=self._settings,
                output_schema=output.schema,
            )
        return cache_key(
            scope=scope, instructions=request.instructions, prompt=request.prompt, history=key_history(request.history)
        )


def key_settings(model_settings: ModelSettings | None) -> dict[str, Any]:
    """The model settings that can change an answer."""
    return {k: v for k, v in (model_settings or {}).items() if k not in _TRANSPORT_SETTINGS}


def key_history(history: Sequence[ModelMessage]) -> Any:
    """The message history as the key sees it: without ids and timestamps that differ between equal ones."""
    if not history:
        return ()
    return _without_volatile(ModelMessagesTypeAdapter.dump_python(list(history), mode="json"))


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in _VOLATILE_FIELDS}
    if isinstance(value, list):
        return [_without_volatile(item) for item in value]
    return value
