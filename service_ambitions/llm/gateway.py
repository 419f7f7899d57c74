"""The gateway: the one place every LLM call passes through.

A call goes in as an :class:`LLMRequest` (stage, instructions, prompt, message history,
output type) and comes back as an :class:`LLMAnswer` (validated output, usage, transcript).
The gateway holds the run-wide cap on calls in flight and translates pydantic-ai's
exceptions into ours, so nothing above it knows which library or provider answered.
Caching, budgets and the usage ledger hook in here too, and nowhere else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import pydantic_ai
from pydantic import ValidationError
from pydantic_ai import Agent, ConcurrencyLimiter, ModelSettings
from pydantic_ai.exceptions import (
    AgentRunError,
    ModelAPIError,
    ModelAuthenticationError,
    ModelHTTPError,
    ModelNotFoundError,
    ModelQuotaExceededError,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import ModelMessage
from pydantic_ai.models import Model
from pydantic_ai.models.concurrency import ConcurrencyLimitedModel
from pydantic_ai.usage import RunUsage

from ..errors import OutputInvalid, ProviderError, ProviderRefused
from ..models import Stage

__all__ = ["Gateway", "LLMAnswer", "LLMRequest"]

OutputT = TypeVar("OutputT")


@dataclass(frozen=True)
class LLMRequest(Generic[OutputT]):
    """Everything that determines one answer."""

    stage: Stage
    instructions: str
    prompt: str
    output_type: type[OutputT]
    history: Sequence[ModelMessage] = ()


@dataclass(frozen=True)
class LLMAnswer(Generic[OutputT]):
    """A validated answer and what it cost."""

    output: OutputT
    model: str
    usage: RunUsage
    messages: Sequence[ModelMessage] = field(repr=False)
    """The new messages of this call (request and responses, including failed attempts)."""


class Gateway:
    """Runs LLM calls for every stage, with at most ``max_in_flight`` model requests at a time.

    Create it inside the running event loop that will use it.
    """

    def __init__(
        self,
        models: Mapping[Stage, Model],
        *,
        max_in_flight: int,
        model_settings: ModelSettings | None = None,
        output_retries: int = 2,
    ) -> None:
        # Our progress display owns the terminal; pydantic-ai's first-run banner would
        # land in the middle of it (it shows for editable installs, as in a checkout).
        pydantic_ai.BANNER_ENABLED = False
        # pydantic-ai's limiter wraps the model, so the cap counts requests to the provider
        # (output retries included) and not the agent's own work before and after them.
        limiter = ConcurrencyLimiter(max_running=max_in_flight, name="llm-calls")
        self._models = {stage: ConcurrencyLimitedModel(model, limiter) for stage, model in models.items()}
        self._model_settings = model_settings
        self._output_retries = output_retries
        self._agents: dict[tuple[Stage, type[Any]], Agent[None, Any]] = {}
        self._names = {stage: _display_name(model) for stage, model in models.items()}

    def model_name(self, stage: Stage) -> str:
        """The model that answers ``stage``, as records and reports show it."""
        return self._names[stage]

    async def ask(self, request: LLMRequest[OutputT]) -> LLMAnswer[OutputT]:
        """Get a validated answer to ``request``.

        Raises:
            OutputInvalid: the model's answer still failed validation after the output retries.
            ProviderRefused: the provider rejected the key or the model, or the quota is spent.
            ProviderError: the provider refused or failed the request.
        """
        agent = self._agent(request.stage, request.output_type)
        model = self._names[request.stage]
        try:
            result = await agent.run(
                request.prompt,
                instructions=request.instructions,
                message_history=list(request.history) or None,
                infer_name=False,
            )
        except UnexpectedModelBehavior as exc:
            reason = _validation_reason(exc)
            raise OutputInvalid(
                f"the model's answer did not match the schema: {reason}",
                stage=request.stage,
                model=model,
            ) from exc
        except (ModelAuthenticationError, ModelNotFoundError, ModelQuotaExceededError) as exc:
            status = exc.status_code if isinstance(exc, ModelHTTPError) else None
            raise ProviderRefused(
                _provider_message(exc, status),
                status_code=status,
                stage=request.stage,
                model=model,
                hint="check the API key, the model name and the account's quota",
            ) from exc
        except ModelAPIError as exc:
            status = exc.status_code if isinstance(exc, ModelHTTPError) else None
            raise ProviderError(
                _provider_message(exc, status), status_code=status, stage=request.stage, model=model
            ) from exc
        except AgentRunError as exc:
            raise ProviderError(str(exc), stage=request.stage, model=model) from exc
        return LLMAnswer(result.output, model, result.usage, result.new_messages())

    def _agent(self, stage: Stage, output_type: type[OutputT]) -> Agent[None, OutputT]:
        # One agent per stage and output type: building the output schema costs more
        # than the rest of a call, so it is done once, not per run.
        key = (stage, output_type)
        if key not in self._agents:
            self._agents[key] = Agent(
                self._models[stage],
                output_type=output_type,
                retries={"output": self._output_retries},
                model_settings=self._model_settings,
            )
        agent: Agent[None, OutputT] = self._agents[key]
        return agent


def _display_name(model: Model) -> str:
    # FunctionModel-based offline model reports its own name; providers get "provider:model".
    return model.model_name if model.system == "function" else f"{model.system}:{model.model_name}"


def _provider_message(exc: ModelAPIError, status: int | None) -> str:
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"provider answered HTTP {status}: {first_line}" if status else f"provider failed: {first_line}"


def _validation_reason(exc: UnexpectedModelBehavior) -> str:
    """The first validation problem, as 'where: what', or pydantic-ai's own message."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        first = cause.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        more = f" (and {cause.error_count() - 1} more)" if cause.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return str(exc).splitlines()[0]
