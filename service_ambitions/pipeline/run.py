"""The pipeline: what to compute for each service, how concurrently, and in what order to write it.

For one service: ``descriptions`` (one call), then ``features`` plateau by plateau (each
call sees the features of earlier plateaus), and ``mapping`` per plateau and catalogue.
Mapping of plateau N starts as soon as its features exist, so it runs while plateau N+1's
features are generated.

Across services: up to ``concurrency`` services run at once, and the gateway caps the
LLM calls in flight. Records are written in input order, each as soon as it and every
service before it are done; at most a bounded window of services is held in memory, so
memory does not grow with the input. A service that fails is quarantined with its stage
and reason, and the run goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from service_ambitions.core.errors import BudgetExceeded, MappingError, ServiceAmbitionsError, reraise_first_error
from service_ambitions.core.events import (
    EventSink,
    LineQuarantined,
    ServiceCompleted,
    ServiceDeferred,
    ServiceFailed,
    ServiceStarted,
)
from service_ambitions.core.models import Feature, Meta, PlateauResult, Service, ServiceEvolution, Stage, StageModels
from service_ambitions.core.telemetry import tracer
from service_ambitions.inputs.entries import Accepted, Existing, QuarantineRecord, Rejected, raw_prefix
from service_ambitions.pipeline.calls import MeasuredCalls
from service_ambitions.pipeline.snapshots import Snapshots
from service_ambitions.pipeline.stages import (
    Call,
    CallPlan,
    Described,
    Featured,
    MappingResult,
    StageBook,
    Step,
    remap_plan,
    service_plan,
)
from service_ambitions.reference.data import Catalogue, Plateau

if TYPE_CHECKING:  # a run answered from snapshots never builds a gateway, nor imports pydantic-ai
    from service_ambitions.llm.gateway import Gateway
    from service_ambitions.llm.requests import LLMAnswer

__all__ = ["MetaFactory", "Pipeline", "RecordSink"]

MetaFactory = Callable[[int, Meta | None, StageModels | None], Meta]
"""Builds a record's ``meta`` from the number of catalogue ids dropped for it, for a
record mapped again the meta it had (None when it had none), and for a record read from
its snapshot the models that made it (None: this run's)."""

_Trail = list[tuple[Stage, "LLMAnswer[Any]"]]
"""A service's answers, in call order: what its snapshot is built from."""


class RecordSink:
    """Where finished work goes; the CLI passes JSONL writers, tests may pass lists."""

    def __init__(
        self,
        write_record: Callable[[ServiceEvolution], None],
        write_quarantine: Callable[[QuarantineRecord], None],
    ) -> None:
        self.write_record = write_record
        self.write_quarantine = write_quarantine


@dataclass
class _Outcome:
    line: int
    service: Service
    evolution: ServiceEvolution | None = None
    error: ServiceAmbitionsError | None = None
    deferred: BudgetExceeded | None = None
    dropped: list[str] = field(default_factory=list)
    trail: _Trail = field(default_factory=list)


_Window = asyncio.Queue["asyncio.Task[_Outcome] | Rejected | None"]
"""The entries between reading and writing: a service's task, a rejected line, or the end (None)."""


@dataclass
class _Progress:
    """How far a service's plan has come: its descriptions, and per plateau its features and mapping calls."""

    descriptions: dict[str, str] = field(default_factory=dict)
    per_plateau: list[tuple[Plateau, list[Feature], list[asyncio.Task[MappingResult | ServiceAmbitionsError]]]] = field(
        default_factory=list
    )
    stop: ServiceAmbitionsError | None = None
    """The features call that failed, if one did."""

    def mapping_stop(self) -> ServiceAmbitionsError | None:
        """The first mapping call that failed so far, if one did."""
        return _first_stop(task for _, _, tasks in self.per_plateau for task in tasks)


@dataclass(frozen=True)
class _Started:
    """Where a service's mapping calls start, and where every answer is kept (for the snapshot)."""

    group: asyncio.TaskGroup
    trail: _Trail


class Pipeline:
    """Turns services into evolutions through the gateway."""

    def __init__(
        self,
        book: StageBook,
        gateway: Gateway | Callable[[], Gateway],
        *,
        meta: MetaFactory,
        strict: bool = False,
        on_event: EventSink | None = None,
        remap: Sequence[Catalogue] = (),
        snapshots: Snapshots | None = None,
        budgeted: bool = False,
    ) -> None:
        """Set up the pipeline; ``gateway`` may be a function that builds it.

        ``budgeted``: the run has a spending limit, so a service starts only when the
        services in flight can still finish (see :meth:`_admitted`).

        The function is then called at the first service that needs an LLM call, so a run
        answered from snapshots never builds a gateway.
        """
        self._book = book
        self._remap = remap
        self._meta = meta
        self._strict = strict
        self._emit: EventSink = on_event or (lambda event: None)
        self._calls = MeasuredCalls(gateway, self._emit)
        self._snapshots = snapshots
        self.budget_stop: BudgetExceeded | None = None
        """Set when the budget ran out: no new service starts, and unfinished ones are deferred."""
        self.unstarted = 0
        """Services of the input never started because the budget ran out first."""
        self._holding = False
        self._budgeted = budgeted and not remap
        self._running: set[str] = set()
        self._finished_cost = Decimal(0)
        self._finished_paid = 0

    async def _admitted(self) -> None:
        """With a budget, start a service only when the ones in flight can still finish, and it too.

        Otherwise a tight budget is spread over many half-done services and a stop leaves
        none finished. A service's cost is the mean of those finished in this run, so the
        first one runs alone (a cost per call would underestimate: calls differ much);
        after it, services start while the budget left covers what the ones in flight
        still need and one more, and none starts that the budget left cannot pay for.

        Raises:
            BudgetExceeded: nothing runs and the budget left is less than a service costs.
        """
        while self._budgeted:
            estimate = self._service_estimate()
            room = self._calls.budget_room()
            if estimate is not None and room is not None:
                still = sum(max(Decimal(0), estimate - self._calls.spent.get(s, Decimal(0))) for s in self._running)
                if room - still >= estimate:
                    return
                if not self._running:
                    raise BudgetExceeded(
                        f"the budget left (${room:.4f}) does not pay for another service "
                        f"(about ${estimate:.4f} each, as those finished in this run cost)"
                    )
            elif not self._running:
                return
            await self._calls.progressed()

    def _service_estimate(self) -> Decimal | None:
        """The mean cost of the services finished so far; None before the first one."""
        return self._finished_cost / self._finished_paid if self._finished_paid else None

    async def run(
        self,
        entries: Iterable[Accepted | Rejected],
        sink: RecordSink,
        *,
        concurrency: int,
        max_services: int | None = None,
    ) -> None:
        """Process every entry, writing records in input order as they complete.

        Rejected lines go straight to quarantine (in order, with the records around them).

        Raises:
            ServiceAmbitionsError: an error that stops the whole run (``aborts_run``);
                records finished before it are already written.
        """
        slots = asyncio.Semaphore(concurrency)
        # The window bounds how far ahead of the oldest unfinished service we read.
        window: _Window = asyncio.Queue(maxsize=concurrency * 2)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._produce(entries, window, group, slots, max_services))
                group.create_task(self._consume(window, sink))
        except ExceptionGroup as group_error:
            reraise_first_error(group_error)

    async def _produce(
        self,
        entries: Iterable[Accepted | Rejected],
        window: _Window,
        group: asyncio.TaskGroup,
        slots: asyncio.Semaphore,
        max_services: int | None,
    ) -> None:
        """Start each service (or pass each rejected line on) in input order, as the window has room."""
        started = 0
        for entry in entries:
            if isinstance(entry, Rejected):
                if self.budget_stop is None:
                    await window.put(entry)
                continue
            if max_services is not None and started >= max_services:
                break
            started += 1
            if self.budget_stop is not None:
                self.unstarted += 1  # counted for the message; a resumed run does it
                continue
            await window.put(group.create_task(self._guarded(entry, slots)))
        await window.put(None)

    async def _consume(self, window: _Window, sink: RecordSink) -> None:
        """Write what became of each entry, in input order."""
        while (item := await window.get()) is not None:
            if isinstance(item, Rejected):
                self._reject(item, sink)
            else:
                self._finish(await item, sink)

    async def _guarded(self, entry: Accepted, slots: asyncio.Semaphore) -> _Outcome:
        """One service, with its failures captured rather than cancelling the run."""
        service_id = entry.service.service_id
        async with slots:
            try:
                await self._admitted()
            except BudgetExceeded as exc:  # never started: left for a resumed run with more budget
                self.budget_stop = exc
                return _Outcome(entry.line, entry.service, deferred=exc)
            self._running.add(service_id)
            try:
                outcome = await self._started(entry, service_id)
            finally:
                self._running.discard(service_id)
                paid = self._calls.forget(service_id)
                self._calls.nudge()
            if outcome.evolution is not None and paid:
                self._finished_cost += paid  # what a whole service costs, for admitting the next
                self._finished_paid += 1
            return outcome

    async def _started(self, entry: Accepted, service_id: str) -> _Outcome:
        """One admitted service: its calls, and what became of it."""
        self._emit(ServiceStarted(service_id=service_id))
        outcome = _Outcome(entry.line, entry.service)
        # The span is current while the service runs, so its stages' spans nest under it.
        with tracer.start_as_current_span("service", attributes={"service_id": service_id}) as span:
            try:
                if entry.existing is not None:
                    outcome.evolution = await self.remap(entry.service, entry.existing, dropped=outcome.dropped)
                elif (snapshot := self._from_snapshot(entry.service, outcome.dropped)) is not None:
                    outcome.evolution = snapshot
                else:
                    outcome.evolution = await self.evolve(entry.service, dropped=outcome.dropped, trail=outcome.trail)
                    if self._snapshots is not None:
                        self._snapshots.remember(entry.service, outcome.evolution, outcome.dropped, outcome.trail)
            except BudgetExceeded as exc:
                # Not the service's fault: it stays undone (neither written nor quarantined),
                # for a resumed run with more budget; calls it finished are cached.
                self.budget_stop = outcome.deferred = exc
            except ServiceAmbitionsError as exc:
                exc.bind(service_id=service_id)
                span.set_attribute("error", exc.message)
                if exc.aborts_run:
                    raise
                outcome.error = exc
        return outcome

    def _from_snapshot(self, service: Service, dropped: list[str]) -> ServiceEvolution | None:
        """The service's record from its snapshot, its calls told as cache hits; None on a miss."""
        found = self._snapshots.lookup(service) if self._snapshots is not None else None
        if found is None:
            return None
        for event in Snapshots.cached_calls(service, found):
            self._emit(event)
        dropped += found.dropped
        return ServiceEvolution(
            meta=self._meta(len(found.dropped), None, found.models), service=service, plateaus=found.plateaus
        )

    def _reject(self, entry: Rejected, sink: RecordSink) -> None:
        sink.write_quarantine(QuarantineRecord.of_line(entry))
        self._emit(LineQuarantined(line=entry.line, reason=entry.reason))

    def _finish(self, outcome: _Outcome, sink: RecordSink) -> None:
        service_id = outcome.service.service_id
        if outcome.deferred is not None or self._holding:
            # After the first service the budget left unfinished, later ones are held back
            # too, finished or not, so a resumed run appends in input order; their calls
            # are cached, so redoing them costs nothing.
            self._holding = True
            reason = outcome.deferred.message if outcome.deferred else "an earlier service was left unfinished"
            self._emit(ServiceDeferred(service_id=service_id, reason=reason))
            return
        if outcome.evolution is not None:
            sink.write_record(outcome.evolution)
            features = sum(len(p.features) for p in outcome.evolution.plateaus)
            self._emit(ServiceCompleted(service_id=service_id, features=features, dropped_items=len(outcome.dropped)))
            return
        error = outcome.error
        assert error is not None  # nosec B101  # a failed outcome always carries its error
        stage = Stage(error.stage) if error.stage else None
        sink.write_quarantine(
            QuarantineRecord(
                kind="service",
                line=outcome.line,
                reason=error.message,
                service_id=service_id,
                stage=stage,
                raw=raw_prefix(outcome.service.model_dump_json()),
                transcript=getattr(error, "transcript", None),
            )
        )
        request_id = getattr(error, "request_id", None)
        self._emit(ServiceFailed(service_id=service_id, stage=stage, reason=error.message, request_id=request_id))

    async def evolve(
        self, service: Service, *, dropped: list[str] | None = None, trail: _Trail | None = None
    ) -> ServiceEvolution:
        """All stages for one service.

        Args:
            service: the service to evolve.
            dropped: receives the catalogue ids the model invented (and that were removed).
            trail: receives every answer, in call order (for the snapshot).

        Raises:
            ServiceAmbitionsError: a stage failed; the error names the stage.
        """
        dropped = [] if dropped is None else dropped
        trail = [] if trail is None else trail
        book = self._book
        plan = service_plan(book, service)
        first = next(plan)
        assert isinstance(first, Call)  # nosec B101  # the plan of a service starts with its descriptions call
        described = await self._calls.ask(first.request, service)
        trail.append((Stage.DESCRIPTIONS, described))
        step: Step | None = plan.send(described.output)
        progress = _Progress()
        # Mapping calls never cancel each other: a call in flight is already billed, so it
        # finishes (and is cached for a resumed run) even when a sibling fails; only calls
        # not yet started are given up.
        try:
            async with asyncio.TaskGroup() as group:
                await self._walk(service, plan, step, progress, _Started(group, trail))
        except ExceptionGroup as group_error:  # a run-stopping error, or a bug: siblings were cancelled
            reraise_first_error(group_error)
        _raise_first([progress.stop, progress.mapping_stop()])
        return self._assembled(service, progress, dropped)

    async def _walk(
        self, service: Service, plan: CallPlan, step: Step | None, progress: _Progress, started: _Started
    ) -> None:
        """Follow the plan from ``step``: mapping calls start as their features are known, features calls in turn."""
        while step is not None:
            if isinstance(step, Described):
                progress.descriptions = step.descriptions
            elif isinstance(step, Featured):
                progress.per_plateau.append((step.plateau, step.features, []))
            elif step.catalogue is not None:
                task = started.group.create_task(self._map(service, step, started.trail))
                progress.per_plateau[-1][2].append(task)
            else:
                step = await self._features(service, plan, step, progress, started.trail)
                continue
            step = next(plan, None)

    async def _features(
        self, service: Service, plan: CallPlan, step: Call, progress: _Progress, trail: _Trail
    ) -> Step | None:
        """A features call, whose answer shapes the rest of the plan; None stops the walk (a call failed)."""
        if progress.mapping_stop() is not None:
            return None
        try:
            answer = await self._calls.ask(step.request, service)
        except ServiceAmbitionsError as exc:
            if exc.aborts_run:
                raise
            progress.stop = exc
            return None
        trail.append((Stage.FEATURES, answer))
        following: Step = plan.send(answer.output)
        return following

    def _assembled(self, service: Service, progress: _Progress, dropped: list[str]) -> ServiceEvolution:
        """The service's evolution from its descriptions, features and mappings; invented ids go to ``dropped``."""
        plateaus: list[PlateauResult] = []
        catalogues = self._book.reference.catalogues
        for plateau, features, mappings in progress.per_plateau:
            results = [result for task in mappings if isinstance(result := task.result(), MappingResult)]
            for result in results:
                dropped += result.dropped
            plateaus.append(
                PlateauResult(
                    plateau=plateau.level,
                    plateau_id=plateau.id,
                    plateau_name=plateau.name,
                    service_description=progress.descriptions[plateau.id],
                    features=[_with_mappings(feature, catalogues, results) for feature in features],
                )
            )
        return ServiceEvolution(meta=self._meta(len(dropped), None, None), service=service, plateaus=plateaus)

    async def remap(self, service: Service, existing: Existing, *, dropped: list[str]) -> ServiceEvolution:
        """Map existing features again to the pipeline's ``remap`` catalogues; other mappings stay as they are.

        Raises:
            ServiceAmbitionsError: a mapping call failed.
        """
        running: dict[tuple[int, str], asyncio.Task[MappingResult | ServiceAmbitionsError]] = {}
        try:
            async with asyncio.TaskGroup() as group:
                for call in remap_plan(self._book, service, existing.plateaus, self._remap):
                    assert call.plateau is not None  # nosec B101  # remap plans are mapping calls: each has a plateau
                    assert call.catalogue is not None  # nosec B101  # and a catalogue
                    running[(call.plateau.level, call.catalogue.field)] = group.create_task(self._map(service, call))
        except ExceptionGroup as group_error:  # a run-stopping error, or a bug: siblings were cancelled
            reraise_first_error(group_error)
        _raise_first([_first_stop(running.values())])
        calls = [
            (
                result,
                [(c, running[(result.plateau, c.field)]) for c in self._remap if (result.plateau, c.field) in running],
            )
            for result in existing.plateaus
        ]
        plateaus: list[PlateauResult] = []
        for result, tasks in calls:
            answers: dict[str, MappingResult] = {}
            for catalogue, task in tasks:
                answer = task.result()
                assert isinstance(answer, MappingResult)  # nosec B101  # failures were raised above
                answers[catalogue.field] = answer
                dropped += answer.dropped
            features = [
                feature.model_copy(
                    update={
                        "mappings": {
                            **feature.mappings,
                            **{field: answer.items.get(feature.feature_id, []) for field, answer in answers.items()},
                        }
                    }
                )
                for feature in result.features
            ]
            plateaus.append(result.model_copy(update={"features": features}))
        return ServiceEvolution(meta=self._meta(len(dropped), existing.meta, None), service=service, plateaus=plateaus)

    async def _map(
        self, service: Service, call: Call, trail: _Trail | None = None
    ) -> MappingResult | ServiceAmbitionsError:
        """One mapping call; a failure is returned, not raised, so sibling calls in flight finish."""
        request, catalogue, features = call.request, call.catalogue, call.features
        assert catalogue is not None  # nosec B101  # mapping calls name their catalogue
        try:
            answer = await self._calls.ask(request, service)
        except ServiceAmbitionsError as exc:
            if exc.aborts_run:
                raise
            return exc
        if trail is not None:
            trail.append((Stage.MAPPING, answer))
        result = self._book.read_mapping(answer.output, catalogue, features)
        if result.dropped and self._strict:
            unknown = ", ".join(sorted(set(result.dropped)))
            return MappingError(
                f"the model named ids that are not in catalogue {catalogue.field!r}: {unknown}",
                stage=Stage.MAPPING,
                hint="run without --strict to drop them instead",
            )
        return result


def _with_mappings(feature: Feature, catalogues: Sequence[Catalogue], results: Sequence[MappingResult]) -> Feature:
    mappings = {
        catalogue.field: result.items.get(feature.feature_id, [])
        for catalogue, result in zip(catalogues, results, strict=True)
    }
    return feature.model_copy(update={"mappings": mappings})


def _first_stop(tasks: Iterable[asyncio.Task[MappingResult | ServiceAmbitionsError]]) -> ServiceAmbitionsError | None:
    """The first failure among finished mapping calls, in call order."""
    for task in tasks:
        if task.done() and isinstance(result := task.result(), ServiceAmbitionsError):
            return result
    return None


def _raise_first(stops: Sequence[ServiceAmbitionsError | None]) -> None:
    """Raise a service's failure; a budget stop only when nothing failed for real (that defers the service)."""
    found = [stop for stop in stops if stop is not None]
    real = [stop for stop in found if not isinstance(stop, BudgetExceeded)]
    if real or found:
        raise (real or found)[0]
