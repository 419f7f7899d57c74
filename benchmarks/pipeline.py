"""Pipeline throughput, overhead and memory (prints figures; not a test).

Runs N services through ``generate`` (the library call behind ``run``) with a model that
answers after a fixed latency L, at most C calls in flight, and prints:

- wall time against the ideal bound max(total calls x L / C, critical-path calls x L);
- client CPU per LLM call: process CPU minus the CPU the fake model spent writing its
  answers (a real provider does that work on its own machines);
- peak memory, and resident memory as services complete (it should stay flat).

Usage:
    uv run python benchmarks/pipeline.py                       # the standard set below
    uv run python benchmarks/pipeline.py --services 50 --latency 0.1 --in-flight 5
    uv run python benchmarks/pipeline.py --services 10000 --latency 0 --small-reference

Targets (2 cores): ratio <= 1.10 at C=5 and <= 1.25 at C=20 with L=100 ms; CPU per call
<= 12 ms; memory flat for N=10,000.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import tempfile
import time
from pathlib import Path

from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from service_ambitions.config.settings import Settings
from service_ambitions.core.events import Event, ServiceCompleted
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import prepare
from service_ambitions.llm.offline import offline_answer


def write_services(path: Path, count: int) -> None:
    with path.open("w") as handle:
        for i in range(count):
            row = {
                "service_id": f"svc-{i:05d}",
                "name": f"Student service {i}",
                "description": "Helps students enrol, book appointments and track their requests online.",
                "jobs_to_be_done": ["Get an answer quickly", {"name": "Know what happens next", "role": "learners"}],
            }
            handle.write(json.dumps(row) + "\n")


def write_small_reference(folder: Path) -> dict[str, object]:
    """One plateau, one role, one 15-item catalogue: 3 calls per service, for the memory run."""
    (folder / "plateaus.json").write_text(
        json.dumps([{"id": "now", "name": "Now", "description": "The service as it is."}])
    )
    (folder / "roles.json").write_text(json.dumps([{"role_id": "learners", "name": "Learners"}]))
    items = [{"id": f"APP-{i:02d}", "name": f"Application {i}", "description": "Does things."} for i in range(15)]
    (folder / "apps.json").write_text(json.dumps(items))
    return {
        "plateaus": folder / "plateaus.json",
        "roles": folder / "roles.json",
        "catalogues": [folder / "apps.json"],
    }


def rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


async def measure(services: int, latency: float, in_flight: int, small: bool) -> None:
    offline = offline_answer
    model_cpu = 0.0

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        nonlocal model_cpu
        if latency:
            await asyncio.sleep(latency)
        started = time.process_time()
        response = offline(messages, info)
        assert isinstance(response, ModelResponse)
        # A provider reports usage with its answer; without this FunctionModel would
        # tokenise the whole conversation on the client to estimate it.
        response.usage = RequestUsage(input_tokens=len(str(messages[-1])) // 4, output_tokens=200)
        model_cpu += time.process_time() - started
        return response

    model = FunctionModel(answer, model_name="latency")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        reference = write_small_reference(folder) if small else {}
        extra = {"features_per_role": {"min": 1, "max": 1}} if small else {}
        settings = Settings(
            model="offline",
            max_in_flight=in_flight,
            concurrency=in_flight,
            reference=reference,
            cache_mode="off",  # measure the calls, not the cache (benchmarks/cache.py does that)
            runs_dir=folder / "runs",
            **extra,
        )
        prepared = prepare(settings, model_factory=lambda name: model)
        source = folder / "services.jsonl"
        write_services(source, services)
        plateaus, catalogues = len(prepared.reference.plateaus), len(prepared.reference.catalogues)
        calls = 1 + plateaus + plateaus * catalogues  # descriptions, features per plateau, mapping per catalogue
        total_calls = calls * services
        critical = 1 + len(prepared.reference.plateaus) + 1  # descriptions, each plateau's features, last mapping
        samples: list[tuple[int, float]] = []
        done = 0

        def on_event(event: Event) -> None:
            nonlocal done
            if isinstance(event, ServiceCompleted):
                done += 1
                if done % max(1, services // 10) == 0:
                    samples.append((done, rss_mib()))

        cpu0, wall0 = time.process_time(), time.perf_counter()
        await generate(prepared, source, folder / "out.jsonl", folder / "q.jsonl", on_event=on_event)
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0

    ideal = max(total_calls * latency / in_flight, critical * latency)
    ratio = f"{wall / ideal:.3f}" if ideal else "n/a"
    print(
        f"N={services:>6} L={latency * 1000:>4.0f}ms C={in_flight:>3} calls={total_calls:>7} ({calls}/service) "
        f"wall={wall:8.2f}s ideal={ideal:8.2f}s ratio={ratio:>6} "
        f"client CPU/call={(cpu - model_cpu) / total_calls * 1000:5.2f}ms "
        f"(fake model {model_cpu / total_calls * 1000:4.2f}ms) "
        f"peak RSS={resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:6.1f}MiB"
    )
    if samples and (small or services >= 1000):
        print("  RSS as services complete: " + ", ".join(f"{n}:{mib:.0f}MiB" for n, mib in samples))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int)
    parser.add_argument("--latency", type=float, help="seconds per call")
    parser.add_argument("--in-flight", type=int, default=5)
    parser.add_argument("--small-reference", action="store_true")
    parser.add_argument(
        "--telemetry",
        action="store_true",
        help="configure logfire as `run` does when a token is set, but export nothing",
    )
    args = parser.parse_args()
    if args.telemetry:
        import logfire

        logfire.configure(send_to_logfire=False, console=False, service_name="bench", inspect_arguments=False)
        logfire.instrument_pydantic_ai(include_content=False)
    if args.services is not None:
        asyncio.run(measure(args.services, args.latency or 0.0, args.in_flight, args.small_reference))
        return
    for services, latency, in_flight, small in ((40, 0.1, 5, False), (80, 0.1, 20, False), (200, 0.0, 8, False)):
        asyncio.run(measure(services, latency, in_flight, small))


if __name__ == "__main__":
    main()
