"""Pipeline behaviour with scripted FunctionModels: ordering, overlap, failures and bounded memory."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse, ToolCallPart, UserPromptPart
from pydantic_ai.models.function import AgentInfo, FunctionModel

from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.events import Event, ServiceCompleted, ServiceStarted
from service_ambitions.core.models import Meta, ReferenceHashes, Service, ServiceEvolution, StageModels
from service_ambitions.inputs.entries import Accepted, QuarantineRecord
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import prepare
from service_ambitions.llm.gateway import compose_gateway
from service_ambitions.llm.offline import offline_answer, offline_model
from service_ambitions.pipeline.run import Pipeline, RecordSink
from service_ambitions.runs.tally import Tally

from .conftest import read_jsonl

OFFLINE = offline_model()
_OFFLINE_FUNCTION = offline_answer

Script = Callable[[str, list[ModelMessage], AgentInfo], Awaitable[ModelResponse | None]]


def scripted(script: Script) -> FunctionModel:
    """A model that runs ``script`` first and falls back to the offline model's answer."""

    async def answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        prompt = next(
            str(part.content)
            for message in reversed(messages)
            for part in getattr(message, "parts", [])
            if isinstance(part, UserPromptPart)
        )
        return await script(prompt, messages, info) or _OFFLINE_FUNCTION(messages, info)

    return FunctionModel(answer, model_name="scripted")


def services(count: int) -> list[Accepted]:
    return [
        Accepted(i, Service(service_id=f"svc-{i}", name=f"Service {i}", description="Helps students."))
        for i in range(1, count + 1)
    ]


def meta(dropped: int, original: Meta | None = None, recorded_by: StageModels | None = None) -> Meta:
    hashes = ReferenceHashes(plateaus="p", roles="r", catalogues={}, prompts="x")
    models = recorded_by or StageModels(descriptions="m", features="m", mapping="m")
    return Meta(
        run_id="r",
        created=datetime(2026, 1, 1, tzinfo=UTC),
        generator="test",
        models=models,
        seed=0,
        synthetic=True,
        reference=hashes,
        dropped_items=dropped,
    )


async def run_pipeline(
    model: FunctionModel,
    entries: list[Accepted],
    *,
    concurrency: int = 4,
    on_event: Callable[[Event], None] | None = None,
) -> tuple[list[ServiceEvolution], list[QuarantineRecord]]:
    prepared = prepare(load_settings(), model_factory=lambda name: model)
    gateway = compose_gateway(prepared.models, max_in_flight=8)
    records: list[ServiceEvolution] = []
    quarantined: list[QuarantineRecord] = []
    pipeline = Pipeline(prepared.book, gateway, meta=meta, on_event=on_event)
    await pipeline.run(entries, RecordSink(records.append, quarantined.append), concurrency=concurrency)
    return records, quarantined


async def test_records_are_written_in_input_order_whatever_finishes_first() -> None:
    gate = asyncio.Event()
    others = 0
    written_before_gate: list[str] = []

    async def script(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> None:
        nonlocal others
        if "(svc-1)" in prompt and not gate.is_set():
            await asyncio.wait_for(gate.wait(), 10)
        elif "(svc-1)" not in prompt and "Service: " in prompt:
            others += 1
            if others == 2 * 6:  # descriptions + 5 features calls of svc-2 and svc-3
                gate.set()

    def on_event(event: Event) -> None:
        if isinstance(event, ServiceCompleted) and not gate.is_set():
            written_before_gate.append(event.service_id)

    records, _ = await run_pipeline(scripted(script), services(3), on_event=on_event)

    assert [r.service.service_id for r in records] == ["svc-1", "svc-2", "svc-3"]
    assert written_before_gate == []


async def test_mapping_of_a_plateau_overlaps_the_next_plateaus_features() -> None:
    second_plateau_started = asyncio.Event()

    async def script(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> None:
        if "\n## Plateau 2:" in prompt:  # the features call of plateau 2
            second_plateau_started.set()
        if "## Catalogue:" in prompt and "at plateau 1:" in prompt:
            # Deadlocks (and times out) unless features of plateau 2 are requested meanwhile.
            await asyncio.wait_for(second_plateau_started.wait(), 10)

    records, quarantined = await run_pipeline(scripted(script), services(1))
    assert len(records) == 1
    assert quarantined == []


async def test_a_failing_service_is_quarantined_and_the_others_complete() -> None:
    async def script(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse | None:
        if "(svc-2)" in prompt and "\n## Plateau 3:" in prompt:
            return ModelResponse(parts=[ToolCallPart(info.output_tools[0].name, {"learners": "nonsense"})])
        return None

    tally = Tally()
    records, quarantined = await run_pipeline(scripted(script), services(3), on_event=tally)

    assert [r.service.service_id for r in records] == ["svc-1", "svc-3"]
    assert len(quarantined) == 1
    failure = quarantined[0]
    assert (failure.kind, failure.service_id, failure.stage, failure.line) == ("service", "svc-2", "features", 2)
    assert "did not match the schema" in failure.reason
    assert failure.raw is not None
    assert '"service_id":"svc-2"' in failure.raw
    assert failure.transcript is not None
    kinds = [m["kind"] for m in failure.transcript]
    assert kinds.count("response") == 3  # the first answer and its 2 output retries, each sent back with the errors
    assert (tally.completed, tally.failed) == (2, 1)


class _Ahead:
    """How far reading has run ahead of writing: services started less services written, at most."""

    def __init__(self) -> None:
        self.started = self.written = self.most = 0

    def __call__(self, event: Event) -> None:
        if isinstance(event, ServiceStarted):
            self.started += 1
            self.most = max(self.most, self.started - self.written)
        elif isinstance(event, ServiceCompleted):
            self.written += 1


async def test_reading_ahead_is_bounded_while_the_oldest_service_is_slow() -> None:
    gate = asyncio.Event()
    ahead = _Ahead()

    async def script(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> None:
        if "(svc-1)" in prompt and not gate.is_set():
            await asyncio.wait_for(gate.wait(), 10)

    async def release_when_stalled() -> None:
        # Open the gate once no new service has started for many loop turns: the
        # pipeline has read as far ahead as it ever will while svc-1 is stuck.
        seen = -1
        while ahead.started != seen:
            seen = ahead.started
            for _ in range(200):
                await asyncio.sleep(0)
        gate.set()

    watcher = asyncio.create_task(release_when_stalled())
    records, _ = await run_pipeline(scripted(script), services(12), concurrency=2, on_event=ahead)
    await watcher

    assert len(records) == 12
    assert ahead.most <= 2 * 2 + 2  # window of 2 x concurrency, plus one being awaited and one being queued


async def test_generate_writes_files_and_returns_the_run_id(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"service_id": "a", "name": "A", "description": "Helps."}\n')
    prepared = prepare(load_settings(overrides=Overrides(model="offline")))
    fixed = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
    result = await generate(prepared, source, tmp_path / "out.jsonl", tmp_path / "q.jsonl", clock=lambda: fixed)

    run_id = result.run_id
    assert re.fullmatch(r"20260501T120000Z-[0-9a-f]{6}", run_id)
    assert result.directory == tmp_path / "runs" / run_id
    record = read_jsonl(tmp_path / "out.jsonl")[0]
    assert record["meta"]["run_id"] == run_id  # type: ignore[index]
    assert record["meta"]["created"] == "2026-05-01T12:00:00Z"  # type: ignore[index]
    assert not (tmp_path / "q.jsonl").exists()


async def test_a_runs_recorded_time_starts_when_the_job_began_not_when_its_record_opened(tmp_path: Path) -> None:
    from datetime import timedelta

    from service_ambitions.runs.journal import read_manifest

    source = tmp_path / "in.jsonl"
    source.write_text('{"service_id": "a", "name": "A", "description": "Helps."}\n')
    prepared = prepare(load_settings(overrides=Overrides(model="offline")))
    ticks = iter(datetime(2026, 5, 1, 12, 0, tzinfo=UTC) + timedelta(seconds=n) for n in range(10_000))
    result = await generate(prepared, source, tmp_path / "out.jsonl", tmp_path / "q.jsonl", clock=lambda: next(ticks))
    manifest = read_manifest(result.directory)
    assert manifest is not None
    assert manifest.started == datetime(2026, 5, 1, 12, 0, tzinfo=UTC)  # the job's first tick: what `report` counts


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_feature_ids_are_unique_within_each_service(concurrency: int) -> None:
    records, _ = await run_pipeline(OFFLINE, services(2), concurrency=concurrency)
    for record in records:
        ids = [f.feature_id for p in record.plateaus for f in p.features]
        assert len(ids) == len(set(ids))
