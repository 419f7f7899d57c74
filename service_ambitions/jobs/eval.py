"""``eval``: two configurations (prompt sets and/or models) over the same sample, side by side.

Each side is an ordinary recorded run of the sample (cached, budgeted, counted in
``report``), so running an evaluation again costs nothing for what has not changed. Its
output is then read three ways: ``check``'s findings and scores, what the roadmaps hold
(maturity levels, features per role, catalogue coverage) and what the run spent. With a
judge model, every roadmap of both sides is also scored against a rubric by that model:
structured calls through the same gateway, cache and budget, recorded as a run of their
own (command ``judge``), so ``report`` counts them too.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict

from service_ambitions.config.settings import Settings
from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import InputError, OutputError, ProviderError, ServiceAmbitionsError
from service_ambitions.core.events import Event, EventSink, RunFinished, RunStarted
from service_ambitions.core.models import ServiceEvolution, Stage
from service_ambitions.core.spend import Spend
from service_ambitions.inputs.entries import Accepted
from service_ambitions.inputs.jsonl import read_services
from service_ambitions.inputs.records import read_records
from service_ambitions.jobs.compose import run_cache, run_gateway
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import Prepared, prepare
from service_ambitions.quality.report import check_file
from service_ambitions.reference.outputs import JudgeScores
from service_ambitions.reference.prompting import PromptSet, load_prompts, render_roadmap, render_service
from service_ambitions.runs.journal import RunCounts, RunJournal, RunStatus
from service_ambitions.runs.resume import open_run
from service_ambitions.runs.tally import Tally

if TYPE_CHECKING:
    from service_ambitions.llm.gateway import Gateway

__all__ = ["CRITERIA", "EvalReport", "JudgeSummary", "Side", "SideSummary", "evaluate", "pick_sample"]

CRITERIA = ("maturity", "features", "progression", "writing", "mapping")
"""What the judge scores, each 1 to 5 (the fields of :class:`JudgeScores`)."""


@dataclass(frozen=True)
class Side:
    """One configuration under evaluation: a label, its settings and how to say what it is."""

    label: str
    settings: Settings
    described: str


class _Summary(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JudgedService(_Summary):
    """One roadmap's scores from the judge (none when the call failed, with the reason)."""

    service_id: str
    scores: dict[str, int] | None = None
    mean: float | None = None
    comment: str | None = None
    failed: str | None = None


class JudgeSummary(_Summary):
    """What the judge made of one side: the mean of each criterion, and each roadmap's scores."""

    model: str
    run_id: str
    means: dict[str, float]
    overall: float | None
    services: list[JudgedService]
    spend: Spend


class SideSummary(_Summary):
    """One side's figures: quality, content, spend and (with a judge) the judge's scores."""

    label: str
    described: str
    run_id: str
    output: str
    services: int
    failed: int
    clean: int
    mean_score: float
    findings: int
    findings_by_rule: dict[str, int]
    maturity: dict[int, int]
    """How many features scored each CMMI level."""
    features_per_role: dict[str, float]
    """Mean features a role gets at a plateau."""
    coverage: dict[str, float]
    """Per catalogue, the share of features that rely on at least one of its items."""
    items_used: dict[str, int]
    """Per catalogue, the distinct items any feature relies on."""
    spend: Spend
    """What the side's run spent (cache hits cost nothing)."""
    judge: JudgeSummary | None = None


class EvalReport(_Summary):
    """Both sides over the same sample: what ``eval`` prints and ``eval --json`` dumps."""

    directory: str
    sample: list[str]
    sides: list[SideSummary]


def pick_sample(services: Path, size: int | None, seed: int, *, max_line_bytes: int) -> list[Accepted]:
    """A reproducible sample of ``services``: all of them when ``size`` is None or not smaller.

    Raises:
        InputError: the file cannot be read, or holds no valid service.
    """
    accepted = [
        entry for entry in read_services(services, max_line_bytes=max_line_bytes) if isinstance(entry, Accepted)
    ]
    if not accepted:
        raise InputError(f"{services} holds no valid service to evaluate on", hint="run validate on it first")
    if size is None or size >= len(accepted):
        return accepted
    chosen = sorted(random.Random(seed).sample(range(len(accepted)), size))  # nosec B311  # a reproducible sample of services, not a secret
    return [accepted[index] for index in chosen]


async def evaluate(
    sides: Sequence[Side],
    sample: Sequence[Accepted],
    directory: Path,
    *,
    judge_model: str | None = None,
    judge_prompts: Path | None = None,
    on_event: Callable[[str, Event], None] | None = None,
) -> EvalReport:
    """Run every side over ``sample`` into ``directory`` and compare what came back.

    ``on_event`` hears every event of every run, with the side's label (``label/judge``
    for the judge's run).

    Raises:
        ConfigError: a side's settings, models or prompts are unusable.
        OutputError: ``directory`` cannot be written.
    """
    sample_path = directory / "sample.jsonl"
    await asyncio.to_thread(_write_sample, sample_path, sample)
    summaries = []
    for side in sides:
        summary = await _run_side(side, sample_path, directory, on_event)
        if judge_model is not None:
            judge = await _judge_side(side, judge_model, judge_prompts, directory, summary, on_event)
            summary = summary.model_copy(update={"judge": judge})
        summaries.append(summary)
    return EvalReport(directory=str(directory), sample=[entry.service.service_id for entry in sample], sides=summaries)


def _write_sample(path: Path, sample: Sequence[Accepted]) -> None:
    lines = "".join(entry.service.model_dump_json(exclude_unset=True) + "\n" for entry in sample)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(lines, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc


def _listener(label: str, tally: Tally, on_event: Callable[[str, Event], None] | None) -> EventSink:
    def hear(event: Event) -> None:
        tally(event)
        if on_event is not None:
            on_event(label, event)

    return hear


async def _run_side(
    side: Side, sample_path: Path, directory: Path, on_event: Callable[[str, Event], None] | None
) -> SideSummary:
    prepared = prepare(side.settings, resolve_models=False)
    tally = Tally()
    output = directory / f"{side.label}.jsonl"
    result = await generate(
        prepared,
        sample_path,
        output,
        directory / f"{side.label}.quarantine.jsonl",
        on_event=_listener(side.label, tally, on_event),
    )
    quality = await asyncio.to_thread(check_file, output, side.settings.quality)
    records = await asyncio.to_thread(lambda: list(read_records(output).records.values()))
    return SideSummary(
        label=side.label,
        described=side.described,
        run_id=result.run_id,
        output=str(output),
        services=len(records),
        failed=tally.failed,
        clean=quality.clean,
        mean_score=round(quality.mean_score(), 1),
        findings=quality.findings,
        findings_by_rule=dict(quality.by_rule()),
        **_content(records),
        spend=tally.spend,
    )


def _content(records: Sequence[ServiceEvolution]) -> dict[str, dict[int, int] | dict[str, float] | dict[str, int]]:
    """What the roadmaps hold: maturity levels, features per role and plateau, catalogue coverage."""
    maturity: Counter[int] = Counter()
    per_role: dict[str, list[int]] = defaultdict(list)
    relying: Counter[str] = Counter()
    used: dict[str, set[str]] = defaultdict(set)
    features = 0
    catalogues: set[str] = set()
    for record in records:
        for result in record.plateaus:
            counts: Counter[str] = Counter(feature.customer_type for feature in result.features)
            for role, count in counts.items():
                per_role[role].append(count)
            for feature in result.features:
                features += 1
                if feature.score is not None:
                    maturity[feature.score.level] += 1
                for field, items in feature.mappings.items():
                    catalogues.add(field)
                    if items:
                        relying[field] += 1
                        used[field].update(item.item for item in items)
    return {
        "maturity": {level: maturity[level] for level in range(1, 6)},
        "features_per_role": {role: round(sum(n) / len(n), 2) for role, n in sorted(per_role.items())},
        "coverage": {field: round(relying[field] / features, 3) if features else 0.0 for field in sorted(catalogues)},
        "items_used": {field: len(used[field]) for field in sorted(catalogues)},
    }


async def _judge_side(
    side: Side,
    judge_model: str,
    judge_prompts: Path | None,
    directory: Path,
    summary: SideSummary,
    on_event: Callable[[str, Event], None] | None,
) -> JudgeSummary:
    """Score every roadmap of one side with the judge, as a recorded run of its own."""
    settings = side.settings.model_copy(
        update={"models": side.settings.models.model_copy(update={"judge": judge_model})}
    )
    prepared = prepare(settings, stages=[Stage.JUDGE])
    prompts = load_prompts(judge_prompts)  # one rubric for both sides, whatever prompts each side uses
    records = list(read_records(Path(summary.output)).records.values())
    output = directory / f"{side.label}.judge.jsonl"
    tally = Tally()
    emit = _listener(f"{side.label}/judge", tally, on_event)
    opened = await asyncio.to_thread(
        open_run,
        settings.runs_directory(),
        Path(summary.output),
        output,
        directory / f"{side.label}.judge.quarantine.jsonl",
        prepared.identity("judge"),
    )
    judged: list[JudgedService] = []
    with ExitStack() as stack:
        recorder = stack.enter_context(RunJournal(opened.directory, opened.manifest, clock=utc_now))

        def record(event: Event) -> None:
            recorder(event)
            emit(event)

        record(RunStarted(run_id=opened.manifest.run_id))
        status, reason = RunStatus.FAILED, None
        try:
            cache = run_cache(settings, stack, record)
            gateway = functools.cache(lambda: run_gateway(prepared, cache, record))
            judged = await _judge_all(prepared, prompts, gateway, records, record, settings.concurrency)
            status = RunStatus.COMPLETED
        except (asyncio.CancelledError, KeyboardInterrupt):
            status, reason = RunStatus.INTERRUPTED, "interrupted"
            raise
        except ServiceAmbitionsError as exc:
            reason = exc.user_message
            raise
        finally:
            record(RunFinished(run_id=opened.manifest.run_id, status=status, reason=reason))
            recorder.finish(status, RunCounts.from_tally(tally), reason)
    await asyncio.to_thread(_write_judged, output, judged)
    scored = [j for j in judged if j.scores is not None]
    means = (
        {c: round(sum(j.scores[c] for j in scored if j.scores) / len(scored), 2) for c in CRITERIA} if scored else {}
    )
    return JudgeSummary(
        model=judge_model,
        run_id=opened.manifest.run_id,
        means=means,
        overall=round(sum(means.values()) / len(means), 2) if means else None,
        services=judged,
        spend=tally.spend,
    )


async def _judge_all(
    prepared: Prepared,
    prompts: PromptSet,
    gateway: Callable[[], Gateway],
    records: Sequence[ServiceEvolution],
    emit: EventSink,
    concurrency: int,
) -> list[JudgedService]:
    from service_ambitions.llm.requests import LLMRequest
    from service_ambitions.pipeline.calls import MeasuredCalls

    calls = MeasuredCalls(gateway, emit)
    instructions = prompts.instructions("judge")
    slots = asyncio.Semaphore(concurrency)

    async def one(record: ServiceEvolution) -> JudgedService:
        prompt = prompts.request("judge", service=render_service(record.service), roadmap=render_roadmap(record))
        request: LLMRequest[BaseModel] = LLMRequest(Stage.JUDGE, instructions, prompt, JudgeScores)
        async with slots:
            try:
                answer = await calls.ask(request, record.service)
            except ProviderError as exc:  # one roadmap the judge could not score; the others still count
                return JudgedService(service_id=record.service.service_id, failed=exc.user_message)
        scores = JudgeScores.model_validate(answer.output.model_dump())
        return JudgedService(
            service_id=record.service.service_id,
            scores={criterion: getattr(scores, criterion) for criterion in CRITERIA},
            mean=round(scores.mean, 2),
            comment=scores.comment,
        )

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(record)) for record in records]
    except BaseExceptionGroup as grouped:
        # A budget stop or a refused key ends the judging; the first such error says why.
        stop = next((e for e in grouped.exceptions if isinstance(e, ServiceAmbitionsError)), None)
        if stop is not None:
            raise stop from grouped
        raise
    return [task.result() for task in tasks]


def _write_judged(path: Path, judged: Sequence[JudgedService]) -> None:
    lines = "".join(json.dumps(item.model_dump(mode="json", exclude_none=True)) + "\n" for item in judged)
    try:
        path.write_text(lines, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
