"""The gateway's cache layer: answers already known, read before a lane is asked and stored after.

:class:`CachedAnswers` reads an answer under the call's key and validates it against the
call's output type; a row that is unusable is reported once (``cache_entry_rejected``)
and the fresh answer replaces it. Behind the cache it may consult an :class:`AnswerSource`
(answers from elsewhere, such as an older tool's imported ones) that nothing else knows
of. When the cache fails (a full disk, a locked database), the run goes on without it
and says so once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol, TypeVar

from pydantic import ValidationError
from pydantic_ai.messages import ModelMessagesTypeAdapter

from service_ambitions.cache.format import CacheEntry
from service_ambitions.cache.store import ResultCache
from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.errors import CacheUnavailable
from service_ambitions.core.events import CacheEntryRejected, CacheProblem, EventSink
from service_ambitions.core.models import Stage
from service_ambitions.llm.keys import OutputType, OutputTypes
from service_ambitions.llm.requests import LLMAnswer, LLMRequest

__all__ = ["AnswerSource", "CachedAnswers"]

OutputT = TypeVar("OutputT")


class AnswerSource(Protocol):
    """Answers the cache layer may give when its own store has none."""

    def answer(self, request: LLMRequest[OutputT], output: OutputType) -> LLMAnswer[OutputT] | None:
        """An answer to ``request``, validated as ``output``; None when the source has none that fits."""
        ...


class CachedAnswers:
    """Reads and stores answers in a :class:`ResultCache` as the cache mode allows."""

    def __init__(
        self,
        cache: ResultCache,
        mode: CacheMode,
        outputs: OutputTypes,
        emit: EventSink,
        source: AnswerSource | None = None,
        ttls: Mapping[Stage, timedelta] | None = None,
    ) -> None:
        self._cache: ResultCache | None = cache
        self._ttls = dict(ttls or {})
        """Per stage, how old an answer may be; an older one is a miss, and the fresh answer replaces it."""
        self._mode = mode
        self._outputs = outputs
        self._emit = emit
        self._source = source if mode is not CacheMode.REFRESH else None
        self._writing = mode in (CacheMode.READ, CacheMode.REFRESH)
        self._rejected: set[str] = set()

    def _reader(self) -> ResultCache | None:
        """The cache to read, while the mode reads and the cache has not been given up."""
        return self._cache if self._mode in (CacheMode.READ, CacheMode.READONLY) else None

    def read(self, request: LLMRequest[OutputT], key: str) -> LLMAnswer[OutputT] | None:
        """The stored answer under ``key``, or the source's; None when neither has one that fits."""
        if (cache := self._reader()) is not None:
            try:
                hit = self._cached(cache, key, request)
            except CacheUnavailable as exc:
                self._give_up(exc, reading=True)
                hit = None
            if hit is not None:
                return hit
        if self._source is None:
            return None
        return self._source.answer(request, self._outputs.of(request.output_type))

    def peek(self, request: LLMRequest[OutputT], key: str) -> OutputT | None:
        """The stored output under ``key``, if usable; no event, nothing written (for ``--dry-run``)."""
        cache = self._reader()
        if cache is None:
            return None
        found = cache.lookup(key).answer
        if found is None:
            return None
        try:
            output: OutputT = self._outputs.of(request.output_type).adapter.validate_json(found.output_json)
        except ValidationError:
            return None
        return output

    def write(self, request: LLMRequest[OutputT], key: str, answer: LLMAnswer[OutputT]) -> LLMAnswer[OutputT]:
        """Store ``answer`` under ``key``; the answer as stored (it now names its key)."""
        if not self._writing or self._cache is None:
            return answer
        try:
            self._store(self._cache, key, request, answer)
        except CacheUnavailable as exc:
            self._give_up(exc, reading=False)
            return answer
        return dataclasses.replace(answer, key=key)

    def _cached(self, cache: ResultCache, key: str, request: LLMRequest[OutputT]) -> LLMAnswer[OutputT] | None:
        found = cache.lookup(key)
        if not found.found:
            return None
        reason = found.problem
        if found.answer is not None:
            entry = found.answer.entry
            ttl = self._ttls.get(request.stage)
            if ttl is not None and entry.created + ttl < cache.now():
                return None  # expired: asked afresh, and the answer stored over it (not validated for nothing)
            try:
                output = self._outputs.of(request.output_type).adapter.validate_json(found.answer.output_json)
            except ValidationError as exc:
                reason = f"output no longer valid: {str(exc).splitlines()[0]}"
            else:
                return LLMAnswer(output, entry.model, entry.spend, (), cached=True, key=key)
        if key not in self._rejected:
            # Reported once; the fresh answer then replaces the entry (except in readonly mode).
            self._rejected.add(key)
            self._emit(CacheEntryRejected(stage=request.stage, key=key[:16], reason=reason or "unusable"))
        return None

    def _store(self, cache: ResultCache, key: str, request: LLMRequest[Any], answer: LLMAnswer[Any]) -> None:
        output_type = self._outputs.of(request.output_type)
        entry = CacheEntry(
            stage=request.stage,
            model=answer.model,
            created=cache.now(),
            schema_sha256=output_type.sha256,
            spend=answer.spend,
        )
        cache.store(
            key,
            entry,
            output_json=output_type.adapter.dump_json(answer.output, by_alias=True),
            transcript=ModelMessagesTypeAdapter.dump_json(list(answer.messages)),
            output_schema=output_type.schema,
        )

    def _give_up(self, exc: CacheUnavailable, *, reading: bool) -> None:
        """Go on without the cache (or without writing to it), saying so once."""
        if self._cache is None or not (reading or self._writing):
            return
        if reading:
            self._cache = None
        self._writing = False  # answers already cached are still read, unless reading failed too
        self._emit(CacheProblem(reason=exc.user_message, reading=reading))
