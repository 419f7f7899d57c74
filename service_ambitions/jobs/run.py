"""Running a job: ``run`` (:func:`generate`) and ``map`` (:func:`remap`), recorded from start to end."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import InputError, OutputClosed, ServiceAmbitionsError
from service_ambitions.core.events import (
    BudgetWarning,
    Event,
    EventSink,
    FileWritten,
    RunFinished,
    RunStarted,
    ServiceSkipped,
)
from service_ambitions.core.telemetry import tracer
from service_ambitions.inputs.entries import Accepted, Rejected
from service_ambitions.inputs.jsonl import JsonlWriter, is_empty, read_services
from service_ambitions.jobs.batch import run_batched
from service_ambitions.jobs.compose import assemble_pipeline, batch_lane, run_cache, run_gateway
from service_ambitions.jobs.inputs import answered_by_snapshots, map_reader, not_done
from service_ambitions.jobs.setup import Prepared
from service_ambitions.jobs.workers import WorkersOutcome, run_job_in_workers
from service_ambitions.pipeline.run import Pipeline, RecordSink
from service_ambitions.reference.data import Catalogue
from service_ambitions.runs.journal import (
    TERMINATE,
    Manifest,
    RunCounts,
    RunJournal,
    RunStatus,
    file_written,
    tally_run,
)
from service_ambitions.runs.lock import output_lock
from service_ambitions.runs.resume import OpenedRun, open_run, restore_input_order
from service_ambitions.runs.suspended import SuspendedStore
from service_ambitions.runs.tally import Tally

if TYPE_CHECKING:
    from service_ambitions.cache.store import ResultCache
    from service_ambitions.llm.batching import BatchLane
    from service_ambitions.llm.gateway import Gateway

__all__ = ["Continuation", "JobPaths", "JobRequest", "MapSelection", "RunResult", "generate", "remap", "start_job"]


@dataclass(frozen=True)
class JobPaths:
    """Where a job reads and writes."""

    input: Path
    output: Path
    """``-`` for standard output (``map``)."""
    quarantine: Path


@dataclass(frozen=True)
class Continuation:
    """How a job relates to earlier runs: a new run, or one carried on."""

    resume: bool = False
    """Continue the run that wrote the output (or ``run_id``): what is done is skipped."""
    run_id: str | None = None
    force: bool = False
    """Resume even though the input or settings changed (a changed setting starts a new output)."""
    detach: bool = False
    """Batch mode: end once everything left waits on provider batches."""


@dataclass(frozen=True)
class MapSelection:
    """What ``map`` maps again: which services and to which catalogues."""

    catalogues: Sequence[str] | None = None
    """Catalogue fields; None: every catalogue of the reference data."""
    service_file: Path | None = None
    """Services for features-only records that name a service_id but carry no service."""
    service_id: str | None = None
    """Only this service."""


@dataclass(frozen=True)
class JobRequest:
    """One job as a face asks for it: ``run`` (``mapping`` None) or ``map``."""

    paths: JobPaths
    continuation: Continuation = Continuation()
    max_services: int | None = None
    """``run`` only: the first N services."""
    mapping: MapSelection | None = None

    @property
    def command(self) -> str:
        """The command the job is: ``run`` or ``map``."""
        return "run" if self.mapping is None else "map"


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its journal is."""

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
    whole_run: Tally | None = None
    """For a resumed run, the counts of all its segments, as ``report`` adds them up."""
    stop_reason: str | None = None
    """Why the run stopped before finishing (budget, detached), as its journal says."""
    previous_output: Path | None = None
    """Where the earlier output at the same path was kept (a new run never truncates one)."""
    restarted: str | None = None
    """Why ``--resume --force`` started a new run instead of continuing (other settings)."""


async def start_job(
    prepared: Prepared,
    request: JobRequest,
    *,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Run ``request``, journaled from start to end: ``run`` (see :func:`generate`) or ``map`` (:func:`remap`).

    Raises:
        InputError: the input (or ``map``'s service file) cannot be read, or holds nothing to do.
        ConfigError: ``map`` names a catalogue the reference data does not have.
        ResumeMismatch: nothing to resume, or the input or result-affecting settings changed
            since (unless ``force``).
    """
    began = clock()
    paths = request.paths
    if request.mapping is not None:
        selection = request.mapping
        chosen, records = map_reader(
            prepared, paths.input, selection.catalogues, selection.service_file, selection.service_id
        )
        return await _run_job(prepared, request, records, remap=chosen, on_event=on_event, clock=clock)
    max_line_bytes = prepared.settings.max_line_bytes
    if await asyncio.to_thread(is_empty, paths.input):
        raise InputError(f"{paths.input} holds no service: it is empty", hint="give one JSON object per line")

    def read() -> Iterator[Accepted | Rejected]:
        return read_services(paths.input, max_line_bytes=max_line_bytes)

    if not await asyncio.to_thread(answered_by_snapshots, prepared, read):
        # Some service needs a model: resolve them now, so a missing key or an unknown
        # model is one clear error before the run starts, not after its cached part.
        prepared.models  # noqa: B018
    return await _run_job(prepared, request, read, on_event=on_event, clock=clock, began=began)


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
    detach: bool = False,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Run every stage for every service of ``input_path`` and write ``output_path``.

    The output file is created even when no service succeeds; the quarantine file only
    when something is quarantined. Every run is recorded (manifest and events) under
    the runs directory. With ``resume``, the run that wrote ``output_path`` (or
    ``resume_run_id``) continues: services already in the output are skipped and the
    rest appended. In batch mode (``settings.batch``) with ``detach``, the run ends once
    everything left waits on provider batches (status ``detached``).

    Raises:
        InputError: the input file cannot be read.
        ResumeMismatch: nothing to resume, or the input or result-affecting settings
            changed since (unless ``force``).
    """
    paths = JobPaths(input_path, output_path, quarantine_path)
    carry = Continuation(resume=resume, run_id=resume_run_id, force=force, detach=detach)
    return await start_job(prepared, JobRequest(paths, carry, max_services), on_event=on_event, clock=clock)


async def _open(
    prepared: Prepared,
    command: str,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    clock: Callable[[], datetime],
    *,
    resume: bool,
    run_id: str | None,
    force: bool,
    started: datetime | None,
) -> OpenedRun:
    """The run's journal, new or resumed; hashing the input and reading back a long output is off the loop."""
    return await asyncio.to_thread(
        functools.partial(
            open_run,
            prepared.settings.runs_directory(),
            input_path,
            output_path,
            quarantine_path,
            prepared.identity(command),
            clock=clock,
            resume=resume,
            run_id=run_id,
            force=force,
            started=started,
        )
    )


def _restore_input_order(
    read: Callable[[], Iterable[Accepted | Rejected]], output_path: Path, quarantine_path: Path
) -> None:
    positions = {entry.service.service_id: entry.line for entry in read() if isinstance(entry, Accepted)}
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
    detach: bool = False,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Map the features of ``input_path`` again and write current-schema evolutions to ``output_path``.

    The input holds evolution records of any known schema version or features-only
    records (see ``map_input.py``). Only ``catalogues`` (default: every catalogue of the
    reference data) are mapped; a record's other mappings are kept. The run goes through
    the same gateway, cache, limits and run journals as :func:`generate`; ``-`` as output
    path writes to standard output. With ``resume``, the map run that wrote
    ``output_path`` (or ``resume_run_id``) continues as :func:`generate` continues a run.

    Raises:
        ConfigError: a catalogue name is not in the reference data.
        InputError: the input or service file cannot be read, or no line is for ``service_id``.
        ResumeMismatch: the map run to resume does not match the input or settings (unless ``force``).
    """
    paths = JobPaths(input_path, output_path, quarantine_path)
    carry = Continuation(resume=resume, run_id=resume_run_id, force=force, detach=detach)
    selection = MapSelection(catalogues=catalogues, service_file=service_file, service_id=service_id)
    return await start_job(prepared, JobRequest(paths, carry, mapping=selection), on_event=on_event, clock=clock)


async def _run_job(
    prepared: Prepared,
    request: JobRequest,
    read: Callable[[], Iterable[Accepted | Rejected]],
    *,
    remap: Sequence[Catalogue] = (),
    on_event: EventSink | None,
    clock: Callable[[], datetime],
    began: datetime | None = None,
) -> RunResult:
    """One recorded job, new or resumed, holding its output's lock throughout.

    ``read`` gives the job's entries (services or records to map), afresh each time: a
    resumed job reads them once to skip what is done, and once more at the end to put
    the output back in input order.
    """
    input_path, output_path, quarantine_path = request.paths.input, request.paths.output, request.paths.quarantine
    carry = request.continuation
    with output_lock(output_path, prepared.settings.runs_directory()):
        opened = await _open(
            prepared,
            request.command,
            input_path,
            output_path,
            quarantine_path,
            clock,
            resume=carry.resume,
            run_id=carry.run_id,
            force=carry.force,
            started=began,
        )
        outputs = _Outputs(output_path, quarantine_path, append=opened.resuming)
        # Closed whatever way the job ends: a run stopped mid-input, or before it read a
        # line, leaves no file open.
        source = read()
        with _closed(source), contextlib.closing(not_done(source, opened.done, opened.seen_lines)) as left:
            # A resumed job puts its output back in input order before the run ends (and says its files).
            restore = functools.partial(_restore_input_order, read, output_path, quarantine_path)
            job = _Job(
                prepared,
                left,
                outputs,
                request.max_services,
                clock,
                remap=remap,
                detach=carry.detach,
                restore=restore if opened.resuming else None,
            )
            result = await _journaled(
                job,
                opened.directory,
                opened.manifest,
                resumed=opened.resuming,
                done=sorted(opened.done),
                on_event=on_event,
            )
        return replace(
            result,
            fresh_start=carry.resume and not opened.resuming,
            previous_output=opened.previous_output,
            restarted=opened.restarted,
        )


@dataclass(frozen=True)
class _Job:
    """What one recorded run does: which entries, where to, and (for ``map``) which catalogues."""

    prepared: Prepared
    entries: Iterable[Accepted | Rejected]
    outputs: _Outputs
    max_services: int | None
    clock: Callable[[], datetime]
    remap: Sequence[Catalogue] = ()
    detach: bool = False
    restore: Callable[[], None] | None = None
    """For a resumed job: puts the output back in input order once the run has done its part."""


async def _journaled(
    job: _Job,
    directory: Path,
    manifest: Manifest,
    *,
    resumed: bool,
    done: Sequence[str],
    on_event: EventSink | None,
) -> RunResult:
    """Run ``job`` with its manifest and events recorded, whatever way it ends."""
    settings = job.prepared.settings
    tally = Tally()
    with ExitStack() as stack:
        recorder = stack.enter_context(RunJournal(directory, manifest, clock=job.clock))

        warn_at = settings.warn_amount()
        # --max-cost and --warn-cost are for the whole run: a resumed run's earlier segments count.
        spent_before = tally_run(directory).cost if resumed else Decimal(0)
        emit = _RunSink(tally, recorder, on_event, _SoftBudget(warn_at, spent_before, settings.max_cost))

        emit(RunStarted(run_id=manifest.run_id, resumed=resumed, already_done=len(done)))
        for service_id in done:  # in the output already: not done again
            emit(ServiceSkipped(service_id=service_id))
        status, reason, unstarted = RunStatus.FAILED, None, 0
        try:
            cache = run_cache(settings, stack, emit)
            waiting = stack.enter_context(SuspendedStore(directory)) if settings.batch.enabled else None
            lane = batch_lane(job.prepared, waiting, emit, detach=job.detach) if waiting is not None else None
            gateway = _lazy(lambda: run_gateway(job.prepared, cache, emit, lane, spent_before=spent_before))
            attributes: dict[str, str | bool] = {
                "run_id": manifest.run_id,
                "resumed": resumed,
                "command": manifest.command,
            }
            with tracer.start_as_current_span("run", attributes=attributes):
                pipeline, detached = await _run(job, gateway, cache, manifest.run_id, emit, lane)
            status, reason, unstarted = _how_it_ended(pipeline, detached, waiting)
            if job.restore is not None:
                await asyncio.to_thread(job.restore)
        except BaseException as exc:
            status, reason = _stopped_by(exc)
            raise
        finally:
            for written in await asyncio.to_thread(_files_written, job.outputs):
                emit(written)
            emit(RunFinished(run_id=manifest.run_id, status=status, reason=reason))
            # A resumed run's counts are those of all its segments, as `report` adds them up.
            whole_run = tally_run(directory) if resumed and recorder.problem is None else None
            recorder.finish(status, RunCounts.from_tally(whole_run or tally), reason)
    if recorder.problem is not None:
        # The outputs are whole; the run's own records are not: say so rather than pretend.
        raise recorder.problem
    budget_reason = reason if status is RunStatus.BUDGET_STOPPED else None
    return RunResult(
        manifest.run_id,
        directory,
        len(done),
        status,
        budget_reason,
        resumed=resumed,
        unstarted=unstarted,
        whole_run=whole_run,
        stop_reason=reason,
    )


@dataclass(frozen=True)
class _SoftBudget:
    """The spending at which a run warns (``warn_cost``), what earlier segments spent, and the budget."""

    warn_at: Decimal | None
    spent_earlier: Decimal
    budget: Decimal | None


class _RunSink:
    """Every event of a run: counted, journaled, passed on; and the soft budget watched."""

    def __init__(self, tally: Tally, journal: RunJournal, then: EventSink | None, soft: _SoftBudget) -> None:
        self._tally = tally
        self._journal = journal
        self._then = then
        self._soft = soft

    def __call__(self, event: Event) -> None:
        self._tally(event)
        self._journal(event)
        if self._then is not None:
            self._then(event)
        soft, tally = self._soft, self._tally
        if soft.warn_at is not None and tally.budget_warning is None:
            spent = soft.spent_earlier + tally.cost
            if spent >= soft.warn_at:
                self(BudgetWarning(spent_usd=spent, threshold_usd=soft.warn_at, budget_usd=soft.budget))


def _files_written(outputs: _Outputs) -> list[FileWritten]:
    """The output and quarantine files as they stand (standard output is no file)."""
    found = [(outputs.output, "output"), (outputs.quarantine, "quarantine")]
    return [file_written(path, why) for path, why in found if str(path) != "-" and path.is_file()]


def _how_it_ended(
    pipeline: Pipeline | WorkersOutcome, detached: bool, waiting: SuspendedStore | None
) -> tuple[RunStatus, str | None, int]:
    """A run that returned: done, detached (batch mode), or stopped by its budget; and what it never started."""
    if detached:
        return RunStatus.DETACHED, f"{len(waiting or ())} requests wait in provider batches", 0
    if pipeline.budget_stop is not None:
        return RunStatus.BUDGET_STOPPED, pipeline.budget_stop.message, pipeline.unstarted
    return RunStatus.COMPLETED, None, 0


def _stopped_by(exc: BaseException) -> tuple[RunStatus, str | None]:
    """What a run that raised ``exc`` is recorded as, and why."""
    if isinstance(exc, asyncio.CancelledError) and exc.args == (TERMINATE,):
        return RunStatus.TERMINATED, "terminated (SIGTERM)"
    if isinstance(exc, asyncio.CancelledError | KeyboardInterrupt):
        return RunStatus.INTERRUPTED, "interrupted (Ctrl-C)"
    if isinstance(exc, OutputClosed):
        return RunStatus.INTERRUPTED, exc.message  # the reader left: --resume continues
    if isinstance(exc, ServiceAmbitionsError):
        return RunStatus.FAILED, exc.user_message
    return RunStatus.FAILED, None


@dataclass(frozen=True)
class _Outputs:
    output: Path
    quarantine: Path
    append: bool


@contextlib.contextmanager
def _closed(entries: Iterable[Accepted | Rejected]) -> Iterator[None]:
    """Close ``entries`` on the way out when it holds an open file (a reader, not a list)."""
    try:
        yield
    finally:
        close = getattr(entries, "close", None)
        if callable(close):
            close()


def _lazy(build: Callable[[], Gateway]) -> Callable[[], Gateway]:
    """``build``, called once, at the first call that needs the gateway: the calls and the records' meta share it."""
    return functools.cache(build)


async def _run(
    job: _Job,
    gateway: Callable[[], Gateway],
    cache: ResultCache | None,
    run_id: str,
    on_event: EventSink,
    lane: BatchLane | None,
) -> tuple[Pipeline | WorkersOutcome, bool]:
    """The pipeline over the job's entries, and whether it detached (batch mode)."""
    prepared, outputs = job.prepared, job.outputs
    settings = prepared.settings
    if settings.workers > 1 and lane is None and not job.remap:
        paths = (outputs.output, outputs.quarantine)
        spread = run_job_in_workers(
            settings, run_id, job.entries, paths, on_event, append=outputs.append, max_services=job.max_services
        )
        return await spread, False
    pipeline = assemble_pipeline(
        prepared, gateway, run_id=run_id, emit=on_event, cache=cache, clock=job.clock, remap=job.remap
    )
    with (
        JsonlWriter(outputs.output, append=outputs.append, durable=True) as output,
        JsonlWriter(outputs.quarantine, append=outputs.append, durable=True) as quarantine,
    ):
        output.open()
        work = pipeline.run(
            job.entries,
            RecordSink(output.write, quarantine.write),
            # In batch mode every service moves at once, so each wave's requests share batches.
            concurrency=settings.batch.services if lane is not None else settings.concurrency,
            max_services=job.max_services,
        )
        if lane is not None:
            return pipeline, await run_batched(work, lane)
        await work
    return pipeline, False
