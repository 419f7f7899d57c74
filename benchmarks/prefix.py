"""How much of each stage's prompt a provider can serve from its prefix cache, and what a service costs.

    uv run python benchmarks/prefix.py [--model gpt-4o-mini]

Runs the examples through ``generate`` with the offline model and no cache, rebuilds every
request from the written records (as ``run`` sends them: output tool schema, instructions,
request), and applies OpenAI's automatic prompt caching rule to the sequence: a request's
cached tokens are the longest leading part it shares with an earlier request, counted
from 1,024 tokens in steps of 128. Tokens are estimated at four characters each (what an
OpenAI-compatible test server reports); the share is what matters. Prices are the
model's list prices from genai-prices, input side only (the answers are the model's).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from genai_prices import Usage, calc_price  # noqa: E402

from service_ambitions.config.settings import Overrides, load_settings  # noqa: E402
from service_ambitions.core.models import ServiceEvolution  # noqa: E402
from service_ambitions.jobs.run import generate  # noqa: E402
from service_ambitions.jobs.setup import prepare  # noqa: E402
from service_ambitions.llm.requests import LLMRequest  # noqa: E402

EXAMPLES = ROOT / "examples"
MIN_PREFIX, STEP = 1024, 128


def sent(request: LLMRequest[object]) -> str:
    """What the provider reads, in order: the output tool's schema, the instructions, the request."""
    schema = json.dumps(request.output_type.model_json_schema())  # type: ignore[attr-defined]
    return f"{schema}\n{request.instructions}\n{request.prompt}"


def cached_tokens(text: str, earlier: list[str]) -> int:
    """Tokens of ``text``'s longest leading run shared with an earlier request, OpenAI's way."""
    best = 0
    for other in earlier:
        limit = min(len(text), len(other))
        n = 0
        while n < limit and text[n] == other[n]:
            n += 1
        best = max(best, n)
    tokens = best // 4
    return 0 if tokens < MIN_PREFIX else MIN_PREFIX + (tokens - MIN_PREFIX) // STEP * STEP


async def requests_of_examples(work: Path) -> tuple[int, list[tuple[str, LLMRequest[object]]]]:
    settings = load_settings(
        None, overrides=Overrides(model="offline", cache_mode="off", runs_dir=work / "runs", cache_dir=work / "c")
    )
    prepared = prepare(settings)
    out = work / "out.jsonl"
    await generate(prepared, EXAMPLES / "services.jsonl", out, work / "q.jsonl")
    book = prepared.book
    requests: list[tuple[str, LLMRequest[object]]] = []
    records = [ServiceEvolution.model_validate_json(line) for line in out.read_text().splitlines() if line.strip()]
    plateaus = {p.level: p for p in book.reference.plateaus}
    for evolution in records:
        service = evolution.service
        requests.append(("descriptions", book.descriptions_request(service)))
        earlier = []
        for result in evolution.plateaus:
            plateau = plateaus[result.plateau]
            requests.append(("features", book.features_request(service, plateau, result.service_description, earlier)))
            for catalogue in book.reference.catalogues:
                mapping = book.mapping_request(service, plateau, catalogue, result.features, result.service_description)
                requests.append(("mapping", mapping))
            earlier += [(plateau, feature) for feature in result.features]
    return len(records), requests


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gpt-4o-mini", help="an OpenAI model genai-prices knows")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        services, requests = await requests_of_examples(Path(temporary))
    seen: list[str] = []
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for stage, request in requests:
        text = sent(request)
        row = totals[stage]
        row[0] += 1
        row[1] += len(text) // 4
        row[2] += cached_tokens(text, seen)
        seen.append(text)
    print(f"{services} services, {len(requests)} requests, prefix cache as OpenAI applies it\n")
    print("| stage | calls | prompt tokens / call | cacheable prefix |")
    print("|---|---|---|---|")
    for stage, (calls, tokens, cached) in totals.items():
        print(f"| {stage} | {calls} | {tokens // calls:,} | {cached / tokens:.0%} |")
    tokens = sum(row[1] for row in totals.values())
    cached = sum(row[2] for row in totals.values())
    print(f"| all | {len(requests)} | {tokens // len(requests):,} | {cached / tokens:.0%} |\n")
    with_cache = calc_price(Usage(input_tokens=tokens, cache_read_tokens=cached), args.model, provider_id="openai")
    without = calc_price(Usage(input_tokens=tokens), args.model, provider_id="openai")
    print(f"prompt tokens per service: {tokens // services:,}")
    print(
        f"prompt cost per service at {args.model} list prices: ${with_cache.total_price / services:.5f} "
        f"with prefix caching, ${without.total_price / services:.5f} without"
    )


if __name__ == "__main__":
    asyncio.run(main())
