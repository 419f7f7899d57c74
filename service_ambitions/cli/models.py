"""``service-ambitions models``: what a model name may be, and the provider plug-ins installed."""

from __future__ import annotations

from typing import Annotated

import typer

from service_ambitions.cli.safe import json_safe, plain
from service_ambitions.cli.state import AppState

__all__ = ["models"]


def models(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print the list as one JSON document.")] = False,
) -> None:
    """List the models a run can name, and the provider plug-ins installed.

    A plug-in is a package that adds models named PREFIX:NAME (see "Writing a provider
    plug-in" in the docs). One that cannot be loaded is listed with the reason and left
    out; the built-in providers work whatever it does.

    For example:

    \b
        service-ambitions models
        service-ambitions models --json
    """
    from service_ambitions.jobs.models import models_report

    state: AppState = ctx.obj
    report = models_report()
    if as_json:
        typer.echo(json_safe(report.model_dump_json(indent=2)))
        return
    out = state.out
    for line in report.built_in:
        out.print(f"built in: {line}", highlight=False, markup=False, soft_wrap=True)
    if not report.plugins and not report.broken:
        out.print("plug-ins: none installed", highlight=False, markup=False)
    for row in report.plugins:
        hints = [
            f"{label} {value:,}"
            for label, value in (
                ("requests/min", row.requests_per_minute),
                ("tokens/min", row.tokens_per_minute),
                ("in flight", row.max_in_flight),
            )
            if value
        ]
        described = f" — {row.description}" if row.description else ""
        priced = "priced by the plug-in" if row.priced else "unpriced"
        limits = f"; limits: {', '.join(hints)}" if hints else ""
        out.print(
            plain(f"plug-in: {row.prefix}:NAME from {row.package}{described} ({priced}{limits})"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
    for broken in report.broken:
        out.print(
            plain(f"plug-in left out: {broken.name} ({broken.entry_point}): {broken.reason}"),
            highlight=False,
            markup=False,
            soft_wrap=True,
            style="yellow",
        )
