"""Per-call token limits (limits.call_input_tokens / call_output_tokens): the call stops, and what it used is billed."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
import respx
from pydantic import BaseModel
from pydantic_ai import UsageLimits
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.core.errors import ProviderError
from service_ambitions.core.events import CallFailed, Event
from service_ambitions.core.models import Service, Stage
from service_ambitions.llm.gateway import compose_gateway
from service_ambitions.llm.lanes import CallSettings
from service_ambitions.llm.requests import LLMRequest
from service_ambitions.pipeline.calls import MeasuredCalls

from .conftest import read_jsonl
from .fake_openai import COMPLETIONS, FakeOpenAI, completion

runner = CliRunner()


class _Answer(BaseModel):
    value: int


def _model(answers: list[tuple[object, tuple[int, int]]]) -> tuple[OpenAIChatModel, list[httpx2.Request]]:
    """A model whose provider gives ``answers`` in turn: (tool arguments' value, (input, output) tokens)."""
    sent: list[httpx2.Request] = []
    replies = iter(answers)

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        value, usage = next(replies)
        return httpx2.Response(200, json=completion("final_result", {"value": value}, usage=usage))

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    provider = OpenAIProvider(base_url="https://llm.test/v1", api_key="k", http_client=client)
    return OpenAIChatModel("gpt-4o-mini", provider=provider), sent


def _calls(model: OpenAIChatModel, limits: UsageLimits, events: list[Event]) -> MeasuredCalls:
    settings = CallSettings(output_retries=2, usage_limits=limits)
    return MeasuredCalls(compose_gateway({Stage.FEATURES: model}, max_in_flight=2, settings=settings), events.append)


SERVICE = Service(service_id="svc-1", name="One", description="A service.")


async def test_output_tokens_over_the_limit_across_output_retries_stop_the_call_and_are_billed(
    openai_env: None,
) -> None:
    # An invalid answer (600 output tokens) goes back for another try; the second answer takes the
    # call to 1,200 output tokens, past the limit of 1,000, whatever it says.
    model, sent = _model([("not a number", (500, 600)), (7, (700, 600))])
    events: list[Event] = []
    calls = _calls(model, UsageLimits(request_limit=None, output_tokens_limit=1000), events)
    with pytest.raises(ProviderError) as caught:
        await calls.ask(LLMRequest(Stage.FEATURES, "Be brief.", "Now?", _Answer), SERVICE)

    assert len(sent) == 2
    assert caught.value.message.startswith("the call passed its token limit: Exceeded the output_tokens_limit of 1000")
    assert "limits.call_output_tokens" in str(caught.value.hint)
    (failed,) = [event for event in events if isinstance(event, CallFailed)]
    assert (failed.spend.requests, failed.spend.input_tokens, failed.spend.output_tokens) == (2, 1200, 1200)
    assert failed.spend.cost == Decimal(1200) * Decimal("0.15") / 10**6 + Decimal(1200) * Decimal("0.6") / 10**6


async def test_an_answer_whose_input_passes_the_limit_is_refused_after_it_was_billed(openai_env: None) -> None:
    model, sent = _model([(3, (5000, 10))])
    events: list[Event] = []
    calls = _calls(model, UsageLimits(request_limit=None, input_tokens_limit=4000), events)
    with pytest.raises(ProviderError, match="input_tokens_limit of 4000"):
        await calls.ask(LLMRequest(Stage.FEATURES, "", "Now?", _Answer), SERVICE)
    (failed,) = [event for event in events if isinstance(event, CallFailed)]
    assert (len(sent), failed.spend.requests, failed.spend.input_tokens) == (1, 1, 5000)


async def test_a_call_within_its_limits_is_answered(openai_env: None) -> None:
    model, _ = _model([(4, (100, 20))])
    calls = _calls(model, UsageLimits(request_limit=None, input_tokens_limit=200, output_tokens_limit=50), [])
    answer = await calls.ask(LLMRequest(Stage.FEATURES, "", "Now?", _Answer), SERVICE)
    assert answer.output == _Answer(value=4)


def test_a_run_with_a_call_limit_quarantines_the_service_and_reports_what_it_cost(
    respx_mock: respx.MockRouter, openai_env: None, tmp_path: Path, services_file: Path
) -> None:
    fake = FakeOpenAI(usage=(100, 20))
    respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    out = tmp_path / "out.jsonl"
    args = ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-services", "1"]
    result = runner.invoke(app, args, env={"SA_LIMITS__CALL_OUTPUT_TOKENS": "10"})

    assert result.exit_code == 9, result.output
    (quarantined,) = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert "the call passed its token limit: Exceeded the output_tokens_limit of 10" in str(quarantined["reason"])
    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)
    assert report["totals"]["spend"]["requests"] == len(fake.requests) == 1  # billed, and counted
    assert report["totals"]["failed_calls"] == 1
