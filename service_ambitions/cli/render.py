"""Rich renderings of runs: the live progress display, the summary, the dry-run plan."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from rich.box import SIMPLE_HEAD
from rich.console import Console
from rich.table import Table

from service_ambitions.cli.safe import cell, json_safe, markup_safe, plain
from service_ambitions.core.events import BudgetWarning
from service_ambitions.core.models import Stage

if TYPE_CHECKING:
    from service_ambitions.cli.panel import RunPanel
    from service_ambitions.cli.state import AppState
    from service_ambitions.core.events import Event, EventSink
    from service_ambitions.inputs.entries import Rejected
    from service_ambitions.jobs.plan import Estimate
    from service_ambitions.jobs.run import RunResult
    from service_ambitions.jobs.setup import Prepared
    from service_ambitions.runs.journal import Manifest
    from service_ambitions.runs.tally import Tally, UsageRow
    from service_ambitions.runs.usage import UsageReport

__all__ = [
    "progress_display",
    "render_plan",
    "render_report",
    "render_result_line",
    "render_run_end",
    "render_runs",
    "render_summary",
]


@contextmanager
def progress_display(console: Console, panel: RunPanel, *, enabled: bool) -> Iterator[EventSink]:
    """Yield the event sink of a run: it counts every event and, on a terminal, shows the live panel.

    Nothing is drawn when ``enabled`` is false or the console is not a terminal, so logs
    and pipes get no control codes (they get the heartbeat instead, see ``job.heartbeat``).
    """

    def observe(event: Event) -> None:
        panel.tally(event)
        panel.observe(event)
        if isinstance(event, BudgetWarning):  # one line, above the panel; the run goes on
            console.print(budget_warning_line(event), highlight=False, soft_wrap=True)

    if not (enabled and console.is_terminal):
        yield observe
        return
    from rich.live import Live

    # Twice a second is enough for figures that move by the second, and half the drawing of four.
    with Live(panel, console=console, refresh_per_second=2, transient=False, redirect_stderr=False):
        yield observe


def _provider_rows(table: Table, tally: Tally) -> None:
    """How the provider side went: batches (batch mode), retries, waits under announced limits."""
    if tally.batches:
        waiting = f"{tally.batches_running:,} still at the provider, {tally.requests_in_batches:,} requests waiting"
        table.add_row("provider batches", f"{len(tally.batches):,} ({waiting})")
    table.add_row("provider retries", f"{tally.totals.retries:,} (waited {tally.retry_wait_s:.1f} s)")
    if tally.limit_wait_s:
        table.add_row("waited for announced rate limits", f"{tally.limit_wait_s:,.1f} s (requests overlap)")


def _call_cells(row: UsageRow) -> tuple[str, ...]:
    """A summary row's figures: calls, cache hits, requests and tokens."""
    spend = row.spend
    return tuple(
        f"{n:,}"
        for n in (
            row.calls,
            row.cached,
            spend.requests,
            spend.input_tokens,
            spend.cache_read_tokens,
            spend.output_tokens,
        )
    )


def budget_warning_line(event: BudgetWarning) -> str:
    """The soft budget's one warning line."""
    budget = f" of a ${event.budget_usd} budget" if event.budget_usd is not None else ""
    return (
        f"[yellow]warning:[/] ${event.spent_usd:.4f} spent{budget}: past the warning threshold of "
        f"${event.threshold_usd:.4f} (warn_cost); the run goes on"
    )


def render_summary(
    console: Console, tally: Tally, *, elapsed: float, output: Path | None, quarantine: Path | None
) -> None:
    """The end-of-run table: services, then calls and tokens per stage, then where things went."""
    console.print(_services_table(tally, elapsed))
    console.print(_calls_table(tally))
    if share := tally.prefix_cached_share:  # nothing to say where the provider reported none
        console.print(
            f"prompt cache: {share:.0%} of input tokens were served from the provider's prompt cache "
            "(billed at its cached-input price)",
            highlight=False,
        )
    console.print(
        f"output: {markup_safe(str(output)) if output else 'standard output'}", highlight=False, soft_wrap=True
    )
    if tally.failed or tally.quarantined_lines:
        console.print(f"quarantine: {markup_safe(str(quarantine))}", highlight=False, soft_wrap=True)
    _cache_notes(console, tally)
    if any(model == "offline" for model in tally.stage_models.values()):
        console.print("[yellow]note:[/] the offline model wrote synthetic placeholder content (meta.synthetic).")


def _services_table(tally: Tally, elapsed: float) -> Table:
    """Services, money, the provider side, time and throughput."""
    services = Table(title="Run summary", show_header=False, title_justify="left")
    services.add_column(style="bold")
    services.add_column(justify="right")
    services.add_row("services completed", f"{tally.completed:,}")
    services.add_row("services failed", f"{tally.failed:,}")
    services.add_row("input lines quarantined", f"{tally.quarantined_lines:,}")
    services.add_row("features", f"{tally.features:,}")
    services.add_row("invented catalogue ids dropped", f"{tally.dropped_items:,}")
    unpriced = f" (+{tally.unpriced_calls} calls without a known price)" if tally.unpriced_calls else ""
    services.add_row("spent", f"${tally.cost:.4f}{unpriced}")
    if tally.failed_calls:
        services.add_row("failed calls (billed, counted above)", f"{tally.failed_calls:,}")
    if tally.deferred:
        services.add_row("services left for --resume (budget)", f"{tally.deferred:,}")
    _provider_rows(services, tally)
    _time_rows(services, tally, elapsed)
    return services


def _time_rows(table: Table, tally: Tally, elapsed: float) -> None:
    table.add_row("elapsed", f"{elapsed:.1f} s")
    minutes = max(elapsed, 1e-9) / 60
    per_minute = (tally.completed + tally.failed) / minutes, tally.total_requests / minutes
    table.add_row("throughput", f"{per_minute[0]:,.1f} services/min, {per_minute[1]:,.0f} requests/min")
    busy = {stage: seconds for stage, seconds in tally.call_seconds.items() if seconds}
    if busy:
        # Calls overlap, so their times add up to more than the wall time: the split says where
        # the waiting was, and the retries' share says how much of it the provider asked for.
        split = ", ".join(f"{stage.value} {seconds:,.1f} s" for stage, seconds in busy.items())
        table.add_row("time in calls (they overlap)", split)


def _calls_table(tally: Tally) -> Table:
    """Calls, cache hits, requests and tokens per stage, and their total."""
    calls = Table(title="LLM calls", title_justify="left", box=SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    model_width = min(max((len(name) for name in tally.stage_models.values()), default=5), 24)
    for column in ("stage", "model", "calls", "cached", "requests", "in tokens", "prompt cache", "out tokens"):
        textual = column in ("stage", "model")
        # Fold rather than truncate: a model name cut to "openai:gpt-…" says nothing. Stage
        # names stay whole.
        calls.add_column(
            column,
            justify="left" if textual else "right",
            overflow="fold",
            no_wrap=column != "model",
            min_width=min(model_width, 10) if column == "model" else None,
        )
    for stage in Stage:  # a stage this command does not run (map only maps) has no row
        if (row := tally.stages.get(stage)) is not None and (row.calls or stage in tally.stage_models):
            calls.add_row(stage.value, cell(tally.stage_models.get(stage, "-")), *_call_cells(row))
    calls.add_row("total", "", *_call_cells(tally.totals), style="bold")
    return calls


def _cache_notes(console: Console, tally: Tally) -> None:
    """Cache entries that could not be used, and a cache the run went on without."""
    for rejected in tally.rejected_entries:
        console.print(
            f"[yellow]cache:[/] {rejected.stage.value} entry {markup_safe(rejected.key)}… was unusable "
            f"({markup_safe(rejected.reason)}) and was recomputed",
            highlight=False,
            soft_wrap=True,
        )
    for problem in tally.cache_problems:
        what = "without the cache" if problem.reading else "without writing new answers to the cache"
        console.print(
            f"[yellow]cache:[/] {markup_safe(problem.reason)}; the run went on {what}",
            highlight=False,
            soft_wrap=True,
        )


def render_plan(console: Console, prepared: Prepared, plan: Estimate, input_path: Path) -> None:
    """What a run would do and spend: calls per stage, cache hits, token and cost ranges."""
    scan = plan.scan
    prices = "; batch prices" if plan.batch else ""
    title = f"Plan for {markup_safe(str(input_path))} (dry run: no LLM call made{prices})"
    table = Table(title=title, title_justify="left")
    columns = (
        "stage",
        "model",
        "calls",
        "cached",
        "input tokens (est.)",
        "shared",
        "output tokens (est.)",
        "cost (est.)",
    )
    for column in columns:
        table.add_column(column, justify="left" if column in ("stage", "model") else "right", overflow="fold")
    for row in plan.stages:
        table.add_row(
            row.stage.value,
            cell(row.model),
            f"{row.calls:,}",
            f"{row.cached:,}",
            _range(row.input_tokens),
            f"{row.shared_share:.0%}" if row.shared_share is not None else "-",
            _range(row.output_tokens),
            f"${row.cost[0]:.2f} to ${row.cost[1]:.2f}" if row.cost else "unknown",
        )
    costs = [row.cost for row in plan.stages]
    total_cost = (
        f"${sum(c[0] for c in costs if c):.2f} to ${sum(c[1] for c in costs if c):.2f}" if all(costs) else "unknown"
    )
    table.add_row(
        "total",
        "",
        f"{sum(r.calls for r in plan.stages):,}",
        f"{sum(r.cached for r in plan.stages):,}",
        "",
        "",
        "",
        total_cost,
        style="bold",
    )
    console.print(f"services: {scan.services:,}   rejected lines: {len(scan.rejected):,}", highlight=False)
    reference = prepared.reference
    console.print(
        f"plateaus: {len(reference.plateaus)}   roles: {len(reference.roles)}   "
        f"catalogues: {', '.join(c.field for c in reference.catalogues)}",
        highlight=False,
    )
    console.print(table)
    console.print(
        "shared: the part of each request every call of its stage shares, sent first; providers that cache "
        "prompt prefixes (OpenAI from 1,024 tokens) bill it at their cached-input price after the first call. "
        "The cost range is at the full input price.",
        highlight=False,
        soft_wrap=True,
    )
    for rejected in scan.rejected[:10]:
        console.print(
            f"  line {rejected.line}: {markup_safe(rejected.reason)}", style="yellow", highlight=False, soft_wrap=True
        )
    if len(scan.rejected) > 10:
        console.print(f"  … and {len(scan.rejected) - 10} more", style="yellow")


def _range(pair: tuple[int, int]) -> str:
    return f"{pair[0]:,} to {pair[1]:,}" if pair[0] != pair[1] else f"{pair[0]:,}"


def render_result_line(
    console: Console, tally: Tally, result: RunResult, *, output: Path | None, quarantine: Path
) -> None:
    """The whole outcome of a job on one line: what ``--quiet`` prints."""
    problems = ""
    if tally.failed or tally.quarantined_lines:
        problems = f", {tally.failed:,} failed, {tally.quarantined_lines:,} lines rejected (see {plain(quarantine)})"
    stopped = f", budget reached with {tally.deferred + result.unstarted:,} left" if result.budget_stop else ""
    collect = ""
    if result.status == "detached":
        stopped = f", {plain(result.stop_reason or '')}"
        collect = f"; collect with: service-ambitions runs collect {plain(result.run_id)}"
    console.print(
        f"{result.status}: {tally.completed:,} services done{problems}{stopped}, "
        f"{tally.total_requests:,} requests, ${tally.cost:.4f} spent; "
        f"output {plain(output or 'standard output')}; run {plain(result.run_id)}{collect}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


def render_run_end(
    state: AppState, result: RunResult, tally: Tally, quarantine: Path, *, trace_ids: bool = False
) -> None:
    """Where the run's journal is, and what is left to do: resume after a budget stop, read the quarantine."""
    state.out.print(
        f"run {plain(result.run_id)}: journal in {plain(result.directory)}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if result.fresh_start:
        state.err.print("--resume: no earlier run wrote this output, so a new run was started", highlight=False)
    if result.already_done:
        state.out.print(f"resumed: {result.already_done} services were already done and were skipped", highlight=False)
    if result.status == "detached":
        state.err.print(
            f"detached: {plain(result.stop_reason or '')}; collect them with  "
            f"service-ambitions runs collect {plain(result.run_id)}  (exit code 11 while batches still run)",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    if result.budget_stop is not None:
        left = tally.deferred + result.unstarted
        state.err.print(
            f"budget reached: {plain(result.budget_stop)}. {tally.completed:,} service(s) done, {left:,} left; "
            "continue them with --resume and a larger --max-cost (it is the budget of the whole run)",
            style="yellow",
            highlight=False,
            soft_wrap=True,
            markup=False,
        )
    if trace_ids:
        for failure in tally.failures.values():
            state.out.print(
                f"failed: {plain(failure.service_id)} ({failure.stage or '-'}): "
                f"request {plain(failure.request_id or 'unknown')}",
                highlight=False,
                markup=False,
            )
    if tally.failed or tally.quarantined_lines:
        state.err.print(
            f"[yellow]warning:[/] {tally.failed} service(s) failed and {tally.quarantined_lines} input line(s) "
            f"were rejected; see {markup_safe(str(quarantine))}",
            highlight=False,
            soft_wrap=True,
        )


def render_skipped(console: Console, skipped: Sequence[Rejected], *, shown: int = 10) -> None:
    """The lines a view or export could not read, the first few with their reasons (escaped)."""
    for line in skipped[:shown]:
        console.print(f"[yellow]skipped[/] line {line.line}: {markup_safe(line.reason)}", highlight=False)
    if len(skipped) > shown:
        console.print(f"… and {len(skipped) - shown:,} more skipped lines", highlight=False)


def render_report(console: Console, report: UsageReport, *, failures: bool) -> None:
    """Totals, then tables by stage, model and (if present) service."""
    totals = report.totals
    console.print(
        f"run {plain(report.run_id)} ({plain(report.status)}), {report.started:%Y-%m-%d %H:%M} UTC, "
        f"{report.wall_s:.1f} s; "
        f"prices: {report.price_data}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    unpriced = f" + {totals.spend.unpriced} unpriced calls" if totals.spend.unpriced else ""
    console.print(
        f"spent ${totals.spend.cost_usd:.4f}{unpriced}; the cache saved ${totals.saved_usd:.4f} "
        f"({totals.cached:,} of {totals.calls:,} calls, {totals.hit_rate:.0%}); "
        f"{totals.retries} retries waited {report.retry_wait_s:.1f} s; {totals.failures} failed services"
        + (f"; {totals.failed_calls} failed calls (billed, counted)" if totals.failed_calls else ""),
        highlight=False,
    )
    if totals.batch_calls:
        console.print(batch_line(report), highlight=False, markup=False, soft_wrap=True)
    for title, rows in (
        ("By stage", report.by_stage),
        ("By model", report.by_model),
        ("By service", report.by_service),
    ):
        if rows:
            console.print(_usage_table(title, rows))
    if failures:
        for cause, count in report.failures_by_cause.items():
            console.print(f"{count:>5} x {plain(cause)}", highlight=False, markup=False)
        for failure in report.failures:
            request = f" [request {plain(failure.request_id)}]" if failure.request_id else ""
            console.print(
                f"failed: {plain(failure.service_id)} ({failure.stage or '-'}): {plain(failure.reason)}{request}",
                highlight=False,
                markup=False,
                soft_wrap=True,
            )


def batch_line(report: UsageReport) -> str:
    """Batch mode in one line: calls answered by batches, at batch prices, and the saving against live ones."""
    totals = report.totals
    ended = sum(1 for batch in report.batches if batch.ended)
    return (
        f"batch mode: {totals.batch_calls:,} calls answered through {len(report.batches):,} provider batch"
        f"{'' if len(report.batches) == 1 else 'es'} "
        f"({ended:,} ended) at batch prices, ${totals.spend.batch_cost_usd:.4f}; at live prices "
        f"${totals.spend.batch_live_usd:.4f}, so batches saved ${totals.spend.batch_saved_usd:.4f}"
    )


def _usage_table(title: str, rows: list[UsageRow]) -> Table:
    # Borderless: nine columns must fit an 80-column terminal. Requests are in --json.
    table = Table(title=title, title_justify="left", box=SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    columns = ("", "calls", "cached", "in tokens", "out tokens", "cost", "saved", "retries")
    key_width = min(max((len(row.key) for row in rows), default=0), 24)
    for column in columns:
        # Keys may be long (models, service ids) and fold, but not below a readable width;
        # numbers never break across lines.
        table.add_column(
            column,
            justify="left" if not column else "right",
            overflow="fold",
            no_wrap=bool(column),
            min_width=None if column else key_width,
        )
    for row in rows:
        table.add_row(
            cell(row.key),
            f"{row.calls:,}",
            f"{row.cached:,}",
            f"{row.spend.input_tokens:,}",
            f"{row.spend.output_tokens:,}",
            f"${row.spend.cost_usd:.4f}" + ("+?" if row.spend.unpriced else ""),
            f"${row.saved_usd:.4f}",
            f"{row.retries:,}",
        )
    return table


def render_runs(console: Console, manifests: list[Manifest]) -> None:
    """One row per recorded run."""
    if not manifests:
        console.print("no runs recorded yet")
        return
    table = Table(title="Runs", title_justify="left", box=SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for column in ("run", "command", "started UTC", "status", "services", "failed", "cost"):
        # Run ids are copied into other commands: never cut them. Paths are in `runs show`.
        table.add_column(column, no_wrap=column != "status", overflow="fold", min_width=23 if column == "run" else None)
    for manifest in manifests:
        counts = manifest.counts
        table.add_row(
            cell(manifest.run_id),
            cell(manifest.command),
            f"{manifest.started:%m-%d %H:%M}",
            cell(manifest.status),
            f"{counts.services_completed:,}",
            f"{counts.services_failed:,}",
            f"${counts.spend.cost_usd:.4f}",
        )
    console.print(table)


def echo_files_written(paths: Sequence[Path], why: str) -> None:
    """Each file a command wrote as a ``file_written`` event line on stdout (the journal's envelope)."""
    from datetime import UTC, datetime

    import typer

    from service_ambitions.core.events import enveloped
    from service_ambitions.runs.journal import file_written

    now = datetime.now(UTC).isoformat()
    for path in paths:
        typer.echo(json_safe(enveloped(file_written(path, why), run_id="", ts=now)))
