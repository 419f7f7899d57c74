"""``service-ambitions validate``: check everything a run needs, without calling a model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .safe import markup_safe
from .state import AppState

__all__ = ["validate"]


def validate(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Argument(metavar="INPUT", help="JSONL file with one service per line.", show_default=False)
    ],
    model: Annotated[str | None, typer.Option(help="Model to check instead of the configured one.")] = None,
) -> None:
    """Check input, reference data, prompts and credentials.

    Settings are checked too. Makes no LLM call and spends nothing. Every check runs, so one invocation shows
    every problem; the exit code is that of the first failed check.

    For example:

    \b
        service-ambitions validate examples/services.jsonl --model offline
        service-ambitions --config config/app.yaml validate services.jsonl
    """
    from ..jobs import run_checks

    state: AppState = ctx.obj
    settings = state.settings(model=model)
    checks = run_checks(settings, input_path)
    for check in checks:
        mark = "[green]ok[/]  " if check.error is None else "[red]fail[/]"
        state.out.print(f"{mark} {check.name}: {markup_safe(check.detail)}", highlight=False, soft_wrap=True)
    failed = [check.error for check in checks if check.error is not None]
    if failed:
        raise typer.Exit(failed[0].exit_code)
    state.out.print("[green]all checks passed[/]")
