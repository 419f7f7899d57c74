"""``service-ambitions migrate``: bring older records and cached answers into this release."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.job import quarantine_for
from service_ambitions.cli.safe import json_safe, plain
from service_ambitions.cli.state import AppState
from service_ambitions.core.errors import EXIT_QUARANTINED

__all__ = ["EXIT_FAILED_LINES", "migrate_app"]

EXIT_FAILED_LINES = EXIT_QUARANTINED
"""Finished, but some lines could not be migrated (they are in the quarantine file)."""

migrate_app = typer.Typer(
    help="Bring older output records and cached answers into this release.",
    no_args_is_help=True,
)


@migrate_app.command("records", no_args_is_help=True)
def records(
    ctx: typer.Context,
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT", help="JSONL of evolution records, any known schema version.", show_default=False
        ),
    ],
    output: Annotated[
        Path,
        typer.Option("--output", "-o", help="Where to write the migrated records; '-' for stdout.", show_default=False),
    ],
    to: Annotated[
        str | None,
        typer.Option("--to", help="Schema version to migrate to. [default: the version this release writes]"),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count what would change; write nothing.")] = False,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="Where lines that cannot be migrated go, with the reason. [default: OUTPUT with .quarantine.jsonl]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON document.")] = False,
) -> None:
    """Convert records to the current schema version.

    Reads records of schema 1.0 (the layout earlier tools write, with its roles[] and
    mappings views merged back into the features) and 2.0; records already current are
    copied unchanged, so migrating twice changes nothing, and input order is kept. Every record written validates
    against the target schema. Exit code 9 when some lines failed.

    For example:

    \b
        service-ambitions migrate records old-evolutions.jsonl -o evolutions.jsonl
        service-ambitions migrate records old-evolutions.jsonl -o evolutions.jsonl --dry-run
    """
    from service_ambitions.core.models import SCHEMA_VERSION
    from service_ambitions.inputs.migrations import migrate_records

    state: AppState = ctx.obj
    to = to or SCHEMA_VERSION
    quarantine_path = quarantine or quarantine_for(output, input_path, "migrate")
    report = migrate_records(input_path, output, quarantine_path, to=to, dry_run=dry_run)
    console = state.err if str(output) == "-" else state.out
    if as_json:
        from service_ambitions.jobs.reports import MigrationReport

        document = MigrationReport.of(
            migrated=report.migrated,
            current=report.current,
            from_versions=report.from_versions,
            failures=report.failures,
            output=None if dry_run else output,
            quarantine=quarantine_path if report.failed and not dry_run else None,
        )
        typer.echo(json_safe(document.model_dump_json(indent=2)), err=console is state.err)
    else:
        verb = "would migrate" if dry_run else "migrated"
        console.print(
            f"{verb} {report.migrated}, already current ({to}) {report.current}, failed {report.failed}",
            highlight=False,
        )
        for line, reason in report.failures[:10]:
            console.print(f"  line {line}: {plain(reason)}", highlight=False, markup=False, soft_wrap=True)
        if len(report.failures) > 10:
            console.print(f"  … and {len(report.failures) - 10} more", highlight=False)
        if report.failed and not dry_run:
            console.print(f"failed lines and their reasons: {quarantine_path}", highlight=False, markup=False)
    if report.failed:
        raise typer.Exit(EXIT_FAILED_LINES)


@migrate_app.command("cache", no_args_is_help=True)
def cache(
    ctx: typer.Context,
    legacy_dir: Annotated[
        Path,
        typer.Argument(
            metavar="LEGACY_DIR",
            help="Folder of an older tool's cached answers: <context>/<service_id>/...json.",
            show_default=False,
        ),
    ],
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Cache to import into. [default: SA_CACHE_DIR or the platform's user cache directory]",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and check every file; import nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as one JSON document.")] = False,
) -> None:
    """Import an older tool's cached answers.

    Its JSON-file answer cache, for run --reuse-imported.

    Reads plateau descriptions (<context>/<service_id>/<key>.json), features
    (<context>/<service_id>/<plateau>/<key>.json) and mappings
    (<context>/<service_id>/<plateau>/mappings/<field>/<key>.json). A later
    `run --reuse-imported` answers a call from the imported answer for the same service,
    stage and plateau (and catalogue) when it fits, instead of calling a model. Corrupt
    files are counted and listed, never fatal.

    For example:

    \b
        service-ambitions migrate cache ~/old-tool/.cache
        service-ambitions run services.jsonl -o evolutions.jsonl --reuse-imported
    """
    from service_ambitions.jobs.cache import import_answers

    state: AppState = ctx.obj
    from service_ambitions.config.settings import Overrides

    report = import_answers(state.settings(Overrides(cache_dir=cache_dir)), legacy_dir, dry_run=dry_run)
    imported = sum(report.imported.values())
    if as_json:
        from service_ambitions.jobs.reports import ImportReport, PathProblem

        summary = ImportReport(
            imported={stage.value: count for stage, count in report.imported.items()},
            skipped=[PathProblem(path=str(path), reason=reason) for path, reason in report.skipped],
            corrupt=[PathProblem(path=str(path), reason=reason) for path, reason in report.corrupt],
            dry_run=dry_run,
        )
        typer.echo(json_safe(summary.model_dump_json(indent=2)))
        return
    by_stage = ", ".join(f"{stage.value} {count}" for stage, count in report.imported.items())
    verb = "would import" if dry_run else "imported"
    state.out.print(
        f"{verb} {imported} answers ({by_stage}), skipped {len(report.skipped)}, corrupt {len(report.corrupt)}",
        highlight=False,
    )
    for kind, problems in (("corrupt", report.corrupt), ("skipped", report.skipped)):
        for path, reason in problems[:10]:
            where = path.relative_to(legacy_dir) if path.is_relative_to(legacy_dir) else path
            state.out.print(f"  {kind}: {plain(where)}: {plain(reason)}", highlight=False, markup=False, soft_wrap=True)
        if len(problems) > 10:
            state.out.print(f"  … and {len(problems) - 10} more {kind}", highlight=False)
    if imported and not dry_run:
        state.out.print("use them with: service-ambitions run INPUT -o OUTPUT --reuse-imported", highlight=False)
