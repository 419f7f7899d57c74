"""What goes into the gateway and what comes out: one call's request and its answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend

if TYPE_CHECKING:  # not imported at run time: a run answered from snapshots never loads pydantic-ai
    from pydantic_ai.messages import ModelMessage

__all__ = ["LLMAnswer", "LLMRequest", "Subject"]

OutputT = TypeVar("OutputT")


@dataclass(frozen=True)
class Subject:
    """What a call is about, for the layers that answer it from elsewhere than a model.

    Not part of the answer's identity (the prompt says all of it): an answer source such as
    the older tool's imported answers finds its answer by it.
    """

    service_id: str
    plateau: int | None = None
    """The plateau level of a features or mapping call."""
    catalogue: str | None = None
    """The catalogue field of a mapping call."""
    features: tuple[str, ...] = ()
    """The feature ids a mapping call maps, in order."""


@dataclass(frozen=True)
class LLMRequest(Generic[OutputT]):
    """Everything that determines one answer."""

    stage: Stage
    instructions: str
    prompt: str
    output_type: type[OutputT]
    history: Sequence[ModelMessage] = ()
    subject: Subject | None = field(default=None, compare=False)


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
    key: str | None = None
    """The cache entry the answer is stored under (or was read from); None when it is in none."""
    batched: bool = False
    """True when the answer came through a provider's batch API (the spend is then at batch prices)."""
