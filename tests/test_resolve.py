from __future__ import annotations

import pytest
from pydantic_ai.models.function import FunctionModel
from pydantic_ai.models.openai import OpenAIChatModel

from service_ambitions.core.errors import ConfigError
from service_ambitions.llm.resolve import resolve_model


def test_offline_is_a_function_model() -> None:
    model = resolve_model("offline")
    assert isinstance(model, FunctionModel)
    assert model.model_name == "offline"


def test_openai_uses_chat_completions_and_the_base_url_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-local")
    model = resolve_model("openai:gpt-4o-mini")
    assert isinstance(model, OpenAIChatModel)
    assert model.model_name == "gpt-4o-mini"
    assert str(model.client.base_url) == "http://127.0.0.1:9/v1/"


def test_missing_key_names_the_variable() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_model("openai:gpt-4o-mini")
    assert caught.value.user_message == (
        "OPENAI_API_KEY is not set, and model 'openai:gpt-4o-mini' needs it "
        "(export OPENAI_API_KEY=..., or try --model offline)"
    )


def test_missing_base_url_variable_is_named_too() -> None:
    with pytest.raises(ConfigError, match="OLLAMA_BASE_URL is not set"):
        resolve_model("ollama:llama3.2")


@pytest.mark.parametrize("name", ["gpt-4o-mini", "openai:", ":x"])
def test_names_without_a_provider(name: str) -> None:
    with pytest.raises(ConfigError, match="is not a 'provider:model' name"):
        resolve_model(name)


def test_unknown_provider() -> None:
    with pytest.raises(ConfigError, match="cannot use model 'nosuch:model'"):
        resolve_model("nosuch:model")


def test_provider_package_not_installed() -> None:
    with pytest.raises(ConfigError, match="needs the 'groq' provider package") as caught:
        resolve_model("groq:llama-3.3-70b")
    assert "uv tool install --reinstall --with 'pydantic-ai-slim[groq]' " in caught.value.user_message


def test_an_unknown_provider_gets_a_suggestion_in_the_users_words() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_model("opneai:gpt-4o-mini")
    assert "cannot use model 'opneai:gpt-4o-mini'" in caught.value.user_message
    assert "did you mean openai:gpt-4o-mini?" in caught.value.user_message
