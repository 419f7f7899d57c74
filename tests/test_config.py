from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service_ambitions.config.settings import BatchOverrides, Overrides, Settings, load_settings
from service_ambitions.core.errors import ConfigError
from service_ambitions.core.models import Stage


def test_defaults() -> None:
    settings = load_settings()
    assert settings.model == "openai:gpt-4o-mini"
    assert settings.features_per_role.min == 2
    assert settings.model_for(Stage.MAPPING) == "openai:gpt-4o-mini"


def test_precedence_yaml_then_dotenv_then_environment_then_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "app.yaml").write_text(
        "model: offline\nconcurrency: 2\nseed: 1\ntemperature: 0.3\nfeatures_per_role: {min: 1, max: 9}\n"
    )
    (tmp_path / ".env").write_text("SA_CONCURRENCY=3\nSA_SEED=2\nUNRELATED=1\nSA_FEATURES_PER_ROLE__MAX=5\n")
    monkeypatch.setenv("SA_SEED", "3")
    monkeypatch.setenv("SA_MODELS__MAPPING", "openai:gpt-4.1-mini")

    settings = load_settings(overrides=Overrides(max_in_flight=9, concurrency=None))

    assert settings.model == "offline"  # yaml
    assert settings.temperature == 0.3  # yaml
    assert settings.concurrency == 3  # .env over yaml (the flag was not given)
    assert settings.seed == 3  # environment over .env
    assert settings.max_in_flight == 9  # flag over everything
    assert (settings.features_per_role.min, settings.features_per_role.max) == (1, 5)  # nested values merge
    assert settings.model_for(Stage.MAPPING) == "openai:gpt-4.1-mini"
    assert settings.model_for(Stage.FEATURES) == "offline"


def test_explicit_config_file(tmp_path: Path) -> None:
    path = tmp_path / "other.yaml"
    path.write_text("models:\n  features: offline\n")
    assert load_settings(path).model_for(Stage.FEATURES) == "offline"


def test_missing_explicit_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.yaml")


def test_unknown_yaml_key_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("modle: offline\n")
    with pytest.raises(ConfigError, match="unknown setting modle"):
        load_settings(path)


def test_invalid_value_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("features_per_role: {min: 5, max: 2}\n")
    with pytest.raises(ConfigError, match="features_per_role") as caught:
        load_settings(path)
    assert "min (5) is greater than max (2)" in caught.value.user_message


@pytest.mark.parametrize("text", ["- a list\n", "model: [unclosed\n"])
def test_unreadable_yaml(tmp_path: Path, text: str) -> None:
    path = tmp_path / "app.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path)):
        load_settings(path)


def test_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parent.parent / "config" / "app.example.yaml"
    settings = load_settings(example)
    assert settings.concurrency >= 1


def test_retry_settings_reach_every_call() -> None:
    from service_ambitions.jobs.setup import prepare

    settings = Settings(model="offline", retry={"request_timeout_s": 42}, max_output_tokens=512)
    model_settings = prepare(settings).model_settings()
    assert model_settings["timeout"] == 42
    assert model_settings["max_tokens"] == 512
    assert "max_retries" not in model_settings  # off on the client instead (a copy per request otherwise)


def test_the_sdk_clients_own_retries_are_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from service_ambitions.llm.resolve import resolve_model
    from service_ambitions.llm.transport import RetryPolicy, retrying_client

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")  # pragma: allowlist secret
    for client in (None, retrying_client(RetryPolicy())):
        model = resolve_model("openai:gpt-4o-mini", http_client=client)
        assert model.client.max_retries == 0  # type: ignore[attr-defined]  # the transport retries instead


def test_misspelt_variables_are_errors_with_a_suggestion(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SA_CONCURENCY", "99")
    with pytest.raises(ConfigError, match="SA_CONCURENCY names no setting") as caught:
        load_settings()
    assert "did you mean SA_CONCURRENCY?" in caught.value.user_message
    monkeypatch.delenv("SA_CONCURENCY")
    monkeypatch.setenv("SA_RETRY__ATEMPTS", "3")
    with pytest.raises(ConfigError) as nested:
        load_settings()
    assert nested.value.user_message.endswith("(did you mean SA_RETRY__ATTEMPTS?)")
    monkeypatch.delenv("SA_RETRY__ATEMPTS")
    monkeypatch.setenv("SA_PASSWORD", "another program's")  # resembles nothing of ours: left alone
    (tmp_path / ".env").write_text("SA_MAX_IN_FLIGT=3\nOTHER=1\n")
    with pytest.raises(ConfigError, match=r"\.env variable SA_MAX_IN_FLIGT names no setting"):
        load_settings()
    (tmp_path / ".env").write_text("SA_MAX_IN_FLIGHT=3\nOTHER=1\n")
    assert load_settings().max_in_flight == 3
    config = tmp_path / "typo.yaml"
    config.write_text("concurency: 9\n")
    with pytest.raises(ConfigError) as yaml_typo:
        load_settings(config)
    assert "did you mean concurrency?" in yaml_typo.value.user_message


def test_flags_are_a_typed_set_validated_as_the_files_values(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValidationError):
        Overrides.model_validate({"modle": "offline"})  # a misspelt key is an error, never ignored
    with pytest.raises(ConfigError) as caught:
        load_settings(overrides=Overrides(concurrency=0))
    assert "concurrency" in caught.value.message
    assert "--concurrency" in str(caught.value.hint)
    flags = Overrides(model="offline", batch=BatchOverrides(max_requests=7))
    assert flags.given() == {"model": "offline", "batch": {"max_requests": 7}}
    assert load_settings(overrides=flags).batch.max_requests == 7
    assert Overrides(batch=BatchOverrides()).given() == {}  # a section with nothing given is not given
