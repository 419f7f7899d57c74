"""``service-ambitions init``: a folder to start from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import plain
from service_ambitions.cli.state import AppState

__all__ = ["init"]


def init(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="Where to write the files.")] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist already.")] = False,
) -> None:
    """Write a commented config, example services and reference data to start from.

    DIRECTORY gets config/app.yaml (read automatically when you run from DIRECTORY),
    examples/services.jsonl, and reference/ with the plateaus, roles and catalogues the
    config points at: edit them to describe your own organisation.

    For example:

    \b
        service-ambitions init my-portfolio
        cd my-portfolio && service-ambitions run examples/services.jsonl -o evolutions.jsonl --model offline
    """
    from service_ambitions.jobs.init import init_project

    state: AppState = ctx.obj
    result = init_project(directory, force=force)
    for path in result.written:
        state.out.print(f"wrote {plain(path)}", highlight=False, markup=False)
    where = "" if directory == Path(".") else f"cd {plain(directory)} && "
    state.out.print(
        f"next: {where}service-ambitions run examples/services.jsonl -o evolutions.jsonl --model offline",
        highlight=False,
        markup=False,
    )
