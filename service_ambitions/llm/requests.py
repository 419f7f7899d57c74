"""What goes into the gateway and what comes out: one call's request and its answer."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend

if TYPE_CHECKING:  # not imported at run time: a run answered from record entries never loads pydantic-ai
    from pydantic_ai.messages import ModelMessage

__all__ = ["ImportedLookup", "LLMAnswer", "LLMRequest"]

OutputT = TypeVar("OutputT")


@dataclass(frozen=True)
class ImportedLookup:
    """Where an answer imported by ``migrate cache`` for this call would be, and how to read it."""

    key: str
    """``stage/service_id[/plateau[/catalogue]]``, as ``ResultCache.imported`` files it."""
    convert: Callable[[Any, bool], Any]
    """The imported payload as this call's output data; ValueError when it does not fit. The
    flag says whether the answer named by :attr:`after` was itself imported in this run."""
    after: str | None = None
    """The key of the imported answer this one builds on (a mapping's features): an older
    tool's ids can be matched by position only to features that were that tool's too."""


@dataclass(frozen=True)
class LLMRequest(Generic[OutputT]):
    """Everything that determines one answer."""

    stage: Stage
    instructions: str
    prompt: str
    output_type: type[OutputT]
    history: Sequence[ModelMessage] = ()
    imported: ImportedLookup | None = field(default=None, compare=False)
    """Not part of the answer's identity: only used with ``reuse_imported``."""


@dataclass(frozen=True)
class LLMAnswer(Generic[OutputT]):
    """A validated answer and what it cost."""

    output: OutputT
    model: str
    spend: Spend
    """Requests, tokens and USD (genai-prices) of the call; for a cache hit, what the original call used."""
    messages: Sequence[ModelMessage] = field(repr=False)
    """The new messages of this call (request and responses, including failed attempts); empty when cached."""
    cached: bool = False
    """True when the answer came from the cache (not spent again)."""
    imported: bool = False
    """True when the answer was imported by ``migrate cache`` (``cached`` is then true too)."""
    key: str | None = None
    """The cache entry the answer is stored under (or was read from); None when it is in none."""
    batched: bool = False
    """True when the answer came through a provider's batch API (the spend is then at batch prices)."""
