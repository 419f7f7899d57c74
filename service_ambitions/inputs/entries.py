"""What reading an input yields and what a job sets aside: plain records, no I/O.

The pipeline works on these; :mod:`jsonl` (and ``map_input``) produce them from files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from service_ambitions.core.models import Meta, PlateauResult, Service, Stage

__all__ = ["RAW_PREFIX_CHARS", "Accepted", "Existing", "JsonObject", "QuarantineRecord", "Rejected", "raw_prefix"]

RAW_PREFIX_CHARS = 4096
"""How much of a set-aside line the quarantine file keeps."""


def raw_prefix(raw: str) -> str:
    """``raw``, or its first characters and a note of how long it was."""
    if len(raw) <= RAW_PREFIX_CHARS:
        return raw
    return f"{raw[:RAW_PREFIX_CHARS]}… [{len(raw):,} characters in all]"


@dataclass(frozen=True)
class Accepted:
    """A valid service and the line it came from."""

    line: int
    service: Service
    existing: Existing | None = None
    """For ``map``: the features to map again."""


@dataclass(frozen=True)
class Existing:
    """Plateaus whose features ``map`` maps again, and the meta of the record they came from."""

    plateaus: list[PlateauResult]
    meta: Meta | None
    """None for a features-only record."""


@dataclass(frozen=True)
class JsonObject:
    """One line that holds a JSON object."""

    line: int
    data: dict[str, Any]
    raw: str


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

    @classmethod
    def of_line(cls, entry: Rejected) -> QuarantineRecord:
        """The record of an input line that could not be read as a service."""
        return cls(kind="input", line=entry.line, reason=entry.reason, raw=entry.raw)
