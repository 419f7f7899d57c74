"""What the roadmap page shows of a whole portfolio: the heat-map rows, counts, and catalogue coverage.

Computed here, in Python, so the template only lays it out: each service's mean CMMI
level per plateau (the heat-map), its parent and customer type (the filters), and per
catalogue how many features use each item at each plateau, and which items none uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from service_ambitions.core.models import CMMI_LABELS, ServiceEvolution
from service_ambitions.quality.report import QualityReport
from service_ambitions.reference.data import Catalogue

__all__ = ["CoverageRow", "Portfolio", "ServiceRow", "portfolio"]


@dataclass(frozen=True)
class ServiceRow:
    """One row of the heat-map."""

    index: int
    service_id: str
    name: str
    parent_id: str
    customer_type: str
    features: int
    dropped: int
    synthetic: bool
    levels: list[float | None]
    """Mean level of the service's features at each plateau of :attr:`Portfolio.plateaus`."""
    quality: int | None = None
    """The service's quality score (100 clean), when the page shows ``check``'s findings."""
    findings: int = 0


@dataclass(frozen=True)
class CoverageRow:
    """One catalogue item: how many features rely on it at each plateau."""

    item: str
    name: str
    per_plateau: list[int]
    total: int


@dataclass
class Portfolio:
    """Everything the page shows besides each service's own details."""

    plateaus: list[tuple[int, str]]
    """(level, name) of every plateau any record has, in order."""
    rows: list[ServiceRow]
    features: int
    dropped: int
    quarantined: int
    synthetic: int
    """Records the offline model wrote."""
    parents: list[str]
    customer_types: list[str]
    coverage: dict[str, list[CoverageRow]] = field(default_factory=dict)
    unused: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    """Per catalogue of the reference data, (id, name) of the items no feature uses."""
    levels: list[tuple[int, str]] = field(default_factory=lambda: sorted(CMMI_LABELS.items()))


def portfolio(
    records: Sequence[ServiceEvolution],
    catalogues: Sequence[Catalogue],
    quarantined: int,
    quality: QualityReport | None = None,
) -> Portfolio:
    """The portfolio view of ``records``; ``catalogues`` (the reference data) name items and show unused ones."""
    checked = {service.service_id: service for service in quality.services} if quality else {}
    plateaus = sorted({(p.plateau, p.plateau_name) for record in records for p in record.plateaus})
    levels_of = {level: i for i, (level, _) in enumerate(plateaus)}
    rows = []
    used: dict[str, Counter[tuple[str, int]]] = {}
    for index, record in enumerate(records):
        means: list[float | None] = [None] * len(plateaus)
        for plateau in record.plateaus:
            scores = [f.score.level for f in plateau.features if f.score is not None]
            if scores:
                means[levels_of[plateau.plateau]] = round(sum(scores) / len(scores), 1)
            for feature in plateau.features:
                for catalogue, items in feature.mappings.items():
                    counter = used.setdefault(catalogue, Counter())
                    for item in items:
                        counter[(item.item, plateau.plateau)] += 1
        service = record.service
        rows.append(
            ServiceRow(
                index=index,
                service_id=service.service_id,
                name=service.name,
                parent_id=service.parent_id or "",
                customer_type=service.customer_type or "",
                features=sum(len(p.features) for p in record.plateaus),
                dropped=record.meta.dropped_items,
                synthetic=record.meta.synthetic,
                levels=means,
                quality=checked[service.service_id].score if service.service_id in checked else None,
                findings=len(checked[service.service_id].findings) if service.service_id in checked else 0,
            )
        )
    names = {c.field: {item.id: item.name for item in c.items} for c in catalogues}
    coverage = {
        catalogue: _coverage(counter, plateaus, names.get(catalogue, {})) for catalogue, counter in sorted(used.items())
    }
    used_ids = {catalogue: {item for item, _ in counter} for catalogue, counter in used.items()}
    unused = {
        c.field: [(item.id, item.name) for item in c.items if item.id not in used_ids.get(c.field, set())]
        for c in catalogues
    }
    return Portfolio(
        plateaus=plateaus,
        rows=rows,
        features=sum(row.features for row in rows),
        dropped=sum(row.dropped for row in rows),
        quarantined=quarantined,
        synthetic=sum(row.synthetic for row in rows),
        parents=sorted({row.parent_id for row in rows if row.parent_id}),
        customer_types=sorted({row.customer_type for row in rows if row.customer_type}),
        coverage=coverage,
        unused=unused,
    )


def _coverage(
    counter: Counter[tuple[str, int]], plateaus: Sequence[tuple[int, str]], names: dict[str, str]
) -> list[CoverageRow]:
    items = sorted({item for item, _ in counter})
    rows = [
        CoverageRow(
            item=item,
            name=names.get(item, ""),
            per_plateau=[counter[(item, level)] for level, _ in plateaus],
            total=sum(counter[(item, level)] for level, _ in plateaus),
        )
        for item in items
    ]
    return sorted(rows, key=lambda row: (-row.total, row.item))
