"""One structured answer from a model: request, validate, retry — without an agent run.

Every call of this tool is single-shot: one prompt, one output tool, no function tools. A
pydantic-ai agent run builds a graph, a run context and capabilities for each call, which
cost about 3 ms of CPU per call here; the model request itself (``pydantic_ai.direct``,
instrumented like an agent's) and validating the output tool's arguments with the output
type's own adapter cost a tenth of that. What the agent did for us is kept, as it does it:

- the output goes through one output tool (``final_result``), validated with the type's
  adapter; an answer that fails validation is sent back as that tool call's retried
  result with the validation errors, up to ``retries`` times, and a response without the
  tool call is asked again likewise;
- an answer cut off by the token limit is not retried (it would be cut off again);
- usage is added up per response, and the call's token limits are checked after each.

A request sent through a provider's batch API (``llm/batching.py``) first comes back as a
*suspended* response that names its batch; ``on_suspended`` then decides how long to wait
(or to park the call for another process), and the same conversation, ending in that
response, is sent again to check the batch. A suspended response stands in the transcript
only until its answer replaces it, and counts no request. ``resume`` continues a call
that another process left waiting on a batch, from its saved messages.

The errors raised are pydantic-ai's own (``UnexpectedModelBehavior`` with the last
``ValidationError`` as its cause, ``IncompleteToolCall``, ``UsageLimitExceeded``, the
model's ``ModelAPIError``), so the gateway translates them as before.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter, ValidationError
from pydantic_ai import UsageLimits
from pydantic_ai.direct import model_request
from pydantic_ai.exceptions import IncompleteToolCall, OutputTokenLimitExceeded, UnexpectedModelBehavior
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelRequestPart,
    ModelResponse,
    RetryFeedbackPart,
    RetryInfo,
    ToolCallPart,
    ToolReturnPart,
    UserPromptPart,
)
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.settings import ModelSettings
from pydantic_ai.tools import ToolDefinition
from pydantic_ai.usage import RunUsage

__all__ = ["Exchange", "OutputTool", "Resumed", "SuspendedHook", "ask_structured", "first_request", "is_suspended"]

_TOOL_NAME = "final_result"
_TOOL_DESCRIPTION = "The final response which ends this conversation"
_USE_THE_TOOL = f"Please include your response in a call to the {_TOOL_NAME} tool."


@dataclass(frozen=True)
class OutputTool:
    """The output tool of one output type, and the request parameters that offer it."""

    adapter: TypeAdapter[Any]
    parameters: ModelRequestParameters

    @classmethod
    def of(cls, adapter: TypeAdapter[Any], schema: dict[str, Any], description: str | None) -> OutputTool:
        """The tool for an output type whose adapter and JSON Schema are given."""
        definition = ToolDefinition(
            name=_TOOL_NAME,
            parameters_json_schema=schema,
            description=description or _TOOL_DESCRIPTION,
            kind="output",
            # Strict schemas where the provider has them (OpenAI's structured outputs): the
            # answer is then held to the schema while it is written, not only checked after.
            strict=True,
        )
        parameters = ModelRequestParameters(output_mode="tool", output_tools=[definition], allow_text_output=False)
        return cls(adapter, parameters)


@dataclass
class Exchange:
    """What one call sent and received so far: kept by the caller, so a failed call still tells what it spent."""

    messages: list[ModelMessage] = field(default_factory=list)
    usage: RunUsage = field(default_factory=RunUsage)
    failures: int = 0
    """Answers that failed validation so far (each was sent back for another try)."""


@dataclass(frozen=True)
class Resumed:
    """A call another process left waiting on a batch: its messages, the last one the suspended response."""

    messages: list[ModelMessage]
    failures: int = 0


SuspendedHook = Callable[[Exchange, ModelResponse], Awaitable[None]]
"""Told of each suspended response (the exchange already ends in it); returns when it is time to check again."""


def is_suspended(message: ModelMessage | None) -> bool:
    """Whether ``message`` is a response still waiting for its answer (from a batch)."""
    return isinstance(message, ModelResponse) and message.state == "suspended"


async def ask_structured(
    model: Model,
    tool: OutputTool,
    *,
    instructions: str,
    prompt: str,
    history: Sequence[ModelMessage] = (),
    settings: ModelSettings | None = None,
    retries: int = 2,
    limits: UsageLimits | None = None,
    exchange: Exchange,
    on_suspended: SuspendedHook | None = None,
    resume: Resumed | None = None,
) -> Any:
    """The model's validated output for ``prompt``; every message and its usage land in ``exchange``.

    Raises:
        UnexpectedModelBehavior: the answers kept failing validation (the last
            ``ValidationError`` is the cause); ``IncompleteToolCall`` or
            ``OutputTokenLimitExceeded`` when an answer was cut off by the token limit.
        UsageLimitExceeded: a response took the call past its token limits.
        ModelAPIError: the provider failed the request (after the transport's retries).
    """
    conversation: list[ModelMessage] = [*history]
    parts: list[ModelRequestPart] | None = [UserPromptPart(prompt)]
    if resume is not None:
        _resumed(resume, conversation, exchange)
        parts = None  # the request is in the batch already: check it, do not send it again
    while True:
        if parts is not None:
            request = ModelRequest(parts=parts, instructions=instructions)
            conversation.append(request)
            exchange.messages.append(request)
        response = await _answered(model, conversation, exchange, settings, tool, on_suspended)
        exchange.usage.requests += 1
        exchange.usage.incr(response.usage)
        if limits is not None:
            limits.check_tokens(exchange.usage)
        call = next((part for part in response.parts if isinstance(part, ToolCallPart)), None)
        try:
            return _output(tool, response, call)
        except (ValidationError, _NoOutput) as exc:
            parts = [_feedback(call, exc)]
            exchange.failures += 1
            if exchange.failures > retries:
                raise UnexpectedModelBehavior(f"Exceeded maximum output retries ({retries})") from exc


def _resumed(resume: Resumed, conversation: list[ModelMessage], exchange: Exchange) -> None:
    """Pick up a call another process left waiting: its messages, failures and the answers it already got."""
    conversation += resume.messages
    exchange.messages += resume.messages
    exchange.failures = resume.failures
    for answered in resume.messages:
        # Answers the earlier process got but never reported (its call was still waiting).
        if isinstance(answered, ModelResponse) and not is_suspended(answered):
            exchange.usage.requests += 1
            exchange.usage.incr(answered.usage)


def _feedback(call: ToolCallPart | None, exc: ValidationError | _NoOutput) -> ModelRequestPart:
    """What goes back to the model for another try: the validation errors, or a reminder to use the tool."""
    if isinstance(exc, ValidationError):
        return _retried(call, exc)
    return RetryFeedbackPart(content=_USE_THE_TOOL, retry=RetryInfo(cause="model_retry"))


async def _answered(
    model: Model,
    conversation: list[ModelMessage],
    exchange: Exchange,
    settings: ModelSettings | None,
    tool: OutputTool,
    on_suspended: SuspendedHook | None,
) -> ModelResponse:
    """The model's response to ``conversation``, waiting out a batch when the request went into one."""
    while True:
        # Ending in a suspended response, the conversation asks its batch for the answer.
        response = await model_request(
            model, conversation, model_settings=settings, model_request_parameters=tool.parameters
        )
        if is_suspended(conversation[-1]):
            # The waiting response gives way to what came of it: a later check, or the answer.
            conversation[-1] = exchange.messages[-1] = response
        else:
            conversation.append(response)
            exchange.messages.append(response)
        if not is_suspended(response):
            return response
        if on_suspended is None:
            raise UnexpectedModelBehavior(
                "the model answered with a suspended response, which this call cannot wait for"
            )
        await on_suspended(exchange, response)


def first_request(prompt: str, instructions: str) -> ModelRequest:
    """The request a call starts with."""
    return ModelRequest(parts=[UserPromptPart(prompt)], instructions=instructions)


class _NoOutput(Exception):
    """The response held no call of the output tool."""


def _output(tool: OutputTool, response: ModelResponse, call: ToolCallPart | None) -> Any:
    """The validated output of ``call``; raises ValidationError or :class:`_NoOutput` to retry."""
    cut_off = response.finish_reason == "length"
    if call is None or call.tool_name != _TOOL_NAME:
        if cut_off:
            raise OutputTokenLimitExceeded("Model token limit exceeded before any response was generated.")
        raise _NoOutput(f"the response called {call.tool_name!r}" if call else "the response had no tool call")
    if cut_off:
        try:
            call.args_as_dict(raise_if_invalid=True)
        except Exception as exc:
            raise IncompleteToolCall(
                "Model token limit exceeded while generating a tool call, resulting in incomplete arguments."
            ) from exc
    args = call.args
    if isinstance(args, str):
        return tool.adapter.validate_json(args or "{}")
    return tool.adapter.validate_python(args or {})


def _retried(call: ToolCallPart | None, exc: ValidationError) -> ModelRequestPart:
    """The output tool call answered as retried, with what was wrong (as the agent answers it)."""
    assert call is not None  # nosec B101  # only a tool call's arguments fail validation
    errors = exc.errors(include_url=False, include_context=False)
    return ToolReturnPart(
        tool_name=call.tool_name,
        content=[dict(error) for error in errors],
        tool_call_id=call.tool_call_id,
        tool_kind="output",
        outcome="retried",
        retry=RetryInfo(cause="validation_error"),
    )
