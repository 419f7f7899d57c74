"""Budgets: worst-case reservations, spend never past the limit, unknown prices refused."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import httpx2
import pytest
import respx
from pydantic import BaseModel
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.core.errors import BudgetExceeded
from service_ambitions.core.events import CallFinished
from service_ambitions.core.models import Stage
from service_ambitions.llm.budget import Budget, call_price, worst_case_cost
from service_ambitions.llm.gateway import compose_gateway
from service_ambitions.llm.lanes import CallSettings
from service_ambitions.llm.offline import offline_model
from service_ambitions.llm.requests import LLMRequest
from service_ambitions.llm.resolve import resolve_model
from service_ambitions.runs.journal import read_events, read_manifest

from .conftest import EXAMPLES, read_jsonl, run_dirs
from .fake_openai import COMPLETIONS, FakeOpenAI, completion

runner = CliRunner()


def test_prices(openai_env: None) -> None:
    model = resolve_model("openai:gpt-4o-mini")
    assert call_price(model, 1_000_000, 0) == Decimal("0.15")
    assert call_price(resolve_model("openai:no-such-model-anywhere"), 10, 10) is None
    assert call_price(offline_model(), 10**6, 10**6) == Decimal(0)
    one = worst_case_cost(model, 3000, 1000, attempts=1)
    three = worst_case_cost(model, 3000, 1000, attempts=3)
    assert one is not None
    assert three is not None
    assert three > 3 * one  # each retry re-sends the earlier answers too


async def test_reservations_wait_for_calls_in_flight_then_stop_only_when_spent_plus_next_passes() -> None:
    budget = Budget(Decimal("1.00"))
    held = [await budget.reserve(Decimal("0.30"), stage=Stage.MAPPING, model="m") for _ in range(3)]
    waiting = asyncio.ensure_future(budget.reserve(Decimal("0.30"), stage=Stage.MAPPING, model="m"))
    await asyncio.sleep(0)
    assert not waiting.done()  # 0.90 held: the fourth call waits instead of stopping the run
    budget.settle(held[0], Decimal("0.10"))  # settled far below its reservation
    assert await waiting == Decimal("0.30")
    budget.settle(held[1], None)  # unknown: the reservation counts
    assert budget.spent == Decimal("0.40")
    assert budget.reserved == Decimal("0.60")
    budget.settle(held[2], Decimal("0.25"))
    budget.settle(Decimal("0.30"), Decimal("0.30"))
    assert budget.spent == Decimal("0.95")
    with pytest.raises(BudgetExceeded) as caught:
        await budget.reserve(Decimal("0.30"), stage=Stage.MAPPING, model="m")
    assert caught.value.message == (
        "the budget of $1.00 for the whole run is reached: $0.9500 spent, and the next call could cost up to "
        "$0.3000 (together $1.2500)"
    )
    assert budget.exhausted


def test_spend_never_passes_the_budget_under_concurrency(
    openai_env: None, respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    # Answers as long as allowed, so real costs sit close to the reservations.
    route = respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI(usage=256))
    out = tmp_path / "out.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "openai:gpt-4o-mini"]
    env = {"SA_MAX_OUTPUT_TOKENS": "256", "SA_OUTPUT_RETRIES": "0"}
    result = runner.invoke(app, [*args, "--max-cost", "0.05", "--concurrency", "3", "--max-in-flight", "12"], env=env)

    assert result.exit_code == 6, result.output
    assert "budget reached" in result.stderr
    assert "--resume" in result.stderr
    run_dir = run_dirs(tmp_path / "runs")[0]
    costs = [e.spend.cost_usd for e in read_events(run_dir) if e.type == "call_finished" and e.spend.cost_usd]
    assert len(costs) == route.call_count > 0
    assert sum(costs) <= Decimal("0.05")
    manifest = read_manifest(run_dir)
    assert manifest is not None
    assert manifest.status == "budget_stopped"
    assert manifest.counts.services_deferred > 0
    written = read_jsonl(out)
    assert 0 < len(written) < 8
    assert not (tmp_path / "out.quarantine.jsonl").exists()  # a budget stop is nobody's failure

    # The same --max-cost on --resume is for the whole run: what the first segment spent counts.
    again = runner.invoke(app, [*args, "--resume", "--max-cost", "0.05"], env=env)
    assert again.exit_code == 6, again.output
    assert "for the whole run is reached" in again.stderr
    assert "before this resume" in again.stderr
    billed = [
        e.spend.cost_usd
        for e in read_events(run_dir)
        if isinstance(e, CallFinished) and e.spend.cost_usd and not e.cached  # a cache hit reports its original cost
    ]
    assert sum(billed) <= Decimal("0.05")  # both segments together stay within it

    resumed = runner.invoke(app, [*args, "--resume", "--max-cost", "1"], env=env)
    assert resumed.exit_code == 0, resumed.output
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == [  # type: ignore[index]
        json.loads(line)["service_id"] for line in (EXAMPLES / "services.jsonl").read_text().splitlines()
    ]
    assert route.call_count == 8 * 21  # across the runs every call was made once: finished ones came from the cache


def test_unknown_prices_refuse_a_budget(openai_env: None, services_file: Path) -> None:
    args = ["run", str(services_file), "-o", "o.jsonl", "--model", "openai:my-local-llm", "--max-cost", "5"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 4
    assert "no price is known for openai:my-local-llm" in refused.stderr
    assert "--allow-unknown-prices" in refused.stderr
    allowed = runner.invoke(app, [*args, "--allow-unknown-prices", "--dry-run"])
    assert allowed.exit_code == 0, allowed.output


class _Answer(BaseModel):
    value: int


def _priced_model(handler: Callable[[httpx2.Request], httpx2.Response]) -> OpenAIChatModel:
    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    return OpenAIChatModel(
        "gpt-4o-mini", provider=OpenAIProvider(base_url="https://llm.test/v1", api_key="k", http_client=client)
    )


async def test_each_request_reserves_on_its_own_and_a_stopped_retry_counts_what_it_spent(openai_env: None) -> None:
    budget = Budget(Decimal("1.00"))
    sent: list[Decimal] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(budget.reserved)  # what this one request holds while it is in flight
        budget.spent = Decimal("0.9999")  # after this answer, no further request fits
        return httpx2.Response(200, json=completion("final_result", {"value": "not a number"}, usage=(1000, 50)))

    gateway = compose_gateway(
        {Stage.FEATURES: _priced_model(handler)},
        max_in_flight=2,
        budget=budget,
        settings=CallSettings(output_retries=2),
    )
    with pytest.raises(BudgetExceeded) as caught:
        await gateway.ask(LLMRequest(Stage.FEATURES, "Be brief.", "Now?", _Answer))

    assert len(sent) == 1  # the output retry was never sent
    assert Decimal(0) < sent[0] < Decimal("0.01")  # one request's worst case, not three attempts'
    spent = caught.value.spent
    assert spent is not None
    assert (spent.requests, spent.input_tokens, spent.output_tokens) == (1, 1000, 50)
    assert Decimal(str(spent.cost_usd)) == Decimal("0.00015") + Decimal("0.00003")
    assert budget.reserved == 0


async def test_a_request_waiting_in_a_batch_keeps_its_reservation_until_its_answer(openai_env: None) -> None:
    from pydantic_ai.messages import ModelMessage, ModelRequest, ModelResponse, UserPromptPart
    from pydantic_ai.models import ModelRequestParameters
    from pydantic_ai.models.wrapper import WrapperModel
    from pydantic_ai.usage import RequestUsage

    from service_ambitions.llm.budget import BudgetedModel

    class Batched(WrapperModel):
        """First a suspended response (the batch), then the answer."""

        async def request(self, messages: list[ModelMessage], *args: object) -> ModelResponse:
            if isinstance(messages[-1], ModelResponse):
                return ModelResponse(
                    parts=[], usage=RequestUsage(input_tokens=10, output_tokens=10), model_name="gpt-4o-mini"
                )
            return ModelResponse(parts=[], state="suspended", provider_response_id="batch:b:c")

    budget = Budget(Decimal("10"))
    model = BudgetedModel(
        Batched(resolve_model("openai:gpt-4o-mini")),
        budget,
        max_output_tokens=100,
        stage=Stage.FEATURES,
        label="m",
        batch=True,
    )
    first = [ModelRequest(parts=[UserPromptPart("p")])]
    pending = await model.request(first, None, ModelRequestParameters())
    held = budget.reserved
    live_budget = Budget(Decimal("10"))
    live = BudgetedModel(
        Batched(resolve_model("openai:gpt-4o-mini")),
        live_budget,
        max_output_tokens=100,
        stage=Stage.FEATURES,
        label="m",
    )
    await live.request(first, None, ModelRequestParameters())
    assert held * 2 == live_budget.reserved  # reserved at batch prices (half, for gpt-4o-mini) while the batch runs
    assert budget.spent == 0
    await model.request([*first, pending], None, ModelRequestParameters())  # the check brings the answer
    assert budget.reserved == 0  # the same reservation, settled once
    assert 0 < budget.spent < held


def test_a_tight_budget_finishes_the_services_it_started_rather_than_starting_more(
    openai_env: None, respx_mock: respx.MockRouter, tmp_path: Path
) -> None:
    # Eight services at once and money for about three: spread over all eight, none would
    # finish (the old behaviour: 0 done, 99 % spent). Started only while the services in
    # flight can still finish, as many finish as the money allows.
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI(usage=256))
    out = tmp_path / "out.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "openai:gpt-4o-mini", "-q"]
    env = {"SA_MAX_OUTPUT_TOKENS": "256", "SA_OUTPUT_RETRIES": "0"}
    result = runner.invoke(app, [*args, "--max-cost", "0.03", "--concurrency", "8", "--max-in-flight", "16"], env=env)
    assert result.exit_code == 6, result.output
    written = read_jsonl(out)
    manifest = read_manifest(run_dirs(tmp_path / "runs")[0])
    assert manifest is not None
    per_service = manifest.counts.spend.cost_usd / max(1, len(written)) if len(written) else Decimal(1)
    assert len(written) >= 2  # about $0.0096 a service: two or three of them fit in $0.03
    assert per_service < Decimal("0.015")  # the money went to finished services, not half-done ones
