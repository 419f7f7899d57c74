"""The live run panel: what a person watching a long run wants to see, drawn from the run's events.

Every figure comes from the events the run journals (the same ones ``report`` and ``runs
tail`` read) — the tally's counts, plus the times the events arrived, for the rates and
the ETA. Nothing is counted twice. On a terminal the panel is redrawn a few times a
second (rich ``Live``); off a terminal :meth:`RunPanel.line` gives the same key figures
as one plain line for the heartbeat.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from rich.box import SIMPLE_HEAD
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from service_ambitions.cli.safe import plain
from service_ambitions.core.events import Event
from service_ambitions.core.models import Stage
from service_ambitions.runs.live import LivePlan, LiveRun
from service_ambitions.runs.tally import Tally

__all__ = ["RunPanel"]


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def _count(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    return f"{value / 1000:.1f}k" if value >= 10_000 else f"{value:,.0f}"


class RunPanel:
    """The panel: the run's live figures (:class:`LiveRun`), drawn; fed every event after the tally counted it."""

    def __init__(self, tally: Tally, plan: LivePlan, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.tally = tally
        self.plan = plan
        self._clock = clock
        self._live = LiveRun(tally, plan, began=clock())

    @property
    def _began(self) -> float:
        return self._live.began

    @property
    def _services(self) -> int | None:
        return self._live.services

    def observe(self, event: Event) -> None:
        """Note when what matters for rates and the ETA happened."""
        self._live.observe(event, self._clock())

    # -- figures ---------------------------------------------------------------------------

    def figures(self) -> dict[str, float | None]:
        """Rates per minute and the ETA in seconds (None when it cannot be told yet)."""
        rates = self._live.rates(self._clock())
        return {
            "requests": rates.requests,
            "input_tokens": rates.input_tokens,
            "output_tokens": rates.output_tokens,
            "left": rates.left,
            "eta": rates.eta_s,
        }

    def _limits(self) -> tuple[str, str]:
        """The limits the rates are shown against: the configured ones, else those providers announced."""
        requests, tokens, announced = self._live.limits()
        source = " announced" if announced else ""
        return (
            f" of {requests:,}{source}" if requests else "",
            f" of {tokens:,}{source}" if tokens else "",
        )

    def _money(self) -> str:
        tally, plan = self.tally, self.plan
        parts = [f"${tally.cost:.4f} spent"]
        if (projected := self._live.projected()) is not None:
            parts.append(f"~${projected:.4f} projected")
        if plan.budget is not None:
            parts.append(f"${max(Decimal(0), plan.budget - tally.cost):.4f} of ${plan.budget} budget left")
        parts.append(f"${tally.saved:.4f} saved by the cache")
        return " · ".join(parts)

    def _health(self) -> str:
        tally = self.tally
        causes, waiting = self._live.retries(self._clock())
        parts = [f"{sum(causes.values())} retries in the last minute"]
        if causes:
            parts[0] += " (" + ", ".join(f"{plain(reason)}: {n}" for reason, n in causes.most_common(3)) + ")"
        if waiting >= 0.1:
            parts.append(f"waiting {waiting:.1f}s (Retry-After)")
        if tally.throttled_to is not None:
            parts.append(f"cap {tally.throttled_to} in flight")
        if tally.limit_wait_s:
            parts.append(f"paced {tally.limit_wait_s:,.0f}s in all")
        if tally.paused:
            parts.append("paused: " + ", ".join(plain(p) for p in tally.paused))
        if tally.fallbacks:
            used = ", ".join(f"{plain(model)}: {n}" for model, n in tally.fallbacks.most_common(2))
            parts.append(f"fallbacks answered {sum(tally.fallbacks.values())} calls ({used})")
        return " · ".join(parts)

    def line(self) -> str:
        """The key figures as one plain line (the heartbeat off a terminal)."""
        tally, figures = self.tally, self.figures()
        of = f"/{self._services:,}" if self._services is not None else ""
        eta = f", ETA {_duration(figures['eta'])}" if figures["eta"] is not None else ""
        in_flight = sum(tally.in_flight.values())
        batches = f"; {self._batches()}" if tally.batches else ""
        return (
            f"progress: {tally.completed:,}{of} services done, {tally.failed:,} failed{eta}; "
            f"{tally.total_calls:,} calls ({tally.total_cached:,} cached), {in_flight} in flight; "
            f"{_count(figures['requests'] or 0)} req/min{batches}; {self._money()}; "
            f"{_duration(self._clock() - self._began)}"
        )

    def _batches(self) -> str:
        """Batch mode: batches submitted, running and ended, and the requests waiting in them."""
        tally = self.tally
        running = tally.batches_running
        return (
            f"{len(tally.batches):,} batches ({running:,} at the provider, {len(tally.batches) - running:,} ended) · "
            f"{tally.requests_in_batches:,} requests waiting"
        )

    # -- the panel -------------------------------------------------------------------------

    def __rich__(self) -> RenderableType:
        tally, figures = self.tally, self.figures()
        done = tally.completed + tally.failed
        total = self._services
        running = max(0, tally.started - done)
        head = Table.grid(padding=(0, 1), expand=True)
        head.add_column(style="bold", no_wrap=True)
        head.add_column(ratio=1)
        status = Text(f"{tally.completed:,} done · ")
        status.append(f"{tally.failed:,} failed", style="red" if tally.failed else "")
        status.append(f" · {running:,} running")
        if figures["left"] is not None:
            status.append(f" · {int(figures['left']):,} left")
        if figures["eta"] is not None:
            status.append(f" · ETA {_duration(figures['eta'])}", style="bold")
        status.append(f" · {_duration(self._clock() - self._began)}")
        head.add_row("services", ProgressBar(total=total or None, completed=done))
        head.add_row("", status)
        limit, token_limit = self._limits()
        head.add_row(
            "rates",
            Text(
                f"{_count(figures['requests'] or 0)}{limit} req/min · {_count(figures['input_tokens'] or 0)} in, "
                f"{_count(figures['output_tokens'] or 0)} out{token_limit} tokens/min"
            ),
        )
        if tally.batches:
            head.add_row("batches", Text(self._batches()))
        head.add_row("money", Text(self._money(), style="yellow" if self.tally.budget_warning else ""))
        if share := tally.prefix_cached_share:
            head.add_row("prompts", Text(f"{share:.0%} of input tokens from the provider's prompt cache"))
        troubled = bool(self._live.retries(self._clock())[0] or tally.paused)
        head.add_row("provider", Text(self._health(), style="yellow" if troubled else ""))
        for failure in list(tally.failures.values())[-3:]:
            stage = f" ({failure.stage.value})" if failure.stage else ""
            head.add_row("failed", Text(plain(f"{failure.service_id}{stage}: {failure.reason}"), style="red"))
        return Group(head, self._stages())

    def _stages(self) -> Table:
        tally, per_service = self.tally, self.plan.calls_per_service or {}
        table = Table(box=SIMPLE_HEAD, expand=False, pad_edge=False)
        table.add_column("stage")
        for column in ("calls done", "in flight", "cached"):
            table.add_column(column, justify="right")
        for stage in Stage:
            row = tally.stage(stage)
            if stage not in per_service and not row.calls:
                continue
            planned = f" / {whole:,}" if (whole := self._live.planned(stage)) is not None else ""
            calls, flying, cached = row.calls, tally.in_flight[stage], row.cached
            table.add_row(stage.value, f"{calls:,}{planned}", f"{flying:,}", f"{cached:,}")
        return table
