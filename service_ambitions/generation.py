"""Generation jobs: prepare everything a run needs, plan it, and run it.

:func:`prepare` does every check that needs no LLM call — reference data, prompts,
models and their credentials — so that ``run``, ``run --dry-run`` and ``validate`` fail
the same way, before anything is spent. :func:`generate` is the one library call behind
``service-ambitions run``.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from importlib.metadata import version
from pathlib import Path

from pydantic_ai import ModelSettings, UsageLimits
from pydantic_ai.models import Model
from pydantic_ai.models.fallback import FallbackModel

from .cache import CacheMode, ResultCache, database_error
from .clock import utc_now
from .config import Settings
from .errors import (
    CacheUnavailable,
    ConfigError,
    InputError,
    OutputError,
    ResumeMismatch,
    ServiceAmbitionsError,
)
from .events import CacheProblem, Event, EventSink, ProviderPaused, RunFinished, RunStarted, Tally
from .jsonl import Accepted, JsonlWriter, Rejected, is_stdout, read_services
from .llm.budget import Budget, call_price
from .llm.gateway import Gateway, provider_unwell
from .llm.limits import CircuitBreaker, RateLimiter
from .llm.resolve import is_offline, resolve_model
from .llm.transport import RetryPolicy, retrying_client
from .map_input import load_service_file, read_map_input
from .models import Meta, ReferenceHashes, Stage, StageModels
from .pipeline import Pipeline, Planner, RecordSink
from .prompting import PromptSet, load_prompts
from .reference import Catalogue, ReferenceData, load_reference
from .runs import (
    TERMINATE,
    Manifest,
    RunCounts,
    RunRecorder,
    RunStatus,
    current_process,
    file_sha256,
    find_run,
    output_lock,
    recover_output,
    recover_quarantine,
    restore_input_order,
    tally_run,
)
from .stages import StageBook
from .telemetry import tracer

__all__ = [
    "Check",
    "Estimate",
    "InputScan",
    "Prepared",
    "RunResult",
    "StageEstimate",
    "estimate",
    "estimate_remap",
    "generate",
    "new_run_id",
    "open_cache",
    "prepare",
    "remap",
    "retry_policy",
    "run_checks",
    "scan_input",
]


@dataclass(frozen=True)
class Prepared:
    """Settings, reference data, prompts and models of a run, all checked."""

    settings: Settings
    reference: ReferenceData
    prompts: PromptSet
    models: dict[Stage, Model]
    book: StageBook

    @property
    def synthetic(self) -> bool:
        """True when any stage is answered by the offline model."""
        return any(is_offline(name) for stage in self.models for name in self.settings.model_chain(stage))

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of everything that affects results: a resumed run must match it."""
        settings = self.settings
        material = {
            "models": {stage.value: settings.model_chain(stage) for stage in Stage},
            "seed": settings.seed,
            "temperature": settings.temperature,
            "features_per_role": settings.features_per_role.model_dump(),
            "strict": settings.strict,
            "max_output_tokens": settings.max_output_tokens,
            "reference": self.reference.hashes,
            "prompts": self.prompts.sha256,
        }
        return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()

    def model_settings(self) -> ModelSettings:
        """What every call sends besides the prompt.

        The SDK's own retries are off: the HTTP transport retries (``llm/transport.py``),
        and the two would multiply.
        """
        settings = ModelSettings(
            seed=self.settings.seed,
            max_tokens=self.settings.max_output_tokens,
            max_retries=0,
            timeout=self.settings.retry.request_timeout_s,
        )
        if self.settings.temperature is not None:
            settings["temperature"] = self.settings.temperature
        return settings


def retry_policy(settings: Settings) -> RetryPolicy:
    """The HTTP retry policy the settings describe."""
    retry = settings.retry
    return RetryPolicy(attempts=retry.attempts, max_wait=retry.max_wait_s, request_timeout=retry.request_timeout_s)


def _chain_model(models: list[Model]) -> Model:
    """One model, or a fallback chain that moves on when a provider fails."""
    return models[0] if len(models) == 1 else FallbackModel(*models)


def prepare(
    settings: Settings,
    *,
    model_factory: Callable[[str], Model] | None = None,
    stages: Sequence[Stage | str] = tuple(Stage),
) -> Prepared:
    """Load and check everything a run needs before it spends anything.

    Args:
        settings: the run's settings.
        model_factory: turns a model name into a model; tests pass fakes here. The
            default resolves names with one retrying HTTP client for every provider.
        stages: the stages that will make calls (``map`` only maps); only their models
            are resolved, so only their credentials are needed.

    Raises:
        ConfigError: reference data, prompts, a model name or its credentials are unusable.
    """
    files = settings.reference
    reference = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
    prompts = load_prompts(settings.prompts_dir)
    chains = {stage: settings.model_chain(stage) for stage in map(Stage, stages)}
    if model_factory is None:
        model_factory = functools.partial(resolve_model, http_client=retrying_client(retry_policy(settings)))
    resolved = {name: model_factory(name) for name in sorted({name for chain in chains.values() for name in chain})}
    models = {stage: _chain_model([resolved[name] for name in chain]) for stage, chain in chains.items()}
    names = {stage: settings.model_for(stage) for stage in chains}
    if settings.max_cost is not None and not settings.allow_unknown_prices:
        unpriced = sorted({name for stage, name in names.items() if call_price(models[stage], 1000, 1000) is None})
        if unpriced:
            raise ConfigError(
                f"no price is known for {', '.join(unpriced)}, so --max-cost cannot be enforced",
                hint="use a model genai-prices knows, or add --allow-unknown-prices (their calls then count as $0)",
            )
    book = StageBook(reference, prompts, settings.features_per_role, settings.shortlist)
    return Prepared(settings, reference, prompts, models, book)


@dataclass
class InputScan:
    """What an input file holds, read without calling any model."""

    services: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def scan_input(path: Path, *, max_services: int | None = None, max_line_bytes: int = 1 << 20) -> InputScan:
    """Read the whole input once: valid services (up to ``max_services``) and rejected lines.

    Raises:
        InputError: the file cannot be read.
    """
    scan = InputScan()
    for entry in read_services(path, max_line_bytes=max_line_bytes):
        if isinstance(entry, Rejected):
            scan.rejected.append(entry)
        elif max_services is None or scan.services < max_services:
            scan.services += 1
    return scan


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


@dataclass
class Estimate:
    """What ``run`` would do and spend, worked out without calling any model."""

    scan: InputScan
    stages: list[StageEstimate]


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
    chosen, entries = _map_input(prepared, input_path, catalogues, service_file, service_id)
    return _estimate(prepared, entries, remap=chosen)


def _estimate(
    prepared: Prepared,
    entries: Iterable[Accepted | Rejected],
    *,
    max_services: int | None = None,
    remap: Sequence[Catalogue] = (),
) -> Estimate:
    settings = prepared.settings
    scan = InputScan()
    with ExitStack() as stack:
        cache = stack.enter_context(open_cache(settings)) if settings.cache_mode is not CacheMode.OFF else None
        gateway = Gateway(
            prepared.models,
            max_in_flight=settings.max_in_flight,
            model_settings=prepared.model_settings(),
            output_retries=settings.output_retries,
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
        low, high = gateway.price(stage, inputs[0], outputs[0]), gateway.price(stage, inputs[1], outputs[1])
        cost = (low, high) if low is not None and high is not None else None
        stages.append(StageEstimate(stage, settings.model_for(stage), plan.calls, plan.cached, inputs, outputs, cost))
    return Estimate(scan, stages)


@dataclass(frozen=True)
class Check:
    """The outcome of one pre-flight check."""

    name: str
    detail: str
    error: ServiceAmbitionsError | None = None


def run_checks(
    settings: Settings, input_path: Path, *, model_factory: Callable[[str], Model] = resolve_model
) -> list[Check]:
    """Check input, reference data, prompts, models and credentials, each on its own.

    Unlike :func:`prepare`, a failure does not stop the later checks, so one
    ``validate`` shows every problem at once. No model is called.
    """
    checks: list[Check] = []

    def attempt(name: str, action: Callable[[], str]) -> None:
        try:
            checks.append(Check(name, action()))
        except ServiceAmbitionsError as exc:
            checks.append(Check(name, exc.user_message, exc))

    def reference() -> str:
        files = settings.reference
        data = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
        sizes = ", ".join(f"{c.field} ({len(c.items)} items)" for c in data.catalogues)
        return f"{len(data.plateaus)} plateaus, {len(data.roles)} roles, catalogues: {sizes}"

    def prompts() -> str:
        loaded = load_prompts(settings.prompts_dir)
        custom = sorted(
            name
            for name, path in loaded.sources.items()
            if settings.prompts_dir and path.parent == settings.prompts_dir
        )
        return f"{len(loaded.templates)} templates" + (
            f" ({', '.join(custom)} from {settings.prompts_dir})" if custom else ""
        )

    def models() -> str:
        names = sorted({name for stage in Stage for name in settings.model_chain(stage)})
        for name in names:
            model_factory(name)
        return ", ".join(names) + " (credentials present; no call made)"

    def services() -> str:
        scan = scan_input(input_path, max_line_bytes=settings.max_line_bytes)
        if scan.rejected:
            first = scan.rejected[0]
            raise InputError(
                f"{len(scan.rejected)} of {scan.services + len(scan.rejected)} lines rejected; first: {first.reason}",
                path=str(input_path),
                line=first.line,
            )
        return f"{scan.services} services"

    attempt("reference data", reference)
    attempt("prompts", prompts)
    attempt("models", models)
    attempt("input", services)
    return checks


def new_run_id(clock: Callable[[], datetime]) -> str:
    """A sortable, unique run id: UTC timestamp plus a random suffix."""
    return f"{clock().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class RunResult:
    """How a run ended and where its record is."""

    run_id: str
    directory: Path
    already_done: int
    """Services skipped because a resumed run found them in the output."""
    status: RunStatus
    budget_stop: str | None = None
    """Why the budget stopped the run, when it did."""
    resumed: bool = False
    """True when this was a later segment of an earlier run."""
    fresh_start: bool = False
    """True when --resume found no earlier run for the output and started a new one."""
    unstarted: int = 0
    """Services never started because the budget ran out (deferred ones are counted by events)."""


async def generate(
    prepared: Prepared,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    *,
    resume: bool = False,
    resume_run_id: str | None = None,
    force: bool = False,
    max_services: int | None = None,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Run every stage for every service of ``input_path`` and write ``output_path``.

    The output file is created even when no service succeeds; the quarantine file only
    when something is quarantined. Every run is recorded (manifest and events) under
    the runs directory. With ``resume``, the run that wrote ``output_path`` (or
    ``resume_run_id``) continues: services already in the output are skipped and the
    rest appended.

    Raises:
        InputError: the input file cannot be read.
        ResumeMismatch: nothing to resume, or the input or result-affecting settings
            changed since (unless ``force``).
    """
    with output_lock(output_path, prepared.settings.runs_directory()):
        # Hashing the input and reading back a long output take a while: off the event loop.
        opened = await asyncio.to_thread(
            _open_run, prepared, input_path, output_path, quarantine_path, resume, resume_run_id, force, clock
        )
        entries = _remaining(input_path, opened.done, opened.seen_lines, prepared.settings.max_line_bytes)
        outputs = _Outputs(output_path, quarantine_path, append=opened.resuming)
        job = _Job(prepared, entries, outputs, max_services, clock)
        result = await _recorded(
            job,
            opened.directory,
            opened.manifest,
            resumed=opened.resuming,
            already_done=len(opened.done),
            on_event=on_event,
        )
        if opened.resuming:
            await asyncio.to_thread(
                _restore_input_order, input_path, output_path, quarantine_path, prepared.settings.max_line_bytes
            )
        return replace(result, fresh_start=resume and not opened.resuming)


def _restore_input_order(input_path: Path, output_path: Path, quarantine_path: Path, max_line_bytes: int) -> None:
    entries = read_services(input_path, max_line_bytes=max_line_bytes)
    positions = {entry.service.service_id: entry.line for entry in entries if isinstance(entry, Accepted)}
    restore_input_order(output_path, quarantine_path, positions)


async def remap(
    prepared: Prepared,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    *,
    catalogues: Sequence[str] | None = None,
    service_file: Path | None = None,
    service_id: str | None = None,
    on_event: EventSink | None = None,
    clock: Callable[[], datetime] = utc_now,
) -> RunResult:
    """Map the features of ``input_path`` again and write current-schema evolutions to ``output_path``.

    The input holds evolution records of any known schema version or features-only
    records (see ``map_input.py``). Only ``catalogues`` (default: every catalogue of the
    reference data) are mapped; a record's other mappings are kept. The run goes through
    the same gateway, cache, limits and run records as :func:`generate`; ``-`` as output
    path writes to standard output.

    Raises:
        ConfigError: a catalogue name is not in the reference data.
        InputError: the input or service file cannot be read, or no line is for ``service_id``.
    """
    with output_lock(output_path, prepared.settings.runs_directory()):
        opened = await asyncio.to_thread(
            _open_run, prepared, input_path, output_path, quarantine_path, False, None, False, clock, "map"
        )
        directory, manifest = opened.directory, opened.manifest
        chosen, entries = _map_input(prepared, input_path, catalogues, service_file, service_id)
        job = _Job(prepared, entries, _Outputs(output_path, quarantine_path, append=False), None, clock, remap=chosen)
        return await _recorded(job, directory, manifest, resumed=False, already_done=0, on_event=on_event)


def _map_input(
    prepared: Prepared,
    input_path: Path,
    catalogues: Sequence[str] | None,
    service_file: Path | None,
    service_id: str | None,
) -> tuple[tuple[Catalogue, ...], Iterator[Accepted | Rejected]]:
    """The catalogues ``map`` maps, and the records it reads: the same for a run and its plan."""
    chosen = _chosen_catalogues(prepared.reference, catalogues)
    services = load_service_file(service_file) if service_file is not None else None
    entries = read_map_input(
        input_path,
        prepared.reference.plateaus,
        services=services,
        service_id=service_id,
        max_line_bytes=prepared.settings.max_line_bytes,
    )
    return chosen, entries


def _chosen_catalogues(reference: ReferenceData, names: Sequence[str] | None) -> tuple[Catalogue, ...]:
    if not names:
        return reference.catalogues
    known = {catalogue.field: catalogue for catalogue in reference.catalogues}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"unknown catalogue {unknown[0]!r}",
            hint=f"--catalogue takes a catalogue field of the reference data: {', '.join(known)}",
        )
    return tuple(known[name] for name in dict.fromkeys(names))


@dataclass(frozen=True)
class _Job:
    """What one recorded run does: which entries, where to, and (for ``map``) which catalogues."""

    prepared: Prepared
    entries: Iterable[Accepted | Rejected]
    outputs: _Outputs
    max_services: int | None
    clock: Callable[[], datetime]
    remap: Sequence[Catalogue] = ()


async def _recorded(
    job: _Job,
    directory: Path,
    manifest: Manifest,
    *,
    resumed: bool,
    already_done: int,
    on_event: EventSink | None,
) -> RunResult:
    """Run ``job`` with its manifest and events recorded, whatever way it ends."""
    settings = job.prepared.settings
    tally = Tally()
    with ExitStack() as stack:
        recorder = stack.enter_context(RunRecorder(directory, manifest, clock=job.clock))

        def emit(event: Event) -> None:
            tally(event)
            recorder(event)
            if on_event is not None:
                on_event(event)

        emit(RunStarted(run_id=manifest.run_id, resumed=resumed, already_done=already_done))
        status, reason, unstarted = RunStatus.FAILED, None, 0
        try:
            cache = None
            if settings.cache_mode is not CacheMode.OFF:
                try:
                    cache = stack.enter_context(open_cache(settings))
                except CacheUnavailable as exc:
                    # Answers cost money, not correctness: a damaged or unreachable cache
                    # is reported once and the run goes on without it.
                    emit(CacheProblem(reason=exc.user_message, reading=True))
            gateway = _run_gateway(job.prepared, cache, emit)
            attributes: dict[str, str | bool] = {
                "run_id": manifest.run_id,
                "resumed": resumed,
                "command": manifest.command,
            }
            with tracer.start_as_current_span("run", attributes=attributes):
                pipeline = await _run(job, gateway, manifest.run_id, emit)
            status = RunStatus.COMPLETED
            if pipeline.budget_stop is not None:
                status, reason = RunStatus.BUDGET_STOPPED, pipeline.budget_stop.message
                unstarted = pipeline.unstarted
        except (asyncio.CancelledError, KeyboardInterrupt) as exc:
            if isinstance(exc, asyncio.CancelledError) and exc.args == (TERMINATE,):
                status, reason = RunStatus.TERMINATED, "terminated (SIGTERM)"
            else:
                status, reason = RunStatus.INTERRUPTED, "interrupted (Ctrl-C)"
            raise
        except ServiceAmbitionsError as exc:
            reason = exc.user_message
            raise
        finally:
            emit(RunFinished(run_id=manifest.run_id, status=status, reason=reason))
            # A resumed run's counts are those of all its segments, as `report` adds them up.
            whole_run = tally_run(directory) if resumed and recorder.problem is None else tally
            recorder.finish(status, RunCounts.from_tally(whole_run), reason)
    if recorder.problem is not None:
        # The outputs are whole; the run's own records are not: say so rather than pretend.
        raise recorder.problem
    budget_reason = reason if status is RunStatus.BUDGET_STOPPED else None
    return RunResult(
        manifest.run_id, directory, already_done, status, budget_reason, resumed=resumed, unstarted=unstarted
    )


def _run_gateway(prepared: Prepared, cache: ResultCache | None, emit: EventSink) -> Gateway:
    """The gateway of a real run: the settings' cache mode, budget, rate limits and breaker."""
    settings = prepared.settings
    limits = settings.limits
    return Gateway(
        prepared.models,
        max_in_flight=settings.max_in_flight,
        model_settings=prepared.model_settings(),
        output_retries=settings.output_retries,
        cache=cache,
        cache_mode=settings.cache_mode,
        on_event=emit,
        budget=Budget(settings.max_cost) if settings.max_cost is not None else None,
        rate=RateLimiter(requests_per_minute=limits.requests_per_minute, tokens_per_minute=limits.tokens_per_minute),
        breaker=CircuitBreaker(
            threshold=limits.breaker_failures,
            cooldown_s=limits.breaker_cooldown_s,
            is_failure=provider_unwell,
            on_change=lambda provider, paused: emit(ProviderPaused(provider=provider, paused_s=paused)),
        ),
        usage_limits=UsageLimits(
            request_limit=None,
            input_tokens_limit=limits.call_input_tokens,
            output_tokens_limit=limits.call_output_tokens,
        ),
        reuse_imported=settings.reuse_imported,
    )


def _open_run(
    prepared: Prepared,
    input_path: Path,
    output_path: Path,
    quarantine_path: Path,
    resume: bool,
    resume_run_id: str | None,
    force: bool,
    clock: Callable[[], datetime],
    command: str = "run",
) -> _Opened:
    """The run's directory and manifest, and what a resumed run already has."""
    runs_dir = prepared.settings.runs_directory()
    input_sha = _input_sha256(input_path)
    if _same_file(input_path, output_path) or _same_file(input_path, quarantine_path):
        raise InputError("the output would overwrite the input", path=str(input_path), hint="choose another -o")
    found = find_run(runs_dir, run_id=resume_run_id, output=output_path) if resume else None
    if found is not None:
        directory, manifest = found
        _check_resumable(manifest, input_sha, prepared.fingerprint, force=force)
        manifest = manifest.model_copy(
            update={
                "status": RunStatus.RUNNING,
                **current_process(),
                "resumed": manifest.resumed + 1,
                "input_sha256": input_sha,
                "fingerprint": prepared.fingerprint,
                "stop_reason": None,
            }
        )
        return _Opened(directory, manifest, recover_output(output_path), recover_quarantine(quarantine_path), True)
    # A quarantine file left by an earlier run would be mistaken for this run's.
    try:
        quarantine_path.unlink(missing_ok=True)
    except OSError as exc:
        raise OutputError(
            f"cannot write {quarantine_path}: {exc.strerror or exc}", hint="choose a writable place for -o"
        ) from exc
    run_id = new_run_id(clock)
    manifest = Manifest(
        run_id=run_id,
        command=command,
        tool_version=version("service-ambitions"),
        status=RunStatus.RUNNING,
        **current_process(),
        started=clock(),
        updated=clock(),
        input_path=str(input_path.resolve()),
        input_sha256=input_sha,
        output_path=str(_where(output_path)),
        quarantine_path=str(quarantine_path.resolve()),
        fingerprint=prepared.fingerprint,
        settings=prepared.settings.model_dump(mode="json"),
    )
    return _Opened(runs_dir / run_id, manifest, set(), set(), False)


@dataclass(frozen=True)
class _Opened:
    directory: Path
    manifest: Manifest
    done: set[str]
    """Service ids already in the output of the run being resumed."""
    seen_lines: set[int]
    """Input lines already quarantined by it."""
    resuming: bool
    """False for a new run, also when --resume found nothing to resume."""


def _remapped_reference(
    original: ReferenceHashes | None, current: ReferenceHashes, mapped: Sequence[Catalogue]
) -> ReferenceHashes | None:
    """The reference a record mapped again was made with: its own, with the mapped catalogues' and prompts' now."""
    if original is None:
        return None  # a migrated record that never said; mixing would claim what is not known
    catalogues = {**original.catalogues, **{c.field: current.catalogues[c.field] for c in mapped}}
    return original.model_copy(update={"catalogues": catalogues, "prompts": current.prompts})


def _same_file(one: Path, other: Path) -> bool:
    """Whether two paths name one file: by identity (hard links, symlinks), not by spelling."""
    if is_stdout(one) or is_stdout(other):
        return False
    if one.resolve() == other.resolve():
        return True
    try:
        return os.path.samefile(one, other)
    except OSError:
        return False  # one of them does not exist yet


def _where(path: Path) -> Path:
    """The absolute path, or ``-`` for standard output."""
    return path if is_stdout(path) else path.resolve()


def _input_sha256(path: Path) -> str:
    try:
        return file_sha256(path)
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror}", path=str(path)) from exc


def _check_resumable(manifest: Manifest, input_sha: str, fingerprint: str, *, force: bool) -> None:
    changed = []
    if manifest.input_sha256 != input_sha:
        changed.append("the input file changed")
    if manifest.fingerprint != fingerprint:
        changed.append("models, settings, reference data or prompts that affect results changed")
    if changed and not force:
        raise ResumeMismatch(
            f"cannot resume run {manifest.run_id}: {' and '.join(changed)}",
            hint="use --force to resume anyway, or run without --resume to start again",
        )


def _remaining(
    input_path: Path, done: set[str], seen_lines: set[int], max_line_bytes: int
) -> Iterator[Accepted | Rejected]:
    """The input, less what a resumed run already wrote or quarantined."""
    for entry in read_services(input_path, max_line_bytes=max_line_bytes):
        if isinstance(entry, Accepted) and entry.service.service_id in done:
            continue
        if isinstance(entry, Rejected) and entry.line in seen_lines:
            continue
        yield entry


@dataclass(frozen=True)
class _Outputs:
    output: Path
    quarantine: Path
    append: bool


def open_cache(settings: Settings) -> ResultCache:
    """The result cache the settings point at.

    Raises:
        CacheCorrupt: the database is damaged (``cache repair`` salvages it).
        CacheUnavailable: the directory cannot be created or the database opened.
    """
    directory = settings.cache_directory()
    try:
        return ResultCache(directory, size_limit=settings.cache_size_limit, eviction=settings.cache_eviction)
    except sqlite3.OperationalError as exc:
        raise CacheUnavailable(f"cannot open the cache in {directory}: {exc}") from exc
    except sqlite3.DatabaseError as exc:
        raise database_error(directory, exc) from exc
    except (OSError, sqlite3.Error) as exc:
        raise CacheUnavailable(f"cannot open the cache in {directory}: {exc}") from exc


async def _run(job: _Job, gateway: Gateway, run_id: str, on_event: EventSink) -> Pipeline:
    prepared, clock, outputs = job.prepared, job.clock, job.outputs
    settings = prepared.settings
    stage_models = StageModels(
        **{stage.value: gateway.model_name(stage) if stage in prepared.models else "input" for stage in Stage}
    )
    hashes = prepared.reference.hashes
    reference = ReferenceHashes(
        plateaus=hashes["plateaus"],
        roles=hashes["roles"],
        catalogues={c.field: hashes[f"catalogue:{c.field}"] for c in prepared.reference.catalogues},
        prompts=prepared.prompts.sha256,
    )
    generator = f"service-ambitions {version('service-ambitions')}"

    def meta(dropped: int, original: Meta | None) -> Meta:
        models = stage_models
        made_with: ReferenceHashes | None = reference
        if original is not None:
            # Mapped again: the other stages are the original's; only the mapping is new.
            models = original.models.model_copy(update={"mapping": stage_models.mapping})
            made_with = _remapped_reference(original.reference, reference, job.remap)
        return Meta(
            run_id=run_id,
            created=clock(),
            generator=generator,
            models=models,
            seed=settings.seed,
            synthetic=prepared.synthetic or (original is not None and original.synthetic),
            reference=made_with,
            dropped_items=dropped,
            legacy=original.legacy if original is not None else None,
        )

    pipeline = Pipeline(prepared.book, gateway, meta=meta, strict=settings.strict, on_event=on_event, remap=job.remap)
    with (
        JsonlWriter(outputs.output, append=outputs.append, durable=True) as output,
        JsonlWriter(outputs.quarantine, append=outputs.append, durable=True) as quarantine,
    ):
        output.open()
        await pipeline.run(
            job.entries,
            RecordSink(output.write, quarantine.write),
            concurrency=settings.concurrency,
            max_services=job.max_services,
        )
    return pipeline
