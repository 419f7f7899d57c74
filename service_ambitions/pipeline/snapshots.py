"""Snapshots: a whole service's result in one cache row, so a cached re-run is one lookup per service.

The per-stage answers stay the source of truth. A snapshot is derived from them: it
is written only when every answer of the service is in a verified cache entry (an
answer with a cache key), and it lists the keys of those entries
(``deps``). ``cache purge`` and ``cache validate --fix`` remove the snapshots whose
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
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from service_ambitions.cache.format import CallGroup, Snapshot, canonical_json, snapshot_key
from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.errors import CacheUnavailable
from service_ambitions.core.events import CallFinished
from service_ambitions.core.models import PlateauResult, Service, ServiceEvolution, Stage, StageModels
from service_ambitions.core.secrets import holds_secret

if TYPE_CHECKING:
    from service_ambitions.cache.store import ResultCache
    from service_ambitions.llm.requests import LLMAnswer

__all__ = ["Snapshots", "endpoint_environment", "snapshot_scope"]

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
        if _ENDPOINT_VARIABLE.search(name) and not holds_secret(name) and not name.startswith(_NOT_PROVIDERS)
    }


def snapshot_scope(material: Mapping[str, Any]) -> str:
    """The part of every record key that a run shares: SHA-256 over ``material`` as canonical JSON."""
    return hashlib.sha256(canonical_json(dict(material))).hexdigest()


class Snapshots:
    """The pipeline's side of snapshots: look one up before a service runs, store it after."""

    def __init__(self, cache: ResultCache, scope: str, mode: CacheMode) -> None:
        self._cache = cache
        self._scope = scope
        self._reading = mode in (CacheMode.READ, CacheMode.READONLY)
        self._writing = mode in (CacheMode.READ, CacheMode.REFRESH)

    def lookup(self, service: Service) -> Snapshot | None:
        """The service's snapshot, checked; None on a miss or an unusable row (the stages then answer)."""
        if not self._reading:
            return None
        try:
            payload = self._cache.snapshot(snapshot_key(self._scope, service))
        except CacheUnavailable:
            # A damaged database: the gateway says so once, at the first answer it reads.
            self._reading = self._writing = False
            return None
        if payload is None:
            return None
        try:
            return Snapshot.model_validate_json(payload)
        except ValidationError:
            return None  # the stages answer, and the entry is written again

    @staticmethod
    def cached_calls(service: Service, found: Snapshot) -> list[CallFinished]:
        """The calls behind ``found``, told as cache hits: one event per stage and model, usage added up."""
        return [
            CallFinished(
                service_id=service.service_id,
                stage=group.stage,
                model=group.model,
                calls=group.calls,
                spend=group.spend,
                cached=True,
                replayed=True,
            )
            for group in found.calls
        ]

    def entry(
        self,
        plateaus: list[PlateauResult],
        models: StageModels,
        dropped: list[str],
        answers: Sequence[tuple[Stage, LLMAnswer[Any]]],
    ) -> Snapshot | None:
        """The snapshot for a finished service; None when one of its answers is not a verified cache entry."""
        keys = [answer.key for _, answer in answers if answer.key is not None]
        if not self._writing or not answers or len(keys) != len(answers):
            return None  # an answer in no cache entry (live with the cache off, imported): nothing to build on
        return Snapshot(
            deps=keys,
            models=models,
            dropped=list(dropped),
            calls=_groups(answers),
            plateaus=plateaus,
        )

    def remember(
        self,
        service: Service,
        evolution: ServiceEvolution,
        dropped: list[str],
        answers: Sequence[tuple[Stage, LLMAnswer[Any]]],
    ) -> None:
        """Write ``service``'s snapshot, when every answer it was built from is a verified cache entry."""
        found = self.entry(evolution.plateaus, evolution.meta.models, dropped, answers)
        if found is not None:
            self.store(service, found)

    def store(self, service: Service, entry: Snapshot) -> None:
        """Write ``entry`` for ``service`` (on the event loop, as the gateway writes answers).

        A write that fails stops further ones; the gateway reports the cache's trouble once.
        """
        try:
            self._cache.store_snapshot(snapshot_key(self._scope, service), entry.model_dump_json().encode())
        except CacheUnavailable:
            self._writing = False


def _groups(answers: Iterable[tuple[Stage, LLMAnswer[Any]]]) -> list[CallGroup]:
    groups: dict[tuple[Stage, str], CallGroup] = {}
    for stage, answer in answers:
        pair = (stage, answer.model)
        group = groups.get(pair)
        groups[pair] = (
            CallGroup(stage=stage, model=answer.model, calls=1, spend=answer.spend)
            if group is None
            else CallGroup(stage=stage, model=answer.model, calls=group.calls + 1, spend=group.spend + answer.spend)
        )
    return list(groups.values())
