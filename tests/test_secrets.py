"""Secrets stay secret, even when a provider echoes them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import httpx
import pydantic_ai.models
import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.core.errors import ProviderError
from service_ambitions.core.secrets import REDACTED, scrub

from .conftest import run_dirs
from .fake_openai import BASE_URL, COMPLETIONS

runner = CliRunner()
KEY = "sk-proj-Zx81kQ2mN4pL6rT8vW0yA3cE5gI7jK9"  # pragma: allowlist secret


def test_scrub_replaces_secret_values_and_key_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok_very_private_1234")
    text = scrub(f"bad key {KEY}; Bearer abc.def-ghi123; tok_very_private_1234; http://bob:hunter2@proxy:3128")
    assert text == f"bad key {REDACTED}; Bearer {REDACTED}; {REDACTED}; http://{REDACTED}@proxy:3128"
    # Ordinary text that merely looks a little like a key is left alone.
    assert scrub("task-management-and-risk-assessment service") == "task-management-and-risk-assessment service"


def test_error_messages_are_scrubbed_where_they_are_made(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "plain-secret-value-42")
    error = ProviderError("provider answered HTTP 401: Incorrect API key provided: plain-secret-value-42")
    assert "plain-secret-value-42" not in error.user_message


def test_a_key_echoed_in_a_401_body_reaches_nothing(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, services_file: Path
) -> None:
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)  # respx answers; nothing leaves
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    body = {"error": {"message": f"Incorrect API key provided: {KEY}. You can find your key at …", "code": 401}}
    respx_mock.post(COMPLETIONS).mock(return_value=httpx.Response(401, json=body))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini"])
    assert result.exit_code == 5, result.output
    assert "Incorrect API key provided" in result.stderr
    written = [result.output]
    for path in (tmp_path / "runs").rglob("*"):
        if path.is_file():
            written.append(path.read_text(encoding="utf-8"))
    quarantine = tmp_path / "out.quarantine.jsonl"
    if quarantine.exists():
        written.append(quarantine.read_text(encoding="utf-8"))
    assert all(KEY not in text and KEY[:20] not in text for text in written)
    run_dir = run_dirs(tmp_path / "runs")[0]
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE((run_dir / "events.jsonl").stat().st_mode) == 0o600
    assert stat.S_IMODE((run_dir / "manifest.json").stat().st_mode) == 0o600
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert os.environ["OPENAI_API_KEY"] == KEY
