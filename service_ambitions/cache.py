"""The result cache: every validated LLM answer and its transcript, on diskcache.

Only the gateway stores and reads answers; the ``cache`` commands inspect and clean the
store. Three kinds of rows share one diskcache directory:

- ``r:<key>``: an answer — the validated output, usage, model and time, as JSON behind a
  SHA-256 checksum of the payload;
- ``t:<key>``: the transcript of the call that produced it (pydantic-ai messages JSON);
- ``s:<sha256>``: an output JSON Schema, stored once, so ``cache validate`` can check
  outputs without the run's reference data;
- ``i:<stage>/<service_id>[/<plateau>[/<catalogue>]]``: an answer imported by ``migrate
  cache`` from an older tool's JSON files, used only by ``run --reuse-imported``.

Nothing is ever pickled: diskcache 5.6.3 unpickles rows by default (CVE-2025-69872), and
even its ``JSONDisk`` unpickles rows planted with a pickle mode, so :class:`SafeDisk`
stores and returns bytes only and refuses every pickled key or value. A row that fails
its checksum, is not ours, or does not parse is a miss, never an exception.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar

from diskcache import Cache
from pydantic import ValidationError

from .cache_format import (
    CACHE_FORMAT,
    CachedAnswer,
    CachedUsage,
    CacheEntry,
    SafeDisk,
    UnsafeRow,
    cache_key,
    canonical_json,
    key_scope,
    own_value_file,
    seal,
    text_column,
    unsafe_file,
    unseal,
)
from .cache_mode import CacheMode, Eviction, default_cache_dir
from .clock import utc_now
from .errors import CacheCorrupt, CacheUnavailable

_RESULT, _TRANSCRIPT, _SCHEMA, _IMPORTED = "r:", "t:", "s:", "i:"

__all__ = [
    "CACHE_FORMAT",
    "CacheEntry",
    "CacheMode",
    "CachedAnswer",
    "CachedUsage",
    "Eviction",
    "ResultCache",
    "RowProblem",
    "SafeDisk",
    "UnsafeRow",
    "cache_key",
    "canonical_json",
    "database_error",
    "default_cache_dir",
    "key_scope",
    "own_value_file",
    "unseal",
]


@dataclass(frozen=True)
class RowProblem:
    """A row that ``validate`` found wrong."""

    key: str | None
    """The row's key; None when the key itself could not be decoded safely."""
    kind: Literal["corrupt", "schema-invalid", "orphan-transcript", "unsafe"]
    """``unsafe``: the row names a file outside the cache's own value files; it is never touched."""
    reason: str
    rowid: int


@dataclass
class ValidationReport:
    """What ``cache validate`` found (and, with ``fix``, removed)."""

    good: int = 0
    transcripts: int = 0
    schemas: int = 0
    imported: int = 0
    problems: list[RowProblem] = field(default_factory=list)
    removed: int = 0

    def count(self, kind: str) -> int:
        """How many problems of ``kind`` were found."""
        return sum(1 for problem in self.problems if problem.kind == kind)


@dataclass
class CacheStats:
    """What the cache holds."""

    directory: Path
    entries: int
    transcripts: int
    bytes_on_disk: int
    by_stage_model: dict[tuple[str, str], int]
    oldest: datetime | None
    newest: datetime | None
    unreadable: int
    imported: int = 0
    """Answers imported by ``migrate cache``."""


def database_error(directory: Path | str, exc: sqlite3.DatabaseError) -> CacheUnavailable:
    """Our error for a failing cache database: damaged (repairable), or only unusable now (full, locked)."""
    if isinstance(exc, sqlite3.OperationalError):  # full disk, locked, cannot open: nothing to repair
        return CacheUnavailable(f"cannot use the cache in {directory}: {exc}")
    return CacheCorrupt(f"the cache database in {directory} is damaged ({exc})")


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _reports_damage(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """Turn a damaged database (not a damaged row) into one :class:`CacheCorrupt` error."""

    @functools.wraps(method)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise database_error(getattr(args[0], "directory", ""), exc) from exc

    return wrapper


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

    def lookup(self, key: str) -> CachedAnswer | str | None:
        """The answer under ``key``; None on a miss; a reason string for an unusable row.

        The checksum is verified here; the output's validation is the reader's, which
        knows its type.

        Raises:
            CacheCorrupt: the database itself is damaged, not just this row.
        """
        try:
            blob = self._cache.get(_RESULT + key)
        except (UnsafeRow, OSError) as exc:
            return f"unreadable: {exc}"
        except sqlite3.DatabaseError as exc:
            raise database_error(self.directory, exc) from exc
        if blob is None:
            return None
        try:
            header, _, output_json = unseal(blob).partition(b"\n")
            return CachedAnswer(CacheEntry.model_validate_json(header), output_json)
        except ValidationError as exc:
            first = exc.errors()[0]
            return f"corrupt: entry {'.'.join(map(str, first['loc'])) or 'header'}: {first['msg']}"
        except ValueError as exc:
            return f"corrupt: {exc}"

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
                self._cache.add(_SCHEMA + entry.schema_sha256, seal(canonical_json(output_schema)))
                self._known_schemas.add(entry.schema_sha256)
            self._cache.set(_TRANSCRIPT + key, seal(transcript))
            self._cache.set(_RESULT + key, seal(entry.model_dump_json().encode() + b"\n" + output_json))

    def transcript(self, key: str) -> list[Any] | None:
        """The messages of the call that produced the entry under ``key``."""
        blob = self._cache.get(_TRANSCRIPT + key)
        if blob is None:
            return None
        messages: list[Any] = json.loads(unseal(blob))
        return messages

    def imported(self, key: str) -> Any | None:
        """The imported answer under ``key`` (see :meth:`add_imported`); None when there is no usable one."""
        try:
            blob = self._cache.get(_IMPORTED + key)
            return None if blob is None else json.loads(unseal(blob))
        except (UnsafeRow, ValueError, OSError, sqlite3.DatabaseError):
            return None

    def add_imported(self, answers: Mapping[str, Any]) -> None:
        """Store answers imported from an older tool (keys as in :meth:`imported`), in one transaction."""
        with self._cache.transact():
            for key, payload in answers.items():
                self._cache.set(_IMPORTED + key, seal(canonical_json(payload)))

    def restore(self, entries: Mapping[str, bytes]) -> None:
        """Write sealed entries as they are (``cache repair``), in one transaction."""
        with self._cache.transact():
            for key, blob in entries.items():
                self._cache.set(key, blob)

    def now(self) -> datetime:
        """The cache's clock, for entries' ``created``."""
        return self._clock()

    # -- the commands' side ---------------------------------------------------------------

    def _rows(self) -> Iterator[tuple[int, Any, bool, str | None]]:
        """(rowid, key, raw, filename) of every row, read straight from SQLite.

        diskcache's own iteration decodes keys through the Disk and would stop at the first
        pickled key; here such rows are reported instead.
        """
        connection = sqlite3.connect(f"file:{self.directory / 'cache.db'}?mode=ro", uri=True)
        connection.text_factory = bytes  # a key damaged on disk is one bad row, not a failed scan
        try:
            for rowid, key, raw, filename in connection.execute(
                "SELECT rowid, key, raw, filename FROM Cache ORDER BY rowid"
            ):
                yield rowid, text_column(key), raw, text_column(filename)
        finally:
            connection.close()

    def _entries(self) -> Iterator[tuple[str, CachedAnswer | str]]:
        for _, key, raw, _ in self._rows():
            if raw and isinstance(key, str) and key.startswith(_RESULT):
                yield key[len(_RESULT) :], self.lookup(key[len(_RESULT) :]) or "vanished"

    @_reports_damage
    def stats(self) -> CacheStats:
        """Entries by stage and model, size on disk, oldest and newest."""
        by_stage_model: dict[tuple[str, str], int] = {}
        created: list[datetime] = []
        unreadable = transcripts = imported = 0
        for _, key, raw, _ in self._rows():
            if raw and isinstance(key, str) and key.startswith(_TRANSCRIPT):
                transcripts += 1
            elif raw and isinstance(key, str) and key.startswith(_IMPORTED):
                imported += 1
        for _, answer in self._entries():
            if isinstance(answer, str):
                unreadable += 1
                continue
            entry = answer.entry
            pair = (entry.stage.value, entry.model)
            by_stage_model[pair] = by_stage_model.get(pair, 0) + 1
            created.append(entry.created)
        return CacheStats(
            directory=self.directory,
            entries=sum(by_stage_model.values()),
            transcripts=transcripts,
            bytes_on_disk=int(self._cache.volume()),
            by_stage_model=dict(sorted(by_stage_model.items())),
            oldest=min(created, default=None),
            newest=max(created, default=None),
            unreadable=unreadable,
            imported=imported,
        )

    @_reports_damage
    def validate(self, *, fix: bool = False) -> ValidationReport:
        """Check every row: checksum, entry layout, output against its schema, orphans.

        With ``fix``, remove every row found wrong.
        """
        report = ValidationReport()
        results: set[str] = set()
        transcripts: dict[str, int] = {}
        validators: dict[str, Any] = {}
        for rowid, key, raw, filename in self._rows():
            problem: RowProblem | None
            if filename is not None and (unsafe := unsafe_file(self.directory, filename)):
                # Never read, written or deleted: the row goes from the index only.
                problem = RowProblem(None, "unsafe", unsafe, rowid)
            elif not raw or not isinstance(key, str):
                problem = RowProblem(None, "corrupt", "pickled or binary key", rowid)
            elif key.startswith(_RESULT):
                results.add(key[len(_RESULT) :])
                problem = self._check_result(key, rowid, validators)
                report.good += problem is None
            elif key.startswith(_TRANSCRIPT):
                transcripts[key[len(_TRANSCRIPT) :]] = rowid
                problem = self._check_blob(key, rowid)
                report.transcripts += problem is None
            elif key.startswith(_SCHEMA):
                problem = self._check_blob(key, rowid)
                report.schemas += problem is None
            elif key.startswith(_IMPORTED):
                problem = self._check_blob(key, rowid)
                report.imported += problem is None
            else:
                problem = RowProblem(key, "corrupt", "not a key this tool writes", rowid)
            if problem is not None:
                report.problems.append(problem)
        for key, rowid in transcripts.items():
            if key not in results:
                report.problems.append(RowProblem(_TRANSCRIPT + key, "orphan-transcript", "no answer for it", rowid))
                report.transcripts -= 1
        if fix:
            report.removed = self._remove(report.problems)
        return report

    def _check_result(self, key: str, rowid: int, validators: dict[str, Any]) -> RowProblem | None:
        import jsonschema

        answer = self.lookup(key[len(_RESULT) :])
        if not isinstance(answer, CachedAnswer):
            return RowProblem(key, "corrupt", answer or "vanished", rowid)
        try:
            output = json.loads(answer.output_json)
        except ValueError as exc:
            return RowProblem(key, "corrupt", f"output is not JSON: {exc}", rowid)
        digest = answer.entry.schema_sha256
        if digest not in validators:
            schema = self._schema(digest)
            validators[digest] = jsonschema.Draft202012Validator(schema) if schema is not None else None
        if validators[digest] is None:
            # Its schema row was lost (a repaired database): the answer's checksum holds, a run
            # re-validates it against its output type when it is used, and that run stores the
            # schema again. Not a problem, but not checked here either.
            return None
        error = jsonschema.exceptions.best_match(validators[digest].iter_errors(output))
        if error is not None:
            where = "/".join(str(part) for part in error.absolute_path) or "output"
            return RowProblem(key, "schema-invalid", f"{where}: {error.message}", rowid)
        return None

    def _check_blob(self, key: str, rowid: int) -> RowProblem | None:
        try:
            unseal(self._cache.get(key))
        except (UnsafeRow, ValueError, OSError) as exc:
            return RowProblem(key, "corrupt", str(exc), rowid)
        return None

    def _schema(self, digest: str) -> dict[str, Any] | None:
        try:
            schema: dict[str, Any] = json.loads(unseal(self._cache.get(_SCHEMA + digest)))
        except (UnsafeRow, ValueError, OSError):
            return None
        return schema

    def _remove(self, problems: list[RowProblem]) -> int:
        removed = 0
        for problem in problems:
            if problem.key is not None:
                removed += bool(self._cache.delete(problem.key))
                if problem.key.startswith(_RESULT):
                    # A transcript is only kept for the answer it explains.
                    self._cache.delete(_TRANSCRIPT + problem.key[len(_RESULT) :])
        unsafe = [problem.rowid for problem in problems if problem.key is None]
        if unsafe:
            # Rows whose key cannot be decoded safely, or that name a file that is not the
            # cache's own, never go through diskcache's API (which would read or delete that
            # file): they are deleted by row id, and diskcache's count and size recounted.
            # diskcache's own check(fix=True) is not used: it deletes every file in the
            # directory it does not know, including files that are not the cache's.
            with self._cache.transact():
                for rowid in unsafe:
                    self._cache._sql("DELETE FROM Cache WHERE rowid = ?", (rowid,))
                sql = self._cache._sql
                ((count, size),) = sql("SELECT COUNT(key), COALESCE(SUM(size), 0) FROM Cache").fetchall()
                sql("UPDATE Settings SET value = ? WHERE key = 'count'", (count,))
                sql("UPDATE Settings SET value = ? WHERE key = 'size'", (size,))
            removed += len(unsafe)
        return removed

    @_reports_damage
    def purge(
        self,
        *,
        stage: str | None = None,
        model: str | None = None,
        older_than: timedelta | None = None,
    ) -> dict[tuple[str, str], int]:
        """Remove the answers (and their transcripts) that match every filter given.

        With no filter, everything goes. Returns the count removed per (stage, model).
        """
        removed: dict[tuple[str, str], int] = {}
        if stage is None and model is None and older_than is None:
            for _, answer in self._entries():
                pair = (
                    (answer.entry.stage.value, answer.entry.model) if isinstance(answer, CachedAnswer) else ("?", "?")
                )
                removed[pair] = removed.get(pair, 0) + 1
            self._cache.clear()
            return removed
        cutoff = self._clock() - older_than if older_than is not None else None
        for key, answer in self._entries():
            if not isinstance(answer, CachedAnswer):
                continue
            entry = answer.entry
            if stage is not None and entry.stage != stage:
                continue
            if model is not None and entry.model != model:
                continue
            if cutoff is not None and entry.created >= cutoff:
                continue
            self._cache.delete(_RESULT + key)
            self._cache.delete(_TRANSCRIPT + key)
            pair = (entry.stage.value, entry.model)
            removed[pair] = removed.get(pair, 0) + 1
        return removed
