"""The live run panel: what a person watching a long run wants to see, drawn from the run's events.

Every figure comes from the events the run journals (the same ones ``report`` and ``runs
tail`` read) — the tally's counts, plus the times the events arrived, for the rates and
the ETA. Nothing is counted twice. On a terminal the panel is redrawn a few times a
second (rich ``Live``); off a terminal :meth:`RunPanel.line` gives the same key figures
as one plain line for the heartbeat.
"""

from __future__ import annotations

import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from rich.box import SIMPLE_HEAD
from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from service_ambitions.cli.safe import plain
from service_ambitions.core.events import (
    CallFailed,
    CallFinished,
    Event,
    RetryScheduled,
    RunStarted,
    ServiceCompleted,
    ServiceFailed,
)
from service_ambitions.core.models import Stage
from service_ambitions.runs.tally import Tally

__all__ = ["PanelPlan", "RunPanel"]

WINDOW_S = 60.0
"""Rates and the ETA are taken over the last minute, not since the start of the run."""


@dataclass(frozen=True)
class PanelPlan:
    """What the run is expected to do: services, calls per service by stage, limits and budget."""

    services: int | None = None
    calls_per_service: Mapping[Stage, int] | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    budget: Decimal | None = None


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
    """The panel's state, fed every event after the tally has counted it."""

    def __init__(self, tally: Tally, plan: PanelPlan, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.tally = tally
        self.plan = plan
        self._clock = clock
        self._began = clock()
        self._services = plan.services
        self._done: deque[float] = deque()
        self._requests: deque[tuple[float, int, int, int]] = deque()
        self._retries: deque[tuple[float, str, float]] = deque()

    def observe(self, event: Event) -> None:
        """Note when what matters for rates and the ETA happened."""
        now = self._clock()
        match event:
            case RunStarted() if event.already_done and self._services is not None:
                self._services = max(0, self._services - event.already_done)  # resuming: only what is left
            case ServiceCompleted() | ServiceFailed():
                self._done.append(now)
            case CallFinished(cached=False) | CallFailed():
                self._requests.append((now, event.spend.requests, event.spend.input_tokens, event.spend.output_tokens))
            case RetryScheduled():
                self._retries.append((now, event.reason, event.wait_s))
            case _:
                return
        self._forget_before(now - WINDOW_S)  # a quiet run draws nothing: the window still moves

    # -- figures ---------------------------------------------------------------------------

    def _recent(self) -> float:
        """The span the rates are taken over: the last minute, or the run so far when shorter."""
        now = self._clock()
        self._forget_before(now - WINDOW_S)
        return max(1.0, min(WINDOW_S, now - self._began))

    def _forget_before(self, cutoff: float) -> None:
        """Drop what happened before ``cutoff``: the panel keeps a minute, whatever the run's length."""
        while self._done and self._done[0] < cutoff:
            self._done.popleft()
        while self._requests and self._requests[0][0] < cutoff:
            self._requests.popleft()
        while self._retries and self._retries[0][0] < cutoff:
            self._retries.popleft()

    def figures(self) -> dict[str, float | None]:
        """Rates per minute and the ETA in seconds (None when it cannot be told yet)."""
        span = self._recent()
        per_minute = 60 / span
        done = self.tally.completed + self.tally.failed
        left = None if self._services is None else max(0, self._services - done)
        rate = len(self._done) / span  # services a second, recently
        return {
            "requests": sum(r[1] for r in self._requests) * per_minute,
            "input_tokens": sum(r[2] for r in self._requests) * per_minute,
            "output_tokens": sum(r[3] for r in self._requests) * per_minute,
            "left": left,
            "eta": None if left is None or not rate else left / rate,
        }

    def _limits(self) -> tuple[str, str]:
        """The limits the rates are shown against: the configured ones, else those providers announced."""
        plan, learned = self.plan, list(self.tally.learned_limits.values())
        requests = plan.requests_per_minute or min((r for r, _ in learned if r), default=None)
        tokens = plan.tokens_per_minute or min((t for _, t in learned if t), default=None)
        source = "" if plan.requests_per_minute or plan.tokens_per_minute or not learned else " announced"
        return (
            f" of {requests:,}{source}" if requests else "",
            f" of {tokens:,}{source}" if tokens else "",
        )

    def _money(self) -> str:
        tally, plan = self.tally, self.plan
        parts = [f"${tally.cost:.4f} spent"]
        done = tally.completed + tally.failed
        if done and self._services:
            parts.append(f"~${tally.cost / done * self._services:.4f} projected")
        if plan.budget is not None:
            parts.append(f"${max(Decimal(0), plan.budget - tally.cost):.4f} of ${plan.budget} budget left")
        parts.append(f"${tally.saved:.4f} saved by the cache")
        return " · ".join(parts)

    def _health(self) -> str:
        tally = self.tally
        causes = Counter(reason for _, reason, _ in self._retries)
        parts = [f"{len(self._retries)} retries in the last minute"]
        if causes:
            parts[0] += " (" + ", ".join(f"{plain(reason)}: {n}" for reason, n in causes.most_common(3)) + ")"
        now = self._clock()
        waiting = max((at + wait - now for at, _, wait in self._retries), default=0.0)
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
        head.add_row("provider", Text(self._health(), style="yellow" if self._retries or tally.paused else ""))
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
            planned = f" / {per_service[stage] * self._services:,}" if stage in per_service and self._services else ""
            calls, flying, cached = row.calls, tally.in_flight[stage], row.cached
            table.add_row(stage.value, f"{calls:,}{planned}", f"{flying:,}", f"{cached:,}")
        return table
