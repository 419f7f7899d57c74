"""The result cache: every validated LLM answer and its transcript, on diskcache.

Only the gateway stores and reads answers; the ``cache`` commands inspect and clean the
store. Three kinds of rows share one diskcache directory:

- ``r:<key>``: an answer — the validated output, usage, model and time, as JSON behind a
  SHA-256 checksum of the payload;
- ``t:<key>``: the transcript of the call that produced it (pydantic-ai messages JSON);
- ``s:<sha256>``: an output JSON Schema, stored once, so ``cache validate`` can check
  outputs without the run's reference data;
- ``i:<stage>/<service_id>[/<plateau>[/<catalogue>]]``: an answer imported by ``migrate
  cache`` from an older tool's JSON files, used only by ``run --reuse-imported``;
- ``e:<key>``: a snapshot, a whole service's plateaus derived from its answers (see
  ``snapshots.py``), so a cached re-run reads one row per service.

Nothing is ever pickled: diskcache 5.6.3 unpickles rows by default (CVE-2025-69872), and
even its ``JSONDisk`` unpickles rows planted with a pickle mode, so :class:`SafeDisk`
stores and returns bytes only and refuses every pickled key or value. A row that fails
its checksum, is not ours, or does not parse is a miss, never an exception.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from diskcache import Cache
from pydantic import ValidationError

from service_ambitions.cache.format import (
    CACHE_FORMAT,
    IMPORTED_ROW,
    RESULT_ROW,
    SCHEMA_ROW,
    SNAPSHOT_ROW,
    TRANSCRIPT_ROW,
    CachedAnswer,
    CacheEntry,
    Lookup,
    SafeDisk,
    UnsafeRow,
    canonical_json,
    seal,
    unseal,
)
from service_ambitions.config.cache_mode import Eviction
from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import CacheCorrupt, CacheUnavailable

__all__ = [
    "CACHE_FORMAT",
    "Eviction",
    "ResultCache",
    "database_error",
]


def database_error(directory: Path | str, exc: sqlite3.DatabaseError) -> CacheUnavailable:
    """Our error for a failing cache database: damaged (repairable), or only unusable now (full, locked)."""
    if isinstance(exc, sqlite3.OperationalError):  # full disk, locked, cannot open: nothing to repair
        return CacheUnavailable(f"cannot use the cache in {directory}: {exc}")
    return CacheCorrupt(f"the cache database in {directory} is damaged ({exc})")


class ResultCache:
    """The answers and transcripts in one directory.

    The directory is created owner-only (0700): answers can hold business information.
    Nothing is evicted unless an eviction policy is chosen; diskcache's own default
    would silently drop entries past 1 GiB.
    """

    def __init__(
        self,
        directory: Path,
        *,
        size_limit: int | None = None,
        eviction: Eviction = "none",
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.directory = directory
        self._clock = clock
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        settings: dict[str, Any] = {"eviction_policy": eviction, "statistics": False}
        if size_limit is not None:
            settings["size_limit"] = size_limit
        if eviction == "none":
            # Nothing expires and nothing is evicted: culling would only cost a query per write.
            settings["cull_limit"] = 0
        self._cache = Cache(str(directory), disk=SafeDisk, timeout=60, **settings)
        self._known_schemas: set[str] = set()

    def close(self) -> None:
        """Release the database."""
        self._cache.close()

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- the gateway's side ---------------------------------------------------------------

    def lookup(self, key: str) -> Lookup:
        """The answer under ``key``, the reason its row is unusable, or a miss.

        The checksum is verified here; the output's validation is the reader's, which
        knows its type.

        Raises:
            CacheCorrupt: the database itself is damaged, not just this row.
        """
        try:
            blob = self._cache.get(RESULT_ROW + key)
        except (UnsafeRow, OSError) as exc:
            return Lookup(problem=f"unreadable: {exc}")
        except sqlite3.DatabaseError as exc:
            raise database_error(self.directory, exc) from exc
        if blob is None:
            return Lookup()
        try:
            header, _, output_json = unseal(blob).partition(b"\n")
            return Lookup(CachedAnswer(CacheEntry.model_validate_json(header), output_json))
        except ValidationError as exc:
            first = exc.errors()[0]
            return Lookup(problem=f"corrupt: entry {'.'.join(map(str, first['loc'])) or 'header'}: {first['msg']}")
        except ValueError as exc:
            return Lookup(problem=f"corrupt: {exc}")

    def store(
        self,
        key: str,
        entry: CacheEntry,
        *,
        output_json: bytes,
        transcript: bytes,
        output_schema: Mapping[str, Any],
    ) -> None:
        """Write an answer, its transcript, and (once) its output schema, in one transaction.

        Called on the event loop, not in a worker thread: a write costs about half a
        millisecond, and handing each one to a thread cost more (the threads queue for
        SQLite's one writer lock and for the GIL) — 4,200 offline calls took 9.7 s written
        here against 11.9 s through a writer thread.

        Raises:
            CacheUnavailable: the answer cannot be written (disk full, read-only, damaged database).
        """
        try:
            self._store(key, entry, output_json, transcript, output_schema)
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnavailable(f"cannot write to the cache in {self.directory}: {exc}") from exc

    def _store(
        self,
        key: str,
        entry: CacheEntry,
        output_json: bytes,
        transcript: bytes,
        output_schema: Mapping[str, Any],
    ) -> None:
        with self._cache.transact():
            if entry.schema_sha256 not in self._known_schemas:
                self._cache.add(SCHEMA_ROW + entry.schema_sha256, seal(canonical_json(output_schema)))
                self._known_schemas.add(entry.schema_sha256)
            self._cache.set(TRANSCRIPT_ROW + key, seal(transcript))
            self._cache.set(RESULT_ROW + key, seal(entry.model_dump_json().encode() + b"\n" + output_json))

    def transcript(self, key: str) -> list[Any] | None:
        """The messages of the call that produced the entry under ``key``."""
        blob = self._cache.get(TRANSCRIPT_ROW + key)
        if blob is None:
            return None
        messages: list[Any] = json.loads(unseal(blob))
        return messages

    def imported(self, key: str) -> Any | None:
        """The imported answer under ``key`` (see :meth:`add_imported`); None when there is no usable one."""
        try:
            blob = self._cache.get(IMPORTED_ROW + key)
            return None if blob is None else json.loads(unseal(blob))
        except (UnsafeRow, ValueError, OSError, sqlite3.DatabaseError):
            return None

    def snapshot(self, key: str) -> bytes | None:
        """The snapshot under ``key``, checksum verified; None on a miss or an unusable row.

        Raises:
            CacheCorrupt: the database itself is damaged, not just this row.
        """
        try:
            blob = self._cache.get(SNAPSHOT_ROW + key)
            return None if blob is None else unseal(blob)
        except (UnsafeRow, ValueError, OSError):
            return None
        except sqlite3.DatabaseError as exc:
            raise database_error(self.directory, exc) from exc

    def has_snapshot(self, key: str) -> bool:
        """True when a snapshot is stored under ``key`` (not read, nor checked)."""
        try:
            return SNAPSHOT_ROW + key in self._cache
        except (OSError, sqlite3.Error):
            return False

    def store_snapshot(self, key: str, payload: bytes) -> None:
        """Write a snapshot (see ``snapshots.py``).

        Raises:
            CacheUnavailable: it cannot be written (disk full, read-only, damaged database).
        """
        try:
            self._cache.set(SNAPSHOT_ROW + key, seal(payload))
        except (OSError, sqlite3.Error) as exc:
            raise CacheUnavailable(f"cannot write to the cache in {self.directory}: {exc}") from exc

    def add_imported(self, answers: Mapping[str, Any]) -> None:
        """Store answers imported from an older tool (keys as in :meth:`imported`), in one transaction."""
        with self._cache.transact():
            for key, payload in answers.items():
                self._cache.set(IMPORTED_ROW + key, seal(canonical_json(payload)))

    def restore(self, entries: Mapping[str, bytes]) -> None:
        """Write sealed entries as they are (``cache repair``), in one transaction."""
        with self._cache.transact():
            for key, blob in entries.items():
                self._cache.set(key, blob)

    @property
    def disk(self) -> Cache:
        """The diskcache store underneath (for :class:`~service_ambitions.cache.maintenance.CacheMaintenance`)."""
        return self._cache

    def now(self) -> datetime:
        """The cache's clock, for entries' ``created``."""
        return self._clock()
