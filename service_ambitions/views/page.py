"""The roadmap page of an output file, as ``view`` writes it and ``serve`` shows it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from service_ambitions.config.settings import Settings
from service_ambitions.core.errors import ConfigError
from service_ambitions.inputs.entries import JsonObject, Rejected
from service_ambitions.inputs.jsonl import read_json_objects
from service_ambitions.inputs.records import read_records
from service_ambitions.quality.report import QualityReport, check_evolutions
from service_ambitions.quality.rules import KnownRoles
from service_ambitions.reference.data import load_reference
from service_ambitions.views.diff import diff_runs
from service_ambitions.views.html import render_roadmap
from service_ambitions.views.portfolio import portfolio

__all__ = ["RoadmapPage", "roadmap_page"]


@dataclass(frozen=True)
class RoadmapPage:
    """The page, and what a face says about it."""

    html: str
    services: int
    skipped: list[Rejected]
    """Unreadable lines of the output, left out."""
    note: str | None
    """Why unused catalogue items are not shown (the reference data could not be read)."""
    quality: QualityReport
    """The file's findings, as ``check`` reports them."""


def roadmap_page(
    settings: Settings,
    source: Path,
    *,
    compare: Path | None = None,
    quarantine: Path | None = None,
    title: str | None = None,
    quality: QualityReport | None = None,
) -> RoadmapPage:
    """``source``'s records as one self-contained HTML page, with quality findings and, given ``compare``, changes.

    ``quality`` is the file's findings when they are known already (``check`` on the same
    file and settings); otherwise they are found here.

    Raises:
        InputError: ``source`` (or ``compare``) cannot be read.
    """
    found = read_records(source)
    records = list(found.records.values())
    quarantine = quarantine or source.with_name(f"{source.stem}.quarantine.jsonl")
    quarantined = 0
    if quarantine.is_file():
        quarantined = sum(
            1
            for entry in read_json_objects(quarantine)
            if isinstance(entry, JsonObject) and entry.data.get("kind") == "service"
        )
    roles: KnownRoles | None = None
    note = None
    try:
        files = settings.reference
        reference = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
        catalogues = reference.catalogues
        roles = KnownRoles.of(reference)
    except ConfigError as exc:
        note = f"unused catalogue items not shown: {exc.message}"
        catalogues = ()
    if quality is None:
        found_quality = check_evolutions(records, settings.quality, roles)
        quality = found_quality.model_copy(update={"path": str(source), "skipped_lines": len(found.skipped)})
    changes = diff_runs(read_records(compare), found) if compare is not None else None
    html = render_roadmap(
        records,
        portfolio(records, catalogues, quarantined, quality),
        title=title or source.stem,
        source=source.name,
        skipped=len(found.skipped),
        changes=changes,
        made=datetime.now(UTC),
        quality=quality,
        item_names={c.field: {item.id: item.name for item in c.items} for c in catalogues},
    )
    return RoadmapPage(html=html, services=len(records), skipped=list(found.skipped), note=note, quality=quality)
