"""calls.py: every call a service makes is reported, answered or failed, with what it was billed."""

from __future__ import annotations

import pytest
from pydantic import BaseModel
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from service_ambitions.core.errors import OutputInvalid
from service_ambitions.core.events import CallFailed, CallFinished, CallStarted, Event
from service_ambitions.core.models import Service, Stage
from service_ambitions.llm.gateway import compose_gateway
from service_ambitions.llm.lanes import CallSettings
from service_ambitions.llm.requests import LLMRequest
from service_ambitions.pipeline.calls import MeasuredCalls

SERVICE = Service(service_id="svc-1", name="Permits", description="Issue permits.")


class Answer(BaseModel):
    value: int


def _calls(answer: object, events: list[Event]) -> MeasuredCalls:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"value": answer})])

    models = dict.fromkeys(Stage, FunctionModel(model, model_name="fn"))
    gateway = compose_gateway(models, max_in_flight=2, settings=CallSettings(output_retries=1))
    return MeasuredCalls(gateway, events.append)


async def test_an_answered_call_is_told_with_its_usage() -> None:
    events: list[Event] = []
    answer = await _calls(3, events).ask(LLMRequest(Stage.FEATURES, "", "x", Answer), SERVICE)

    assert answer.output == Answer(value=3)
    started, finished = events
    assert isinstance(started, CallStarted)
    assert (started.service_id, started.stage) == (SERVICE.service_id, Stage.FEATURES)
    assert isinstance(finished, CallFinished)
    assert (finished.service_id, finished.stage, finished.model, finished.cached) == ("svc-1", "features", "fn", False)
    assert finished.spend.requests == 1
    assert (finished.spend.input_tokens, finished.spend.output_tokens) == (
        answer.spend.input_tokens,
        answer.spend.output_tokens,
    )
    assert finished.spend.input_tokens > 0


async def test_a_failed_call_still_reports_the_requests_it_was_billed_for() -> None:
    events: list[Event] = []
    with pytest.raises(OutputInvalid) as caught:
        await _calls("never a number", events).ask(LLMRequest(Stage.MAPPING, "", "x", Answer), SERVICE)

    started, failed = events
    assert isinstance(started, CallStarted)
    assert isinstance(failed, CallFailed)
    assert failed.spend.requests == 2  # the first answer and its one output retry
    assert caught.value.spent is not None
    assert failed.spend.input_tokens == caught.value.spent.input_tokens > 0
    assert failed.reason == caught.value.message
