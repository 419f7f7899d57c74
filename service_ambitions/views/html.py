"""The roadmap page: one self-contained HTML file, built with Jinja2 and autoescaped throughout.

No CDN, no network: styles and the small script are inline, so the file opens from a USB
stick. The portfolio heat-map, catalogue coverage and the changes against an earlier run
are rendered by the template. Each service's details (its plateaus, features, scores,
mappings and provenance) travel as gzip-compressed JSON inside the page and are drawn
when the service is opened, with DOM text nodes only — never as HTML — so a portfolio of
1,000 services stays a file of a few megabytes that opens in a second or two.
"""

from __future__ import annotations

import base64
import gzip
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from importlib.metadata import version

from jinja2 import Environment, PackageLoader, select_autoescape

from service_ambitions.core.models import ServiceEvolution
from service_ambitions.quality.report import QualityReport
from service_ambitions.views.diff import RunDiff
from service_ambitions.views.portfolio import Portfolio

__all__ = ["render_roadmap"]


def _environment() -> Environment:
    return Environment(
        loader=PackageLoader("service_ambitions.views", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _packed(records: Sequence[ServiceEvolution], quality: QualityReport | None) -> str:
    """The records, each with its quality findings, as base64 of gzip-compressed JSON (the script unpacks it)."""
    checked = {service.service_id: service for service in quality.services} if quality else {}
    dumped = []
    for record in records:
        entry = record.model_dump(mode="json")
        if (found := checked.get(record.service.service_id)) is not None:
            entry["quality"] = found.model_dump(mode="json", include={"score", "findings"})
        dumped.append(entry)
    data = json.dumps(dumped, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(gzip.compress(data.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def _packed_names(names: Mapping[str, Mapping[str, str]]) -> str:
    """Catalogue item names by catalogue and id, packed like the records: data, never markup."""
    data = json.dumps(names, ensure_ascii=False, separators=(",", ":"))
    return base64.b64encode(gzip.compress(data.encode("utf-8"), compresslevel=9, mtime=0)).decode("ascii")


def render_roadmap(
    records: Sequence[ServiceEvolution],
    view: Portfolio,
    *,
    title: str,
    source: str,
    skipped: int,
    changes: RunDiff | None,
    made: datetime,
    quality: QualityReport | None = None,
    item_names: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """The page for ``records`` as HTML text."""
    template = _environment().get_template("roadmap.html.j2")
    runs = sorted({record.meta.run_id for record in records})
    models = sorted({name for record in records for name in record.meta.models.model_dump().values()})
    return template.render(
        title=title,
        source=source,
        view=view,
        runs=runs,
        models=models,
        skipped=skipped,
        changes=changes,
        packed=_packed(records, quality),
        packed_names=_packed_names(item_names or {}),
        quality=quality,
        generator=f"service-ambitions {version('service-ambitions')}",
        made=made.strftime("%Y-%m-%d %H:%M UTC"),
    )
