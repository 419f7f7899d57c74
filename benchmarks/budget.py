"""How much of a budget a run can use before it stops, and whether 10 % headroom finishes it.

Services go through ``generate`` (what ``run`` calls) against an in-process
OpenAI-compatible endpoint (``httpx2.MockTransport`` speaking the chat-completions wire
format, priced as gpt-4o-mini by genai-prices). First the real cost C of the whole input
is measured without a budget; then runs with ``--max-cost`` below C report the share of
the budget spent when they stop, and a run with a budget of 1.1 x C must complete. Every
figure is also checked against what the endpoint itself billed (the usage blocks of its
responses), so the report-vs-provider comparison comes for free.

Usage:
    uv run python benchmarks/budget.py                  # 20 services
    uv run python benchmarks/budget.py --services 40 --concurrency 8

Goals: >= 90 % of a budget used before a run stops; 100 % completion at 1.1 x C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


class Billing:
    """The endpoint's own books: what it answered and the usage it reported."""

    def __init__(self) -> None:
        self.requests = 0
        self.input_tokens = 0
        self.output_tokens = 0


def _model_factory(billing: Billing) -> Any:
    import httpx2
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI(usage=300)  # prompt tokens counted from the request, 300 answer tokens

    def handler(request: httpx2.Request) -> httpx2.Response:
        response = fake(request)  # type: ignore[arg-type]
        usage = json.loads(response.content)["usage"]
        billing.requests += 1
        billing.input_tokens += usage["prompt_tokens"]
        billing.output_tokens += usage["completion_tokens"]
        return httpx2.Response(200, content=response.content, headers={"content-type": "application/json"})

    client = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    provider = OpenAIProvider(base_url="https://llm.bench/v1", api_key="sk-bench", http_client=client)
    return lambda name: OpenAIChatModel("gpt-4o-mini", provider=provider)


async def _run(folder: Path, source: Path, services: int, concurrency: int, budget: Decimal | None) -> dict[str, Any]:
    from service_ambitions.config.settings import Overrides, load_settings
    from service_ambitions.jobs.run import generate
    from service_ambitions.jobs.setup import prepare
    from service_ambitions.runs.journal import tally_run

    billing = Billing()
    settings = load_settings(
        overrides=Overrides(
            model="openai:gpt-4o-mini",
            concurrency=concurrency,
            max_in_flight=concurrency * 2,
            cache_mode="off",
            runs_dir=folder / "runs",
            max_cost=budget,
        )
    )
    prepared = prepare(settings, model_factory=_model_factory(billing))
    out = folder / f"out-{budget}.jsonl"
    result = await generate(prepared, source, out, folder / f"q-{budget}.jsonl")
    tally = tally_run(result.directory)
    return {
        "status": str(result.status),
        "done": tally.completed,
        "spent": tally.cost,
        "requests": tally.total_requests,
        "input_tokens": tally.spend.input_tokens,
        "output_tokens": tally.spend.output_tokens,
        "billed": (billing.requests, billing.input_tokens, billing.output_tokens),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    rows = [json.loads(line) for line in (ROOT / "examples" / "services.jsonl").read_text().splitlines()]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "services.jsonl"
        source.write_text(
            "".join(json.dumps({**rows[i % len(rows)], "service_id": f"s{i}"}) + "\n" for i in range(args.services))
        )
        full = asyncio.run(_run(folder, source, args.services, args.concurrency, None))
        cost = full["spent"]
        print(f"{args.services} services, no budget: real cost C = ${cost:.4f}, {full['requests']} requests")
        print("budget      status          services  spent       share of budget")
        for factor in (Decimal("0.25"), Decimal("0.5"), Decimal("0.75"), Decimal("1.1")):
            budget = (cost * factor).quantize(Decimal("0.0001"))
            row = asyncio.run(_run(folder, source, args.services, args.concurrency, budget))
            share = row["spent"] / budget * 100
            print(
                f"{factor:>4} x C  {row['status']:<15} {row['done']:>3}/{args.services:<4}  "
                f"${row['spent']:.4f}     {share:.1f} %"
            )
            reported = (row["requests"], row["input_tokens"], row["output_tokens"])
            if reported != row["billed"]:
                print(f"   MISMATCH: reported {reported}, the endpoint billed {row['billed']}")
        reported = (full["requests"], full["input_tokens"], full["output_tokens"])
        agree = "agree" if reported == full["billed"] else f"DISAGREE with the endpoint's {full['billed']}"
        print(f"report vs endpoint (requests, input, output tokens): {reported} {agree}")


if __name__ == "__main__":
    main()
