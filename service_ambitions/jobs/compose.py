"""What a run is assembled from: its cache, gateway, pipeline and the metadata each record carries.

Kept apart from :mod:`.run`, which records a run from start to end: these are
constructions from the prepared settings, the same for ``run``, ``map`` and each worker
process of a run with ``workers`` > 1 (:func:`assemble_pipeline` is the one place a
pipeline is built).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from typing import TYPE_CHECKING

from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.errors import CacheUnavailable
from service_ambitions.core.events import CacheProblem, EventSink, ProviderPaused
from service_ambitions.core.models import RUN_STAGES, Meta, ReferenceHashes, StageModels
from service_ambitions.jobs.setup import Prepared, open_cache
from service_ambitions.pipeline.run import MetaFactory, Pipeline
from service_ambitions.reference.data import Catalogue

if TYPE_CHECKING:  # the gateway is built only when a call is made: it imports pydantic-ai
    from service_ambitions.cache.store import ResultCache
    from service_ambitions.config.settings import Settings
    from service_ambitions.llm.batching import BatchLane, WaitingCalls
    from service_ambitions.llm.gateway import Gateway

__all__ = [
    "assemble_pipeline",
    "batch_lane",
    "meta_maker",
    "remapped_reference",
    "run_cache",
    "run_gateway",
]


def assemble_pipeline(
    prepared: Prepared,
    gateway: Callable[[], Gateway],
    *,
    run_id: str,
    emit: EventSink,
    cache: ResultCache | None,
    clock: Callable[[], datetime],
    remap: Sequence[Catalogue] = (),
) -> Pipeline:
    """The pipeline of a run (or of one worker's share of it), with its snapshots when the cache is on.

    ``gateway`` is called at the first call that needs it, once: a run whose services are all
    answered by snapshots builds none (and never imports pydantic-ai).
    """
    from service_ambitions.pipeline.snapshots import Snapshots

    settings = prepared.settings
    snapshots = None
    if cache is not None and not remap and settings.snapshots:
        snapshots = Snapshots(cache, prepared.snapshot_scope, settings.cache_mode)
    return Pipeline(
        prepared.book,
        gateway,
        meta=meta_maker(prepared, gateway, run_id, clock, remap),
        strict=settings.strict,
        on_event=emit,
        remap=remap,
        snapshots=snapshots,
        budgeted=settings.max_cost is not None,
    )


def batch_lane(prepared: Prepared, waiting: WaitingCalls, emit: EventSink, *, detach: bool) -> BatchLane:
    """Batch mode's lane to the providers' batch APIs, with the settings' sizes and waits.

    Build it inside the run's event loop. ``waiting`` keeps the calls that wait on batches
    (the run's ``suspended.jsonl``); with ``detach`` a call parks once its request is in a
    batch, so the run can end and another collect it.
    """
    from service_ambitions.llm.batching import BatchLane, BatchOptions

    batch = prepared.settings.batch.model_dump(exclude={"enabled", "services"})
    options = BatchOptions(**batch, detach=detach)
    return BatchLane(options, waiting, emit)


def run_gateway(
    prepared: Prepared,
    cache: ResultCache | None,
    emit: EventSink,
    batch: BatchLane | None = None,
    *,
    spent_before: Decimal = Decimal(0),
) -> Gateway:
    """The gateway of a real run: the settings' cache mode, budget, rate limits and breaker.

    With ``batch``, every call the cache does not answer goes through the providers' batch APIs.

    Raises:
        ConfigError: the models cannot be resolved (see :attr:`Prepared.models`).
    """
    from pydantic_ai import UsageLimits

    from service_ambitions.llm.budget import Budget
    from service_ambitions.llm.failures import provider_unwell
    from service_ambitions.llm.gateway import compose_gateway
    from service_ambitions.llm.imported import ImportedAnswers
    from service_ambitions.llm.lanes import CallSettings
    from service_ambitions.llm.limits import CircuitBreaker, RateLimiter
    from service_ambitions.llm.plugins import plugin_hints

    settings = prepared.settings
    limits = settings.limits
    # A plug-in's backend may say what it can take; the settings, where they say, come first.
    hints = plugin_hints(prepared.models.values())
    per_minute = limits.requests_per_minute or hints.requests_per_minute
    tokens = limits.tokens_per_minute or hints.tokens_per_minute
    return compose_gateway(
        prepared.models,
        max_in_flight=min(settings.max_in_flight, hints.max_in_flight or settings.max_in_flight),
        settings=CallSettings(
            model_settings=prepared.model_settings(),
            output_retries=settings.output_retries,
            usage_limits=UsageLimits(
                request_limit=None,
                input_tokens_limit=limits.call_input_tokens,
                output_tokens_limit=limits.call_output_tokens,
            ),
        ),
        cache=cache,
        cache_mode=settings.cache_mode,
        ttls=settings.cache_ttls(),
        source=ImportedAnswers(cache, prepared.reference, emit) if cache and settings.reuse_imported else None,
        on_event=emit,
        budget=Budget(settings.max_cost, spent_before=spent_before) if settings.max_cost is not None else None,
        rate=RateLimiter(requests_per_minute=per_minute, tokens_per_minute=tokens) if per_minute or tokens else None,
        breaker=CircuitBreaker(
            threshold=limits.breaker_failures,
            cooldown_s=limits.breaker_cooldown_s,
            is_failure=provider_unwell,
            on_change=lambda provider, paused: emit(ProviderPaused(provider=provider, paused_s=paused)),
        ),
        batch=batch,
        unreachable_after=limits.unreachable_calls,
    )


def meta_maker(
    prepared: Prepared,
    gateway: Callable[[], Gateway],
    run_id: str,
    clock: Callable[[], datetime],
    remap: Sequence[Catalogue] = (),
) -> MetaFactory:
    """How this run labels its records: models, reference hashes, seed and provenance.

    ``gateway`` gives the run's gateway, asked only for a record this run's models made
    (one read from its snapshot names the models that made it).
    """
    made_by: list[StageModels] = []

    def stage_models() -> StageModels:
        if not made_by:
            names = {stage: gateway().model_name(stage) for stage in prepared.chains}
            made_by.append(StageModels(**{stage.value: names.get(stage, "input") for stage in RUN_STAGES}))
        return made_by[0]

    hashes = prepared.reference.hashes
    reference = ReferenceHashes(
        plateaus=hashes["plateaus"],
        roles=hashes["roles"],
        catalogues={c.field: hashes[f"catalogue:{c.field}"] for c in prepared.reference.catalogues},
        prompts=prepared.prompts.sha256,
    )
    generator = f"service-ambitions {version('service-ambitions')}"

    def meta(dropped: int, original: Meta | None, recorded_by: StageModels | None) -> Meta:
        models = recorded_by or stage_models()
        made_with: ReferenceHashes | None = reference
        if original is not None:
            # Mapped again: the other stages are the original's; only the mapping is new.
            models = original.models.model_copy(update={"mapping": models.mapping})
            made_with = remapped_reference(original.reference, reference, remap)
        return Meta(
            run_id=run_id,
            created=clock(),
            generator=generator,
            models=models,
            seed=prepared.settings.seed,
            synthetic=prepared.synthetic or (original is not None and original.synthetic),
            reference=made_with,
            dropped_items=dropped,
            legacy=original.legacy if original is not None else None,
        )

    return meta


def remapped_reference(
    original: ReferenceHashes | None, current: ReferenceHashes, mapped: Sequence[Catalogue]
) -> ReferenceHashes | None:
    """The reference a record mapped again was made with: its own, with the mapped catalogues' and prompts' now."""
    if original is None:
        return None  # a migrated record that never said; mixing would claim what is not known
    catalogues = {**original.catalogues, **{c.field: current.catalogues[c.field] for c in mapped}}
    return original.model_copy(update={"catalogues": catalogues, "prompts": current.prompts})


def run_cache(settings: Settings, stack: ExitStack, emit: EventSink) -> ResultCache | None:
    """The run's cache, entered on ``stack``; None when it is off or cannot be opened (said once, as an event)."""
    if settings.cache_mode is CacheMode.OFF:
        return None
    try:
        return stack.enter_context(open_cache(settings))
    except CacheUnavailable as exc:
        # Answers cost money, not correctness: a damaged or unreachable cache
        # is reported once and the run goes on without it.
        emit(CacheProblem(reason=exc.user_message, reading=True))
        return None
