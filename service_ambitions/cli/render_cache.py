"""Rich renderings of the cache: what it holds, what validate found, what purge removed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from service_ambitions.cli.safe import cell, markup_safe

if TYPE_CHECKING:
    from service_ambitions.cache.maintenance import CacheStats, ValidationReport

__all__ = ["render_cache_stats", "render_cache_validation", "render_purge"]


def render_cache_stats(console: Console, stats: CacheStats) -> None:
    """Entries by stage and model, then totals."""
    table = Table(title=f"Cache {markup_safe(str(stats.directory))}", title_justify="left")
    table.add_column("stage")
    table.add_column("model", overflow="fold")
    table.add_column("entries", justify="right")
    for (stage, model), count in stats.by_stage_model.items():
        table.add_row(cell(stage), cell(model), f"{count:,}")
    table.add_row("total", "", f"{stats.entries:,}", style="bold")
    console.print(table)
    imported = f"   imported answers: {stats.imported:,}" if stats.imported else ""
    console.print(
        f"transcripts: {stats.transcripts:,}   snapshots: {stats.snapshots:,}   "
        f"size on disk: {_size(stats.bytes_on_disk)}{imported}",
        highlight=False,
    )
    if stats.oldest and stats.newest:
        console.print(
            f"oldest: {stats.oldest:%Y-%m-%d %H:%M} UTC   newest: {stats.newest:%Y-%m-%d %H:%M} UTC", highlight=False
        )
    if stats.oldest_by_stage:
        ages = ", ".join(f"{stage} {created:%Y-%m-%d}" for stage, created in stats.oldest_by_stage.items())
        console.print(f"oldest by stage: {markup_safe(ages)}", highlight=False)
    if stats.expired:
        console.print(
            f"[yellow]{stats.expired:,} entries are older than their cache_ttl[/]: a run asks afresh; "
            "`service-ambitions cache purge --expired` removes them",
            highlight=False,
        )
    if stats.unreadable:
        console.print(
            f"[yellow]{stats.unreadable} unreadable entries[/]: run `service-ambitions cache validate --fix`",
            highlight=False,
        )


def render_cache_validation(console: Console, report: ValidationReport, *, fixed: bool) -> None:
    """Counts by kind, the first problems, and what --fix removed or would remove."""
    table = Table(title="Cache check", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column(justify="right")
    table.add_row("good entries", f"{report.good:,}")
    table.add_row("transcripts", f"{report.transcripts:,}")
    table.add_row("output schemas", f"{report.schemas:,}")
    if report.imported:
        table.add_row("imported answers", f"{report.imported:,}")
    table.add_row("snapshots", f"{report.snapshots:,}")
    table.add_row("corrupt", f"{report.count('corrupt'):,}")
    table.add_row("schema-invalid", f"{report.count('schema-invalid'):,}")
    table.add_row("orphan transcripts", f"{report.count('orphan-transcript'):,}")
    table.add_row("orphan snapshots", f"{report.count('orphan-snapshot'):,}")
    table.add_row("unsafe (name files outside the cache)", f"{report.count('unsafe'):,}")
    console.print(table)
    for problem in report.problems[:20]:
        where = problem.key[:18] + "…" if problem.key else f"row {problem.rowid}"
        console.print(
            f"  {problem.kind}: {markup_safe(where)} {markup_safe(problem.reason)}", highlight=False, soft_wrap=True
        )
    if len(report.problems) > 20:
        console.print(f"  … and {len(report.problems) - 20} more")
    if fixed:
        console.print(f"removed {report.removed:,} rows", highlight=False)
    elif report.problems:
        console.print("run `service-ambitions cache validate --fix` to remove them")
    else:
        console.print("[green]the cache is clean[/]")


def render_purge(console: Console, removed: dict[tuple[str, str], int]) -> None:
    """What a purge removed, by stage and model."""
    if not removed:
        console.print("nothing matched: no entry removed")
        return
    table = Table(title="Removed", title_justify="left")
    table.add_column("stage")
    table.add_column("model", overflow="fold")
    table.add_column("entries", justify="right")
    for (stage, model), count in sorted(removed.items()):
        table.add_row(cell(stage), cell(model), f"{count:,}")
    table.add_row("total", "", f"{sum(removed.values()):,}", style="bold")
    console.print(table)


def _size(count: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,.0f} {unit}" if unit == "B" else f"{count:,.1f} {unit}"
        count /= 1024  # type: ignore[assignment]
    return f"{count} B"
