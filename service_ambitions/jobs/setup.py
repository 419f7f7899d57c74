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
from dataclasses import dataclass
from typing import Any

from pydantic_ai import ModelSettings
from pydantic_ai.models import Model
from pydantic_ai.models.fallback import FallbackModel

from ..cache import ResultCache, database_error
from ..config import Settings
from ..errors import (
    CacheUnavailable,
    ConfigError,
)
from ..llm.budget import call_price
from ..llm.resolve import is_offline, resolve_model
from ..llm.transport import RetryPolicy, retrying_client
from ..models import Stage
from ..prompting import PromptSet, load_prompts
from ..reference import ReferenceData, load_reference
from ..runs import (
    RunIdentity,
)
from ..stages import StageBook

__all__ = ["Prepared", "open_cache", "prepare", "retry_policy"]


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
    def fingerprint_material(self) -> dict[str, Any]:
        """Everything that affects results, by name: a resumed run must match it."""
        settings = self.settings
        return {
            "models": {stage.value: settings.model_chain(stage) for stage in Stage},
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
        return RunIdentity(command, self.fingerprint, parts, self.settings.model_dump(mode="json"))

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
