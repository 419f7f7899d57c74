"""Composing a job: settings → reference data, prompts and models, all checked; and the cache.

:func:`prepare` does every check that needs no LLM call — reference data, prompts,
models and their credentials — so that ``run``, ``run --dry-run`` and ``validate`` fail
the same way, before anything is spent.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import version
from typing import TYPE_CHECKING, Any

from service_ambitions.cache.store import CACHE_FORMAT, ResultCache, database_error
from service_ambitions.config.settings import Settings
from service_ambitions.core.errors import (
    CacheUnavailable,
    ConfigError,
)
from service_ambitions.core.models import RUN_STAGES, SCHEMA_VERSION, Stage
from service_ambitions.llm.names import is_offline
from service_ambitions.pipeline.snapshots import endpoint_environment, snapshot_scope
from service_ambitions.pipeline.stages import StageBook
from service_ambitions.reference.data import ReferenceData, load_reference
from service_ambitions.reference.prompting import PromptSet, load_prompts
from service_ambitions.runs.resume import RunIdentity

if TYPE_CHECKING:  # resolving models imports pydantic-ai and the providers' SDKs: only when a call is made
    from pydantic_ai import ModelSettings
    from pydantic_ai.models import Model

    from service_ambitions.llm.transport import RetryPolicy

__all__ = ["Prepared", "open_cache", "prepare", "retry_policy"]


@dataclass(frozen=True)
class Prepared:
    """Settings, reference data, prompts and models of a run, all checked.

    The models are resolved when first asked for (:attr:`models`): :func:`prepare` does it
    at once unless told otherwise, and a run whose services all come from snapshots
    never does (so never imports pydantic-ai or a provider's SDK).
    """

    settings: Settings
    reference: ReferenceData
    prompts: PromptSet
    chains: dict[Stage, list[str]]
    """Per stage that makes calls, its model names as configured (a fallback chain in order)."""
    book: StageBook
    model_factory: Callable[[str], Model] | None = field(default=None, repr=False)
    command_line: tuple[str, ...] = ()
    """The command that asked for this job, as the user gave it (recorded in the run's manifest)."""

    @functools.cached_property
    def models(self) -> dict[Stage, Model]:
        """Per stage that makes calls, its model (a fallback chain for several names).

        Raises:
            ConfigError: a model name or its credentials are unusable, or ``--max-cost`` is
                set and a model has no known price.
        """
        return _resolve(self.settings, self.chains, self.model_factory)

    @property
    def synthetic(self) -> bool:
        """True when any stage is answered by the offline model."""
        return any(is_offline(name) for chain in self.chains.values() for name in chain)

    @functools.cached_property
    def snapshot_scope(self) -> str:
        """What every snapshot's key shares: see ``snapshots.py``."""
        return snapshot_scope(
            {
                "format": CACHE_FORMAT,
                "schema_version": SCHEMA_VERSION,
                "generator": version("service-ambitions"),
                "results": self.fingerprint_material,
                "shortlist": self.settings.shortlist.model_dump(mode="json"),
                "endpoints": endpoint_environment(),
                "output_schemas": self.book.schema_sha256,
            }
        )

    @functools.cached_property
    def fingerprint_material(self) -> dict[str, Any]:
        """Everything that affects results, by name: a resumed run must match it."""
        settings = self.settings
        return {
            "models": {stage.value: settings.model_chain(stage) for stage in RUN_STAGES},
            "seed": settings.seed,
            "temperature": settings.temperature,
            "features_per_role": settings.features_per_role.model_dump(),
            "strict": settings.strict,
            "max_output_tokens": settings.max_output_tokens,
            "reference": self.reference.hashes,
            "prompts": self.prompts.sha256,
        }

    @functools.cached_property
    def fingerprint(self) -> str:
        """SHA-256 of :attr:`fingerprint_material`."""
        return hashlib.sha256(json.dumps(self.fingerprint_material, sort_keys=True).encode()).hexdigest()

    def identity(self, command: str) -> RunIdentity:
        """What a run of ``command`` with these settings records, and what resuming it must match."""
        parts = {
            name: hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()
            for name, value in self.fingerprint_material.items()
        }
        return RunIdentity(
            command, self.fingerprint, parts, self.settings.model_dump(mode="json"), command_line=self.command_line
        )

    def model_settings(self) -> ModelSettings:
        """What every call sends besides the prompt.

        The SDK's own retries are off (on the client, ``llm/resolve.py``): the HTTP
        transport retries (``llm/transport.py``), and the two would multiply.
        """
        from pydantic_ai import ModelSettings
        from pydantic_ai.settings import CacheConfig

        settings = ModelSettings(
            seed=self.settings.seed,
            max_tokens=self.settings.max_output_tokens,
            timeout=self.settings.retry.request_timeout_s,
        )
        if self.settings.temperature is not None:
            settings["temperature"] = self.settings.temperature
        if self.settings.prompt_cache:
            # Only the shared prefix (tools and static instructions): each call's request is
            # asked once, so writing it to a cache would cost more than it saves.
            retention = self.settings.prompt_cache
            cache = (
                CacheConfig(messages=False) if retention is True else CacheConfig(messages=False, retention=retention)
            )
            settings["cache"] = cache
        if self.settings.batch.enabled:
            # A batch has no per-request timeout (the HTTP client's own covers its API calls);
            # the timeout is no part of a cache key, so batch and live answers still match.
            del settings["timeout"]
        return settings


def retry_policy(settings: Settings) -> RetryPolicy:
    """The HTTP retry policy the settings describe."""
    from service_ambitions.llm.transport import RetryPolicy

    retry = settings.retry
    return RetryPolicy(attempts=retry.attempts, max_wait=retry.max_wait_s, request_timeout=retry.request_timeout_s)


def _resolve(
    settings: Settings, chains: dict[Stage, list[str]], model_factory: Callable[[str], Model] | None
) -> dict[Stage, Model]:
    """The models of ``chains``, resolved and (with ``--max-cost``) priced."""
    from pydantic_ai.models.fallback import FallbackModel

    from service_ambitions.llm.budget import call_price
    from service_ambitions.llm.plugins import with_price
    from service_ambitions.llm.resolve import resolve_model
    from service_ambitions.llm.transport import retrying_client

    if model_factory is None:
        from service_ambitions.llm.pacing import HeaderPacer

        pacer = HeaderPacer() if settings.limits.follow_rate_headers else None
        client = retrying_client(retry_policy(settings), pacer=pacer)
        model_factory = functools.partial(resolve_model, http_client=client, batch=settings.batch.enabled)
    names_used = sorted({name for chain in chains.values() for name in chain})
    # A price in the settings' `prices:` overrides genai-prices (and a plug-in's) for that model.
    resolved = {name: with_price(model_factory(name), settings.prices.get(name)) for name in names_used}
    models = {
        # One model, or a fallback chain that moves on when a provider fails.
        stage: resolved[chain[0]] if len(chain) == 1 else FallbackModel(*(resolved[name] for name in chain))
        for stage, chain in chains.items()
    }
    names = {stage: settings.model_for(stage) for stage in chains}
    if settings.batch.enabled:
        check_batch_models(models, names)
    if settings.max_cost is not None and not settings.allow_unknown_prices:
        unpriced = sorted({name for stage, name in names.items() if call_price(models[stage], 1000, 1000) is None})
        if unpriced:
            raise ConfigError(
                f"no price is known for {', '.join(unpriced)}, so --max-cost cannot be enforced",
                hint="price it under prices: in the settings, use a model genai-prices knows, or add "
                "--allow-unknown-prices (their calls then count as $0)",
            )
    return models


def check_batch_models(models: dict[Stage, Model], names: dict[Stage, str]) -> None:
    """Refuse batch mode for a stage whose model cannot take a batch, before anything is sent.

    Raises:
        ConfigError: a fallback chain (a batch goes to one model), or a model without a batch API.
    """
    from pydantic_ai.models.fallback import FallbackModel

    for stage, model in models.items():
        if isinstance(model, FallbackModel):
            raise ConfigError(
                f"batch mode sends each stage to one model, and {names[stage]} ({stage.value}) is a fallback chain",
                hint="name one model per stage with --batch, or run live without it",
            )
        if model.batch_max_requests is None:
            raise ConfigError(
                f"model {names[stage]} has no batch API, so it cannot run with --batch",
                hint="batch mode works with openai:, anthropic: and google: models (and offline); run live otherwise",
            )


def prepare(
    settings: Settings,
    *,
    model_factory: Callable[[str], Model] | None = None,
    stages: Sequence[Stage | str] = RUN_STAGES,
    resolve_models: bool = True,
) -> Prepared:
    """Load and check everything a run needs before it spends anything.

    Args:
        settings: the run's settings.
        model_factory: turns a model name into a model; tests pass fakes here. The
            default resolves names with one retrying HTTP client for every provider.
        stages: the stages that will make calls (``map`` only maps); only their models
            are resolved, so only their credentials are needed.
        resolve_models: resolve the models now (the default); otherwise when first used
            (:attr:`Prepared.models`), so a run answered from its snapshots needs none.

    Raises:
        ConfigError: reference data, prompts, a model name or its credentials are unusable.
    """
    files = settings.reference
    reference = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
    prompts = load_prompts(settings.prompts_dir)
    chains = {stage: settings.model_chain(stage) for stage in map(Stage, stages)}
    book = StageBook(reference, prompts, settings.features_per_role, settings.shortlist)
    settings.warn_amount()  # a share of max_cost without a max_cost: said before the run starts
    prepared = Prepared(settings, reference, prompts, chains, book, model_factory)
    if resolve_models:
        prepared.models  # noqa: B018  # resolving is the check
    return prepared


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
