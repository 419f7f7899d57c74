"""The plan of a job and its dry-run estimate: calls per stage, cache hits, tokens and cost."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.models import Service, Stage
from service_ambitions.inputs.entries import Accepted, Existing, Rejected
from service_ambitions.inputs.jsonl import read_services
from service_ambitions.jobs.checks import InputScan
from service_ambitions.jobs.inputs import map_reader
from service_ambitions.jobs.setup import Prepared, open_cache
from service_ambitions.pipeline.stages import Call, CallPlan, StageBook, remap_plan, service_plan
from service_ambitions.reference.data import Catalogue

if TYPE_CHECKING:
    from service_ambitions.llm.gateway import Gateway
    from service_ambitions.llm.requests import LLMRequest

__all__ = ["Estimate", "Planner", "StageEstimate", "StagePlan", "estimate", "estimate_remap"]


@dataclass(frozen=True)
class StageEstimate:
    """One stage of a planned run: calls, cache hits, and a token and cost range for the rest."""

    stage: Stage
    model: str
    calls: int
    cached: int
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    cost: tuple[Decimal, Decimal] | None
    """Low and high USD for the calls the cache does not answer; None when the price is unknown."""
    shared_tokens: int = 0
    """Of the low input estimate, the tokens every call of the stage shares (its leading, cacheable part)."""

    @property
    def shared_share(self) -> float | None:
        """The share of the input a provider's prompt cache can serve after the stage's first call."""
        return self.shared_tokens / self.input_tokens[0] if self.input_tokens[0] else None


@dataclass
class Estimate:
    """What ``run`` would do and spend, worked out without calling any model."""

    scan: InputScan
    stages: list[StageEstimate]
    batch: bool = False
    """Costs are at the providers' batch prices (``--batch``)."""


_TYPICAL_ANSWER_TOKENS = 150
"""The low end of an answer's length; the high end is ``max_output_tokens``."""


def estimate(prepared: Prepared, input_path: Path, *, max_services: int | None = None) -> Estimate:
    """Plan a run: services, calls per stage, how many the cache answers, tokens and cost for the rest.

    The cache is only read. Input token counts are estimates (about four characters a
    token); prompts after a cache miss depend on answers not yet known, so their counts
    are lower bounds, and the high end adds 30 %.

    Raises:
        InputError: the input file cannot be read.
    """
    entries = read_services(input_path, max_line_bytes=prepared.settings.max_line_bytes)
    return _estimate(prepared, entries, max_services=max_services)


def estimate_remap(
    prepared: Prepared,
    input_path: Path,
    *,
    catalogues: Sequence[str] | None = None,
    service_file: Path | None = None,
    service_id: str | None = None,
) -> Estimate:
    """Plan a ``map`` run as :func:`estimate` plans ``run``: its mapping calls, cache hits, tokens and cost.

    Raises:
        ConfigError: a catalogue name is not in the reference data.
        InputError: the input or service file cannot be read.
    """
    chosen, read = map_reader(prepared, input_path, catalogues, service_file, service_id)
    return _estimate(prepared, read(), remap=chosen)


def _estimate(
    prepared: Prepared,
    entries: Iterable[Accepted | Rejected],
    *,
    max_services: int | None = None,
    remap: Sequence[Catalogue] = (),
) -> Estimate:
    from service_ambitions.llm.budget import call_price
    from service_ambitions.llm.gateway import compose_gateway
    from service_ambitions.llm.lanes import CallSettings

    settings = prepared.settings
    batch = settings.batch.enabled  # priced at the providers' batch rates
    scan = InputScan()
    with ExitStack() as stack:
        cache = stack.enter_context(open_cache(settings)) if settings.cache_mode is not CacheMode.OFF else None
        gateway = compose_gateway(
            prepared.models,
            max_in_flight=settings.max_in_flight,
            settings=CallSettings(model_settings=prepared.model_settings(), output_retries=settings.output_retries),
            cache=cache,
            cache_mode=CacheMode.READONLY if cache is not None else CacheMode.OFF,
        )
        planner = Planner(prepared.book, gateway)
        for entry in entries:
            if isinstance(entry, Rejected):
                scan.rejected.append(entry)
            elif max_services is None or scan.services < max_services:
                scan.services += 1
                if entry.existing is not None:
                    planner.add_remap(entry.service, entry.existing, remap)
                else:
                    planner.add(entry.service)
    stages = []
    for stage, plan in planner.stages.items():
        if stage not in prepared.models:
            continue  # a stage this command does not call
        remaining = plan.calls - plan.cached
        inputs = (plan.input_tokens, plan.input_tokens * 13 // 10)
        outputs = (remaining * _TYPICAL_ANSWER_TOKENS, remaining * gateway.max_output_tokens)
        model = prepared.models[stage]
        low, high = (call_price(model, *tokens, batch=batch) for tokens in zip(inputs, outputs, strict=True))
        cost = (low, high) if low is not None and high is not None else None
        stages.append(
            StageEstimate(
                stage, settings.model_for(stage), plan.calls, plan.cached, inputs, outputs, cost, plan.shared_tokens
            )
        )
    return Estimate(scan, stages, batch=batch)


@dataclass
class StagePlan:
    """What one stage needs: calls, how many the cache already answers, tokens for the rest."""

    calls: int = 0
    cached: int = 0
    input_tokens: int = 0
    """Estimated input tokens of the calls the cache does not answer."""
    shared_tokens: int = 0
    """Of those, the tokens each call shares with every other call of its stage (instructions, schema)."""


class Planner:
    """Walks a service's calls through the cache only, to count what a run would spend.

    A stage whose answer is cached lets the walk go on with that answer; after the first
    miss, later prompts cannot be known exactly, so they are rendered from what is known
    (their token estimates are then lower bounds).
    """

    def __init__(self, book: StageBook, gateway: Gateway) -> None:
        self._book = book
        self._gateway = gateway
        self.stages: dict[Stage, StagePlan] = {stage: StagePlan() for stage in Stage}

    def add(self, service: Service) -> None:
        """Count one service's calls: the plan ``run`` walks, walked through the cache."""
        self._walk(service_plan(self._book, service))

    def add_remap(self, service: Service, existing: Existing, catalogues: Sequence[Catalogue]) -> None:
        """Count the mapping calls ``map`` makes for one record: every prompt is known."""
        self._walk(remap_plan(self._book, service, existing.plateaus, catalogues))

    def _walk(self, plan: CallPlan) -> None:
        # After the first answer the cache does not hold, later prompts are not known exactly.
        known = True
        step = next(plan, None)
        while step is not None:
            if not isinstance(step, Call):
                step = next(plan, None)
            elif step.catalogue is not None:  # a mapping call: nothing comes back into the plan
                self._probe(step.request, known=known)
                step = next(plan, None)
            else:
                answer = self._probe(step.request, known=known)
                known = answer is not None
                step = plan.send(answer)

    def _probe(self, request: LLMRequest[BaseModel], *, known: bool) -> BaseModel | None:
        plan = self.stages[request.stage]
        plan.calls += 1
        answer = self._gateway.peek(request) if known else None
        if answer is None:
            plan.input_tokens += self._gateway.estimate_input_tokens(request)
            plan.shared_tokens += self._gateway.estimate_shared_tokens(request)
        else:
            plan.cached += 1
        return answer
