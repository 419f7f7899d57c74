"""``service-ambitions map``: map existing features to the catalogues again."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..cache_mode import CacheMode
from .job import JobDisplay, count_lines, quarantine_for, run_job
from .state import AppState

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
    max_cost: Annotated[
        float | None,
        typer.Option(
            min=0.0, help="Budget in USD: no call starts that could take spending past it.", show_default=False
        ),
    ] = None,
    cache_mode: Annotated[
        CacheMode | None,
        typer.Option(help="read, refresh, readonly or off (as for run).", show_default=False),
    ] = None,
    cache_dir: Annotated[Path | None, typer.Option(help="Cache directory.", show_default=False)] = None,
    runs_dir: Annotated[Path | None, typer.Option(help="Where run records go.", show_default=False)] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Where unreadable lines and failed services go. [default: OUTPUT with .quarantine.jsonl]",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check everything and print the plan: calls, cache hits, cost.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress display.")] = False,
    json_logs: Annotated[
        bool, typer.Option("--json-logs", help="Instead of a progress display, every event as a JSON line on stderr.")
    ] = False,
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
    """
    from decimal import Decimal

    from ..jobs import estimate_remap, prepare, remap
    from .render import render_plan

    state: AppState = ctx.obj
    settings = state.settings(
        models={"mapping": model} if model else None,
        concurrency=concurrency,
        cache_mode=cache_mode,
        cache_dir=cache_dir,
        runs_dir=runs_dir,
        max_cost=Decimal(str(max_cost)) if max_cost is not None else None,
    )
    prepared = prepare(settings, stages=("mapping",))
    if dry_run:
        plan = estimate_remap(
            prepared, input_path, catalogues=catalogue, service_file=service_file, service_id=service_id
        )
        render_plan(state.out, prepared, plan, input_path)
        return
    quarantine_path = quarantine or quarantine_for(output, input_path, "map")
    display = JobDisplay(
        quiet=quiet,
        json_logs=json_logs,
        total=count_lines(input_path, None) if not (quiet or json_logs or service_id) else None,
    )
    run_job(
        state,
        remap,
        prepared,
        input_path,
        output,
        quarantine_path,
        display,
        catalogues=catalogue,
        service_file=service_file,
        service_id=service_id,
    )
