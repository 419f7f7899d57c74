"""``service-ambitions view``: a run's records as one self-contained HTML roadmap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import markup_safe
from service_ambitions.cli.state import AppState
from service_ambitions.core.tuning import tune_gc

__all__ = ["view"]


def view(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Argument(metavar="EVOLUTIONS", help="Evolutions JSONL written by run or map.", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The HTML file to write. [default: EVOLUTIONS.html]", show_default=False),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(help="An earlier run's evolutions: the page gains a section of what changed.", show_default=False),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="The run's quarantine file. [default: EVOLUTIONS.quarantine.jsonl, if there]", show_default=False
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="The page's title. [default: the file's name]")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print each file written as a file_written event line (path, bytes, lines, sha256)."
        ),
    ] = False,
) -> None:
    """Write a run's records as one self-contained HTML roadmap.

    A portfolio heat-map (every service by plateau, coloured by the mean CMMI level, with
    filters and sorting), each service's roadmap (plateau timeline, features by customer
    type with scores, justifications and the catalogue items they rely on, provenance),
    catalogue coverage, and with --compare what changed since an earlier run. No network:
    the file opens anywhere, from a USB stick too. Everything from a record is escaped.

    For example:

    \b
        service-ambitions view evolutions.jsonl -o roadmap.html
        service-ambitions view evolutions.jsonl --compare evolutions-before.jsonl
    """
    from service_ambitions.core.errors import OutputError
    from service_ambitions.runs.resume import refuse_overwrite
    from service_ambitions.views.page import roadmap_page

    tune_gc()
    state: AppState = ctx.obj
    target = output or input_path.with_suffix(".html")
    refuse_overwrite(input_path, target)
    made = roadmap_page(state.settings(), input_path, compare=compare, quarantine=quarantine, title=title)
    if made.note:
        state.err.print(f"[yellow]note:[/] {markup_safe(made.note)}")
    page = made.html
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    state.err.print(
        f"{made.services:,} services written to {markup_safe(target)} ({len(page.encode()) / 2**20:.1f} MiB)"
        + (f"; {len(made.skipped):,} unreadable lines skipped" if made.skipped else ""),
        highlight=False,
        soft_wrap=True,
    )
    from service_ambitions.cli.render import render_skipped

    render_skipped(state.err, made.skipped)
    if as_json:
        from service_ambitions.cli.render import echo_files_written

        echo_files_written([target], "view")
