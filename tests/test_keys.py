"""What a cache key is made of: what changes the answer, nothing that only changes its travel."""

from __future__ import annotations

from pydantic import BaseModel
from pydantic_ai import ModelSettings
from pydantic_ai.messages import ModelRequest, ModelResponse, TextPart, UserPromptPart

from service_ambitions.llm.keys import OutputType, key_history, key_settings


class _Answer(BaseModel):
    text: str


def test_transport_settings_are_not_part_of_a_key() -> None:
    settings = ModelSettings(seed=3, max_tokens=100, timeout=5, max_retries=0)
    assert key_settings(settings) == {"seed": 3, "max_tokens": 100}
    assert key_settings(None) == {}


def test_histories_that_differ_only_in_ids_and_times_key_alike() -> None:
    one = [ModelRequest(parts=[UserPromptPart("hi")]), ModelResponse(parts=[TextPart("x")], provider_response_id="a")]
    two = [ModelRequest(parts=[UserPromptPart("hi")]), ModelResponse(parts=[TextPart("x")], provider_response_id="b")]
    assert key_history(one) == key_history(two)
    assert key_history([]) == ()


def test_an_output_type_is_built_with_its_schema_hash() -> None:
    first, second = OutputType.of(_Answer), OutputType.of(_Answer)
    assert first.sha256 == second.sha256
    assert first.schema["properties"]["text"]["type"] == "string"
    assert first.schema_chars > 10
