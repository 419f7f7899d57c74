"""Fallback chains of models: the name a chain goes by, and which member answered a call."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models import Model
from pydantic_ai.models.fallback import FallbackModel

from service_ambitions.core.events import EventSink, FallbackUsed
from service_ambitions.core.models import Stage

__all__ = ["display_name", "tell_fallback"]


def tell_fallback(model: Model, stage: Stage, messages: Sequence[ModelMessage], emit: EventSink) -> None:
    """Say so when a fallback chain's answer came from a model after its first."""
    if not isinstance(model, FallbackModel) or not messages:
        return
    answer = messages[-1]
    first = model.models[0].model_name
    if isinstance(answer, ModelResponse) and answer.model_name and answer.model_name != first:
        emit(FallbackUsed(stage=stage, model=answer.model_name))


def display_name(model: Model) -> str:
    """The model as records and reports name it: ``provider:model``; a chain lists its models in order.

    The offline model reports its own name.
    """
    if isinstance(model, FallbackModel):
        return " | ".join(display_name(member) for member in model.models)
    return model.model_name if model.system == "function" else f"{model.system}:{model.model_name}"
