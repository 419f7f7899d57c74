"""The tail every job command shares: progress, the run, the summary, the exit code.

``run`` and ``map`` differ in what they ask the library to do, not in how a job is
watched and reported, so both hand their job to :func:`run_job`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from pydantic import BaseModel, ConfigDict
from rich.console import Console

from service_ambitions.cli.safe import plain
from service_ambitions.cli.state import AppState
from service_ambitions.core.errors import EXIT_DETACHED, EXIT_QUARANTINED, BudgetExceeded
from service_ambitions.runs.live import count_lines

if TYPE_CHECKING:
    from service_ambitions.config.settings import Settings
    from service_ambitions.core.events import Event, EventSink
    from service_ambitions.jobs.plan import Estimate
    from service_ambitions.jobs.run import JobRequest, MapSelection, RunResult
    from service_ambitions.jobs.setup import Prepared
    from service_ambitions.runs.live import LivePlan
    from service_ambitions.runs.tally import Tally

__all__ = [
    "EXIT_BUDGET",
    "EXIT_QUARANTINED",
    "JobDisplay",
    "JobFlags",
    "Terminated",
    "batch_mode",
    "execute",
    "heartbeat",
    "json_lines",
    "launch_job",
    "quarantine_for",
    "run_job",
    "show_plan",
]

EXIT_BUDGET = BudgetExceeded.exit_code
"""The budget stopped the run; what was finished is written."""


@dataclass(frozen=True)
class JobDisplay:
    """How a job shows itself: what the user asked for on the command line."""

    quiet: bool = False
    """Only errors and the final one-line result."""
    json_logs: bool = False
    """Every event as a JSON line on stderr instead of a progress display."""
    total: int | None = None
    """Services expected, for the progress bar; None when unknown."""
    interrupted_hint: str | None = None
    """The command that continues the job after Ctrl-C."""
    trace_ids: bool = False
    """At the end, list failed services with the provider's request id."""
    check: bool = False
    """At the end, the quality summary of the output (``check``'s findings, counted)."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on 127.0.0.1 at this port while the job runs."""


class JobFlags(BaseModel):
    """The flags ``run`` and ``map`` share: how the job relates to earlier runs, and how it shows itself."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    output: Path
    quarantine: Path | None = None
    resume: bool = False
    run_id: str | None = None
    force: bool = False
    detach: bool = False
    dry_run: bool = False
    as_json: bool = False
    quiet: bool = False
    json_logs: bool = False
    allow_prompt_logging: bool = False
    trace_ids: bool = False
    check: bool = False
    metrics_port: int | None = None

    @classmethod
    def given(cls, ctx: typer.Context) -> JobFlags:
        """These flags as the command line gave them: ``run`` and ``map`` name them alike (the rest is ignored)."""
        return cls.model_validate(ctx.params)


def launch_job(
    ctx: typer.Context,
    settings: Settings,
    input_path: Path,
    flags: JobFlags,
    *,
    mapping: MapSelection | None = None,
    max_services: int | None = None,
) -> None:
    """The tail ``run`` and ``map`` share: batch mode, prepare, plan (``--dry-run``) or run, summary, exit code.

    ``mapping`` makes the job ``map``; without it, it is ``run``.
    """
    import dataclasses

    from service_ambitions.cli.invocation import given_command, resume_hint
    from service_ambitions.core.telemetry import configure_telemetry
    from service_ambitions.jobs.run import Continuation, JobPaths, JobRequest
    from service_ambitions.jobs.setup import prepare

    state: AppState = ctx.obj
    command = "run" if mapping is None else "map"
    settings = batch_mode(
        state,
        settings,
        output=flags.output,
        run_id=flags.run_id,
        command=command,
        resume=flags.resume,
        detach=flags.detach,
    )
    command_line = given_command(ctx)
    if mapping is None:
        # A run resolves its models once it knows a service needs one (a fully cached re-run never does).
        prepared = prepare(settings, resolve_models=flags.dry_run)
    else:
        prepared = prepare(settings, stages=("mapping",))
    prepared = dataclasses.replace(prepared, command_line=command_line)
    if flags.dry_run:
        from service_ambitions.jobs.plan import estimate, estimate_remap

        if mapping is None:
            plan = estimate(prepared, input_path, max_services=max_services)
        else:
            plan = estimate_remap(
                prepared,
                input_path,
                catalogues=mapping.catalogues,
                service_file=mapping.service_file,
                service_id=mapping.service_id,
            )
        show_plan(state, prepared, plan, input_path, as_json=flags.as_json)
        return
    configure_telemetry(allow_prompt_logging=flags.allow_prompt_logging)
    quiet = flags.quiet or state.quiet
    counted = not (quiet or flags.json_logs or (mapping is not None and mapping.service_id))
    display = JobDisplay(
        quiet=quiet,
        json_logs=flags.json_logs,
        total=count_lines(input_path, max_services) if counted else None,
        interrupted_hint=f"stopped: continue with  {resume_hint(command_line)}",
        trace_ids=flags.trace_ids,
        check=flags.check,
        metrics_port=flags.metrics_port,
    )
    paths = JobPaths(input_path, flags.output, flags.quarantine or quarantine_for(flags.output, input_path, command))
    continuation = Continuation(resume=flags.resume, run_id=flags.run_id, force=flags.force, detach=flags.detach)
    run_job(state, prepared, JobRequest(paths, continuation, max_services, mapping), display)


def run_job(state: AppState, prepared: Prepared, request: JobRequest, display: JobDisplay) -> None:
    """Run ``request`` with its progress shown, then its summary; exits with the job's exit code.

    With ``-o -`` the records own standard output, so everything else goes to stderr.
    """
    output = request.paths.output
    if str(output) == "-":
        state = replace(state, out=state.err)
    started = time.perf_counter()
    result, tally = _watched(state, prepared, request, display)
    _say_what_became_of_earlier_files(state, result, output)
    shown = None if str(output) == "-" else output
    _summarise(state, prepared, request, display, result, tally, shown, time.perf_counter() - started)
    if result.budget_stop is not None:
        raise typer.Exit(EXIT_BUDGET)
    if result.status == "detached":
        raise typer.Exit(EXIT_DETACHED)
    if tally.failed or tally.quarantined_lines:
        raise typer.Exit(EXIT_QUARANTINED)


def _watched(state: AppState, prepared: Prepared, request: JobRequest, display: JobDisplay) -> tuple[RunResult, Tally]:
    """The job's result and counts, its progress shown while it runs (the live panel, or a heartbeat line)."""
    from service_ambitions.cli.panel import RunPanel
    from service_ambitions.cli.render import progress_display
    from service_ambitions.runs.tally import Tally

    tally = Tally()
    panel = RunPanel(tally, _panel_plan(prepared, display.total))
    animate = not (display.quiet or display.json_logs)
    every = prepared.settings.heartbeat_s
    with (
        progress_display(state.err, panel, enabled=animate) as observe,
        heartbeat(state.err, panel.line, every=every, enabled=animate and not state.err.is_terminal),
        _metrics(display.metrics_port, prepared.settings.max_in_flight) as metered,
    ):
        sink = _both(json_lines(observe) if display.json_logs else observe, metered)
        try:
            result = execute(prepared, request, on_event=sink)
        except KeyboardInterrupt:
            if display.interrupted_hint:
                state.err.print(display.interrupted_hint, highlight=False, soft_wrap=True, markup=False)
            raise
    # A resumed run is one run: its counts are every segment's, as `report` adds them up.
    return result, result.whole_run or tally


@contextmanager
def _metrics(port: int | None, max_in_flight: int) -> Iterator[EventSink | None]:
    """The Prometheus metrics' sink while they are served (``--metrics-port``); None without a port."""
    if port is None:
        yield None
        return
    from service_ambitions.jobs.metrics import served_metrics

    with served_metrics(port, max_in_flight=max_in_flight) as sink:
        yield sink


def _both(first: EventSink, then: EventSink | None) -> EventSink:
    if then is None:
        return first

    def both(event: Event) -> None:
        first(event)
        then(event)

    return both


def _say_what_became_of_earlier_files(state: AppState, result: RunResult, output: Path) -> None:
    """A new run beside an earlier one: why ``--resume --force`` started afresh, where the old output went."""
    if result.restarted:
        state.err.print(f"--resume --force: {result.restarted}", highlight=False, soft_wrap=True, markup=False)
    if result.previous_output is not None:
        state.err.print(
            f"the earlier output is kept as {plain(result.previous_output)} (this run writes {plain(output)} afresh)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )


def _summarise(
    state: AppState,
    prepared: Prepared,
    request: JobRequest,
    display: JobDisplay,
    result: RunResult,
    tally: Tally,
    shown: Path | None,
    elapsed: float,
) -> None:
    """The end of a job: one line (``-q``) or the summary, then (``--check``) the output's quality."""
    from service_ambitions.cli.render import render_result_line, render_run_end, render_summary

    quarantine = request.paths.quarantine
    if display.quiet:
        render_result_line(state.out, tally, result, output=shown, quarantine=quarantine)
    else:
        render_summary(state.out, tally, elapsed=elapsed, output=shown, quarantine=quarantine)
        render_run_end(state, result, tally, quarantine, trace_ids=display.trace_ids)
    if display.check and shown is not None and shown.exists():
        from service_ambitions.cli.check import render_quality_summary
        from service_ambitions.quality.report import check_file
        from service_ambitions.quality.rules import KnownRoles

        roles = KnownRoles.of(prepared.reference)
        render_quality_summary(state.out, check_file(shown, prepared.settings.quality, roles))


def batch_mode(
    state: AppState, settings: Settings, *, output: Path, run_id: str | None, command: str, resume: bool, detach: bool
) -> Settings:
    """The settings a job runs with, batch-wise: ``--detach`` checked, batch mode on where needed.

    A ``--resume`` of a run that left requests in provider batches collects them in batch
    mode, whatever the flags say: sent live, they would be paid for twice.

    Raises:
        ConfigError: ``--detach`` where nothing could collect the run later.
    """
    from service_ambitions.jobs.batch import check_detach, leaves_batches

    if resume and not settings.batch.enabled and (waiting := leaves_batches(settings, output, run_id, command)):
        state.err.print(f"resuming in batch mode: {waiting} requests wait in provider batches", markup=False)
        settings = settings.model_copy(update={"batch": settings.batch.model_copy(update={"enabled": True})})
    check_detach(settings, detach)
    return settings


def show_plan(state: AppState, prepared: Prepared, plan: Estimate, input_path: Path, *, as_json: bool) -> None:
    """A dry run's plan: tables, or one JSON document (``--json``)."""
    if as_json:
        from service_ambitions.cli.safe import json_safe
        from service_ambitions.jobs.reports import PlanReport

        typer.echo(json_safe(PlanReport.of(plan).model_dump_json(indent=2)))
        return
    from service_ambitions.cli.render import render_plan

    render_plan(state.out, prepared, plan, input_path)


@contextmanager
def heartbeat(
    console: Console,
    line: Callable[[], str],
    *,
    every: float,
    enabled: bool,
) -> Iterator[None]:
    """Print ``line()`` every ``every`` seconds while the block runs: the live panel's key figures.

    For consoles that are not terminals (CI logs, ``nohup`` files), which get no
    animation: they still show the run is alive and how far it got.
    """
    if not enabled:
        yield
        return
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            console.print(line(), highlight=False, markup=False, soft_wrap=True)

    thread = threading.Thread(target=beat, name="heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _panel_plan(prepared: Prepared, services: int | None) -> LivePlan:
    """What the panel measures progress against: services, calls per service by stage, limits, budget."""
    from service_ambitions.core.models import Stage
    from service_ambitions.runs.live import LivePlan

    plateaus, catalogues = len(prepared.reference.plateaus), len(prepared.reference.catalogues)
    per_service = {Stage.DESCRIPTIONS: 1, Stage.FEATURES: plateaus, Stage.MAPPING: plateaus * catalogues}
    settings = prepared.settings
    return LivePlan(
        services=services,
        calls_per_service={stage: per_service[stage] for stage in prepared.chains},
        requests_per_minute=settings.limits.requests_per_minute,
        tokens_per_minute=settings.limits.tokens_per_minute,
        budget=settings.max_cost,
    )


def quarantine_for(output: Path, input_path: Path, command: str) -> Path:
    """The default quarantine file: ``OUTPUT.quarantine.jsonl``, or next to the input for stdout."""
    if str(output) == "-":
        return input_path.with_name(f"{input_path.stem}.{command}.quarantine.jsonl")
    return output.with_name(f"{output.stem}.quarantine.jsonl")


def json_lines(then: EventSink) -> EventSink:
    """An event sink that writes each event as one JSON line on stderr (the journal's envelope), then passes it on."""
    from datetime import UTC, datetime

    from service_ambitions.core.events import RunStarted, enveloped

    run: list[str] = [""]

    def write(event: Event) -> None:
        if isinstance(event, RunStarted):
            run[0] = event.run_id
        typer.echo(enveloped(event, run_id=run[0], ts=datetime.now(UTC).isoformat()), err=True)
        then(event)

    return write


def execute(prepared: Prepared, request: JobRequest, *, on_event: EventSink) -> RunResult:
    """Run ``request`` on its own event loop; SIGTERM stops it as Ctrl-C does.

    In both cases in-flight calls are cancelled, finished services are already on disk,
    the run is recorded as interrupted, and KeyboardInterrupt reaches the caller.
    """
    import asyncio
    import contextlib
    import signal

    from service_ambitions.core.tuning import tune_gc
    from service_ambitions.jobs.run import start_job
    from service_ambitions.runs.journal import TERMINATE

    tune_gc()

    async def main() -> RunResult:
        task = asyncio.current_task()
        assert task is not None  # nosec B101  # asyncio.run runs main() as a task
        with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows' loop
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel, TERMINATE)
        return await start_job(prepared, request, on_event=on_event)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError as exc:
        raise (Terminated if exc.args == (TERMINATE,) else KeyboardInterrupt)() from None


class Terminated(KeyboardInterrupt):
    """The job was stopped by SIGTERM; handled like Ctrl-C, but said as it was."""
