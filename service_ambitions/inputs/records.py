"""Reading output records for views and checks: every record at the current schema version, and what was unreadable."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from service_ambitions.core.models import ServiceEvolution
from service_ambitions.inputs.entries import Rejected, raw_prefix
from service_ambitions.inputs.jsonl import DEFAULT_MAX_LINE_BYTES, read_json_objects
from service_ambitions.inputs.migrations import MigrationFailed, migrate_record

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
            record, changed = migrate_record(entry.data, raw=entry.raw)
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
