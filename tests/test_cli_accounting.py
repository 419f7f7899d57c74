"""Every request that reached the provider is counted, and every view of a run agrees.

The provider's own numbers are the reference: the usage blocks of every 200 response it
sent, summed, must equal what `report --json`, the run summary and `runs` show, also
when answers fail validation, services end in quarantine, and the run is resumed.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
import respx
from genai_prices import Usage, calc_price
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import read_jsonl
from .fake_openai import COMPLETIONS, completion
from .schema_fill import SchemaFiller

runner = CliRunner()


class Provider(SchemaFiller):
    """Schema-valid answers, except that chosen services get answers that break the schema."""

    broken: set[str]

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        prompt = json.dumps(body["messages"])
        if any(f"({service_id})" in prompt for service_id in self.broken) and "justification" in json.dumps(
            body["tools"]
        ):
            self.requests.append(body)
            usage = (2_000, 7)
            self.answers.append({"prompt_tokens": usage[0], "completion_tokens": usage[1]})
            return httpx.Response(200, json=completion("final_result", {"nonsense": 1}, body["model"], usage=usage))
        return super().__call__(request)


def _price(answers: list[dict[str, int]]) -> Decimal:
    return sum(
        (
            calc_price(
                Usage(input_tokens=a["prompt_tokens"], output_tokens=a["completion_tokens"]),
                "gpt-4o-mini",
                provider_id="openai",
            ).total_price
            for a in answers
        ),
        Decimal(0),
    )


@pytest.fixture
def provider(respx_mock: respx.MockRouter, openai_env: None) -> Provider:
    fake = Provider(seed=3)
    fake.broken = {"svc-2"}
    respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    return fake


def test_failed_and_resumed_calls_are_counted_as_the_provider_billed(
    provider: Provider, services_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    args = ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini"]
    first = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 9, first.output
    assert len(provider.requests) == 2 * 21 + 1 + 3  # svc-2: descriptions, then 3 invalid feature answers
    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)
    totals = report["totals"]
    assert totals["spend"]["requests"] == len(provider.answers)
    assert totals["spend"]["input_tokens"] == sum(a["prompt_tokens"] for a in provider.answers)
    assert totals["spend"]["output_tokens"] == sum(a["completion_tokens"] for a in provider.answers)
    assert Decimal(totals["spend"]["cost_usd"]) == _price(provider.answers)
    assert totals["failed_calls"] == 1
    assert f"${Decimal(totals['spend']['cost_usd']):.4f}" in first.stdout  # the summary says the same

    # The provider recovers; the resumed segment retries svc-2 and the run is one run, one total.
    provider.broken = set()
    resumed = runner.invoke(app, [*args, "--resume"], env={"COLUMNS": "200"})
    assert resumed.exit_code == 0, resumed.output
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == ["svc-1", "svc-2", "svc-3"]  # type: ignore[index]
    assert not (tmp_path / "out.quarantine.jsonl").exists()  # its failure is gone with it
    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)
    totals = report["totals"]
    assert totals["spend"]["requests"] == len(provider.answers) == 2 * 21 + 4 + 20
    assert totals["spend"]["input_tokens"] == sum(a["prompt_tokens"] for a in provider.answers)
    assert Decimal(totals["spend"]["cost_usd"]) == _price(provider.answers)
    assert report["failures"] == []
    spent = f"${Decimal(totals['spend']['cost_usd']):.4f}"
    assert re.search(rf"spent\s+│\s+{re.escape(spent)}", resumed.stdout)  # the whole run, not the segment
    listing = runner.invoke(app, ["runs", "list"], env={"COLUMNS": "200"})
    assert spent in listing.stdout
    assert listing.stdout.count("completed") == 1
