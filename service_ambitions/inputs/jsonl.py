"""Streaming JSONL: services in, evolutions and quarantine records out.

Input is read one line at a time, so memory does not grow with the file. A line that is
not JSON, not an object, or not a valid service becomes a :class:`Rejected` entry with
its line number and reason; so does a repeated ``service_id``. Output lines are written
whole and flushed one at a time, so an interrupted run leaves only complete lines.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, TypeVar

from pydantic import ValidationError

from service_ambitions.core.errors import InputError, OutputClosed, OutputError
from service_ambitions.core.models import Service, ServiceEvolution
from service_ambitions.core.problems import describe_errors
from service_ambitions.inputs.entries import (
    RAW_PREFIX_CHARS,
    Accepted,
    JsonObject,
    QuarantineRecord,
    Rejected,
    raw_prefix,
)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "MAX_DEPTH",
    "RAW_PREFIX_CHARS",
    "Closable",
    "JsonlWriter",
    "Reader",
    "is_empty",
    "is_stdout",
    "open_lines",
    "read_json_objects",
    "read_services",
    "silence_stdout",
]


def open_lines(path: Path) -> IO[bytes]:
    """Open an input for reading (``-`` is standard input).

    Raises:
        InputError: the file cannot be opened.
    """
    if str(path) == "-":
        return sys.stdin.buffer
    try:
        return path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror}", path=str(path)) from exc


DEFAULT_MAX_LINE_BYTES = 1 << 20
"""Longest input line read (1 MiB); a longer one is quarantined without being held in memory."""

_T = TypeVar("_T")


class Closable(Protocol):
    """Anything with a ``close()``: an open file, another reader."""

    def close(self) -> None:
        """Release it."""


MAX_DEPTH = 64
"""Deepest nesting of arrays and objects an input line may have: output records must stay serialisable."""


class Reader(Iterator[_T]):
    """An input being read: iterate it; ``close()`` closes its file, read to the end, partly or not at all.

    A generator would close its file only once started, so a job that failed before
    reading its first line (an output it cannot create) left the input open.
    """

    def __init__(self, items: Iterator[_T], resource: Closable) -> None:
        self._items = items
        self._resource = resource

    def __iter__(self) -> Reader[_T]:
        return self

    def __next__(self) -> _T:
        try:
            return next(self._items)
        except StopIteration:
            self.close()
            raise

    def close(self) -> None:
        """Stop reading and close the file."""
        close = getattr(self._items, "close", None)
        if callable(close):
            close()
        self._resource.close()


def read_json_objects(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Reader[JsonObject | Rejected]:
    """Yield every non-blank line of ``path`` as a JSON object or a rejected line, in order.

    The file is opened now, so a missing file fails here rather than at the first read.
    A line longer than ``max_line_bytes``, nested deeper than :data:`MAX_DEPTH`, not
    UTF-8 or not a JSON object is rejected with its reason and the first
    :data:`RAW_PREFIX_CHARS` characters; memory stays bounded whatever the file holds.

    Raises:
        InputError: the file cannot be opened.
    """
    handle = open_lines(path)
    return Reader(_objects(handle, max_line_bytes), handle)


def _lines(handle: IO[bytes], limit: int) -> Iterator[tuple[int, bytes, int]]:
    """(number, bytes, length) of every line; a line past ``limit`` comes as a prefix and its length."""
    number = 0
    while chunk := handle.readline(limit + 1):
        number += 1
        length = len(chunk)
        if length > limit and not chunk.endswith(b"\n"):
            prefix = chunk[: RAW_PREFIX_CHARS * 4]
            while not chunk.endswith(b"\n") and (chunk := handle.readline(1 << 20)):
                length += len(chunk)
            chunk = prefix
        yield number, chunk, length


def _objects(handle: IO[bytes], limit: int) -> Generator[JsonObject | Rejected]:
    with handle:
        for number, raw_bytes, length in _lines(handle, limit):
            raw = _text(number, raw_bytes, length, limit)
            if isinstance(raw, Rejected):
                yield raw
            elif raw.strip():
                yield _object(number, raw)


def _text(number: int, raw_bytes: bytes, length: int, limit: int) -> str | Rejected:
    """One line as text, or why it is not a usable line (too long, not UTF-8)."""
    if length > limit and len(raw_bytes) < length:
        prefix = raw_bytes.decode("utf-8", "replace")[:RAW_PREFIX_CHARS] + f"… [{length:,} bytes in all]"
        return Rejected(number, f"line of {length:,} bytes is longer than the limit of {limit:,}", prefix)
    try:
        return raw_bytes.decode("utf-8").rstrip("\r\n").lstrip("\ufeff")
    except UnicodeDecodeError as exc:
        return Rejected(number, f"not UTF-8 text (byte {exc.start})", raw_prefix(raw_bytes.decode("utf-8", "replace")))


def _object(number: int, raw: str) -> JsonObject | Rejected:
    """One line's JSON object, or why it is none (not JSON, not an object, nested too deep)."""
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        reason = f"not valid JSON: {exc.msg} at column {exc.colno}"
        return Rejected(number, reason + _array_hint(number, raw), raw_prefix(raw))
    except RecursionError:
        return Rejected(number, f"nested more than {MAX_DEPTH} levels deep", raw_prefix(raw))
    if not isinstance(data, dict):
        reason = f"expected a JSON object, got {type(data).__name__}"
        return Rejected(number, reason + _array_hint(number, raw), raw_prefix(raw))
    if _deeper_than(data, MAX_DEPTH):
        return Rejected(number, f"nested more than {MAX_DEPTH} levels deep", raw_prefix(raw))
    return JsonObject(number, data, raw)


def _array_hint(number: int, raw: str) -> str:
    """For a file that starts like a JSON array: what the input should be, and how to convert it."""
    if number == 1 and raw.lstrip().startswith("["):
        return (
            "; the file looks like a JSON array, and the input is JSON Lines: one object per line "
            "(jq -c '.[]' FILE > FILE.jsonl converts it)"
        )
    return ""


def is_empty(path: Path) -> bool:
    """Whether ``path`` holds nothing but white space (standard input never counts as empty).

    Raises:
        InputError: the file cannot be opened.
    """
    if str(path) == "-":
        return False
    with open_lines(path) as handle:
        while block := handle.read(1 << 16):
            if block.strip():
                return False
    return True


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels (walked level by level, without recursion)."""
    level, depth = [value], 1
    while level:
        if depth > limit:
            return True
        deeper: list[Any] = []
        for item in level:
            children = item.values() if type(item) is dict else item
            deeper.extend(child for child in children if type(child) is dict or type(child) is list)
        level, depth = deeper, depth + 1
    return False


def read_services(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> Reader[Accepted | Rejected]:
    """Yield every line of ``path`` as an accepted service or a rejected line, in order.

    A repeated ``service_id`` is rejected. Blank lines are skipped.

    Raises:
        InputError: the file cannot be opened.
    """
    objects = read_json_objects(path, max_line_bytes=max_line_bytes)
    return Reader(_checked_services(objects), objects)


def _checked_services(objects: Iterator[JsonObject | Rejected]) -> Generator[Accepted | Rejected]:
    first_seen: dict[str, int] = {}
    for entry in objects:
        if isinstance(entry, Rejected):
            yield entry
            continue
        parsed = parse_service(entry.line, entry.data, entry.raw)
        if isinstance(parsed, Accepted):
            service_id = parsed.service.service_id
            if service_id in first_seen:
                parsed = Rejected(
                    entry.line,
                    f"duplicate service_id {service_id!r} (first on line {first_seen[service_id]})",
                    raw_prefix(entry.raw),
                )
            else:
                first_seen[service_id] = entry.line
        yield parsed


def parse_service(number: int, data: dict[str, Any], raw: str) -> Accepted | Rejected:
    """One service, or the reason it is not one."""
    try:
        return Accepted(number, Service.model_validate(data))
    except ValidationError as exc:
        return Rejected(number, f"not a valid service: {describe_errors(exc)}", raw_prefix(raw))


def silence_stdout() -> None:
    """Point standard output at the null device, once its reader has gone.

    Python flushes ``sys.stdout`` again at exit; with the pipe closed that would print
    "Exception ignored … BrokenPipeError" after the command had ended quietly.
    """
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def is_stdout(path: Path) -> bool:
    """True for ``-``, the path that means standard output."""
    return str(path) == "-"


class JsonlWriter:
    """Writes models as JSON lines, each complete; opens the file on first write.

    Opening lazily means a quarantine file only appears when something is quarantined.
    ``durable`` also fsyncs what was written, at most every :data:`SYNC_INTERVAL_S` and at
    close (an fsync per line cost 0.4 ms, a fifth of a cached service); a power cut can then
    lose the last moment's lines, which a resumed run redoes from the cache. ``append``
    continues an existing file. A line that cannot be written whole (a full disk) is cut
    off again, so the file only ever holds whole lines, and the failure is one
    :class:`OutputError`.
    """

    SYNC_INTERVAL_S = 0.05

    def __init__(
        self,
        path: Path,
        *,
        append: bool = False,
        durable: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self.count = 0
        self._mode = "ab" if append else "wb"
        self._durable = durable
        self._clock = clock
        self._synced_at = clock()
        self._unsynced = False
        self._file: io.FileIO | None = None
        self._stdout = False

    def open(self) -> None:
        """Create (or, in append mode, open) the file now, for outputs that must exist even when empty.

        Raises:
            OutputError: the file cannot be created (read-only place, no permission, full disk).
        """
        if self._file is not None or self._stdout:
            return
        if is_stdout(self.path):
            self._stdout = True
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = io.FileIO(self.path, self._mode)
        except OSError as exc:
            raise _output_error(self.path, exc) from exc

    def write(self, record: ServiceEvolution | QuarantineRecord | str) -> None:
        """Append one record (or one line already serialised) as one line.

        Raises:
            OutputError: the line could not be written whole; the file is as it was before.
        """
        self.open()
        if not isinstance(record, str):
            record = record.model_dump_json(exclude_none=isinstance(record, QuarantineRecord))
        line = (record + "\n").encode("utf-8")
        if self._stdout:
            try:
                sys.stdout.write(line.decode("utf-8"))
                sys.stdout.flush()
            except BrokenPipeError as exc:
                silence_stdout()
                raise OutputClosed("standard output was closed by its reader") from exc
        else:
            assert self._file is not None  # nosec B101  # opened by the caller first (open() before write)
            self._append(self._file, line)
        self.count += 1

    def _append(self, handle: io.FileIO, line: bytes) -> None:
        size = os.fstat(handle.fileno()).st_size
        try:
            view = memoryview(line)
            while view:
                view = view[handle.write(view) or 0 :]
            self._unsynced = True
            if self._durable and self._clock() - self._synced_at >= self.SYNC_INTERVAL_S:
                self._sync(handle)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(handle.fileno(), size)  # no torn line is left behind
            raise _output_error(self.path, exc) from exc

    def _sync(self, handle: io.FileIO) -> None:
        os.fsync(handle.fileno())
        self._synced_at, self._unsynced = self._clock(), False

    def close(self) -> None:
        """Close the file if it was opened (on disk first, when durable).

        Raises:
            OutputError: what was written could not be put on disk.
        """
        if self._file is not None:
            try:
                if self._durable and self._unsynced:
                    self._sync(self._file)
            except OSError as exc:
                raise _output_error(self.path, exc) from exc
            finally:
                self._file.close()
        self._file = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _output_error(path: Path, exc: OSError) -> OutputError:
    return OutputError(
        f"cannot write {path}: {exc.strerror or exc}",
        hint="free some space or choose a writable place; --resume then continues where it stopped",
    )
