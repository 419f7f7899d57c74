"""Answers imported from an older tool's cache, as an answer source behind the cache layer.

``migrate cache`` files an older tool's answers by stage, service, plateau and catalogue
(see ``cache/legacy.py``); with ``reuse_imported``, :class:`ImportedAnswers` finds the one
for a call by its :class:`~service_ambitions.llm.requests.Subject` and turns it into this
run's output data. Nothing else in the run knows imported answers exist: to the pipeline
they are cache hits without a cache key (so no snapshot is built on one).
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import ValidationError

from service_ambitions.cache.legacy import imported_descriptions, imported_features, imported_key, imported_mapping
from service_ambitions.cache.store import ResultCache
from service_ambitions.core.events import CacheEntryRejected, EventSink
from service_ambitions.core.models import Stage
from service_ambitions.core.spend import Spend
from service_ambitions.llm.keys import OutputType
from service_ambitions.llm.requests import LLMAnswer, LLMRequest, Subject
from service_ambitions.reference.data import ReferenceData

__all__ = ["ImportedAnswers"]

OutputT = TypeVar("OutputT")


class ImportedAnswers:
    """The imported answer for a call, when there is one and it fits this run's reference data."""

    def __init__(self, cache: ResultCache, reference: ReferenceData, emit: EventSink) -> None:
        self._cache = cache
        self._reference = reference
        self._emit = emit
        self._served: set[str] = set()
        """Keys of the imported answers used so far: a mapping can be matched by position only on imported features."""
        self._rejected: set[str] = set()

    def answer(self, request: LLMRequest[OutputT], output: OutputType) -> LLMAnswer[OutputT] | None:
        """The imported answer as ``request``'s output; None when there is none or it does not fit."""
        subject = request.subject
        if subject is None:
            return None
        key = imported_key(request.stage, subject.service_id, subject.plateau, subject.catalogue)
        payload = self._cache.imported(key)
        if payload is None:
            return None
        try:
            value: OutputT = output.adapter.validate_python(self._converted(request.stage, subject, payload))
        except (ValueError, ValidationError) as exc:
            if key not in self._rejected:
                self._rejected.add(key)
                reason = f"imported answer {key} does not fit: {str(exc).splitlines()[0]}"
                self._emit(CacheEntryRejected(stage=request.stage, key=key, reason=reason))
            return None
        self._served.add(key)
        return LLMAnswer(value, "imported", Spend.priced(None), (), cached=True)

    def _converted(self, stage: Stage, subject: Subject, payload: Any) -> Any:
        """The imported payload as this call's output data. Raises ValueError when it does not fit."""
        if stage is Stage.DESCRIPTIONS:
            return imported_descriptions(self._reference.plateaus, payload)
        if stage is Stage.FEATURES:
            return imported_features(self._reference.roles, payload)
        if stage is Stage.MAPPING and subject.catalogue is not None:
            features = imported_key(Stage.FEATURES, subject.service_id, subject.plateau)
            catalogue = self._reference.catalogue(subject.catalogue)
            return imported_mapping(list(subject.features), catalogue, payload, features in self._served)
        raise ValueError(f"no imported answers for the {stage.value} stage")
