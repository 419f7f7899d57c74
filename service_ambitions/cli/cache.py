"""``service-ambitions cache``: inspect, check and clean the result cache."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service_ambitions.cli.safe import json_safe, plain
from service_ambitions.cli.state import AppState

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["cache_app", "parse_age"]

cache_app = typer.Typer(
    help="Inspect, check and clean the result cache.",
    no_args_is_help=True,
)

CacheDir = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Cache directory. [default: SA_CACHE_DIR or the platform's user cache directory]",
        show_default=False,
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print one JSON document instead of tables.")]


def parse_age(text: str) -> timedelta:
    """'90m', '12h', '7d', '2w' as a duration, or a usage error."""
    from service_ambitions.config.cache_mode import parse_age as parsed

    try:
        return parsed(text)
    except ValueError as exc:
        raise typer.BadParameter("use a number and a unit: 30m, 12h, 7d or 2w") from exc


@cache_app.command("stats")
def stats(ctx: typer.Context, cache_dir: CacheDir = None, as_json: AsJson = False) -> None:
    """Show what the cache holds.

    Entries by stage and model, size on disk, oldest and newest entry.

    For example:

    \b
        service-ambitions cache stats
        service-ambitions cache stats --json --cache-dir ./.sa-cache
    """
    from service_ambitions.cli.render_cache import render_cache_stats
    from service_ambitions.jobs.cache import cache_stats

    state: AppState = ctx.obj
    from service_ambitions.config.settings import Overrides

    report = cache_stats(state.settings(Overrides(cache_dir=cache_dir)))
    if as_json:
        from service_ambitions.jobs.reports import CacheStatsReport

        _print_json(CacheStatsReport.of(report))
        return
    render_cache_stats(state.out, report)


@cache_app.command("validate")
def validate(
    ctx: typer.Context,
    fix: Annotated[bool, typer.Option("--fix", help="Remove every entry found wrong.")] = False,
    cache_dir: CacheDir = None,
    as_json: AsJson = False,
) -> None:
    """Check every cache entry; --fix removes the bad ones.

    Checks checksums, entry layout, each output against its schema, and orphan transcripts.

    Exits 7 when problems remain (after --fix, none do).

    For example:

    \b
        service-ambitions cache validate
        service-ambitions cache validate --fix
    """
    from service_ambitions.cli.render_cache import render_cache_validation
    from service_ambitions.core.errors import CacheCorrupt
    from service_ambitions.jobs.cache import validate_cache

    state: AppState = ctx.obj
    try:
        from service_ambitions.config.settings import Overrides

        report = validate_cache(state.settings(Overrides(cache_dir=cache_dir)), fix=fix)
    except CacheCorrupt:
        if not fix:
            raise
        _repair(state, cache_dir, as_json=as_json)  # the database itself is damaged: salvage it
        return
    if as_json:
        from service_ambitions.jobs.reports import CacheValidationReport

        _print_json(CacheValidationReport.of(report))
    else:
        render_cache_validation(state.out, report, fixed=fix)
    if report.problems and not fix:
        raise typer.Exit(CacheCorrupt.exit_code)


def _check_purge_filters(
    *, all_entries: bool, expired: bool, stage: str | None, model: str | None, older_than: str | None
) -> None:
    """A usage error unless the filters say what to remove, and say it one way."""
    from service_ambitions.core.models import Stage

    filtered = stage is not None or model is not None or older_than is not None
    if not (all_entries or expired or filtered):
        raise typer.BadParameter("say what to remove: --all, --expired, or --stage / --model / --older-than")
    if expired and (all_entries or filtered):
        raise typer.BadParameter("--expired goes alone: the cache_ttl setting says what has expired")
    if stage is not None and stage not in {s.value for s in Stage}:
        raise typer.BadParameter(f"unknown stage {stage!r}; use one of {', '.join(s.value for s in Stage)}")


@cache_app.command("purge")
def purge(
    ctx: typer.Context,
    all_entries: Annotated[bool, typer.Option("--all", help="Remove every entry.")] = False,
    stage: Annotated[
        str | None, typer.Option(help="Only entries of this stage (descriptions, features, mapping).")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Only entries answered by this model, e.g. offline.")] = None,
    older_than: Annotated[
        str | None, typer.Option(help="Only entries older than this: 30m, 12h, 7d, 2w.", show_default=False)
    ] = None,
    expired: Annotated[
        bool, typer.Option("--expired", help="Every entry older than its stage's cache_ttl setting.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    cache_dir: CacheDir = None,
    as_json: AsJson = False,
) -> None:
    """Remove cached answers: all, or those matching every filter.

    Their transcripts go with them.

    For example:

    \b
        service-ambitions cache purge --stage mapping --yes
        service-ambitions cache purge --model offline --older-than 7d
        service-ambitions cache purge --all
        service-ambitions cache purge --expired --yes
    """
    from service_ambitions.cli.render_cache import render_purge
    from service_ambitions.jobs.cache import purge_cache, purge_expired

    state: AppState = ctx.obj
    _check_purge_filters(all_entries=all_entries, expired=expired, stage=stage, model=model, older_than=older_than)
    age = parse_age(older_than) if older_than else None
    from service_ambitions.config.settings import Overrides

    settings = state.settings(Overrides(cache_dir=cache_dir))
    what = "every entry" if all_entries else _describe(stage, model, older_than)
    what = "every entry older than its cache_ttl" if expired else what
    if not yes and not typer.confirm(f"Remove {what} from {settings.cache_directory()}?", err=True):
        raise typer.Exit(1)
    removed = purge_expired(settings) if expired else purge_cache(settings, stage=stage, model=model, older_than=age)
    if as_json:
        from service_ambitions.jobs.reports import PurgeReport

        _print_json(PurgeReport.of(removed))
        return
    render_purge(state.out, removed)


@cache_app.command("repair")
def repair(ctx: typer.Context, cache_dir: CacheDir = None, as_json: AsJson = False) -> None:
    """Salvage a damaged cache database into a fresh one.

    Every entry whose checksum still holds is kept; the damaged database is moved
    aside (never deleted); counts of recovered and lost entries are printed. Only the
    cache's own files are touched. `cache validate --fix` does the same when the
    database itself is damaged.

    For example:

    \b
        service-ambitions cache repair
        service-ambitions cache repair --cache-dir ./.sa-cache --json
    """
    _repair(ctx.obj, cache_dir, as_json=as_json)


def _repair(state: AppState, cache_dir: Path | None, *, as_json: bool) -> None:
    from service_ambitions.config.settings import Overrides
    from service_ambitions.jobs.cache import repair_cache

    report = repair_cache(state.settings(Overrides(cache_dir=cache_dir)))
    if as_json:
        from service_ambitions.jobs.reports import CacheRepairReport

        _print_json(CacheRepairReport.of(report))
        return
    lost = f"lost {report.lost:,}" if report.lost is not None else "no entry was readable (its structure is damaged)"
    state.out.print(
        f"recovered {report.recovered:,} entries, {lost}; the damaged database is kept as {plain(report.damaged_copy)}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def _describe(stage: str | None, model: str | None, older_than: str | None) -> str:
    filters = [
        f"stage {stage}" if stage else None,
        f"model {model}" if model else None,
        f"older than {older_than}" if older_than else None,
    ]
    return "the entries with " + " and ".join(part for part in filters if part)


def _print_json(report: BaseModel) -> None:  # every --json here is one report model, dumped
    typer.echo(json_safe(report.model_dump_json(indent=2)))
