"""Reading a run's output for a view: every record at the current schema version, and what could not be read."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..entries import Rejected, raw_prefix
from ..jsonl import DEFAULT_MAX_LINE_BYTES, read_json_objects
from ..migrations import MigrationFailed, migrate_record
from ..models import SCHEMA_VERSION, ServiceEvolution
from ..problems import describe_errors

__all__ = ["RecordSet", "read_records"]


@dataclass
class RecordSet:
    """The records of one output file, in file order, keyed by service id."""

    path: Path
    records: dict[str, ServiceEvolution] = field(default_factory=dict)
    skipped: list[Rejected] = field(default_factory=list)
    """Lines that are not a readable record, or repeat a service already read, with the reason."""
    migrated: int = 0
    """Records of an older schema version, carried to the current one on the way in."""


def _record(data: dict[str, Any], raw: str) -> tuple[ServiceEvolution, bool]:
    """A record at the current version, validated from its text (pydantic-core reads JSON faster than dicts)."""
    meta = data.get("meta")
    if isinstance(meta, dict) and meta.get("schema_version") == SCHEMA_VERSION:
        try:
            return ServiceEvolution.model_validate_json(raw), False
        except ValidationError as exc:
            raise MigrationFailed(f"not a valid {SCHEMA_VERSION} record: {describe_errors(exc)}") from exc
    return migrate_record(data)


def read_records(path: Path, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> RecordSet:
    """Every evolution record of ``path``; older schema versions are migrated, unreadable lines skipped.

    Raises:
        InputError: the file cannot be opened.
    """
    found = RecordSet(path)
    for entry in read_json_objects(path, max_line_bytes=max_line_bytes):
        if isinstance(entry, Rejected):
            found.skipped.append(entry)
            continue
        try:
            record, changed = _record(entry.data, entry.raw)
        except MigrationFailed as exc:
            found.skipped.append(Rejected(entry.line, str(exc), raw_prefix(entry.raw)))
            continue
        service_id = record.service.service_id
        if service_id in found.records:
            found.skipped.append(Rejected(entry.line, f"service {service_id!r} again: the first one is used", ""))
            continue
        found.records[service_id] = record
        found.migrated += changed
    return found
