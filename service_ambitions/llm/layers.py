"""The live lane's model as layers, in pydantic-ai's own idiom (``WrapperModel``).

Each layer does one thing around each request to the provider, and the stack is built
once per stage by :func:`live_model`::

    BreakerModel → RatedModel → ConcurrencyLimitedModel → BudgetedModel → the provider's model

- :class:`BreakerModel`: pauses requests to a provider that keeps failing (``CircuitBreaker``);
- :class:`RatedModel`: spaces requests under the configured requests and tokens per minute;
- ``ConcurrencyLimitedModel`` (pydantic-ai): the run-wide cap on requests in flight, which
  the adaptive limiter cuts after a 429;
- :class:`~service_ambitions.llm.budget.BudgetedModel`: reserves a request's worst case
  from the run's budget once it has a slot, and settles it to the price of the response.

A request waits for the breaker and the rate before it takes a slot, so slots are held by
requests that are on their way, never by ones that are waiting.
"""

from __future__ import annotations

from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse
from pydantic_ai.models import Model, ModelRequestParameters
from pydantic_ai.models.concurrency import ConcurrencyLimitedModel
from pydantic_ai.models.wrapper import WrapperModel
from pydantic_ai.settings import ModelSettings

from service_ambitions.core.models import Stage
from service_ambitions.llm.budget import Budget, BudgetedModel
from service_ambitions.llm.limits import AdaptiveLimiter, CircuitBreaker, RateLimiter

__all__ = ["BreakerModel", "RatedModel", "live_model", "provider_of"]

_CHARS_PER_TOKEN = 4


def provider_of(model: Model) -> str:
    """A provider as the breaker tells it apart: its system and address."""
    return f"{model.system}@{model.base_url}"


class RatedModel(WrapperModel):
    """Waits until a request fits the configured requests and tokens per minute, then sends it."""

    def __init__(self, wrapped: Model, rate: RateLimiter, *, max_output_tokens: int) -> None:
        super().__init__(wrapped)
        self._rate = rate
        self._max_output_tokens = max_output_tokens

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Wait for room for this request's estimated tokens (its messages and a quarter of the longest answer)."""
        tools = sum(len(str(tool.parameters_json_schema)) for tool in model_request_parameters.output_tools)
        chars = len(ModelMessagesTypeAdapter.dump_json(messages)) + tools
        await self._rate.wait(chars // _CHARS_PER_TOKEN + self._max_output_tokens // 4)
        return await self.wrapped.request(messages, model_settings, model_request_parameters)


class BreakerModel(WrapperModel):
    """Sends a request through the run's circuit breaker for its provider."""

    def __init__(self, wrapped: Model, breaker: CircuitBreaker) -> None:
        super().__init__(wrapped)
        self._breaker = breaker
        self._circuit = provider_of(wrapped)

    async def request(
        self,
        messages: list[ModelMessage],
        model_settings: ModelSettings | None,
        model_request_parameters: ModelRequestParameters,
    ) -> ModelResponse:
        """Wait while the provider is paused; tell the breaker how the request went."""
        async with self._breaker.call(self._circuit):
            return await self.wrapped.request(messages, model_settings, model_request_parameters)


def live_model(
    model: Model,
    *,
    stage: Stage,
    label: str,
    limiter: AdaptiveLimiter,
    max_output_tokens: int,
    budget: Budget | None = None,
    rate: RateLimiter | None = None,
    breaker: CircuitBreaker | None = None,
) -> Model:
    """``model`` with the live lane's layers around it (those configured)."""
    if budget is not None:
        model = BudgetedModel(model, budget, max_output_tokens=max_output_tokens, stage=stage, label=label)
    model = ConcurrencyLimitedModel(model, limiter)
    if rate is not None:
        model = RatedModel(model, rate, max_output_tokens=max_output_tokens)
    if breaker is not None:
        model = BreakerModel(model, breaker)
    return model
