"""Prompt and completion tokens per service by stage, and what a shortlist saves on a big catalogue.

    uv run python benchmarks/prompts.py

Runs the examples through ``generate`` (what ``run`` calls) with the offline model and no
cache, and reads the tokens of every call from the run's events. The offline model's
counts are pydantic-ai's estimates for function models (about one token per word, plus
50 per request), not a provider's tokenizer; a provider counts the JSON Schema of the
output tool too, which is why the second input column (prompt, instructions and output
schema at four characters a token, as the budget estimates) is higher.

Then maps the same features against a 500-item catalogue with and without a shortlist.
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

from service_ambitions.config.cache_mode import CacheMode  # noqa: E402
from service_ambitions.config.settings import Overrides, Settings, load_settings  # noqa: E402
from service_ambitions.core.events import CallFinished, Event  # noqa: E402
from service_ambitions.core.models import Feature, FeatureScore, Service, ServiceEvolution, Stage  # noqa: E402
from service_ambitions.jobs.run import generate  # noqa: E402
from service_ambitions.jobs.setup import prepare  # noqa: E402
from service_ambitions.llm.gateway import compose_gateway  # noqa: E402
from service_ambitions.pipeline.stages import FeatureIds  # noqa: E402

EXAMPLES = ROOT / "examples"


def synthetic_catalogue(count: int) -> dict[str, object]:
    """A big catalogue of plausible university applications (the same shape as the tests')."""
    subjects = ["library", "timetable", "payroll", "admissions", "research", "estates", "finance", "careers"]
    kinds = ["portal", "database", "workflow", "analytics", "mobile app", "integration", "archive", "scheduler"]
    verbs = ["loans", "clash alerts", "grants", "offers", "room bookings", "invoices", "placements", "ethics"]
    items = [
        {
            "id": f"app-{i:03d}",
            "name": f"{subjects[i % 8].title()} {kinds[(i // 8) % 8]} {i}",
            "description": f"Handles {subjects[i % 8]} {verbs[(i // 64) % 8]} for staff and students.",
        }
        for i in range(count)
    ]
    return {"field": "applications", "label": "Applications", "items": items}


async def per_stage(config: Path | None, services: Path, work: Path) -> dict[str, object]:
    """Tokens per service by stage, from the events of one uncached offline run."""
    flags = Overrides(model="offline", cache_mode=CacheMode.OFF, runs_dir=work / "runs", cache_dir=work / "cache")
    settings = load_settings(config, overrides=flags)
    prepared = prepare(settings)
    gateway = compose_gateway(prepared.models, max_in_flight=1)
    events: list[Event] = []
    out = work / "out.jsonl"
    await generate(prepared, services, out, work / "q.jsonl", on_event=events.append)
    count = sum(1 for line in out.read_text().splitlines() if line.strip())
    calls: dict[Stage, list[CallFinished]] = defaultdict(list)
    for event in events:
        if isinstance(event, CallFinished):
            calls[event.stage].append(event)
    # Prompts rebuilt from the written records, to estimate what a provider would count.
    estimated: dict[Stage, int] = defaultdict(int)
    book = prepared.book
    for line in out.read_text().splitlines():
        evolution = ServiceEvolution.model_validate_json(line)
        service = evolution.service
        estimated[Stage.DESCRIPTIONS] += gateway.estimate_input_tokens(book.descriptions_request(service))
        earlier = []
        plateaus = {p.level: p for p in book.reference.plateaus}
        for result in evolution.plateaus:
            plateau = plateaus[result.plateau]
            request = book.features_request(service, plateau, result.service_description, earlier)
            estimated[Stage.FEATURES] += gateway.estimate_input_tokens(request)
            for catalogue in book.reference.catalogues:
                mapping = book.mapping_request(service, plateau, catalogue, result.features)
                estimated[Stage.MAPPING] += gateway.estimate_input_tokens(mapping)
            earlier += [(plateau, feature) for feature in result.features]
    return {
        stage.value: {
            "calls_per_service": len(events_) / count,
            "input_tokens_per_service": sum(e.input_tokens for e in events_) / count,
            "input_tokens_per_service_chars_div_4": estimated[stage] / count,
            "output_tokens_per_service": sum(e.output_tokens for e in events_) / count,
        }
        for stage, events_ in calls.items()
    } | {"services": count}


def shortlist_figures(work: Path, size: int) -> dict[str, float]:
    """Input tokens of one mapping call on a 500-item catalogue, whole and shortlisted."""
    path = work / "applications-500.json"
    path.write_text(json.dumps(synthetic_catalogue(500)))
    figures = {}
    for label, threshold in (("whole catalogue", None), ("shortlist", 150)):
        settings = Settings(
            model="offline",
            reference={"catalogues": [str(path)]},
            shortlist={"threshold": threshold, "size": size},
        )
        prepared = prepare(settings)
        gateway = compose_gateway(prepared.models, max_in_flight=1)
        book = prepared.book
        catalogue = book.reference.catalogues[0]
        service = Service(service_id="svc-library", name="Library", description="Lends books and e-resources.")
        score = FeatureScore(level=2, label="Managed", justification="Repeatable.")
        ids = FeatureIds(service.service_id)
        names = [
            ("Online loan renewals", "Students renew library loans online."),
            ("Timetable clash alerts", "Learners are told at once when two sessions clash."),
            ("Research grant tracker", "Academics follow grant applications and ethics approvals."),
            ("Room booking", "Staff book estates rooms from one portal."),
            ("Placement finder", "Careers placements matched to each learner."),
            ("Invoice status", "Partners see finance invoices and payments."),
        ]
        features = [
            Feature(
                feature_id=ids.next(1, "learners", name),
                name=name,
                description=text,
                score=score,
                customer_type="learners",
            )
            for name, text in names
        ]
        request = book.mapping_request(service, book.reference.plateaus[0], catalogue, features)
        figures[label] = gateway.estimate_input_tokens(request)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shortlist-size", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        work = Path(temporary)
        for name, config in (("examples/services.jsonl (packaged reference)", None), ("council example", "council")):
            directory = work / name.split()[0].replace("/", "_")
            directory.mkdir()
            if config is None:
                figures = await per_stage(None, EXAMPLES / "services.jsonl", directory)
            else:
                figures = await per_stage(EXAMPLES / "council.yaml", EXAMPLES / "services.jsonl", directory)
            print(f"\n## {name}: {figures.pop('services')} services, tokens per service (offline estimates)\n")
            print("| stage | calls | input (offline model) | input (chars / 4, with schema) | output |")
            print("|---|---|---|---|---|")
            totals = [0.0, 0.0, 0.0]
            for stage, row in figures.items():
                assert isinstance(row, dict)
                print(
                    f"| {stage} | {row['calls_per_service']:.0f} | {row['input_tokens_per_service']:,.0f} "
                    f"| {row['input_tokens_per_service_chars_div_4']:,.0f} | {row['output_tokens_per_service']:,.0f} |"
                )
                totals[0] += row["input_tokens_per_service"]
                totals[1] += row["input_tokens_per_service_chars_div_4"]
                totals[2] += row["output_tokens_per_service"]
            print(f"| total | | {totals[0]:,.0f} | {totals[1]:,.0f} | {totals[2]:,.0f} |")
        figures = shortlist_figures(work, args.shortlist_size)
        size = args.shortlist_size
        print(f"\n## One mapping call, 6 features, 500-item catalogue (chars / 4, shortlist size {size})\n")
        print("| catalogue sent | input tokens |")
        print("|---|---|")
        for label, tokens in figures.items():
            print(f"| {label} | {tokens:,} |")
        print(f"\nsaving: {1 - figures['shortlist'] / figures['whole catalogue']:.0%} of the call's input tokens")


if __name__ == "__main__":
    asyncio.run(main())
