"""Telemetry: spans and sa_ metrics carry ids, stage, model and counts, never prompts or keys."""

from __future__ import annotations

import json
import os
from pathlib import Path

import logfire
import pydantic_ai.models
import pytest
import respx
from logfire.testing import CaptureLogfire

from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import prepare

from .fake_openai import BASE_URL, COMPLETIONS, FakeOpenAI

SECRET = "sk-test-telemetry-never-in-spans"  # pragma: allowlist secret


async def test_spans_and_metrics_without_content_or_keys(
    capfire: CaptureLogfire, respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, services_file: Path
) -> None:
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)  # respx answers; nothing leaves
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI())
    logfire.instrument_pydantic_ai(include_content=False)  # what configure_telemetry does, on capfire's exporter

    prepared = prepare(load_settings(overrides=Overrides(model="openai:gpt-4o-mini")))
    await generate(prepared, services_file, services_file.with_name("o.jsonl"), services_file.with_name("q.jsonl"))

    spans = capfire.exporter.exported_spans_as_dict()
    names = [span["name"] for span in spans]
    assert names.count("service") == 3
    assert names.count("run") == 1
    assert names.count("mapping") == 45
    mapping = next(span for span in spans if span["name"] == "mapping")
    assert mapping["attributes"]["stage"] == "mapping"
    assert mapping["attributes"]["model"] == "openai:gpt-4o-mini"
    assert mapping["attributes"]["cached"] is False
    assert mapping["attributes"]["service_id"].startswith("svc-")
    assert any(name.startswith("chat gpt-4o-mini") for name in names)  # pydantic-ai's own spans
    everything = json.dumps(spans, default=str)
    assert SECRET not in everything
    assert "Describe how the service below" not in everything  # prompt text stays out
    assert "Handles student" not in everything  # so does the service's description

    metrics = {metric["name"]: metric for metric in capfire.get_collected_metrics()}
    assert {"sa_calls", "sa_tokens", "sa_cost_usd", "sa_calls_in_flight", "sa_stage_latency"} <= set(metrics)
    calls = sum(point["value"] for point in metrics["sa_calls"]["data"]["data_points"])
    assert calls == 63


def test_without_a_token_telemetry_is_silent_and_offline(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import socket

    from service_ambitions.core.telemetry import Metrics, configure_telemetry, tracer

    attempts: list[object] = []
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: attempts.append(address))
    monkeypatch.delenv("LOGFIRE_TOKEN", raising=False)
    assert configure_telemetry() is False  # nowhere to send: nothing configured
    with tracer.start_as_current_span("probe", attributes={"service_id": "svc"}):
        Metrics().calls.add(1, {"stage": "mapping"})

    assert attempts == []
    captured = capfd.readouterr()
    assert captured.out == ""
    assert captured.err == ""


def test_telemetry_is_configured_when_there_is_somewhere_to_send_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from service_ambitions.core.telemetry import configure_telemetry

    configured: list[dict[str, object]] = []
    monkeypatch.setattr(logfire, "configure", lambda **options: configured.append(options))
    monkeypatch.setattr(logfire, "instrument_pydantic_ai", lambda **options: configured.append(options))
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector.invalid:4318")

    assert configure_telemetry(allow_prompt_logging=True) is True
    assert configured[0]["send_to_logfire"] == "if-token-present"
    assert configured[0]["console"] is False
    assert configured[1] == {"include_content": True}


def test_a_run_with_nowhere_to_send_telemetry_never_imports_logfire(tmp_path: Path) -> None:
    import subprocess
    import sys

    probe = (
        "import sys\n"
        "from service_ambitions.core.telemetry import configure_telemetry\n"
        "assert configure_telemetry() is False\n"
        "import pydantic_ai.models.openai, logfire_api\n"
        "print(sys.modules['logfire'] is None, type(logfire_api.DEFAULT_LOGFIRE_INSTANCE).__module__)\n"
    )
    env = {
        key: value for key, value in os.environ.items() if key not in ("LOGFIRE_TOKEN", "OTEL_EXPORTER_OTLP_ENDPOINT")
    }
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.split() == ["True", "logfire_api"]  # pydantic-ai got logfire_api's no-op stand-in
