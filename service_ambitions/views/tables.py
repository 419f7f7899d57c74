"""A run's records as tidy tables — services, plateaus, features, mappings — for spreadsheets and BI tools.

One row per thing, keys repeated in every row, so each table can be filtered, pivoted and
joined on its own: ``service_id`` ties them all; ``(service_id, plateau)`` ties plateaus to
features; ``feature_id`` ties features to mappings.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from service_ambitions.core.models import ServiceEvolution

__all__ = ["TABLES", "Table", "tables"]


@dataclass(frozen=True)
class Table:
    """One tidy table: its name, its columns and its rows (cells are text, numbers, booleans or empty)."""

    name: str
    columns: tuple[str, ...]
    rows: list[tuple[object, ...]]


TABLES = ("services", "plateaus", "features", "mappings")
"""The tables, in the order they are written."""

_COLUMNS = {
    "services": (
        "service_id",
        "name",
        "description",
        "customer_type",
        "parent_id",
        "plateaus",
        "features",
        "dropped_items",
        "models",
        "run_id",
        "synthetic",
    ),
    "plateaus": (
        "service_id",
        "plateau",
        "plateau_id",
        "plateau_name",
        "service_description",
        "features",
        "mean_level",
    ),
    "features": (
        "service_id",
        "plateau",
        "customer_type",
        "feature_id",
        "name",
        "description",
        "level",
        "label",
        "justification",
    ),
    "mappings": ("service_id", "plateau", "feature_id", "catalogue", "item", "facets"),
}


def tables(records: Iterable[ServiceEvolution]) -> list[Table]:
    """The four tables of ``records``, rows in record order."""
    rows: dict[str, list[tuple[object, ...]]] = {name: [] for name in TABLES}
    for record in records:
        for name, row in _rows(record):
            rows[name].append(row)
    return [Table(name, _COLUMNS[name], rows[name]) for name in TABLES]


def _rows(record: ServiceEvolution) -> Iterator[tuple[str, tuple[object, ...]]]:
    service, meta = record.service, record.meta
    sid = service.service_id
    models = sorted(set(meta.models.model_dump().values()))
    yield (
        "services",
        (
            sid,
            service.name,
            service.description,
            service.customer_type,
            service.parent_id,
            len(record.plateaus),
            sum(len(p.features) for p in record.plateaus),
            meta.dropped_items,
            ", ".join(models),
            meta.run_id,
            meta.synthetic,
        ),
    )
    for plateau in record.plateaus:
        levels = [f.score.level for f in plateau.features if f.score is not None]
        mean = round(sum(levels) / len(levels), 2) if levels else None
        yield (
            "plateaus",
            (
                sid,
                plateau.plateau,
                plateau.plateau_id,
                plateau.plateau_name,
                plateau.service_description,
                len(plateau.features),
                mean,
            ),
        )
        for feature in plateau.features:
            score = feature.score
            yield (
                "features",
                (
                    sid,
                    plateau.plateau,
                    feature.customer_type,
                    feature.feature_id,
                    feature.name,
                    feature.description,
                    score.level if score else None,
                    score.label if score else None,
                    score.justification if score else None,
                ),
            )
            for catalogue, items in feature.mappings.items():
                for item in items:
                    facets = json.dumps(item.facets, ensure_ascii=False, sort_keys=True) if item.facets else None
                    yield ("mappings", (sid, plateau.plateau, feature.feature_id, catalogue, item.item, facets))
