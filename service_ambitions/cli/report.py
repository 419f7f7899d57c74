"""``service-ambitions report`` and ``runs``: what runs cost, and their records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import json_safe, plain
from service_ambitions.cli.state import AppState

__all__ = ["report", "runs_app"]

RunsDir = Annotated[
    Path | None,
    typer.Option(help="Where run journals are. [default: SA_RUNS_DIR or the user state directory]", show_default=False),
]

runs_app = typer.Typer(help="List runs, show one, or follow its events.", no_args_is_help=True)


def _runs_dir(state: AppState, runs_dir: Path | None) -> Path:
    from service_ambitions.config.settings import Overrides

    return state.settings(Overrides(runs_dir=runs_dir)).runs_directory()


def _find(state: AppState, runs_dir: Path | None, run_id: str | None) -> Path:
    from service_ambitions.core.errors import InputError
    from service_ambitions.runs.usage import list_runs

    directory = _runs_dir(state, runs_dir)
    if run_id is None:
        runs = list_runs(directory)
        if not runs:
            raise InputError(f"no run journaled in {directory}", hint="run `service-ambitions run` first")
        run_id = runs[0].run_id
    if not (directory / run_id / "manifest.json").is_file():
        raise InputError(f"no run {run_id!r} in {directory}", hint="see `service-ambitions runs list`")
    return directory / run_id


def report(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="The run to report on. [default: the last run]")] = None,
    last: Annotated[bool, typer.Option("--last", help="Report on the most recent run (the default).")] = False,
    by_service: Annotated[bool, typer.Option("--by-service", help="Add a table per service.")] = False,
    failures: Annotated[bool, typer.Option("--failures", help="List failed services and why.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON document.")] = False,
    schema: Annotated[
        bool, typer.Option("--schema", help="Print the JSON Schema of --json's document and exit.")
    ] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Show what a run used and cost.

    Calls, tokens, USD, cache hits and savings, retries.

    Costs come from pydantic-ai's usage and genai-prices' bundled prices; calls without a
    known price are counted as unpriced, never as $0.

    For example:

    \b
        service-ambitions report
        service-ambitions report 20261122T010203Z-1a2b3c --by-service --failures
        service-ambitions report --json > usage.json
    """
    from service_ambitions.cli.render import render_report
    from service_ambitions.runs.usage import UsageReport, build_report

    if schema:
        import json

        typer.echo(json.dumps(UsageReport.model_json_schema(), indent=2))
        return
    state: AppState = ctx.obj
    directory = _find(state, runs_dir, None if last else run_id)
    data = build_report(directory, by_service=by_service)
    if as_json:
        typer.echo(json_safe(data.model_dump_json(indent=2)))
        return
    render_report(state.out, data, failures=failures)


@runs_app.command("list")
def list_command(
    ctx: typer.Context,
    runs_dir: RunsDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the runs' manifests as one JSON list.")] = False,
) -> None:
    """List recorded runs, newest first.

    Id, command, start, status, services and cost of each.

    For example:

    \b
        service-ambitions runs list
        service-ambitions runs list --json
    """
    from service_ambitions.cli.render import render_runs
    from service_ambitions.runs.usage import list_runs

    state: AppState = ctx.obj
    manifests = list_runs(_runs_dir(state, runs_dir))
    if as_json:
        from pydantic import TypeAdapter

        from service_ambitions.runs.journal import Manifest

        typer.echo(json_safe(TypeAdapter(list[Manifest]).dump_json(manifests, indent=2).decode()))
        return
    render_runs(state.out, manifests)


@runs_app.command("show")
def show(ctx: typer.Context, run_id: Annotated[str, typer.Argument(help="The run.")], runs_dir: RunsDir = None) -> None:
    """Print a run's manifest, and a batch run's batches.

    Paths, input hash, settings, status and counts; in batch mode also every provider
    batch (id, model, state, requests, how they fared) and the requests still waiting.

    For example:

    \b
        service-ambitions runs show 20261122T010203Z-1a2b3c
        service-ambitions runs show 20261122T010203Z-1a2b3c | jq '.batches[] | [.batch_id, .status]'
    """
    from service_ambitions.runs.details import run_details

    state: AppState = ctx.obj
    typer.echo(json_safe(run_details(_find(state, runs_dir, run_id)).model_dump_json(indent=2, exclude_none=True)))


@runs_app.command("verify")
def verify(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="The run.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as one JSON document.")] = False,
    runs_dir: RunsDir = None,
) -> None:
    """Check that the files a run wrote are still what it wrote (exit 0), or say which are not (exit 1).

    The run's manifest keeps each file's SHA-256, size and lines as the run left it
    (the output and the quarantine file); an edited, truncated or missing file is named.

    For example:

    \b
        service-ambitions runs verify 20261122T010203Z-1a2b3c
        service-ambitions runs verify 20261122T010203Z-1a2b3c --json | jq '.[] | select(.state != "unchanged")'
    """
    from pydantic import TypeAdapter

    from service_ambitions.runs.details import FileCheck, verify_files
    from service_ambitions.runs.journal import read_manifest

    state: AppState = ctx.obj
    directory = _find(state, runs_dir, run_id)
    manifest = read_manifest(directory)
    if manifest is None:
        raise typer.BadParameter(f"{run_id} has no manifest", param_hint="RUN_ID")
    checks = verify_files(manifest)
    if as_json:
        typer.echo(json_safe(TypeAdapter(list[FileCheck]).dump_json(checks, indent=2).decode()))
    elif not checks:
        state.out.print("the run's manifest lists no file (a run from before files were recorded)", markup=False)
    for check in [] if as_json else checks:
        lines = f", {check.lines:,} lines now, {check.written_lines:,} written" if check.state == "changed" else ""
        state.out.print(
            plain(f"{check.state}: {check.why} {check.path}{lines}"), highlight=False, markup=False, soft_wrap=True
        )
    if any(check.state != "unchanged" for check in checks):
        raise typer.Exit(1)


@runs_app.command("tail")
def tail(
    ctx: typer.Context,
    run_id: Annotated[str | None, typer.Argument(help="The run. [default: the last run]")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-f", help="Keep printing events until the run ends.")] = False,
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only events of this type, e.g. call_finished.")
    ] = None,
    level: Annotated[
        str | None,
        typer.Option(help="Only events at this level or above: debug (calls), info, warning, error."),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option("--stage", "--step", help="Only events of this stage: descriptions, features, mapping."),
    ] = None,
    service: Annotated[str | None, typer.Option("--service", help="Only events of this service id.")] = None,
    runs_dir: RunsDir = None,
) -> None:
    """Print a run's events; -f follows a live run.

    One JSON line per event, in one envelope: v, ts, level, run_id, type, stage and
    service_id where the event has them, and the rest under data (older runs' events are
    printed in it too).

    For example:

    \b
        service-ambitions runs tail -f
        service-ambitions runs tail 20261122T010203Z-1a2b3c --type service_failed
        service-ambitions runs tail --level warning
        service-ambitions runs tail --stage mapping --service svc-library | jq .data.spend
    """
    import json

    from service_ambitions.core.events import LEVELS, as_envelope
    from service_ambitions.runs.journal import follow_events

    if level is not None and level not in LEVELS:
        raise typer.BadParameter(f"use one of {', '.join(LEVELS)}", param_hint="--level")
    wanted = {"type": event_type, "stage": stage, "service_id": service}
    floor = LEVELS.index(level or "debug")
    state: AppState = ctx.obj
    directory = _find(state, runs_dir, run_id)
    for line in follow_events(directory, follow=follow):
        event = as_envelope(json.loads(line), directory.name)
        if all(event.get(key) == value for key, value in wanted.items() if value is not None) and (
            LEVELS.index(event.get("level", "info")) >= floor
        ):
            typer.echo(json_safe(json.dumps(event)))
