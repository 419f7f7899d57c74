"""The cache's maintenance: what ``cache stats``, ``validate`` and ``purge`` do.

:class:`CacheMaintenance` is the commands' side of a
:class:`~service_ambitions.cache.store.ResultCache`, built over an open one: it reads rows
straight from SQLite, so a damaged, pickled or hostile row is reported, never loaded, and
it deletes only the rows it found wrong and the cache's own value files.
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

from service_ambitions.cache.format import (
    IMPORTED_ROW,
    RESULT_ROW,
    SCHEMA_ROW,
    SNAPSHOT_ROW,
    TRANSCRIPT_ROW,
    Lookup,
    UnsafeRow,
    snapshot_deps,
    text_column,
    unsafe_file,
    unseal,
)
from service_ambitions.cache.store import ResultCache, database_error
from service_ambitions.core.models import Stage

__all__ = [
    "CacheMaintenance",
    "CacheStats",
    "RowProblem",
    "ValidationReport",
]


@dataclass(frozen=True)
class RowProblem:
    """A row that ``validate`` found wrong."""

    key: str | None
    """The row's key; None when the key itself could not be decoded safely."""
    kind: Literal["corrupt", "schema-invalid", "orphan-transcript", "orphan-snapshot", "unsafe"]
    """``unsafe``: the row names a file outside the cache's own value files; it is never touched.
    ``orphan-snapshot``: a snapshot built from an answer that is gone or found wrong."""
    reason: str
    rowid: int


@dataclass
class ValidationReport:
    """What ``cache validate`` found (and, with ``fix``, removed)."""

    good: int = 0
    transcripts: int = 0
    schemas: int = 0
    imported: int = 0
    snapshots: int = 0
    """Snapshots whose answers are all here and good."""
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
    snapshots: int = 0
    """Snapshots: whole services' results, one row each (see ``snapshots.py``)."""
    oldest_by_stage: dict[str, datetime] = field(default_factory=dict)
    expired: int = 0
    """Answers older than their stage's TTL (``cache_ttl``): a run asks afresh, ``purge --expired`` removes them."""


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


@dataclass
class _Scan:
    """What ``validate`` has seen so far: the report, and the rows later checks need."""

    report: ValidationReport = field(default_factory=ValidationReport)
    results: set[str] = field(default_factory=set)
    transcripts: dict[str, int] = field(default_factory=dict)
    snapshots: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    validators: dict[str, Any] = field(default_factory=dict)


class CacheMaintenance:
    """Stats, validation and purging over the rows of one open cache."""

    def __init__(self, store: ResultCache) -> None:
        self._store = store
        self.directory: Path = store.directory
        self._cache: Any = store.disk
        self._clock: Callable[[], datetime] = store.now

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

    def _entries(self) -> Iterator[tuple[str, Lookup]]:
        for _, key, raw, _ in self._rows():
            if raw and isinstance(key, str) and key.startswith(RESULT_ROW):
                found = self._store.lookup(key[len(RESULT_ROW) :])
                yield key[len(RESULT_ROW) :], found if found.found else Lookup(problem="vanished")

    @_reports_damage
    def stats(self, ttls: Mapping[Stage, timedelta] | None = None) -> CacheStats:
        """Entries by stage and model, size on disk, oldest and newest (per stage too), and how many have expired."""
        by_stage_model: dict[tuple[str, str], int] = {}
        created: list[datetime] = []
        oldest_by_stage: dict[str, datetime] = {}
        expired = 0
        now = self._clock()
        unreadable = transcripts = imported = snapshots = 0
        for _, key, raw, _ in self._rows():
            if raw and isinstance(key, str) and key.startswith(TRANSCRIPT_ROW):
                transcripts += 1
            elif raw and isinstance(key, str) and key.startswith(IMPORTED_ROW):
                imported += 1
            elif raw and isinstance(key, str) and key.startswith(SNAPSHOT_ROW):
                snapshots += 1
        for _, found in self._entries():
            answer = found.answer
            if answer is None:
                unreadable += 1
                continue
            entry = answer.entry
            pair = (entry.stage.value, entry.model)
            by_stage_model[pair] = by_stage_model.get(pair, 0) + 1
            created.append(entry.created)
            oldest_by_stage[entry.stage.value] = min(
                entry.created, oldest_by_stage.get(entry.stage.value, entry.created)
            )
            ttl = (ttls or {}).get(entry.stage)
            expired += ttl is not None and entry.created + ttl < now
        return CacheStats(
            directory=self.directory,
            entries=sum(by_stage_model.values()),
            transcripts=transcripts,
            bytes_on_disk=int(self._cache.volume()),
            by_stage_model=dict(sorted(by_stage_model.items())),
            oldest_by_stage=dict(sorted(oldest_by_stage.items())),
            expired=expired,
            oldest=min(created, default=None),
            newest=max(created, default=None),
            unreadable=unreadable,
            imported=imported,
            snapshots=snapshots,
        )

    @_reports_damage
    def validate(self, *, fix: bool = False) -> ValidationReport:
        """Check every row: checksum, entry layout, output against its schema, orphans.

        With ``fix``, remove every row found wrong.
        """
        scan = _Scan()
        for rowid, key, raw, filename in self._rows():
            problem = self._check_row(scan, rowid, key, raw, filename)
            if problem is not None:
                scan.report.problems.append(problem)
        self._check_orphans(scan)
        if fix:
            scan.report.removed = self._remove(scan.report.problems)
        return scan.report

    def _check_row(self, scan: _Scan, rowid: int, key: Any, raw: bool, filename: str | None) -> RowProblem | None:
        """What is wrong with one row, if anything; what it is counts towards ``scan``."""
        report = scan.report
        if filename is not None and (unsafe := unsafe_file(self.directory, filename)):
            # Never read, written or deleted: the row goes from the index only.
            return RowProblem(None, "unsafe", unsafe, rowid)
        if not raw or not isinstance(key, str):
            return RowProblem(None, "corrupt", "pickled or binary key", rowid)
        if key.startswith(RESULT_ROW):
            scan.results.add(key[len(RESULT_ROW) :])
            problem = self._check_result(key, rowid, scan.validators)
            report.good += problem is None
            return problem
        if key.startswith(TRANSCRIPT_ROW):
            scan.transcripts[key[len(TRANSCRIPT_ROW) :]] = rowid
            problem = self._check_blob(key, rowid)
            report.transcripts += problem is None
            return problem
        return self._check_other(key, rowid, report, scan.snapshots)

    @staticmethod
    def _check_orphans(scan: _Scan) -> None:
        """Transcripts without their answer, and snapshots built from answers gone or wrong."""
        report = scan.report
        for key, rowid in scan.transcripts.items():
            if key not in scan.results:
                report.problems.append(RowProblem(TRANSCRIPT_ROW + key, "orphan-transcript", "no answer for it", rowid))
                report.transcripts -= 1
        wrong = {p.key[len(RESULT_ROW) :] for p in report.problems if p.key and p.key.startswith(RESULT_ROW)}
        for key, (rowid, deps) in scan.snapshots.items():
            missing = [dep for dep in deps if dep not in scan.results or dep in wrong]
            if missing:
                reason = f"built from {len(missing)} answer(s) that are gone or wrong"
                report.problems.append(RowProblem(key, "orphan-snapshot", reason, rowid))
            else:
                report.snapshots += 1

    def _check_result(self, key: str, rowid: int, validators: dict[str, Any]) -> RowProblem | None:
        import jsonschema

        found = self._store.lookup(key[len(RESULT_ROW) :])
        answer = found.answer
        if answer is None:
            return RowProblem(key, "corrupt", found.problem or "vanished", rowid)
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

    def _check_other(
        self, key: str, rowid: int, report: ValidationReport, snapshots: dict[str, tuple[int, list[str]]]
    ) -> RowProblem | None:
        """Schemas, imported answers and snapshots; any other key is not one this tool writes."""
        if key.startswith(SCHEMA_ROW):
            problem = self._check_blob(key, rowid)
            report.schemas += problem is None
            return problem
        if key.startswith(IMPORTED_ROW):
            problem = self._check_blob(key, rowid)
            report.imported += problem is None
            return problem
        if key.startswith(SNAPSHOT_ROW):
            return self._check_snapshot(key, rowid, snapshots)
        return RowProblem(key, "corrupt", "not a key this tool writes", rowid)

    def _check_snapshot(self, key: str, rowid: int, snapshots: dict[str, tuple[int, list[str]]]) -> RowProblem | None:
        try:
            deps = snapshot_deps(unseal(self._cache.get(key)))
        except (UnsafeRow, ValueError, OSError) as exc:
            return RowProblem(key, "corrupt", str(exc), rowid)
        if deps is None:
            return RowProblem(key, "corrupt", "not a snapshot", rowid)
        snapshots[key] = (rowid, deps)
        return None

    def _check_blob(self, key: str, rowid: int) -> RowProblem | None:
        try:
            unseal(self._cache.get(key))
        except (UnsafeRow, ValueError, OSError) as exc:
            return RowProblem(key, "corrupt", str(exc), rowid)
        return None

    def _schema(self, digest: str) -> dict[str, Any] | None:
        try:
            schema: dict[str, Any] = json.loads(unseal(self._cache.get(SCHEMA_ROW + digest)))
        except (UnsafeRow, ValueError, OSError):
            return None
        return schema

    def _remove(self, problems: list[RowProblem]) -> int:
        removed = 0
        for problem in problems:
            if problem.key is not None:
                removed += bool(self._cache.delete(problem.key))
                if problem.key.startswith(RESULT_ROW):
                    # A transcript is only kept for the answer it explains.
                    self._cache.delete(TRANSCRIPT_ROW + problem.key[len(RESULT_ROW) :])
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
            for _, found in self._entries():
                pair = (found.answer.entry.stage.value, found.answer.entry.model) if found.answer else ("?", "?")
                removed[pair] = removed.get(pair, 0) + 1
            self._cache.clear()
            return removed
        cutoff = self._clock() - older_than if older_than is not None else None
        gone: set[str] = set()
        for key, found in self._entries():
            answer = found.answer
            if answer is None:
                continue
            entry = answer.entry
            if stage is not None and entry.stage != stage:
                continue
            if model is not None and entry.model != model:
                continue
            if cutoff is not None and entry.created >= cutoff:
                continue
            self._cache.delete(RESULT_ROW + key)
            self._cache.delete(TRANSCRIPT_ROW + key)
            gone.add(key)
            pair = (entry.stage.value, entry.model)
            removed[pair] = removed.get(pair, 0) + 1
        self._drop_snapshots(gone)
        return removed

    def _drop_snapshots(self, gone: set[str]) -> None:
        """Remove the snapshots built from any of the answers ``gone`` (a snapshot is derived)."""
        if not gone:
            return
        for _, key, raw, _ in list(self._rows()):
            if not (raw and isinstance(key, str) and key.startswith(SNAPSHOT_ROW)):
                continue
            try:
                deps = snapshot_deps(unseal(self._cache.get(key)))
            except (UnsafeRow, ValueError, OSError):
                deps = None
            if deps is None or gone.intersection(deps):
                self._cache.delete(key)
