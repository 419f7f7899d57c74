"""Record entries: a whole service's result in one cache row, so a cached re-run is one lookup per service.

The per-stage answers stay the source of truth. A record entry is derived from them: it
is written only when every call of the service was answered by the model or by a
verified cache entry (never an imported answer), and it lists the keys of those entries
(``deps``). ``cache purge`` and ``cache validate --fix`` remove the record entries whose
answers they remove, and ``--cache-mode refresh`` never reads one (it writes a new one).

The key covers everything that shaped the record besides the answers' own keys: the
service as read, the models as configured and the environment that picks their
endpoints, every result-affecting setting, prompts, reference data, the output types'
schemas and this release. Anything else changing means a miss, and the stages answer.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cache_format import canonical_json
from .cache_mode import CacheMode
from .errors import CacheUnavailable
from .models import PlateauResult, Service, Stage, StageModels

if TYPE_CHECKING:
    from .cache import ResultCache
    from .llm.requests import LLMAnswer

__all__ = [
    "CallGroup",
    "RecordEntries",
    "RecordEntry",
    "endpoint_environment",
    "record_deps",
    "record_key",
    "record_scope",
]

_ENDPOINT_VARIABLE = re.compile(r"(BASE_URL|API_BASE|ENDPOINT|INFERENCE_URL|API_VERSION|_LOCATION|_PROJECT|_REGION)$")
"""Environment variables that choose where a provider's requests go (``OPENAI_BASE_URL``…)."""
_NOT_PROVIDERS = ("OTEL_", "LOGFIRE_", "SA_")
"""Telemetry destinations and our own settings (read through the settings) are not endpoints."""


def endpoint_environment(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that pick providers' endpoints, by name: a record made elsewhere is not reused.

    Only hashed into keys, never stored; variables that hold keys or tokens are not read.
    """
    environ = os.environ if environ is None else environ
    return {
        name: value
        for name, value in sorted(environ.items())
        if _ENDPOINT_VARIABLE.search(name)
        and not re.search(r"KEY|TOKEN|SECRET|PASSWORD", name)
        and not name.startswith(_NOT_PROVIDERS)
    }


def record_scope(material: Mapping[str, Any]) -> str:
    """The part of every record key that a run shares: SHA-256 over ``material`` as canonical JSON."""
    return hashlib.sha256(canonical_json(dict(material))).hexdigest()


def record_key(scope: str, service: Service) -> str:
    """The key of ``service``'s record under ``scope``."""
    return hashlib.sha256(f"{scope}\0{service.model_dump_json()}".encode()).hexdigest()


class CallGroup(BaseModel):
    """The calls of one stage and model behind a record: what they used when they were made."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    model: str
    calls: int = Field(ge=1)
    requests: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0
    cost_usd: str | None = None
    """What the calls cost when made (their priced part); None when none had a price."""


class RecordEntry(BaseModel):
    """A service's plateaus as a run produced them, and the answers they came from."""

    model_config = ConfigDict(extra="forbid")

    format: int = 1
    deps: list[str]
    """Keys of the per-stage answers the record was built from."""
    models: StageModels
    dropped: list[str] = Field(default_factory=list)
    """Catalogue ids the model invented, removed from the mappings."""
    calls: list[CallGroup]
    plateaus: list[PlateauResult]


def record_deps(payload: bytes) -> list[str] | None:
    """The answer keys a record entry (unsealed) was built from; None when it is not a whole entry."""
    try:
        return RecordEntry.model_validate_json(payload).deps
    except ValidationError:
        return None


class RecordEntries:
    """The pipeline's side of record entries: look one up before a service runs, store it after."""

    def __init__(self, cache: ResultCache, scope: str, mode: CacheMode) -> None:
        self._cache = cache
        self._scope = scope
        self._reading = mode in (CacheMode.READ, CacheMode.READONLY)
        self._writing = mode in (CacheMode.READ, CacheMode.REFRESH)

    def lookup(self, service: Service) -> RecordEntry | None:
        """The service's record entry, checked; None on a miss or an unusable row (the stages then answer)."""
        if not self._reading:
            return None
        try:
            payload = self._cache.record(record_key(self._scope, service))
        except CacheUnavailable:
            # A damaged database: the gateway says so once, at the first answer it reads.
            self._reading = self._writing = False
            return None
        if payload is None:
            return None
        try:
            return RecordEntry.model_validate_json(payload)
        except ValidationError:
            return None  # the stages answer, and the entry is written again

    def entry(
        self,
        plateaus: list[PlateauResult],
        models: StageModels,
        dropped: list[str],
        answers: Sequence[tuple[Stage, LLMAnswer[Any]]],
    ) -> RecordEntry | None:
        """The record entry for a finished service; None when one of its answers is not a verified cache entry."""
        keys = [answer.key for _, answer in answers if not answer.imported]
        if not self._writing or not answers or None in keys or len(keys) != len(answers):
            return None
        return RecordEntry(
            deps=[key for key in keys if key is not None],
            models=models,
            dropped=list(dropped),
            calls=_groups(answers),
            plateaus=plateaus,
        )

    def store(self, service: Service, entry: RecordEntry) -> None:
        """Write ``entry`` for ``service`` (on the event loop, as the gateway writes answers).

        A write that fails stops further ones; the gateway reports the cache's trouble once.
        """
        try:
            self._cache.store_record(record_key(self._scope, service), entry.model_dump_json().encode())
        except CacheUnavailable:
            self._writing = False


def _groups(answers: Iterable[tuple[Stage, LLMAnswer[Any]]]) -> list[CallGroup]:
    groups: dict[tuple[Stage, str], CallGroup] = {}
    costs: dict[tuple[Stage, str], Decimal] = {}
    for stage, answer in answers:
        pair = (stage, answer.model)
        group = groups.get(pair)
        if group is None:
            group = groups[pair] = CallGroup(stage=stage, model=answer.model, calls=1)
        else:
            group.calls += 1
        usage = answer.usage
        group.requests += usage.requests
        group.input_tokens += usage.input_tokens
        group.output_tokens += usage.output_tokens
        group.cache_read_tokens += usage.cache_read_tokens
        group.reasoning_tokens += usage.details.get("reasoning_tokens", 0)
        if answer.cost is not None:
            costs[pair] = costs.get(pair, Decimal(0)) + answer.cost
    for pair, cost in costs.items():
        groups[pair].cost_usd = str(cost)
    return list(groups.values())
