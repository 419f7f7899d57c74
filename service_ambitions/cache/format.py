"""How cache entries are stored: keys, sealed blobs, entry headers, and a disk that never unpickles.

Nothing is ever pickled: diskcache 5.6.3 unpickles rows by default (CVE-2025-69872), and
even its ``JSONDisk`` unpickles rows planted with a pickle mode, so :class:`SafeDisk`
stores and returns bytes only, refuses every pickled key or value, and never reads or
deletes a value file that is not one diskcache itself would have written.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from diskcache import Disk
from diskcache.core import MODE_PICKLE, UNKNOWN
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service_ambitions.core.models import PlateauResult, Service, Stage, StageModels
from service_ambitions.core.spend import Spend

__all__ = [
    "CACHE_FORMAT",
    "IMPORTED_ROW",
    "RESULT_ROW",
    "SCHEMA_ROW",
    "SNAPSHOT_ROW",
    "TRANSCRIPT_ROW",
    "CacheEntry",
    "CachedAnswer",
    "CallGroup",
    "Lookup",
    "SafeDisk",
    "Snapshot",
    "UnsafeRow",
    "cache_key",
    "canonical_json",
    "key_scope",
    "own_value_file",
    "seal",
    "snapshot_deps",
    "snapshot_key",
    "text_column",
    "unsafe_file",
    "unseal",
]

CACHE_FORMAT = 1
"""Part of every key: bump it when the entry layout changes, and old entries become misses."""

RESULT_ROW, TRANSCRIPT_ROW, SCHEMA_ROW, IMPORTED_ROW, SNAPSHOT_ROW = "r:", "t:", "s:", "i:", "e:"
"""Key prefixes of the five kinds of row: an answer, its transcript, an output schema, an
imported answer, and a snapshot (a whole service's result, see ``snapshots.py``)."""


_MAGIC = b"sa-cache-1\n"


class UnsafeRow(ValueError):
    """A row holds a pickled key or value, which this cache never writes nor reads."""


class SafeDisk(Disk):  # type: ignore[misc]  # diskcache is untyped
    """A diskcache ``Disk`` for ``str`` keys and ``bytes`` values that never unpickles."""

    def put(self, key: Any) -> tuple[Any, bool]:
        """Refuse any key but a string, so no key is ever pickled."""
        if type(key) is not str:
            raise TypeError(f"cache keys must be str, not {type(key).__name__}")
        result: tuple[Any, bool] = super().put(key)
        return result

    def get(self, key: Any, raw: bool) -> Any:
        """Refuse rows whose key was pickled."""
        if not raw:
            raise UnsafeRow("refusing a pickled cache key")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = UNKNOWN) -> tuple[int, int, str | None, Any]:
        """Refuse any value but bytes, so no value is ever pickled."""
        if type(value) is not bytes:
            raise TypeError(f"cache values must be bytes, not {type(value).__name__}")
        result: tuple[int, int, str | None, Any] = super().store(value, read, key)
        return result

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        """Refuse rows stored as pickles, and value files that are not this cache's own."""
        if mode == MODE_PICKLE:
            raise UnsafeRow("refusing a pickled cache value")
        if filename is not None:
            own_value_file(self._directory, filename)
        return super().fetch(mode, filename, value, read)

    def remove(self, file_path: Any) -> None:
        """Delete a value file, but only one this cache wrote: a row never deletes anything else."""
        try:
            own_value_file(self._directory, file_path)
        except UnsafeRow:
            return  # the row goes from the index; the file it names is not ours to touch
        super().remove(file_path)


_VALUE_FILE = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{28}\.val$")
"""The names diskcache gives value files (``Disk.filename``); any other name is not ours."""


def text_column(value: Any) -> Any:
    """A column read as bytes, as text when it is valid UTF-8 (otherwise the bytes, reported as corrupt)."""
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return value
    return value


def unsafe_file(directory: Path, filename: Any) -> str | None:
    """Why ``filename`` is not a value file of this cache, or None when it is one."""
    try:
        own_value_file(directory, filename)
    except UnsafeRow as exc:
        return str(exc)
    return None


def own_value_file(directory: str | Path, filename: Any) -> str:
    """The full path of a value file this cache wrote.

    Raises:
        UnsafeRow: ``filename`` is not a name diskcache gives its files (an absolute path,
            ``..``, anything else), or a symbolic link is on the way to it.
    """
    if not isinstance(filename, str) or not _VALUE_FILE.match(filename.replace(os.sep, "/")):
        raise UnsafeRow(f"refusing value file {filename!r}: not one this cache writes")
    first, second, _ = filename.replace(os.sep, "/").split("/")
    for part in (os.path.join(directory, first), os.path.join(directory, first, second)):
        if os.path.islink(part):
            raise UnsafeRow(f"refusing value file {filename!r}: a symbolic link is on its path")
    full = os.path.join(directory, filename)
    if os.path.islink(full):
        raise UnsafeRow(f"refusing value file {filename!r}: it is a symbolic link")
    return full


class CacheEntry(BaseModel):
    """What is known about a stored answer besides the output itself."""

    model_config = ConfigDict(extra="forbid")

    format: Literal[1] = 1
    stage: Stage
    model: str
    created: datetime
    schema_sha256: str
    spend: Spend
    """What the original call used and cost."""

    @model_validator(mode="before")
    @classmethod
    def _usage_and_cost(cls, data: Any) -> Any:
        """Entries written before :class:`Spend` kept ``usage`` and ``cost_usd`` apart."""
        if isinstance(data, dict) and "usage" in data and "spend" not in data:
            data = dict(data)
            data["spend"] = {**data.pop("usage"), "cost_usd": data.pop("cost_usd", None)}
        return data


@dataclass(frozen=True)
class CachedAnswer:
    """An entry and its output, as JSON bytes for the reader to validate against its type."""

    entry: CacheEntry
    output_json: bytes


@dataclass(frozen=True)
class Lookup:
    """What a lookup found under a key: an answer, the reason its row is unusable, or nothing (a miss)."""

    answer: CachedAnswer | None = None
    problem: str | None = None
    """Why the row cannot be used (unreadable, corrupt); the fresh answer then replaces it."""

    @property
    def found(self) -> bool:
        """Whether there was a row under the key, usable or not."""
        return self.answer is not None or self.problem is not None


def canonical_json(value: Any) -> bytes:
    """JSON with sorted keys and no spaces: equal data, equal bytes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def key_scope(
    *,
    stage: str,
    model: str,
    endpoint: str | None,
    settings: Mapping[str, Any],
    output_schema: Mapping[str, Any],
) -> str:
    """The part of a key that a stage's calls share: computed once per stage and output type.

    ``endpoint`` (the provider's base URL) keeps answers of a local server and of the real
    provider apart when both use one model name. Dict order never matters (canonical JSON).
    """
    parts = {
        "format": CACHE_FORMAT,
        "stage": stage,
        "model": model,
        "endpoint": endpoint,
        "settings": settings,
        "schema": _sha256(canonical_json(output_schema)),
    }
    return _sha256(canonical_json(parts))


def cache_key(*, scope: str, instructions: str, prompt: str, history: Any = ()) -> str:
    """The key of an answer: a hash over everything that determines it.

    ``scope`` comes from :func:`key_scope`; the rest is what differs from call to call.
    Changing any part changes the key.
    """
    history_digest = _sha256(canonical_json(history)) if history else ""
    material = f"{scope}\0{_sha256(instructions)}\0{_sha256(prompt)}\0{history_digest}"
    return _sha256(material)


def seal(payload: bytes) -> bytes:
    """Checksum, then the compressed payload."""
    # Level 1: answers compress to about a third at level 1 and little better at 6, which
    # costs half as much again on every write.
    return _MAGIC + _sha256(payload).encode() + b"\n" + zlib.compress(payload, 1)


def unseal(blob: Any) -> bytes:
    """The payload of a sealed blob; ValueError when it is not one or its checksum fails."""
    if type(blob) is not bytes or not blob.startswith(_MAGIC):
        raise ValueError("not an entry written by service-ambitions")
    digest, _, compressed = blob[len(_MAGIC) :].partition(b"\n")
    try:
        payload = zlib.decompress(compressed)
    except zlib.error as exc:
        raise ValueError("compressed payload is damaged") from exc
    if _sha256(payload).encode() != digest:
        raise ValueError("checksum mismatch")
    return payload


# -- snapshots (see snapshots.py) --------------------------------------------------


def snapshot_key(scope: str, service: Service) -> str:
    """The key of ``service``'s record under ``scope``."""
    return hashlib.sha256(f"{scope}\0{service.model_dump_json()}".encode()).hexdigest()


class CallGroup(BaseModel):
    """The calls of one stage and model behind a record: what they used when they were made."""

    model_config = ConfigDict(extra="forbid")

    stage: Stage
    model: str
    calls: int = Field(ge=1)
    spend: Spend = Spend()
    """What the calls used and cost when they were made."""

    @model_validator(mode="before")
    @classmethod
    def _flat_spend(cls, data: Any) -> Any:
        """Snapshots written before :class:`Spend` held its fields flat (``cost_usd`` None: no price)."""
        if isinstance(data, dict) and "spend" not in data:
            names = ("requests", "input_tokens", "output_tokens", "cache_read_tokens", "reasoning_tokens", "cost_usd")
            data = dict(data)
            spend = {name: data.pop(name) for name in names if name in data}
            if spend.get("cost_usd") is None:
                spend |= {"cost_usd": 0, "unpriced": data.get("calls", 1)}
            data["spend"] = spend
        return data


class Snapshot(BaseModel):
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


def snapshot_deps(payload: bytes) -> list[str] | None:
    """The answer keys a snapshot (unsealed) was built from; None when it is not a whole entry."""
    try:
        return Snapshot.model_validate_json(payload).deps
    except ValidationError:
        return None
