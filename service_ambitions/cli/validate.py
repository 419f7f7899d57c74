"""``service-ambitions validate``: check everything a run needs, without calling a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import json_safe, markup_safe
from service_ambitions.cli.state import AppState

__all__ = ["validate"]


def validate(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="JSONL file with one service per line.", show_default=False)
    ],
    model: Annotated[str | None, typer.Option(help="Model to check instead of the configured one.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as one JSON document.")] = False,
) -> None:
    """Check input, reference data, prompts and credentials.

    Settings are checked too. Makes no LLM call and spends nothing. Every check runs, so one invocation shows
    every problem; the exit code is that of the first failed check.

    For example:

    \b
        service-ambitions validate examples/services.jsonl --model offline
        service-ambitions validate services.jsonl --json
        service-ambitions --config config/app.yaml validate services.jsonl
    """
    from service_ambitions.jobs.checks import run_checks

    state: AppState = ctx.obj
    from service_ambitions.config.settings import Overrides

    settings = state.settings(Overrides(model=model))
    checks = run_checks(settings, input_path)
    failed = [check.error for check in checks if check.error is not None]
    if as_json:
        from pydantic import TypeAdapter

        from service_ambitions.jobs.reports import CheckRow

        rows = [CheckRow.of(check) for check in checks]
        typer.echo(json_safe(TypeAdapter(list[CheckRow]).dump_json(rows, indent=2).decode()))
        if failed:
            raise typer.Exit(failed[0].exit_code)
        return
    for check in checks:
        mark = "[green]ok[/]  " if check.error is None else "[red]fail[/]"
        state.out.print(f"{mark} {check.name}: {markup_safe(check.detail)}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(failed[0].exit_code)
    state.out.print("[green]all checks passed[/]")
