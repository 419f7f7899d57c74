"""``service-ambitions run``: generate evolutions for every service of a JSONL file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.job import JobDisplay, JobFlags, launch_job, run_job
from service_ambitions.cli.options import (
    AllowPromptLogging,
    AsJson,
    Batch,
    BatchSize,
    BatchWait,
    CacheDirOption,
    CacheModeOption,
    Detach,
    Force,
    JsonLogs,
    MaxCost,
    MaxInFlight,
    MetricsPort,
    QuarantineOption,
    Quiet,
    Resume,
    RunId,
    RunsDirOption,
    Seed,
    Strict,
    TraceIds,
    WarnCost,
    Workers,
    batch_flags,
)
from service_ambitions.cli.state import AppState
from service_ambitions.runs.live import count_lines

__all__ = ["collect", "run"]

_MODELS = "Models"
_RUN = "Run"
_CACHE = "Cache"
_RESUME = "Records and resume"


def run(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="JSONL file with one service per line.", show_default=False)
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Where to write the evolutions (JSONL).", show_default=False)
    ],
    model: Annotated[
        str | None,
        typer.Option(
            help="Model for every stage: 'provider:model' (e.g. openai:gpt-4o-mini) or 'offline'.",
            rich_help_panel=_MODELS,
        ),
    ] = None,
    descriptions_model: Annotated[
        str | None, typer.Option(help="Model for the descriptions stage only.", rich_help_panel=_MODELS)
    ] = None,
    features_model: Annotated[
        str | None, typer.Option(help="Model for the features stage only.", rich_help_panel=_MODELS)
    ] = None,
    mapping_model: Annotated[
        str | None, typer.Option(help="Model for the mapping stage only.", rich_help_panel=_MODELS)
    ] = None,
    seed: Seed = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Services processed at once.", rich_help_panel=_RUN)
    ] = None,
    max_in_flight: MaxInFlight = None,
    workers: Workers = None,
    max_services: Annotated[
        int | None, typer.Option(min=1, help="Process only the first N services.", rich_help_panel=_RUN)
    ] = None,
    max_cost: MaxCost = None,
    warn_cost: WarnCost = None,
    metrics_port: MetricsPort = None,
    allow_unknown_prices: Annotated[
        bool | None,
        typer.Option(
            "--allow-unknown-prices",
            help="With --max-cost: run models without a known price (their calls count as $0).",
            show_default=False,
            rich_help_panel=_RUN,
        ),
    ] = None,
    strict: Strict = None,
    cache_mode: CacheModeOption = None,
    cache_dir: CacheDirOption = None,
    quarantine: QuarantineOption = None,
    resume: Resume = False,
    run_id: RunId = None,
    force: Force = False,
    runs_dir: RunsDirOption = None,
    batch: Batch = None,
    detach: Detach = False,
    batch_size: BatchSize = None,
    batch_wait: BatchWait = None,
    reuse_imported: Annotated[
        bool | None,
        typer.Option(
            "--reuse-imported",
            help="Answer calls from answers imported with 'migrate cache' (same service, stage and plateau).",
            show_default=False,
            rich_help_panel=_CACHE,
        ),
    ] = None,
    as_json: AsJson = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything and print the plan; call no model.")
    ] = False,
    quiet: Quiet = False,
    json_logs: JsonLogs = False,
    allow_prompt_logging: AllowPromptLogging = False,
    trace_ids: TraceIds = False,
    check: Annotated[
        bool,
        typer.Option(
            "--check", help="At the end, print the quality summary of the output (what `check` finds, counted)."
        ),
    ] = False,
) -> None:
    """Generate service evolutions for every service in INPUT.

    Every service gets plateau descriptions, features per plateau and role, and
    catalogue mappings; each finished service is written to OUTPUT as one line, in
    input order. Bad input lines and failed services go to the quarantine file.
    Every answer is cached: re-running with unchanged inputs calls no model. After
    Ctrl-C or a crash, --resume continues where the run stopped.

    For example:

    \b
        service-ambitions run examples/services.jsonl -o evolutions.jsonl --model offline
        OPENAI_API_KEY=... service-ambitions run services.jsonl -o out.jsonl --model openai:gpt-4o-mini
        service-ambitions run services.jsonl -o out.jsonl --mapping-model openai:gpt-4o-mini --dry-run
        service-ambitions run services.jsonl -o out.jsonl --model offline --cache-mode refresh
        service-ambitions run services.jsonl -o out.jsonl --model offline --resume
        service-ambitions run services.jsonl -o out.jsonl --model openai:gpt-4o-mini --batch --detach
        service-ambitions run services.jsonl -o out.jsonl --model offline --check
    """
    from decimal import Decimal

    from service_ambitions.config.settings import Overrides

    state: AppState = ctx.obj
    stage_models = {"descriptions": descriptions_model, "features": features_model, "mapping": mapping_model}
    settings = state.settings(
        Overrides(
            model=model,
            models={stage: name for stage, name in stage_models.items() if name} or None,
            seed=seed,
            concurrency=concurrency,
            max_in_flight=max_in_flight,
            workers=workers,
            strict=strict,
            cache_mode=cache_mode,
            cache_dir=cache_dir,
            runs_dir=runs_dir,
            max_cost=Decimal(str(max_cost)) if max_cost is not None else None,
            warn_cost=warn_cost,
            allow_unknown_prices=allow_unknown_prices,
            reuse_imported=reuse_imported,
            batch=batch_flags(batch, batch_size, batch_wait),
        )
    )
    flags = JobFlags.given(ctx)
    launch_job(ctx, settings, input_path, flags, max_services=max_services)


def collect(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run to carry on (see `runs list`).", show_default=False)],
    detach: Annotated[
        bool,
        typer.Option(
            "--detach",
            help="Exit (code 11) once everything left waits on the provider; run this again to carry on.",
        ),
    ] = False,
    runs_dir: RunsDirOption = None,
    quiet: Quiet = False,
    json_logs: JsonLogs = False,
    trace_ids: TraceIds = False,
) -> None:
    """Carry a batch run on: collect its batches, submit the next waves, until done.

    Requests already in a provider batch are collected, never sent again. The run goes
    on with the settings it was started with, in batch mode; with --detach it exits
    again (code 11) once what is left waits on the provider.

    For example:

    \b
        service-ambitions runs collect 20261128T230539Z-b043c7
        until service-ambitions runs collect RUN_ID --detach -q; [ $? -ne 11 ]; do sleep 600; done
    """
    from service_ambitions.jobs.batch import check_detach, collect_job
    from service_ambitions.jobs.run import Continuation, JobPaths, JobRequest
    from service_ambitions.jobs.setup import prepare

    state: AppState = ctx.obj
    quiet = quiet or state.quiet
    from service_ambitions.config.settings import Overrides

    job = collect_job(state.settings(Overrides(runs_dir=runs_dir)).runs_directory(), run_id)
    check_detach(job.settings, detach)
    display = JobDisplay(
        quiet=quiet,
        json_logs=json_logs,
        total=count_lines(job.input_path, None) if not (quiet or json_logs) else None,
        interrupted_hint=f"stopped: continue with  service-ambitions runs collect {run_id}",
        trace_ids=trace_ids,
    )
    paths = JobPaths(job.input_path, job.output_path, job.quarantine_path)
    request = JobRequest(paths, Continuation(resume=True, run_id=run_id, detach=detach))
    run_job(state, prepare(job.settings, resolve_models=False), request, display)
