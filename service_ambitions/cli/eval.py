"""``service-ambitions eval``: compare two prompt sets or models on a sample, side by side."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from service_ambitions.cli.safe import json_safe, markup_safe
from service_ambitions.cli.state import AppState

if TYPE_CHECKING:
    from rich.console import Console

    from service_ambitions.core.events import Event
    from service_ambitions.jobs.eval import EvalReport, Side

__all__ = ["evaluate"]

_SIDE_HELP = "a settings YAML file, or a prompts folder (its .md files replace the packaged ones)"


def evaluate(
    ctx: typer.Context,
    services: Annotated[
        Path, typer.Argument(metavar="SERVICES", help="Services JSONL to sample from.", show_default=False)
    ],
    a: Annotated[
        Path | None, typer.Option("--a", help=f"Side A: {_SIDE_HELP}. [default: the current settings]")
    ] = None,
    b: Annotated[
        Path | None, typer.Option("--b", help=f"Side B: {_SIDE_HELP}. [default: the current settings]")
    ] = None,
    model_a: Annotated[str | None, typer.Option("--model-a", help="Model for every stage of side A.")] = None,
    model_b: Annotated[str | None, typer.Option("--model-b", help="Model for every stage of side B.")] = None,
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="Services to evaluate on, drawn with the seed; all if unset.")
    ] = 10,
    judge_model: Annotated[
        str | None,
        typer.Option("--judge-model", help="A model that scores every roadmap against a rubric (e.g. offline)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for the sample, both outputs and the report. [default: eval-TIME]"),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as one JSON document.")] = False,
) -> None:
    """Compare two configurations on the same services: findings, content, spend, judge.

    Both sides run the same sample as ordinary recorded runs (cached: an unchanged side
    costs nothing the second time). Then side by side: check's findings and scores,
    maturity levels, features per role, catalogue coverage, tokens and cost; with
    --judge-model, a model's 1-5 scores per roadmap (maturity, features, progression,
    writing, mapping), through the same cache and budget and counted in report. The
    judge reads the current settings' prompts (judge.md), the same for both sides.

    For example:

    \b
        service-ambitions eval services.jsonl --b prompts-v2 --model-a offline --model-b offline
        service-ambitions eval services.jsonl --b prompts-v2 --sample 20 --judge-model openai:gpt-4.1
        service-ambitions eval services.jsonl --model-a openai:gpt-4o-mini --model-b openai:gpt-4.1-mini --json
    """
    import asyncio

    from service_ambitions.core.tuning import tune_gc
    from service_ambitions.jobs.eval import evaluate as run_eval
    from service_ambitions.jobs.eval import pick_sample

    tune_gc()
    state: AppState = ctx.obj
    base = state.settings()
    sides = [_side(state, "a", a, model_a), _side(state, "b", b, model_b)]
    chosen = pick_sample(services, sample, base.seed, max_line_bytes=base.max_line_bytes)
    directory = output or Path(f"eval-{datetime.now(UTC):%Y%m%dT%H%M%SZ}")

    def progress(label: str, event: Event) -> None:
        if event.type == "service_completed" and not as_json:
            state.err.print(f"{label}: {markup_safe(getattr(event, 'service_id', ''))} done", highlight=False)

    report = asyncio.run(
        run_eval(sides, chosen, directory, judge_model=judge_model, judge_prompts=base.prompts_dir, on_event=progress)
    )
    if as_json:
        typer.echo(json_safe(report.model_dump_json(indent=2)))
        return
    _render(state.out, report)


def _side(state: AppState, label: str, path: Path | None, model: str | None) -> Side:
    """A side's settings: the current ones, with its file or prompts folder and model on top."""
    from service_ambitions.config.settings import Overrides, load_settings
    from service_ambitions.core.models import RUN_STAGES
    from service_ambitions.jobs.eval import Side

    overrides = Overrides(model=model)
    described = []
    config = state.config
    if path is not None and path.is_dir():
        overrides = Overrides(model=model, prompts_dir=path)
        described.append(f"prompts {path}")
    elif path is not None:
        if not path.is_file():
            raise typer.BadParameter(f"{path} is neither a settings file nor a prompts folder", param_hint=f"--{label}")
        config = path
        described.append(f"settings {path}")
    settings = load_settings(config, overrides)
    models = sorted({settings.model_for(stage) for stage in RUN_STAGES})
    described.append(("model " if len(models) == 1 else "models ") + ", ".join(models))
    if settings.prompts_dir and path is None:
        described.insert(0, f"prompts {settings.prompts_dir}")
    return Side(label, settings, ", ".join(described))


def _render(console: Console, report: EvalReport) -> None:
    from rich.table import Table

    from service_ambitions.jobs.eval import CRITERIA

    a, b = report.sides
    console.print(f"eval of {len(report.sample)} services; files in {markup_safe(report.directory)}", highlight=False)
    table = Table(title="Side by side", title_justify="left")
    table.add_column("")
    table.add_column(f"A: {markup_safe(a.described)}", overflow="fold")
    table.add_column(f"B: {markup_safe(b.described)}", overflow="fold")

    def row(name: str, value: Any) -> None:
        table.add_row(name, str(value(a)), str(value(b)))

    row("run", lambda s: s.run_id)
    row("services written / failed", lambda s: f"{s.services} / {s.failed}")
    row("quality: mean score", lambda s: f"{s.mean_score:.1f}")
    row("quality: clean services", lambda s: f"{s.clean} of {s.services}")
    rules = sorted(set(a.findings_by_rule) | set(b.findings_by_rule))
    for rule in rules:
        row(f"  {rule}", lambda s, rule=rule: s.findings_by_rule.get(rule, 0))
    row("maturity levels 1-5", lambda s: " ".join(str(s.maturity.get(level, 0)) for level in range(1, 6)))
    for role in sorted(set(a.features_per_role) | set(b.features_per_role)):
        row(f"features per plateau: {markup_safe(role)}", lambda s, role=role: s.features_per_role.get(role, "-"))
    for field in sorted(set(a.coverage) | set(b.coverage)):
        row(
            f"features relying on {markup_safe(field)}",
            lambda s, field=field: f"{s.coverage.get(field, 0):.0%} ({s.items_used.get(field, 0)} items)",
        )
    row("requests", lambda s: f"{s.spend.requests:,}")
    row(
        "tokens in (prompt cache) / out",
        lambda s: f"{s.spend.input_tokens:,} ({s.spend.cache_read_tokens:,}) / {s.spend.output_tokens:,}",
    )
    row("cost", lambda s: f"${s.spend.cost:.4f}" if s.spend.cost is not None else "unknown price")
    if a.judge and b.judge:
        row("judge", lambda s: f"{s.judge.model} (run {s.judge.run_id})")
        for criterion in CRITERIA:
            row(f"  judge: {criterion}", lambda s, c=criterion: s.judge.means.get(c, "-"))
        row("  judge: overall", lambda s: s.judge.overall if s.judge.overall is not None else "-")
        row("  judge: failed", lambda s: sum(1 for j in s.judge.services if j.failed))
        row("  judge: cost", lambda s: f"${s.judge.spend.cost:.4f}" if s.judge.spend.cost is not None else "unknown")
    console.print(table)
