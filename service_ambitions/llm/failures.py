"""Provider failures, translated once: messages, request ids, and what a failed call spent.

The gateway turns every pydantic-ai error into one of ours; these helpers say what the
error means in words a user can act on, and count the requests a failed call still
made, since the provider billed them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal

from pydantic import ValidationError
from pydantic_ai.exceptions import (
    ModelAPIError,
    ModelHTTPError,
    ModelRequestRejectedError,
    UnexpectedModelBehavior,
)
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.usage import RunUsage

from ..errors import CallSpend
from .budget import response_price

__all__ = ["provider_message", "provider_unwell", "request_id", "spent_by", "validation_reason"]


def spent_by(messages: Sequence[ModelMessage], *, offline: bool) -> CallSpend:
    """What the responses of a failed call used and cost, as pydantic-ai counts a finished run's usage."""
    usage = RunUsage()
    cost: Decimal | None = Decimal(0)
    for message in messages:
        if isinstance(message, ModelResponse):
            usage.requests += 1
            usage.incr(message.usage)
            price = Decimal(0) if offline else response_price(message)
            cost = None if cost is None or price is None else cost + price
    return CallSpend(
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        reasoning_tokens=usage.details.get("reasoning_tokens", 0),
        cost_usd=None if cost is None else str(cost),
    )


def request_id(exc: ModelAPIError) -> str | None:
    """The provider's request id, from the response headers providers commonly use."""
    headers = exc.headers if isinstance(exc, ModelHTTPError) else None
    if not headers:
        return None
    return headers.get("x-request-id") or headers.get("request-id")


def provider_message(exc: ModelAPIError, status: int | None) -> str:
    """The provider's complaint in one line, with the HTTP status when there was one."""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"provider answered HTTP {status}: {first_line}" if status else f"provider failed: {first_line}"


def validation_reason(exc: UnexpectedModelBehavior) -> str:
    """The first validation problem, as 'where: what', or pydantic-ai's own message."""
    cause = exc.__cause__
    if isinstance(cause, ValidationError) and cause.errors():
        first = cause.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "answer"
        more = f" (and {cause.error_count() - 1} more)" if cause.error_count() > 1 else ""
        return f"{where}: {first['msg']}{more}"
    return str(exc).splitlines()[0]


def provider_unwell(exc: BaseException) -> bool:
    """Whether a failed call says something about the provider's health (for the circuit breaker).

    Rate limits, server errors, timeouts and dropped connections that outlasted the
    retries do; a request the provider rejected, or an answer that broke the schema, do not.
    """
    return isinstance(exc, ModelAPIError) and not isinstance(exc, ModelRequestRejectedError)
