"""What a job reads: the services a run (or resumed run) still has to do, the records ``map`` maps."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from pathlib import Path

from service_ambitions.cache.format import snapshot_key
from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.core.errors import ConfigError, ServiceAmbitionsError
from service_ambitions.inputs.entries import Accepted, Rejected
from service_ambitions.inputs.map_input import load_service_file, read_map_input
from service_ambitions.jobs.setup import Prepared, open_cache
from service_ambitions.reference.data import Catalogue, ReferenceData

__all__ = ["answered_by_snapshots", "chosen_catalogues", "map_reader", "not_done"]


def map_reader(
    prepared: Prepared,
    input_path: Path,
    catalogues: Sequence[str] | None,
    service_file: Path | None,
    service_id: str | None,
) -> tuple[tuple[Catalogue, ...], Callable[[], Iterator[Accepted | Rejected]]]:
    """The catalogues ``map`` maps, and how to read its records: the same for a run and its plan.

    The catalogue names and the service file are checked and read here, once; the
    reader may be called again (a resumed run reads its input twice).
    """
    chosen = chosen_catalogues(prepared.reference, catalogues)
    services = load_service_file(service_file) if service_file is not None else None
    max_line_bytes = prepared.settings.max_line_bytes

    def read() -> Iterator[Accepted | Rejected]:
        plateaus = prepared.reference.plateaus
        return read_map_input(
            input_path, plateaus, services=services, service_id=service_id, max_line_bytes=max_line_bytes
        )

    return chosen, read


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


def not_done(
    entries: Iterable[Accepted | Rejected], done: set[str], seen_lines: set[int]
) -> Generator[Accepted | Rejected]:
    """The entries, less the services already written and the lines already quarantined."""
    for entry in entries:
        if isinstance(entry, Accepted) and entry.service.service_id in done:
            continue
        if isinstance(entry, Rejected) and entry.line in seen_lines:
            continue
        yield entry


def answered_by_snapshots(prepared: Prepared, read: Callable[[], Iterator[Accepted | Rejected]]) -> bool:
    """True when every service ``read`` gives has a snapshot: the run then needs no model.

    Stops at the first service without one (a cold run reads one line). A snapshot
    found here but unusable later means the models are resolved when that service runs.
    """
    settings = prepared.settings
    if settings.cache_mode not in (CacheMode.READ, CacheMode.READONLY) or not settings.cache_directory().is_dir():
        return False
    if not settings.snapshots:
        return False
    try:
        with open_cache(settings) as cache:
            scope = prepared.snapshot_scope
            entries = read()
            try:
                return all(
                    cache.has_snapshot(snapshot_key(scope, entry.service))
                    for entry in entries
                    if isinstance(entry, Accepted)
                )
            finally:
                if isinstance(entries, Generator):
                    entries.close()  # stopped at a miss: the input file is closed now
    except ServiceAmbitionsError:
        return False  # the run reports the cache's or the input's trouble itself
