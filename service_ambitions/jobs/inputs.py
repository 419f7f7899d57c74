"""What a job reads: the services a run (or resumed run) still has to do, the records ``map`` maps."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from ..errors import (
    ConfigError,
)
from ..jsonl import Accepted, Rejected, read_services
from ..map_input import load_service_file, read_map_input
from ..reference import Catalogue, ReferenceData
from .setup import Prepared

__all__ = ["chosen_catalogues", "map_entries", "not_done", "remaining_services"]


def map_entries(
    prepared: Prepared,
    input_path: Path,
    catalogues: Sequence[str] | None,
    service_file: Path | None,
    service_id: str | None,
) -> tuple[tuple[Catalogue, ...], Iterator[Accepted | Rejected]]:
    """The catalogues ``map`` maps, and the records it reads: the same for a run and its plan."""
    chosen = chosen_catalogues(prepared.reference, catalogues)
    services = load_service_file(service_file) if service_file is not None else None
    entries = read_map_input(
        input_path,
        prepared.reference.plateaus,
        services=services,
        service_id=service_id,
        max_line_bytes=prepared.settings.max_line_bytes,
    )
    return chosen, entries


def chosen_catalogues(reference: ReferenceData, names: Sequence[str] | None) -> tuple[Catalogue, ...]:
    """The catalogues named (each once, in order), or all of them; ConfigError for an unknown one."""
    if not names:
        return reference.catalogues
    known = {catalogue.field: catalogue for catalogue in reference.catalogues}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise ConfigError(
            f"unknown catalogue {unknown[0]!r}",
            hint=f"--catalogue takes a catalogue field of the reference data: {', '.join(known)}",
        )
    return tuple(known[name] for name in dict.fromkeys(names))


def remaining_services(
    input_path: Path, done: set[str], seen_lines: set[int], max_line_bytes: int
) -> Iterator[Accepted | Rejected]:
    """The input, less what a resumed run already wrote or quarantined."""
    return not_done(read_services(input_path, max_line_bytes=max_line_bytes), done, seen_lines)


def not_done(
    entries: Iterable[Accepted | Rejected], done: set[str], seen_lines: set[int]
) -> Iterator[Accepted | Rejected]:
    """The entries, less the services already written and the lines already quarantined."""
    for entry in entries:
        if isinstance(entry, Accepted) and entry.service.service_id in done:
            continue
        if isinstance(entry, Rejected) and entry.line in seen_lines:
            continue
        yield entry
