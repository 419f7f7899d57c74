"""``service-ambitions diff``: what changed between two runs' output."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service_ambitions.cli.safe import json_safe, markup_safe
from service_ambitions.cli.state import AppState
from service_ambitions.core.tuning import tune_gc

if TYPE_CHECKING:
    from rich.console import Console

    from service_ambitions.views.diff import RunDiff, ServiceDiff

__all__ = ["diff"]


def diff(
    ctx: typer.Context,
    old: Annotated[
        Path, typer.Argument(metavar="OLD", help="Evolutions JSONL of the earlier run.", show_default=False)
    ],
    new: Annotated[Path, typer.Argument(metavar="NEW", help="Evolutions JSONL of the later run.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print the differences as one JSON document.")] = False,
    exit_code: Annotated[
        bool, typer.Option("--exit-code", help="Exit 1 when the runs differ, 0 when they are the same (as git diff).")
    ] = False,
) -> None:
    """Show what changed between two runs' records.

    Services added and removed; per service, features added, removed or renamed per plateau
    and customer type, CMMI level changes, and catalogue items gained or lost. Records of an
    older schema version are migrated on the way in; unreadable lines are skipped, counted
    and named.

    For example:

    \b
        service-ambitions diff evolutions-before.jsonl evolutions.jsonl
        service-ambitions diff old.jsonl new.jsonl --json > changes.json
        service-ambitions diff old.jsonl new.jsonl --exit-code > changes.txt || echo "the roadmap changed"
    """
    from service_ambitions.inputs.records import read_records
    from service_ambitions.views.diff import diff_runs

    tune_gc()
    state: AppState = ctx.obj
    changes = diff_runs(read_records(old), read_records(new))
    if as_json:
        typer.echo(json_safe(changes.model_dump_json(indent=2)))
    else:
        _render(state.out, changes)
    if exit_code and (changes.changed or changes.services_added or changes.services_removed):
        raise typer.Exit(1)


def _render(console: Console, changes: RunDiff) -> None:
    both = len(changes.changed) + changes.unchanged
    console.print(
        f"{both:,} services in both runs: {len(changes.changed):,} changed, {changes.unchanged:,} unchanged; "
        f"{len(changes.services_added):,} added, {len(changes.services_removed):,} removed",
        highlight=False,
    )
    for label, ids in (("added", changes.services_added), ("removed", changes.services_removed)):
        if ids:
            console.print(f"services {label}: " + ", ".join(markup_safe(sid) for sid in ids), highlight=False)
    for service in changes.changed:
        _render_service(console, service)
    if changes.migrated:
        console.print(f"{changes.migrated:,} records of an older schema version were migrated first", highlight=False)
    for line in changes.skipped[:20]:
        console.print(f"[yellow]skipped[/] {line.side} line {line.line}: {markup_safe(line.reason)}", highlight=False)
    if len(changes.skipped) > 20:
        console.print(f"… and {len(changes.skipped) - 20:,} more skipped lines (--json lists them all)")


def _render_service(console: Console, service: ServiceDiff) -> None:
    console.print(f"\n[bold]{markup_safe(service.service_id)}[/] {markup_safe(service.name)}", highlight=False)
    for text in (*_plateau_lines(service), *_feature_lines(service), *_level_and_mapping_lines(service)):
        console.print(f"  {text}", highlight=False, soft_wrap=True)


def _plateau_lines(service: ServiceDiff) -> Iterator[str]:
    for label, levels in (
        ("plateaus added", service.plateaus_added),
        ("plateaus removed", service.plateaus_removed),
        ("description changed at plateau", service.descriptions_changed),
    ):
        if levels:
            yield f"{label}: " + ", ".join(str(level) for level in levels)


def _feature_lines(service: ServiceDiff) -> Iterator[str]:
    for ref in service.added:
        yield f"[green]+[/] p{ref.plateau} {markup_safe(ref.customer_type)}: {markup_safe(ref.name)}"
    for ref in service.removed:
        yield f"[red]-[/] p{ref.plateau} {markup_safe(ref.customer_type)}: {markup_safe(ref.name)}"
    for renamed in service.renamed:
        yield (
            f"[cyan]~[/] p{renamed.plateau} {markup_safe(renamed.customer_type)}: "
            f"{markup_safe(renamed.old_name)} → {markup_safe(renamed.new_name)}"
        )


def _level_and_mapping_lines(service: ServiceDiff) -> Iterator[str]:
    for score in service.scores:
        yield (
            f"level p{score.plateau} {markup_safe(score.customer_type)}: {markup_safe(score.name)} "
            f"{score.before} → {score.after}"
        )
    for mapping in service.mappings:
        moves = [f"+{markup_safe(item)}" for item in mapping.gained] + [
            f"-{markup_safe(item)}" for item in mapping.lost
        ]
        yield (
            f"{markup_safe(mapping.catalogue)} p{mapping.plateau} {markup_safe(mapping.customer_type)}: "
            f"{markup_safe(mapping.name)} " + " ".join(moves)
        )
