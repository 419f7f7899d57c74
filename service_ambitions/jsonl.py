"""Streaming JSONL: services in, evolutions and quarantine records out.

Input is read one line at a time, so memory does not grow with the file. A line that is
not JSON, not an object, or not a valid service becomes a :class:`Rejected` entry with
its line number and reason; so does a repeated ``service_id``. Output lines are written
whole and flushed one at a time, so an interrupted run leaves only complete lines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import InputError
from .models import Service, ServiceEvolution, Stage

__all__ = ["Accepted", "JsonlWriter", "QuarantineRecord", "Rejected", "read_services"]


@dataclass(frozen=True)
class Accepted:
    """A valid service and the line it came from."""

    line: int
    service: Service


@dataclass(frozen=True)
class Rejected:
    """An input line that is not a usable service."""

    line: int
    reason: str
    raw: str


class QuarantineRecord(BaseModel):
    """One line of the quarantine file: what was set aside, where it came from, and why."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["input", "service"]
    """``input``: the line could not be read as a service; ``service``: its generation failed."""
    line: int
    reason: str
    service_id: str | None = None
    stage: Stage | None = None
    raw: str | None = None
    transcript: list[Any] | None = None
    """For an answer that kept failing validation: the whole exchange with the model."""


def read_services(path: Path) -> Iterator[Accepted | Rejected]:
    """Yield every line of ``path`` as an accepted service or a rejected line, in order.

    The file is opened now, so a missing file fails here rather than at the first read.
    Blank lines are skipped.

    Raises:
        InputError: the file cannot be opened.
    """
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read input: {exc.strerror}", path=str(path)) from exc
    return _entries(handle)


def _entries(handle: IO[bytes]) -> Iterator[Accepted | Rejected]:
    first_seen: dict[str, int] = {}
    with handle:
        for number, raw_bytes in enumerate(handle, start=1):
            try:
                raw = raw_bytes.decode("utf-8").rstrip("\r\n").lstrip("\ufeff")
            except UnicodeDecodeError as exc:
                yield Rejected(number, f"not UTF-8 text (byte {exc.start})", raw_bytes.decode("utf-8", "replace"))
                continue
            if not raw.strip():
                continue
            entry = _parse(number, raw)
            if isinstance(entry, Accepted):
                service_id = entry.service.service_id
                if service_id in first_seen:
                    entry = Rejected(
                        number, f"duplicate service_id {service_id!r} (first on line {first_seen[service_id]})", raw
                    )
                else:
                    first_seen[service_id] = number
            yield entry


def _parse(number: int, raw: str) -> Accepted | Rejected:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        return Rejected(number, f"not valid JSON: {exc.msg} at column {exc.colno}", raw)
    if not isinstance(data, dict):
        return Rejected(number, f"expected a JSON object, got {type(data).__name__}", raw)
    try:
        return Accepted(number, Service.model_validate(data))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'service'}: {error['msg']}" for error in exc.errors()
        )
        return Rejected(number, f"not a valid service: {problems}", raw)


class JsonlWriter:
    """Writes models as JSON lines, each complete and flushed; opens the file on first write.

    Opening lazily means a quarantine file only appears when something is quarantined.
    ``durable`` also fsyncs every line; ``append`` continues an existing file.
    """

    def __init__(self, path: Path, *, append: bool = False, durable: bool = False) -> None:
        self.path = path
        self.count = 0
        self._mode = "a" if append else "w"
        self._durable = durable
        self._handle: IO[str] | None = None

    def open(self) -> None:
        """Create (or, in append mode, open) the file now, for outputs that must exist even when empty."""
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open(self._mode, encoding="utf-8")

    def write(self, record: ServiceEvolution | QuarantineRecord) -> None:
        """Append one record as one line."""
        self.open()
        assert self._handle is not None
        self._handle.write(record.model_dump_json(exclude_none=isinstance(record, QuarantineRecord)) + "\n")
        self._handle.flush()
        if self._durable:
            # On disk before the next service is reported done: a crash loses no finished work.
            os.fsync(self._handle.fileno())
        self.count += 1

    def close(self) -> None:
        """Close the file if it was opened."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> JsonlWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
