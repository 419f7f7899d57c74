"""A run as it goes: the live figures the terminal panel draws and the web's run page shows.

The counts are the :class:`~service_ambitions.runs.tally.Tally`'s; what this adds is *when*
things happened, for the rates, the ETA and the retries of the last minute. Times are
given with each event (``at``, in seconds on any one clock): the CLI passes its monotonic
clock as events arrive, the web passes each event's own timestamp, so a run opened half-way
through gets the rates it had, not a burst of everything read at once.
"""

from __future__ import annotations

import json
import time
from collections import Counter, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from service_ambitions.core.errors import ServiceAmbitionsError
from service_ambitions.core.events import (
    CallFailed,
    CallFinished,
    CallStarted,
    Event,
    RetryScheduled,
    RunStarted,
    ServiceCompleted,
    ServiceFailed,
    from_line,
)
from service_ambitions.core.models import Stage
from service_ambitions.reference.data import load_reference
from service_ambitions.runs.journal import EventTail, Manifest, read_manifest
from service_ambitions.runs.tally import Tally

__all__ = [
    "WINDOW_S",
    "LiveFigures",
    "LivePlan",
    "LiveRun",
    "Rates",
    "RunFollower",
    "StageFigures",
    "count_lines",
    "live_figures",
    "plan_of",
]

WINDOW_S = 60.0
"""Rates and the ETA are taken over the last minute, not since the start of the run."""


@dataclass(frozen=True)
class LivePlan:
    """What the run is expected to do: services, calls per service by stage, limits and budget."""

    services: int | None = None
    calls_per_service: Mapping[Stage, int] | None = None
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    budget: Decimal | None = None


@dataclass(frozen=True)
class Rates:
    """Per minute over the recent window, and what is left and when it should be done."""

    requests: float
    input_tokens: float
    output_tokens: float
    left: int | None
    """Services still to do; None when the total is unknown."""
    eta_s: float | None
    """Seconds until the rest is done at the recent pace; None when it cannot be told yet."""


class StageFigures(BaseModel):
    """One stage's row of the panel."""

    model_config = ConfigDict(extra="forbid")

    stage: str
    calls: int
    planned: int | None
    """Calls the whole run needs at this stage, when the total is known."""
    in_flight: int
    cached: int
    retries: int


class LiveFigures(BaseModel):
    """Everything the panel shows, as data (the web's run page and its AG-UI state)."""

    model_config = ConfigDict(extra="forbid")

    services_total: int | None
    done: int
    failed: int
    running: int
    left: int | None
    eta_s: float | None
    elapsed_s: float
    calls: int
    cached: int
    in_flight: int
    requests_per_minute: float
    input_tokens_per_minute: float
    output_tokens_per_minute: float
    requests_limit: int | None
    tokens_limit: int | None
    limits_announced: bool
    """The limits are the ones providers announced (none were configured)."""
    spent_usd: str
    projected_usd: str | None
    budget_usd: str | None
    budget_left_usd: str | None
    budget_warning: bool
    saved_usd: str
    retries_last_minute: int
    retry_causes: dict[str, int]
    waiting_s: float
    """How long the latest retry still waits (Retry-After)."""
    throttled_to: int | None
    paused: list[str]
    fallbacks: dict[str, int]
    prefix_cached_share: float | None
    stages: list[StageFigures]
    recent_failures: list[str]
    """The last few failed services: ``id (stage): reason``."""


class LiveRun:
    """A tally plus the recent minute: fed every event after the tally has counted it."""

    def __init__(self, tally: Tally, plan: LivePlan, *, began: float) -> None:
        self.tally = tally
        self.plan = plan
        self.began = began
        self.services = plan.services
        self._latest = began
        self._done: deque[float] = deque()
        self._requests: deque[tuple[float, int, int, int]] = deque()
        self._retries: deque[tuple[float, str, float]] = deque()

    def observe(self, event: Event, at: float) -> None:
        """Note when what matters for rates and the ETA happened."""
        self._latest = max(self._latest, at)
        match event:
            case RunStarted() if event.already_done and self.services is not None:
                self.services = max(0, self.services - event.already_done)  # resuming: only what is left
            case ServiceCompleted() | ServiceFailed():
                self._done.append(at)
            case CallFinished(cached=False) | CallFailed():
                self._requests.append((at, event.spend.requests, event.spend.input_tokens, event.spend.output_tokens))
            case RetryScheduled():
                self._retries.append((at, event.reason, event.wait_s))
            case _:
                return
        self._forget_before(at - WINDOW_S)  # a quiet run draws nothing: the window still moves

    def _forget_before(self, cutoff: float) -> None:
        """Drop what happened before ``cutoff``: a minute is kept, whatever the run's length."""
        while self._done and self._done[0] < cutoff:
            self._done.popleft()
        while self._requests and self._requests[0][0] < cutoff:
            self._requests.popleft()
        while self._retries and self._retries[0][0] < cutoff:
            self._retries.popleft()

    def rates(self, now: float) -> Rates:
        """Rates per minute over the last minute (or the run so far when shorter), and the ETA."""
        self._forget_before(now - WINDOW_S)
        span = max(1.0, min(WINDOW_S, now - self.began))
        per_minute = 60 / span
        done = self.tally.completed + self.tally.failed
        left = None if self.services is None else max(0, self.services - done)
        pace = len(self._done) / span  # services a second, recently
        return Rates(
            requests=sum(r[1] for r in self._requests) * per_minute,
            input_tokens=sum(r[2] for r in self._requests) * per_minute,
            output_tokens=sum(r[3] for r in self._requests) * per_minute,
            left=left,
            eta_s=None if left is None or not pace else left / pace,
        )

    def limits(self) -> tuple[int | None, int | None, bool]:
        """The limits rates are shown against: the configured ones, else the providers' announced ones."""
        plan, learned = self.plan, list(self.tally.learned_limits.values())
        requests = plan.requests_per_minute or min((r for r, _ in learned if r), default=None)
        tokens = plan.tokens_per_minute or min((t for _, t in learned if t), default=None)
        announced = not (plan.requests_per_minute or plan.tokens_per_minute) and bool(learned)
        return requests, tokens, announced

    def projected(self) -> Decimal | None:
        """What the whole run should cost at the spend per service so far."""
        done = self.tally.completed + self.tally.failed
        return self.tally.cost / done * self.services if done and self.services else None

    def retries(self, now: float) -> tuple[Counter[str], float]:
        """Retries of the last minute by cause, and how long the latest still waits."""
        self._forget_before(now - WINDOW_S)
        causes = Counter(reason for _, reason, _ in self._retries)
        waiting = max((at + wait - now for at, _, wait in self._retries), default=0.0)
        return causes, max(0.0, waiting)

    def planned(self, stage: Stage) -> int | None:
        """Calls the run needs at ``stage``, when the plan and the total are known."""
        per_service = (self.plan.calls_per_service or {}).get(stage)
        return per_service * self.services if per_service is not None and self.services else None

    def figures(self, now: float | None = None) -> LiveFigures:
        """The panel's figures at ``now`` (default: the latest event's time)."""
        now = self._latest if now is None else now
        tally, rates = self.tally, self.rates(now)
        causes, waiting = self.retries(now)
        requests_limit, tokens_limit, announced = self.limits()
        budget = self.plan.budget
        projected = self.projected()
        done = tally.completed + tally.failed
        return LiveFigures(
            services_total=self.services,
            done=tally.completed,
            failed=tally.failed,
            running=max(0, tally.started - done),
            left=rates.left,
            eta_s=rates.eta_s,
            elapsed_s=max(0.0, now - self.began),
            calls=tally.total_calls,
            cached=tally.total_cached,
            in_flight=sum(tally.in_flight.values()),
            requests_per_minute=rates.requests,
            input_tokens_per_minute=rates.input_tokens,
            output_tokens_per_minute=rates.output_tokens,
            requests_limit=requests_limit,
            tokens_limit=tokens_limit,
            limits_announced=announced,
            spent_usd=str(tally.cost),
            projected_usd=None if projected is None else f"{projected:.6f}",
            budget_usd=None if budget is None else str(budget),
            budget_left_usd=None if budget is None else str(max(Decimal(0), budget - tally.cost)),
            budget_warning=tally.budget_warning is not None,
            saved_usd=str(tally.saved),
            retries_last_minute=sum(causes.values()),
            retry_causes=dict(causes.most_common()),
            waiting_s=round(waiting, 1),
            throttled_to=tally.throttled_to,
            paused=sorted(tally.paused),
            fallbacks=dict(tally.fallbacks.most_common()),
            prefix_cached_share=tally.prefix_cached_share,
            stages=self._stages(),
            recent_failures=[
                f"{failure.service_id}{f' ({failure.stage.value})' if failure.stage else ''}: {failure.reason}"
                for failure in list(tally.failures.values())[-5:]
            ],
        )

    def _stages(self) -> list[StageFigures]:
        tally = self.tally
        rows = []
        for stage in Stage:
            row = tally.stage(stage)
            planned = self.planned(stage)
            if planned is None and not row.calls and not tally.in_flight[stage]:
                continue
            rows.append(
                StageFigures(
                    stage=stage.value,
                    calls=row.calls,
                    planned=planned,
                    in_flight=tally.in_flight[stage],
                    cached=row.cached,
                    retries=row.retries,
                )
            )
        return rows


def count_lines(path: Path, limit: int | None) -> int | None:
    """Non-blank lines of ``path``: the progress bar's total (an upper bound of services)."""
    try:
        with path.open("rb") as handle:
            count = sum(1 for line in handle if line.strip())
    except OSError:
        return None
    return min(count, limit) if limit else count


def _given(words: Sequence[str], flag: str) -> list[str]:
    """The values ``flag`` was given in a command's words (``--flag VALUE`` or ``--flag=VALUE``)."""
    values = []
    for index, word in enumerate(words):
        if word.startswith(f"{flag}="):
            values.append(word.partition("=")[2])
        elif word == flag and index + 1 < len(words):
            values.append(words[index + 1])
    return values


def _calls_per_service(manifest: Manifest) -> dict[Stage, int] | None:
    """Calls a service needs at each stage, from the run's reference data; None when it cannot be read."""
    files = manifest.settings.get("reference") or {}
    named = files.get("catalogues")
    try:
        reference = load_reference(
            plateaus=Path(files["plateaus"]) if files.get("plateaus") else None,
            roles=Path(files["roles"]) if files.get("roles") else None,
            catalogues=[Path(name) for name in named] if named else None,
        )
    except ServiceAmbitionsError:
        return None
    plateaus, catalogues = len(reference.plateaus), len(reference.catalogues)
    if manifest.command == "map":
        chosen = _given(manifest.command_line or [], "--catalogue")
        return {Stage.MAPPING: plateaus * (len(chosen) or catalogues)}
    return {Stage.DESCRIPTIONS: 1, Stage.FEATURES: plateaus, Stage.MAPPING: plateaus * catalogues}


def plan_of(manifest: Manifest) -> LivePlan:
    """What a journaled run expects, as far as its manifest tells: services, calls, limits and budget."""
    limit = next(
        (int(value) for value in _given(manifest.command_line or [], "--max-services") if value.isdigit()), None
    )
    settings = manifest.settings
    try:
        budget = None if settings.get("max_cost") is None else Decimal(str(settings["max_cost"]))
    except InvalidOperation:
        budget = None
    limits = settings.get("limits") or {}
    return LivePlan(
        services=count_lines(Path(manifest.input_path), limit),
        calls_per_service=_calls_per_service(manifest),
        requests_per_minute=limits.get("requests_per_minute"),
        tokens_per_minute=limits.get("tokens_per_minute"),
        budget=budget,
    )


class RunFollower:
    """A run's journal read as it grows: the tally, the live figures and the stages begun (the web's run page)."""

    def __init__(self, directory: Path) -> None:
        manifest = read_manifest(directory)
        began = manifest.started.timestamp() if manifest is not None else time.time()
        self.live = LiveRun(Tally(), plan_of(manifest) if manifest is not None else LivePlan(), began=began)
        self.steps: list[str] = []

    def take(self, lines: list[str]) -> list[str]:
        """Fold ``lines``; the stages whose first call they start."""
        begun = []
        for line in lines:
            record = json.loads(line)
            try:
                event = from_line(record)
            except ValueError:
                continue  # an event a later release wrote: not ours to count
            self.live.tally(event)
            self.live.observe(event, _seconds(record.get("ts") or record.get("time")))
            if isinstance(event, CallStarted) and event.stage.value not in self.steps:
                self.steps.append(event.stage.value)
                begun.append(event.stage.value)
        return begun


def _seconds(stamp: object) -> float:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return time.time()


def live_figures(directory: Path) -> LiveFigures:
    """A run's live figures as its journal stands (now, for a running run)."""
    follower = RunFollower(directory)
    with EventTail(directory) as tail:
        follower.take(tail.new_lines())
        running = not tail.ended()
    return follower.live.figures(time.time() if running else None)
