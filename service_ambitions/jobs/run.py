"""Running a job: ``run`` (:func:`generate`) and ``map`` (:func:`remap`), recorded from start to end."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from pydantic_ai import UsageLimits

from ..cache import CacheMode, ResultCache
from ..clock import utc_now
from ..errors import (
    CacheUnavailable,
    ServiceAmbitionsError,
)
from ..events import CacheProblem, Event, EventSink, ProviderPaused, RunFinished, RunStarted, Tally
from ..jsonl import Accepted, JsonlWriter, Rejected, read_services
from ..llm.budget import Budget
from ..llm.gateway import Gateway, provider_unwell
from ..llm.limits import CircuitBreaker, RateLimiter
from ..models import Meta, ReferenceHashes, Stage, StageModels
from ..pipeline import Pipeline, RecordSink
from ..reference import Catalogue
from ..runs import (
    TERMINATE,
    Manifest,
    OpenedRun,
    RunCounts,
    RunRecorder,
    RunStatus,
    open_run,
    output_lock,
    restore_input_order,
    tally_run,
)
from ..telemetry import tracer
from .inputs import chosen_catalogues, map_entries, not_done
from .setup import Prepared, open_cache

__all__ = ["RunResult", "generate", "remap"]


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its record is."""

    run_id: str
    directory: Path
    already_done: int
    """Services skipped because a resumed run found them in the output."""
    status: RunStatus
    budget_stop: str | None = None
    """Why the budget stopped the run, when it did."""
    resumed: bool = False
    """True when this was a later segment of an earlier run."""
    fresh_start: bool = False
    """True when --resume found no earlier run for the output and started a new one."""
    unstarted: int = 0
    """Services never started because the budget ran out (deferred ones are counted by events)."""


async def generate(
    prepared: Prepared,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    *,
    resume: bool = False,
    resume_run_id: str | None = None,
    force: bool = False,
    max_services: int | None = None,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Run every stage for every service of ``input_path`` and write ``output_path``.

    The output file is created even when no service succeeds; the quarantine file only
    when something is quarantined. Every run is recorded (manifest and events) under
    the runs directory. With ``resume``, the run that wrote ``output_path`` (or
    ``resume_run_id``) continues: services already in the output are skipped and the
    rest appended.

    Raises:
        InputError: the input file cannot be read.
        ResumeMismatch: nothing to resume, or the input or result-affecting settings
            changed since (unless ``force``).
    """
    max_line_bytes = prepared.settings.max_line_bytes
    return await _run_job(
        prepared,
        "run",
        (input_path, output_path, quarantine_path),
        lambda: read_services(input_path, max_line_bytes=max_line_bytes),
        max_services=max_services,
        resume=resume,
        run_id=resume_run_id,
        force=force,
        on_event=on_event,
        clock=clock,
    )


async def _open(
    prepared: Prepared,
    command: str,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    clock: Callable[[], datetime],
    **resume: Any,
) -> OpenedRun:
    """The run's record, new or resumed; hashing the input and reading back a long output is off the loop."""
    return await asyncio.to_thread(
        functools.partial(
            open_run,
            prepared.settings.runs_directory(),
            input_path,
            output_path,
            quarantine_path,
            prepared.identity(command),
            clock=clock,
            **resume,
        )
    )


def _restore_input_order(entries: Iterable[Accepted | Rejected], output_path: Path, quarantine_path: Path) -> None:
    positions = {entry.service.service_id: entry.line for entry in entries if isinstance(entry, Accepted)}
    restore_input_order(output_path, quarantine_path, positions)


async def remap(
    prepared: Prepared,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    *,
    catalogues: Sequence[str] | None = None,
    service_file: Path | None = None,
    service_id: str | None = None,
    resume: bool = False,
    resume_run_id: str | None = None,
    force: bool = False,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Map the features of ``input_path`` again and write current-schema evolutions to ``output_path``.

    The input holds evolution records of any known schema version or features-only
    records (see ``map_input.py``). Only ``catalogues`` (default: every catalogue of the
    reference data) are mapped; a record's other mappings are kept. The run goes through
    the same gateway, cache, limits and run records as :func:`generate`; ``-`` as output
    path writes to standard output. With ``resume``, the map run that wrote
    ``output_path`` (or ``resume_run_id``) continues as :func:`generate` continues a run.

    Raises:
        ConfigError: a catalogue name is not in the reference data.
        InputError: the input or service file cannot be read, or no line is for ``service_id``.
        ResumeMismatch: the map run to resume does not match the input or settings (unless ``force``).
    """
    chosen = chosen_catalogues(prepared.reference, catalogues)
    return await _run_job(
        prepared,
        "map",
        (input_path, output_path, quarantine_path),
        lambda: map_entries(prepared, input_path, catalogues, service_file, service_id)[1],
        remap=chosen,
        resume=resume,
        run_id=resume_run_id,
        force=force,
        on_event=on_event,
        clock=clock,
    )


async def _run_job(
    prepared: Prepared,
    command: str,
    paths: tuple[Path, Path, Path],
    read: Callable[[], Iterable[Accepted | Rejected]],
    *,
    remap: Sequence[Catalogue] = (),
    max_services: int | None = None,
    resume: bool,
    run_id: str | None,
    force: bool,
    on_event: EventSink | None,
    clock: Callable[[], datetime],
) -> RunResult:
    """One recorded job, new or resumed, holding its output's lock throughout.

    ``read`` gives the job's entries (services or records to map), afresh each time: a
    resumed job reads them once to skip what is done, and once more at the end to put
    the output back in input order.
    """
    input_path, output_path, quarantine_path = paths
    with output_lock(output_path, prepared.settings.runs_directory()):
        opened = await _open(
            prepared,
            command,
            input_path,
            output_path,
            quarantine_path,
            clock,
            resume=resume,
            run_id=run_id,
            force=force,
        )
        left = not_done(read(), opened.done, opened.seen_lines)
        outputs = _Outputs(output_path, quarantine_path, append=opened.resuming)
        job = _Job(prepared, left, outputs, max_services, clock, remap=remap)
        result = await _recorded(
            job,
            opened.directory,
            opened.manifest,
            resumed=opened.resuming,
            already_done=len(opened.done),
            on_event=on_event,
        )
        if opened.resuming:
            await asyncio.to_thread(_restore_input_order, read(), output_path, quarantine_path)
        return replace(result, fresh_start=resume and not opened.resuming)


@dataclass(frozen=True)
class _Job:
    """What one recorded run does: which entries, where to, and (for ``map``) which catalogues."""

    prepared: Prepared
    entries: Iterable[Accepted | Rejected]
    outputs: _Outputs
    max_services: int | None
    clock: Callable[[], datetime]
    remap: Sequence[Catalogue] = ()


async def _recorded(
    job: _Job,
    directory: Path,
    manifest: Manifest,
    *,
    resumed: bool,
    already_done: int,
    on_event: EventSink | None,
) -> RunResult:
    """Run ``job`` with its manifest and events recorded, whatever way it ends."""
    settings = job.prepared.settings
    tally = Tally()
    with ExitStack() as stack:
        recorder = stack.enter_context(RunRecorder(directory, manifest, clock=job.clock))

        def emit(event: Event) -> None:
            tally(event)
            recorder(event)
            if on_event is not None:
                on_event(event)

        emit(RunStarted(run_id=manifest.run_id, resumed=resumed, already_done=already_done))
        status, reason, unstarted = RunStatus.FAILED, None, 0
        try:
            cache = None
            if settings.cache_mode is not CacheMode.OFF:
                try:
                    cache = stack.enter_context(open_cache(settings))
                except CacheUnavailable as exc:
                    # Answers cost money, not correctness: a damaged or unreachable cache
                    # is reported once and the run goes on without it.
                    emit(CacheProblem(reason=exc.user_message, reading=True))
            gateway = _run_gateway(job.prepared, cache, emit)
            attributes: dict[str, str | bool] = {
                "run_id": manifest.run_id,
                "resumed": resumed,
                "command": manifest.command,
            }
            with tracer.start_as_current_span("run", attributes=attributes):
                pipeline = await _run(job, gateway, manifest.run_id, emit)
            status = RunStatus.COMPLETED
            if pipeline.budget_stop is not None:
                status, reason = RunStatus.BUDGET_STOPPED, pipeline.budget_stop.message
                unstarted = pipeline.unstarted
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            if isinstance(exc, asyncio.CancelledError) and exc.args == (TERMINATE,):
                status, reason = RunStatus.TERMINATED, "terminated (SIGTERM)"
            else:
                status, reason = RunStatus.INTERRUPTED, "interrupted (Ctrl-C)"
            raise
        except ServiceAmbitionsError as exc:
            reason = exc.user_message
            raise
        finally:
            emit(RunFinished(run_id=manifest.run_id, status=status, reason=reason))
            # A resumed run's counts are those of all its segments, as `report` adds them up.
            whole_run = tally_run(directory) if resumed and recorder.problem is None else tally
            recorder.finish(status, RunCounts.from_tally(whole_run), reason)
    if recorder.problem is not None:
        # The outputs are whole; the run's own records are not: say so rather than pretend.
        raise recorder.problem
    budget_reason = reason if status is RunStatus.BUDGET_STOPPED else None
    return RunResult(
        manifest.run_id, directory, already_done, status, budget_reason, resumed=resumed, unstarted=unstarted
    )


def _run_gateway(prepared: Prepared, cache: ResultCache | None, emit: EventSink) -> Gateway:
    """The gateway of a real run: the settings' cache mode, budget, rate limits and breaker."""
    settings = prepared.settings
    limits = settings.limits
    return Gateway(
        prepared.models,
        max_in_flight=settings.max_in_flight,
        model_settings=prepared.model_settings(),
        output_retries=settings.output_retries,
        cache=cache,
        cache_mode=settings.cache_mode,
        on_event=emit,
        budget=Budget(settings.max_cost) if settings.max_cost is not None else None,
        rate=RateLimiter(requests_per_minute=limits.requests_per_minute, tokens_per_minute=limits.tokens_per_minute),
        breaker=CircuitBreaker(
            threshold=limits.breaker_failures,
            cooldown_s=limits.breaker_cooldown_s,
            is_failure=provider_unwell,
            on_change=lambda provider, paused: emit(ProviderPaused(provider=provider, paused_s=paused)),
        ),
        usage_limits=UsageLimits(
            request_limit=None,
            input_tokens_limit=limits.call_input_tokens,
            output_tokens_limit=limits.call_output_tokens,
        ),
        reuse_imported=settings.reuse_imported,
    )


def _remapped_reference(
    original: ReferenceHashes | None, current: ReferenceHashes, mapped: Sequence[Catalogue]
) -> ReferenceHashes | None:
    """The reference a record mapped again was made with: its own, with the mapped catalogues' and prompts' now."""
    if original is None:
        return None  # a migrated record that never said; mixing would claim what is not known
    catalogues = {**original.catalogues, **{c.field: current.catalogues[c.field] for c in mapped}}
    return original.model_copy(update={"catalogues": catalogues, "prompts": current.prompts})


@dataclass(frozen=True)
class _Outputs:
    output: Path
    quarantine: Path
    append: bool


async def _run(job: _Job, gateway: Gateway, run_id: str, on_event: EventSink) -> Pipeline:
    prepared, clock, outputs = job.prepared, job.clock, job.outputs
    settings = prepared.settings
    stage_models = StageModels(
        **{stage.value: gateway.model_name(stage) if stage in prepared.models else "input" for stage in Stage}
    )
    hashes = prepared.reference.hashes
    reference = ReferenceHashes(
        plateaus=hashes["plateaus"],
        roles=hashes["roles"],
        catalogues={c.field: hashes[f"catalogue:{c.field}"] for c in prepared.reference.catalogues},
        prompts=prepared.prompts.sha256,
    )
    generator = f"service-ambitions {version('service-ambitions')}"

    def meta(dropped: int, original: Meta | None) -> Meta:
        models = stage_models
        made_with: ReferenceHashes | None = reference
        if original is not None:
            # Mapped again: the other stages are the original's; only the mapping is new.
            models = original.models.model_copy(update={"mapping": stage_models.mapping})
            made_with = _remapped_reference(original.reference, reference, job.remap)
        return Meta(
            run_id=run_id,
            created=clock(),
            generator=generator,
            models=models,
            seed=settings.seed,
            synthetic=prepared.synthetic or (original is not None and original.synthetic),
            reference=made_with,
            dropped_items=dropped,
            legacy=original.legacy if original is not None else None,
        )

    pipeline = Pipeline(prepared.book, gateway, meta=meta, strict=settings.strict, on_event=on_event, remap=job.remap)
    with (
        JsonlWriter(outputs.output, append=outputs.append, durable=True) as output,
        JsonlWriter(outputs.quarantine, append=outputs.append, durable=True) as quarantine,
    ):
        output.open()
        await pipeline.run(
            job.entries,
            RecordSink(output.write, quarantine.write),
            concurrency=settings.concurrency,
            max_services=job.max_services,
        )
    return pipeline
