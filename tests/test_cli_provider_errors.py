"""Provider failures seen through the CLI: one service's failure is quarantined, a refused key stops the run."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import read_jsonl, run_dirs
from .fake_openai import COMPLETIONS, FakeOpenAI

runner = CliRunner()


@pytest.fixture(autouse=True)
def _provider(openai_env: None) -> None:
    """Every test here speaks to respx's fake OpenAI host."""


def test_rejected_request_quarantines_that_service_only(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    fake = FakeOpenAI()

    def answer(request: httpx.Request) -> httpx.Response:
        if "(svc-2)" in request.content.decode():
            return httpx.Response(
                400,
                headers={"x-request-id": "req_0123abc"},
                json={"error": {"message": "context too long", "type": "invalid_request_error"}},
            )
        return fake(request)

    respx_mock.post(COMPLETIONS).mock(side_effect=answer)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--trace-ids"]
    )

    assert result.exit_code == 9, result.output
    assert "failed: svc-2 (descriptions): request req_0123abc" in result.stdout
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == ["svc-1", "svc-3"]  # type: ignore[index]
    failure = read_jsonl(tmp_path / "out.quarantine.jsonl")[0]
    assert failure["service_id"] == "svc-2"
    assert failure["stage"] == "descriptions"
    assert "HTTP 400" in str(failure["reason"])
    report = runner.invoke(app, ["report", "--failures"])
    assert "failed: svc-2 (descriptions)" in report.stdout
    assert "[request req_0123abc]" in report.stdout  # the id to quote to the provider


def test_refused_key_stops_the_run_with_one_line(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    route = respx_mock.post(COMPLETIONS).mock(
        return_value=httpx.Response(
            401, json={"error": {"message": "Incorrect API key provided", "type": "invalid_request_error"}}
        )
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--concurrency", "1"]
    )

    assert result.exit_code == 5
    assert route.call_count == 1  # no second service was tried
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1
    assert message.startswith(
        "error: service svc-1, stage descriptions, model openai:gpt-4o-mini: provider answered HTTP 401"
    )
    assert "check the API key" in message
    assert "sk-test-refused" not in result.output
    assert out.read_text() == ""
    assert json.loads(route.calls.last.request.content)["model"] == "gpt-4o-mini"


def test_rate_limits_are_retried_after_the_wait_the_server_asks(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    fake = FakeOpenAI()
    limited = {"left": 2}

    def answer(request: httpx.Request) -> httpx.Response:
        if limited["left"]:
            limited["left"] -= 1
            return httpx.Response(429, headers={"retry-after-ms": "5"}, json={"error": {"message": "slow down"}})
        return fake(request)

    route = respx_mock.post(COMPLETIONS).mock(side_effect=answer)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini"])

    assert result.exit_code == 0, result.output
    assert route.call_count == 63 + 2
    assert len(read_jsonl(out)) == 3
    retries = next(line for line in result.stdout.splitlines() if "provider retries" in line)
    assert "2 (waited 0.0 s)" in retries


def test_a_long_retry_after_is_not_retried_early_and_the_sdk_does_not_retry(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    route = respx_mock.post(COMPLETIONS).mock(
        return_value=httpx.Response(429, headers={"Retry-After": "3600"}, json={"error": {"message": "quota window"}})
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-services", "1"]
    )

    assert result.exit_code == 9
    assert route.call_count == 1  # neither the transport nor the OpenAI SDK retried
    failure = read_jsonl(tmp_path / "out.quarantine.jsonl")[0]
    assert "HTTP 429" in str(failure["reason"])


def test_a_failing_provider_is_paused_and_a_rate_limit_slows_the_run(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    from service_ambitions.runs.journal import read_events

    fake = FakeOpenAI()
    state = {"calls": 0}

    def answer(request: httpx.Request) -> httpx.Response:
        state["calls"] += 1
        if state["calls"] == 1:
            return httpx.Response(429, headers={"retry-after-ms": "1"}, json={"error": {"message": "slow down"}})
        if state["calls"] <= 4:
            return httpx.Response(503, json={"error": {"message": "overloaded"}})
        return fake(request)

    respx_mock.post(COMPLETIONS).mock(side_effect=answer)
    env = {
        "SA_RETRY__ATTEMPTS": "2",
        "SA_LIMITS__BREAKER_FAILURES": "1",
        "SA_LIMITS__BREAKER_COOLDOWN_S": "0.01",
    }
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--concurrency", "1"], env=env
    )

    assert result.exit_code == 9, result.output  # the service whose call failed is quarantined
    events = read_events(run_dirs(tmp_path / "runs")[0])
    throttles = [e for e in events if e.type == "throttle_changed"]
    assert [t.limit for t in throttles] == [4]  # type: ignore[union-attr]  # 8 in flight halved after the 429
    pauses = [e.paused_s for e in events if e.type == "provider_paused"]  # type: ignore[union-attr]
    assert pauses[0] == 0.01
    assert pauses[-1] == 0  # a probe succeeded and calls resumed
    # svc-1: 429 then 503 (retries spent); svc-2's probe: 503 twice; svc-3's probe succeeds.
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == ["svc-3"]  # type: ignore[index]
    assert pauses == [0.01, 0.01, 0]


def test_a_fallback_model_answers_when_the_first_provider_fails(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    route = respx_mock.post(COMPLETIONS).mock(return_value=httpx.Response(500, json={"error": {"message": "down"}}))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        [
            "run",
            str(services_file),
            "-o",
            str(out),
            "--model",
            "offline",
            "--mapping-model",
            "openai:gpt-4o-mini,offline",
        ],
        env={"SA_RETRY__ATTEMPTS": "1", "SA_LIMITS__BREAKER_FAILURES": "1000"},
    )

    assert result.exit_code == 0, result.output
    assert route.call_count == 3 * 15  # every mapping call tried the first model once, then fell back
    records = read_jsonl(out)
    assert records[0]["meta"]["models"]["mapping"] == "openai:gpt-4o-mini | offline"  # type: ignore[index]
    assert all(f["mappings"] for p in records[0]["plateaus"] for f in p["features"])  # type: ignore[index]


def test_invalid_json_output_is_retried_then_quarantined_with_its_transcript(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    from .fake_openai import completion

    fake = FakeOpenAI()

    def answer(request: httpx.Request) -> httpx.Response:
        if "(svc-2)" in request.content.decode():
            broken = completion("final_result", {})
            broken["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"foundational": "trunc'
            return httpx.Response(200, json=broken)
        return fake(request)

    route = respx_mock.post(COMPLETIONS).mock(side_effect=answer)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini"])

    assert result.exit_code == 9, result.output
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == ["svc-1", "svc-3"]  # type: ignore[index]
    failure = read_jsonl(tmp_path / "out.quarantine.jsonl")[0]
    assert (failure["service_id"], failure["stage"]) == ("svc-2", "descriptions")
    assert "did not match the schema" in str(failure["reason"])
    transcript = failure["transcript"]
    assert isinstance(transcript, list)
    assert sum(1 for message in transcript if message["kind"] == "response") == 3  # 1 answer + 2 output retries
    assert route.call_count == 2 * 21 + 3


def test_a_per_call_token_limit_fails_only_that_call(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI(usage=(100, 50)))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-services", "1"],
        env={"SA_LIMITS__CALL_OUTPUT_TOKENS": "40"},
    )

    assert result.exit_code == 9, result.output
    failure = read_jsonl(tmp_path / "out.quarantine.jsonl")[0]
    assert "output_tokens_limit of 40" in str(failure["reason"])


def test_a_connection_error_names_the_proxy_in_use(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, services_file: Path
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.corp:3128")  # pragma: allowlist secret
    respx_mock.post(COMPLETIONS).mock(side_effect=httpx.ConnectError("proxy refused"))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-services", "1"],
        env={"SA_RETRY__ATTEMPTS": "1"},
    )
    assert result.exit_code == 9, result.output
    reason = read_jsonl(tmp_path / "out.quarantine.jsonl")[0]["reason"]
    assert "through proxy http://proxy.corp:3128" in str(reason)
    assert "secret" not in result.output + str(reason)


def test_an_unreachable_provider_stops_the_run_with_its_address_and_resume_finishes_it(
    respx_mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, services_file: Path
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://user:pw@llm.test/v1")  # pragma: allowlist secret
    route = respx_mock.post(COMPLETIONS).mock(side_effect=httpx.ConnectError("connection refused"))
    out = tmp_path / "out.jsonl"
    args = ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--concurrency", "1"]
    result = runner.invoke(app, args, env={"SA_RETRY__ATTEMPTS": "1", "SA_LIMITS__UNREACHABLE_CALLS": "2"})
    assert result.exit_code == 5, result.output
    assert route.call_count == 2  # two calls could not connect: no third service was tried
    line = result.stderr.strip()
    assert "address https://llm.test/v1" in line
    assert "2 calls in a row could not connect" in line
    assert "continue with --resume" in line
    assert "pw" not in result.output
    quarantined = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert [q["service_id"] for q in quarantined] == ["svc-1"]  # the first failure, before the pattern showed
    assert "address https://llm.test/v1" in str(quarantined[0]["reason"])
    monkeypatch.setenv("OPENAI_BASE_URL", "https://llm.test/v1")
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI())
    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 0, again.output
    assert sorted(r["service"]["service_id"] for r in read_jsonl(out)) == ["svc-1", "svc-2", "svc-3"]  # type: ignore[index]


def test_an_answer_cut_off_at_the_token_limit_names_the_setting_to_raise(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    from .fake_openai import completion

    cut = completion("final_result", {})
    cut["choices"][0]["finish_reason"] = "length"
    cut["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = '{"foundational": "The serv'
    respx_mock.post(COMPLETIONS).mock(return_value=httpx.Response(200, json=cut))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-services", "1"]
    )
    assert result.exit_code == 9, result.output
    reason = str(read_jsonl(tmp_path / "out.quarantine.jsonl")[0]["reason"])
    assert "cut off at the output token limit" in reason
    assert "max_output_tokens" in reason


def test_a_web_page_instead_of_an_api_answer_says_so_not_schema(
    respx_mock: respx.MockRouter, tmp_path: Path, services_file: Path
) -> None:
    page = "<html><body>Please sign in</body></html>"
    respx_mock.post(COMPLETIONS).mock(
        return_value=httpx.Response(200, headers={"content-type": "text/html"}, text=page)
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-services", "1"]
    )
    assert result.exit_code == 9, result.output
    reason = str(read_jsonl(tmp_path / "out.quarantine.jsonl")[0]["reason"])
    assert "did not answer as the provider's API does" in reason
    assert "https://llm.test/v1" in reason
    assert "schema" not in reason
