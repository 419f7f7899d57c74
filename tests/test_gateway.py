from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel
from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel

from service_ambitions.core.errors import OutputInvalid
from service_ambitions.core.models import Stage
from service_ambitions.llm.gateway import Gateway, compose_gateway
from service_ambitions.llm.lanes import CallSettings
from service_ambitions.llm.limits import RateLimiter
from service_ambitions.llm.requests import LLMRequest


class Answer(BaseModel):
    value: int


def call(info: AgentInfo, value: object) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"value": value})])


def gateway_for(model: FunctionModel, *, max_in_flight: int = 4, output_retries: int = 2) -> Gateway:
    settings = CallSettings(output_retries=output_retries)
    return compose_gateway(dict.fromkeys(Stage, model), max_in_flight=max_in_flight, settings=settings)


async def test_answer_carries_output_usage_model_and_messages() -> None:
    seen: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append(messages)
        assert info.instructions == "Be brief."
        return call(info, 41 + len(messages))

    history: list[ModelMessage] = [
        ModelRequest(parts=[UserPromptPart("earlier question")]),
        ModelResponse(parts=[TextPart("earlier answer")]),
    ]
    gateway = gateway_for(FunctionModel(model, model_name="fake"))
    answer = await gateway.ask(LLMRequest(Stage.FEATURES, "Be brief.", "Now?", Answer, history=history))

    assert answer.output == Answer(value=44)  # both history messages and this prompt reached the model
    assert answer.model == "fake"
    assert answer.spend.requests == 1
    assert seen[0][0].parts[0].content == "earlier question"  # type: ignore[union-attr]
    assert answer.messages[0].parts[0].content == "Now?"  # type: ignore[union-attr]  # only this call's messages


async def test_invalid_output_is_retried_then_accepted() -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        retried = any(isinstance(m, ModelResponse) for m in messages)  # the failed answer came back
        return call(info, 7 if retried else "not a number")

    answer = await gateway_for(FunctionModel(model)).ask(LLMRequest(Stage.MAPPING, "", "x", Answer))
    assert answer.output.value == 7
    assert answer.spend.requests == 2


async def test_exhausted_output_retries_raise_output_invalid_with_stage() -> None:
    attempts = 0

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal attempts
        attempts += 1
        return call(info, "never valid")

    gateway = gateway_for(FunctionModel(model, model_name="bad"), output_retries=2)
    with pytest.raises(OutputInvalid) as caught:
        await gateway.ask(LLMRequest(Stage.DESCRIPTIONS, "", "x", Answer))
    assert attempts == 3
    assert caught.value.stage == "descriptions"
    assert caught.value.model == "bad"
    assert "did not match the schema" in caught.value.message


async def test_calls_in_flight_never_exceed_the_cap() -> None:
    in_flight = peak = 0
    release = asyncio.Event()

    async def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        return call(info, 1)

    gateway = gateway_for(FunctionModel(model), max_in_flight=3)
    tasks = [asyncio.create_task(gateway.ask(LLMRequest(Stage.MAPPING, "", f"q{i}", Answer))) for i in range(10)]
    for _ in range(50):  # yield to the loop until every task that can start has started
        await asyncio.sleep(0)
    assert in_flight == 3
    release.set()
    await asyncio.gather(*tasks)
    assert peak == 3


async def test_an_answer_without_the_output_tool_is_asked_again_and_every_attempt_counts() -> None:
    sent: list[list[ModelMessage]] = []

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        sent.append(messages)
        if len(sent) == 1:
            return ModelResponse(parts=[TextPart("Here is my answer: 7")])  # prose, no tool call
        if len(sent) == 2:
            return ModelResponse(parts=[ToolCallPart("some_other_tool", {"value": 7})])
        return call(info, 7)

    answer = await gateway_for(FunctionModel(model, model_name="fake")).ask(
        LLMRequest(Stage.MAPPING, "Be brief.", "Now?", Answer)
    )
    assert answer.output == Answer(value=7)
    assert answer.spend.requests == 3  # the provider billed all three
    retry_parts = [m.parts[0] for m in answer.messages if isinstance(m, ModelRequest)][1:]
    assert [part.part_kind for part in retry_parts] == ["retry-feedback", "retry-feedback"]
    assert all(isinstance(m, ModelRequest) and m.instructions == "Be brief." for m in sent[-1] if m.kind == "request")


async def test_a_tool_call_cut_off_by_the_token_limit_is_not_retried() -> None:
    attempts = 0

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal attempts
        attempts += 1
        part = ToolCallPart(info.output_tools[0].name, '{"value": 4')  # the JSON stops mid-object
        return ModelResponse(parts=[part], finish_reason="length")

    with pytest.raises(OutputInvalid) as raised:
        await gateway_for(FunctionModel(model, model_name="fake")).ask(LLMRequest(Stage.FEATURES, "", "Now?", Answer))
    assert attempts == 1  # the same limit would cut the next attempt off too
    assert "token limit" in raised.value.message
    assert raised.value.spent is not None
    assert raised.value.spent.requests == 1


async def test_arguments_as_a_json_string_are_validated_and_a_validation_retry_answers_the_tool_call() -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        retried = [m for m in messages if isinstance(m, ModelRequest) and m.parts[0].part_kind == "tool-return"]
        if not retried:
            return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, '{"value": "x"}', tool_call_id="c1")])
        part = retried[0].parts[0]
        assert part.tool_call_id == "c1"  # type: ignore[union-attr]
        assert "valid integer" in str(part.content)  # type: ignore[union-attr]
        return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, '{"value": 5}')])

    answer = await gateway_for(FunctionModel(model, model_name="fake")).ask(LLMRequest(Stage.FEATURES, "", "?", Answer))
    assert answer.output == Answer(value=5)
    assert answer.spend.requests == 2


async def test_a_call_a_fallback_model_answered_is_told() -> None:
    from pydantic_ai.exceptions import ModelHTTPError
    from pydantic_ai.models.fallback import FallbackModel

    from service_ambitions.core.events import Event, FallbackUsed

    def down(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        raise ModelHTTPError(status_code=503, model_name="first", body="overloaded")

    chain = FallbackModel(
        FunctionModel(down, model_name="first"), FunctionModel(lambda m, i: call(i, 5), model_name="second")
    )
    events: list[Event] = []
    gateway = compose_gateway(dict.fromkeys(Stage, chain), max_in_flight=2, on_event=events.append)
    answer = await gateway.ask(LLMRequest(Stage.MAPPING, "", "?", Answer))
    assert answer.output == Answer(value=5)
    assert answer.model == "first | second"
    assert FallbackUsed(stage=Stage.MAPPING, model="second") in events


async def test_the_live_lane_waits_for_the_rate_before_each_request_it_sends() -> None:
    waits: list[int] = []

    class Counted(RateLimiter):
        async def wait(self, estimated_tokens: int) -> None:
            waits.append(estimated_tokens)

    tries = iter([{"value": "not a number"}, {"value": 2}])

    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        return call(info, next(tries)["value"])

    rate = Counted(requests_per_minute=60, tokens_per_minute=None)
    settings = CallSettings(model_settings={"max_tokens": 400})
    gateway = compose_gateway(dict.fromkeys(Stage, FunctionModel(model)), max_in_flight=2, rate=rate, settings=settings)
    answer = await gateway.ask(LLMRequest(Stage.FEATURES, "Be brief.", "x" * 4000, Answer))
    assert answer.output == Answer(value=2)
    assert len(waits) == 2  # the output retry is a request too: it waits its turn
    assert 1000 + 100 <= waits[0] < waits[1]  # the prompt's tokens and a quarter of the longest answer
