"""``service-ambitions map``: map existing features to the catalogues again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.job import JobFlags, launch_job
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
    batch_flags,
)
from service_ambitions.cli.state import AppState

__all__ = ["map_features"]


def map_features(
    ctx: typer.Context,
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="JSONL of evolution records (any known schema version) or features-only records.",
            show_default=False,
        ),
    ],
    output: Annotated[
        Path,
        typer.Option(
            "--output", "-o", help="Where to write the evolutions (JSONL); '-' for stdout.", show_default=False
        ),
    ],
    catalogue: Annotated[
        list[str] | None,
        typer.Option(
            "--catalogue",
            help="Map only this catalogue (repeat for more); other mappings are kept. [default: every catalogue]",
            show_default=False,
        ),
    ] = None,
    service_file: Annotated[
        Path | None,
        typer.Option(help="Services JSONL for features-only records that name a service_id but carry no service."),
    ] = None,
    service_id: Annotated[str | None, typer.Option(help="Map only this service.")] = None,
    model: Annotated[
        str | None, typer.Option(help="Model for the mapping calls: 'provider:model' or 'offline'.")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="Services mapped at once.")] = None,
    max_in_flight: MaxInFlight = None,
    seed: Seed = None,
    strict: Strict = None,
    max_cost: MaxCost = None,
    warn_cost: WarnCost = None,
    metrics_port: MetricsPort = None,
    batch: Batch = None,
    detach: Detach = False,
    batch_size: BatchSize = None,
    batch_wait: BatchWait = None,
    cache_mode: CacheModeOption = None,
    cache_dir: CacheDirOption = None,
    runs_dir: RunsDirOption = None,
    quarantine: QuarantineOption = None,
    as_json: AsJson = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything and print the plan: calls, cache hits, cost.")
    ] = False,
    quiet: Quiet = False,
    json_logs: JsonLogs = False,
    allow_prompt_logging: AllowPromptLogging = False,
    trace_ids: TraceIds = False,
    resume: Resume = False,
    run_id: RunId = None,
    force: Force = False,
) -> None:
    """Map existing features to the catalogues again.

    Nothing else is regenerated: only mapping calls are made.

    Each INPUT line is an evolution record (schema 1.0 or 2.0) or a features-only record
    {"service": {...}, "features": [{"feature_id", "name", "description", "customer_type",
    "score"?, "plateau"?}]}. Features without a plateau count as the first plateau's.
    Each line becomes one current-schema evolution in OUTPUT, in input order, that map
    and migrate read back. Calls go through the same cache, limits, budget and run
    records as run; `report` shows what the run cost.

    For example:

    \b
        service-ambitions map evolutions.jsonl -o remapped.jsonl --model offline
        service-ambitions map evolutions.jsonl -o - --catalogue applications --service-id svc-library
        service-ambitions map features.jsonl -o mapped.jsonl --service-file services.jsonl
        service-ambitions map evolutions.jsonl -o remapped.jsonl --model openai:gpt-4o-mini --dry-run
        service-ambitions map evolutions.jsonl -o remapped.jsonl --model offline --resume
        service-ambitions map evolutions.jsonl -o remapped.jsonl --model openai:gpt-4o-mini --batch
    """
    from decimal import Decimal

    from service_ambitions.config.settings import Overrides
    from service_ambitions.jobs.run import MapSelection

    state: AppState = ctx.obj
    settings = state.settings(
        Overrides(
            models={"mapping": model} if model else None,
            concurrency=concurrency,
            max_in_flight=max_in_flight,
            seed=seed,
            strict=strict,
            cache_mode=cache_mode,
            cache_dir=cache_dir,
            runs_dir=runs_dir,
            max_cost=Decimal(str(max_cost)) if max_cost is not None else None,
            warn_cost=warn_cost,
            batch=batch_flags(batch, batch_size, batch_wait),
        )
    )
    flags = JobFlags.given(ctx)
    selection = MapSelection(catalogues=catalogue, service_file=service_file, service_id=service_id)
    launch_job(ctx, settings, input_path, flags, mapping=selection)
