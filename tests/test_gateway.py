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

from service_ambitions.errors import OutputInvalid
from service_ambitions.llm.gateway import Gateway, LLMRequest
from service_ambitions.models import Stage


class Answer(BaseModel):
    value: int


def call(info: AgentInfo, value: object) -> ModelResponse:
    return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"value": value})])


def gateway_for(model: FunctionModel, **kwargs: int) -> Gateway:
    return Gateway(dict.fromkeys(Stage, model), max_in_flight=kwargs.pop("max_in_flight", 4), **kwargs)


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
    assert answer.usage.requests == 1
    assert seen[0][0].parts[0].content == "earlier question"  # type: ignore[union-attr]
    assert answer.messages[0].parts[0].content == "Now?"  # type: ignore[union-attr]  # only this call's messages


async def test_invalid_output_is_retried_then_accepted() -> None:
    def model(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        retried = any(isinstance(m, ModelResponse) for m in messages)  # the failed answer came back
        return call(info, 7 if retried else "not a number")

    answer = await gateway_for(FunctionModel(model)).ask(LLMRequest(Stage.MAPPING, "", "x", Answer))
    assert answer.output.value == 7
    assert answer.usage.requests == 2


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
