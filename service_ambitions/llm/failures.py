"""Provider failures, translated once: messages, request ids, and what a failed call spent.

The gateway turns every pydantic-ai error into one of ours; these helpers say what the
error means in words a user can act on, and count the requests a failed call still
made, since the provider billed them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal

import httpx2
from pydantic import ValidationError
from pydantic_ai.exceptions import (
    AgentRunError,
    IncompleteToolCall,
    ModelAPIError,
    ModelAuthenticationError,
    ModelConnectionError,
    ModelHTTPError,
    ModelNotFoundError,
    ModelQuotaExceededError,
    ModelRequestRejectedError,
    OutputTokenLimitExceeded,
    UnexpectedModelBehavior,
    UsageLimitExceeded,
    UserError,
)
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models import Model
from pydantic_ai.usage import RunUsage

from service_ambitions.core.errors import BudgetExceeded, OutputInvalid, ProviderError, ProviderRefused
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend
from service_ambitions.llm.budget import response_price
from service_ambitions.llm.structured import Exchange
from service_ambitions.llm.transport import proxy_for

__all__ = ["provider_message", "provider_unwell", "request_id", "spent_by", "translated", "validation_reason"]


def spent_by(messages: Sequence[ModelMessage], *, offline: bool, live_prices: bool = False) -> Spend:
    """What the responses of a call used and cost, as pydantic-ai counts a finished run's usage.

    With ``live_prices`` (a batch call), the spend also says what the same responses would
    have cost at live prices.
    """
    usage = RunUsage()
    cost: Decimal | None = Decimal(0)
    live: Decimal | None = Decimal(0)
    for message in messages:
        # A suspended response stands for a request still in a batch: not answered, not billed.
        if isinstance(message, ModelResponse) and message.state != "suspended":
            usage.requests += 1
            usage.incr(message.usage)
            price = Decimal(0) if offline else response_price(message)
            cost = None if cost is None or price is None else cost + price
            if live_prices:
                live_price = Decimal(0) if offline else response_price(message, live=True)
                live = None if live is None or live_price is None else live + live_price
    batch = live_prices and cost is not None and live is not None
    return Spend(
        requests=usage.requests,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=usage.details.get("reasoning_tokens", 0),
        cost_usd=cost or Decimal(0),
        unpriced=int(cost is None),
        batch_cost_usd=(cost or Decimal(0)) if batch else Decimal(0),
        batch_live_usd=(live or Decimal(0)) if batch else Decimal(0),
    )


def address_of(base_url: str) -> str:
    """A provider's address as users may see it: no user name, password or query (keys travel there)."""
    url = httpx2.URL(base_url)
    return str(url.copy_with(username=None, password=None, query=None))


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


def _invalid(
    message: str, stage: Stage, model: str, exchange: Exchange, *, offline: bool, hint: str | None = None
) -> OutputInvalid:
    """An answer that never became valid, with the transcript of the call and what it spent."""
    return OutputInvalid(
        message,
        stage=stage,
        model=model,
        hint=hint,
        transcript=ModelMessagesTypeAdapter.dump_python(exchange.messages, mode="json"),
        spent=spent_by(exchange.messages, offline=offline),
    )


@dataclass(frozen=True)
class _Call:
    """The call an error belongs to: its stage, the model's name as users know it, the resolved model, its messages."""

    stage: Stage
    model: str
    wrapped: Model
    exchange: Exchange

    @property
    def offline(self) -> bool:
        return self.wrapped.system == "function"

    @property
    def spent(self) -> Spend:
        return spent_by(self.exchange.messages, offline=self.offline)


@contextlib.contextmanager
def translated(stage: Stage, model: str, wrapped: Model, exchange: Exchange) -> Iterator[None]:
    """pydantic-ai's errors as ours, each with what the call spent before it failed.

    ``model`` is the name users know; ``wrapped`` the resolved model (its endpoint and
    whether it is the offline one).
    """
    call = _Call(stage, model, wrapped, exchange)
    try:
        yield
    except BudgetExceeded as exc:
        # Stopped before an output retry: the attempts already answered were billed.
        exc.spent = call.spent
        raise
    except (AgentRunError, UserError) as exc:
        raise _ours(exc, call) from exc


def _ours(exc: AgentRunError | UserError, call: _Call) -> ProviderError:
    """Our error for one of pydantic-ai's (the most specific kinds first)."""
    if isinstance(exc, IncompleteToolCall | OutputTokenLimitExceeded):
        return _invalid(
            "the model's answer was cut off at the output token limit (max_output_tokens) before it was whole",
            call.stage,
            call.model,
            call.exchange,
            offline=call.offline,
            hint="raise max_output_tokens (SA_MAX_OUTPUT_TOKENS), or ask for fewer features (features_per_role.max)",
        )
    if isinstance(exc, UnexpectedModelBehavior):
        return _misbehaved(exc, call)
    if isinstance(exc, ModelAPIError):
        return _api_error(exc, call)
    if isinstance(exc, UsageLimitExceeded):
        # Checked after each response, so the response that crossed the limit was billed.
        return ProviderError(
            f"the call passed its token limit: {str(exc).splitlines()[0]}",
            stage=call.stage,
            model=call.model,
            hint="raise limits.call_input_tokens or limits.call_output_tokens, or unset them",
            spent=call.spent,
        )
    if isinstance(exc, UserError):
        # pydantic-ai refused the request before sending it: every call would fail alike.
        return ProviderRefused(
            f"cannot send the request: {str(exc).splitlines()[0]}",
            stage=call.stage,
            model=call.model,
            hint="check the model's settings, or run without --batch",
            spent=call.spent,
        )
    return ProviderError(str(exc), stage=call.stage, model=call.model, spent=call.spent)


def _misbehaved(exc: UnexpectedModelBehavior, call: _Call) -> ProviderError:
    """An answer that was no API answer at all, or one that never matched the schema."""
    if str(exc).startswith("Invalid response from"):
        # Not the model's answer: the server's reply was no API answer at all (an HTML
        # login or error page from a proxy or a wrong address, usually).
        base_url = call.wrapped.base_url
        address = f" at {address_of(base_url)}" if base_url else ""
        return ProviderError(
            f"the server{address} did not answer as the provider's API does: {str(exc).splitlines()[0]}",
            stage=call.stage,
            model=call.model,
            hint="check the address (OPENAI_BASE_URL or the provider's) and any proxy in between",
            spent=call.spent,
        )
    message = f"the model's answer did not match the schema: {validation_reason(exc)}"
    return _invalid(message, call.stage, call.model, call.exchange, offline=call.offline)


def _api_error(exc: ModelAPIError, call: _Call) -> ProviderError:
    """The provider's refusal or failure, with its status, request id, address and proxy."""
    # A bad key, an unknown model or a spent quota fails every call alike: stop the run.
    refused = isinstance(exc, ModelAuthenticationError | ModelNotFoundError | ModelQuotaExceededError)
    status = exc.status_code if isinstance(exc, ModelHTTPError) else None
    message = provider_message(exc, status)
    unreachable = isinstance(exc, ModelConnectionError)
    base_url = call.wrapped.base_url
    if unreachable and base_url:
        message += f" (address {address_of(base_url)})"
    if status is None and base_url and (proxy := proxy_for(base_url)) is not None:
        message += f" (through proxy {proxy}; NO_PROXY lists hosts to reach directly)"
    return (ProviderRefused if refused else ProviderError)(
        message,
        status_code=status,
        request_id=request_id(exc),
        stage=call.stage,
        model=call.model,
        hint="check the API key, the model name and the account's quota" if refused else None,
        spent=call.spent,
        unreachable=unreachable,
    )
