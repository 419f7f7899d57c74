"""Salvaging a damaged cache database: every readable entry into a fresh one.

A cache database damaged on disk (a crash mid-write on a bad filesystem, random bytes
flipped) cannot be trusted by SQLite as a whole, yet most of its rows are usually
fine. :func:`repair_cache` reads what it can, row by row, keeps every entry whose
checksum still holds, moves the damaged file aside (it is never deleted) and writes
the survivors into a fresh database. Only the cache's own value files are read or
removed; a row naming any other file is counted as lost and the file left alone.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from diskcache.core import MODE_BINARY, MODE_RAW

from service_ambitions.cache.format import (
    RESULT_ROW,
    SNAPSHOT_ROW,
    TRANSCRIPT_ROW,
    UnsafeRow,
    own_value_file,
    snapshot_deps,
    unseal,
)
from service_ambitions.cache.store import ResultCache
from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import CacheUnavailable

__all__ = ["RepairReport", "repair_cache"]

_PROBE_PAST = 10_000
"""Row ids probed past the last one read, when the damaged file cannot say its largest."""


@dataclass(frozen=True)
class RepairReport:
    """What a repair recovered and lost, and where the damaged file went."""

    directory: Path
    recovered: int
    """Entries whose checksum held, now in the fresh database."""
    lost: int | None
    """Rows that could be found but not used (unreadable, damaged, naming files not the cache's);
    None when the damage left no row readable and their number unknown."""
    damaged_copy: Path
    """The damaged database, kept for inspection."""


def repair_cache(directory: Path, *, clock: Callable[[], datetime] = utc_now) -> RepairReport:
    """Salvage every readable entry of the cache in ``directory`` into a fresh database.

    Raises:
        CacheUnavailable: there is no cache database there, or the fresh one cannot be written.
    """
    database = directory / "cache.db"
    if not database.exists():
        raise CacheUnavailable(f"there is no cache database in {directory}")
    entries, lost = _salvage(directory, database)
    aside = directory / f"cache.db.damaged-{clock():%Y%m%dT%H%M%SZ}"
    old_files = set(_value_files(directory))
    try:
        for suffix in ("", "-wal", "-shm"):
            if (directory / f"cache.db{suffix}").exists():
                os.replace(directory / f"cache.db{suffix}", directory / f"{aside.name}{suffix}")
        with ResultCache(directory) as fresh:
            fresh.restore(entries)
    except (OSError, sqlite3.Error) as exc:
        raise CacheUnavailable(f"cannot write a fresh cache database in {directory}: {exc}") from exc
    # The salvaged values were copied; the damaged database's own value files can go.
    kept = set(_value_files(directory)) - old_files
    for path in old_files - kept:
        path.unlink(missing_ok=True)
    return RepairReport(directory, len(entries), lost, aside)


_QUERY = "SELECT rowid, key, raw, mode, filename, value FROM Cache"


def _salvage(directory: Path, database: Path) -> tuple[dict[str, bytes], int | None]:
    """Every usable entry (key → sealed blob), and how many rows were found unusable.

    The count is None when the table could not be read at all (its structure is damaged).
    """
    entries: dict[str, bytes] = {}
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        connection.text_factory = bytes  # a damaged key must not stop the scan
    except sqlite3.Error:
        return entries, None
    try:
        seen: set[int] = set()
        lost = _read_in_order(connection, directory, entries, seen)
        probed_lost, unreadable = _probe_the_rest(connection, directory, entries, seen)
        if not seen:
            return entries, None  # not one row readable: how many there were is unknown
        # Probing past the last row read finds failures that were never rows.
        lost += probed_lost + sum(1 for rowid in unreadable if rowid < max(seen))
        # A wrecked page can hide its rows altogether; diskcache's own count says how many there were.
        with contextlib.suppress(sqlite3.DatabaseError, TypeError, ValueError):
            (count,) = connection.execute("SELECT value FROM Settings WHERE key = 'count'").fetchone()
            lost = max(lost, int(count) - len(entries))
    finally:
        connection.close()
    return entries, lost + _drop_unverifiable(entries)


def _read_in_order(connection: sqlite3.Connection, directory: Path, entries: dict[str, bytes], seen: set[int]) -> int:
    """Rows read in one pass until a damaged page stops it; how many of them were unusable."""
    lost = 0
    try:
        for row in connection.execute(f"{_QUERY} ORDER BY rowid"):
            seen.add(row[0])
            lost += not _keep(directory, row, entries)
    except sqlite3.DatabaseError:
        pass  # a damaged page: the rest is probed row by row
    return lost


def _probe_the_rest(
    connection: sqlite3.Connection, directory: Path, entries: dict[str, bytes], seen: set[int]
) -> tuple[int, list[int]]:
    """Rows the pass in order did not reach, one by one: how many were unusable, and the row ids unreadable."""
    try:
        highest = connection.execute("SELECT max(rowid) FROM Cache").fetchone()[0] or 0
    except sqlite3.DatabaseError:
        highest = max(seen, default=0) + _PROBE_PAST
    lost = 0
    unreadable: list[int] = []
    for rowid in range(1, highest + 1):
        if rowid in seen:
            continue
        try:
            row = connection.execute(f"{_QUERY} WHERE rowid = ?", (rowid,)).fetchone()
        except sqlite3.DatabaseError:
            unreadable.append(rowid)
            continue
        if row is not None:
            seen.add(rowid)
            lost += not _keep(directory, row, entries)
    return lost, unreadable


def _drop_unverifiable(entries: dict[str, bytes]) -> int:
    """Drop what only makes sense beside an answer that was lost.

    A transcript only explains its answer; a snapshot is derived from its answers.
    """
    orphans = [
        key
        for key in entries
        if key.startswith(TRANSCRIPT_ROW) and RESULT_ROW + key[len(TRANSCRIPT_ROW) :] not in entries
    ]
    for key, blob in entries.items():
        if key.startswith(SNAPSHOT_ROW):
            deps = snapshot_deps(unseal(blob))
            if deps is None or any(RESULT_ROW + dep not in entries for dep in deps):
                orphans.append(key)
    for key in orphans:
        del entries[key]
    return len(orphans)


_KEY = re.compile(r"^(?:[rtse]:[0-9a-f]{64}|i:[\w./-]+)$")
"""The keys this cache writes; a row whose key a flipped byte changed is not an entry any more."""


def _keep(directory: Path, row: tuple[Any, ...], entries: dict[str, bytes]) -> bool:
    """Add the row's entry when it is ours and whole; False when it cannot be used."""
    _, key_bytes, raw, mode, filename, value = row
    try:
        key = bytes(key_bytes).decode("utf-8") if raw else ""
        filename = bytes(filename).decode("utf-8") if filename is not None else None
    except (UnicodeDecodeError, TypeError):
        return False
    if not _KEY.match(key):
        return False
    try:
        if mode == MODE_RAW:
            blob = bytes(value)
        elif mode == MODE_BINARY:
            with open(own_value_file(directory, filename), "rb") as handle:
                blob = handle.read()
        else:
            return False  # pickles and text are never this cache's
        unseal(blob)
    except (UnsafeRow, ValueError, TypeError, OSError):
        return False
    entries[key] = blob
    return True


def _value_files(directory: Path) -> Iterable[Path]:
    """The value files diskcache writes (two levels of hex directories, ``*.val``), never links."""
    for path in directory.glob("??/??/*.val"):
        relative = path.relative_to(directory).as_posix()
        try:
            own_value_file(directory, relative)
        except UnsafeRow:
            continue
        yield path
