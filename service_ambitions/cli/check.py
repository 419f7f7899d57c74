"""``service-ambitions check``: quality findings on every roadmap of a run, no model needed."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service_ambitions.cli.safe import json_safe, markup_safe
from service_ambitions.cli.state import AppState

if TYPE_CHECKING:
    from rich.console import Console

    from service_ambitions.quality.report import QualityReport

__all__ = ["EXIT_FINDINGS", "check", "render_quality_summary"]

EXIT_FINDINGS = 1
"""``check`` exits 1 when it found anything, as linters do; 0 means every roadmap is clean."""

_SHOWN = 10


def check(
    ctx: typer.Context,
    evolutions: Annotated[
        Path, typer.Argument(metavar="EVOLUTIONS", help="Evolutions JSONL written by run or map.", show_default=False)
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print every finding as one JSON document.")] = False,
    every: Annotated[bool, typer.Option("--all", help="List every finding, not the first 10 per service.")] = False,
) -> None:
    """Find defects in every roadmap: deterministic rules, no model, nothing spent.

    Rules: maturity that does not rise, levels copied from the plateau's number, features
    repeated across plateaus or roles, roles left empty, features that rely on nothing,
    catalogues no feature uses, many invented ids, justifications repeated word for word,
    vendor or product names, acronyms never spelled out, plateau descriptions that name
    the plateau instead of describing the service. Each finding names the service,
    plateau, role and feature, with a one-line why; each service gets a score (100 is
    clean). Thresholds, the vendor list and rules to skip are the `quality:` settings.

    Exits 0 when every roadmap is clean, 1 when there are findings.

    For example:

    \b
        service-ambitions check evolutions.jsonl
        service-ambitions check evolutions.jsonl --json > findings.json
        SA_QUALITY__SKIP='["acronym-unexplained"]' service-ambitions check evolutions.jsonl
    """
    from service_ambitions.core.errors import InputError
    from service_ambitions.core.tuning import tune_gc
    from service_ambitions.quality.report import check_file, known_roles

    tune_gc()
    state: AppState = ctx.obj
    settings = state.settings()
    report = check_file(evolutions, settings.quality, known_roles(settings.reference))
    if not report.services:
        raise InputError(
            f"{evolutions} holds no readable evolution record ({report.skipped_lines:,} unreadable lines)",
            hint="check takes the JSONL that run or map wrote",
        )
    if as_json:
        typer.echo(json_safe(report.model_dump_json(indent=2)))
    else:
        _render(state.out, report, every=every)
        render_quality_summary(state.out, report)
    if report.findings:
        raise typer.Exit(EXIT_FINDINGS)


def _render(console: Console, report: QualityReport, *, every: bool) -> None:
    for service in report.services:
        if not service.findings:
            continue
        console.print(
            f"\n[bold]{markup_safe(service.service_id)}[/] {markup_safe(service.name)}: score {service.score}",
            highlight=False,
            soft_wrap=True,
        )
        shown = service.findings if every else service.findings[:_SHOWN]
        for finding in shown:
            where = " ".join(
                part
                for part in (
                    f"plateau {finding.plateau}" if finding.plateau is not None else "",
                    f"role {finding.role}" if finding.role else "",
                    f"feature {finding.feature_id}" if finding.feature_id else "",
                )
                if part
            )
            colour = {"error": "red", "warning": "yellow"}.get(finding.severity.value, "dim")
            console.print(
                f"  [{colour}]{finding.severity.value}[/] {finding.rule}"
                + (f" ({markup_safe(where)})" if where else "")
                + f": {markup_safe(finding.why)}",
                highlight=False,
                soft_wrap=True,
            )
        if len(service.findings) > len(shown):
            console.print(f"  … and {len(service.findings) - len(shown):,} more (--all lists them)", highlight=False)


def render_quality_summary(console: Console, report: QualityReport) -> None:
    """The totals: services clean, mean score, findings per rule (what ``run --check`` prints too)."""
    total = len(report.services)
    console.print(
        f"\nquality: {report.clean:,} of {total:,} services clean, mean score {report.mean_score():.0f}/100, "
        f"{report.findings:,} findings",
        highlight=False,
    )
    if report.by_rule():
        console.print("  " + ", ".join(f"{rule} {count:,}" for rule, count in report.by_rule()), highlight=False)
    if report.skipped_lines:
        console.print(f"  {report.skipped_lines:,} lines were not readable records and were skipped", highlight=False)
