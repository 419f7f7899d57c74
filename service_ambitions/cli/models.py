"""``service-ambitions models``: what a model name may be, and the provider plug-ins installed."""

from __future__ import annotations

from typing import Annotated

import typer

from service_ambitions.cli.safe import json_safe, plain
from service_ambitions.cli.state import AppState

__all__ = ["models_app"]

models_app = typer.Typer(
    help="The models a run can name, the provider plug-ins installed, and what each model costs.",
    invoke_without_command=True,
)


@models_app.callback()
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
        service-ambitions models prices
    """
    if ctx.invoked_subcommand is not None:
        return
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


@models_app.command("prices")
def prices(
    ctx: typer.Context,
    model: Annotated[
        str | None,
        typer.Argument(help="A model name; every model the settings name when left out.", show_default=False),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the prices as one JSON document.")] = False,
) -> None:
    """Show what each model will be charged, per million tokens, and where the figure comes from.

    A model priced under prices: in the settings is charged that; a provider plug-in's model,
    its plug-in's price; any other, genai-prices' bundled price. A model none of them knows
    is unpriced: budgets refuse it unless --allow-unknown-prices.

    For example:

    \b
        service-ambitions models prices
        service-ambitions models prices openai:gpt-4o-mini
        service-ambitions --config config/app.yaml models prices --json
    """
    from pydantic import TypeAdapter

    from service_ambitions.config.settings import Overrides
    from service_ambitions.jobs.models import PriceRow, price_rows

    state: AppState = ctx.obj
    rows = price_rows(state.settings(Overrides()), model)
    if as_json:
        typer.echo(json_safe(TypeAdapter(list[PriceRow]).dump_json(rows, indent=2).decode()))
        return
    for row in rows:
        if not row.known:
            state.out.print(plain(f"{row.model}: no known price ({row.source})"), highlight=False, markup=False)
            continue
        parts = [f"input ${row.input}", f"output ${row.output}"]
        parts += [
            f"{label} ${value}"
            for label, value in (
                ("cached input", row.cached_input),
                ("batch input", row.batch_input),
                ("batch output", row.batch_output),
            )
            if value is not None
        ]
        fee = f", and ${row.per_request} a request" if row.per_request else ""
        state.out.print(
            plain(f"{row.model}: {', '.join(parts)} per million tokens{fee} — from {row.source}"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
