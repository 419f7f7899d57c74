"""What the pages and the API read: one call each, shared, and kept while its files are unchanged.

A page and its API endpoint answer from the same call here, so they never disagree, and
an answer made once (a finished run's report, an output's findings) is not made again
until its files change (:class:`~service_ambitions.web.memo.FileMemo`). Each runs in a
thread: reading a long journal or checking 1,000 roadmaps never stalls a live stream.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from service_ambitions.quality.report import QualityReport
    from service_ambitions.runs.details import RunDetails
    from service_ambitions.runs.live import LiveFigures
    from service_ambitions.runs.usage import UsageReport
    from service_ambitions.views.page import RoadmapPage
    from service_ambitions.web.state import WebState

__all__ = ["details", "figures", "findings", "report", "roadmap"]


def _journal(directory: Path) -> list[Path]:
    return [directory / "manifest.json", directory / "events.jsonl"]


async def details(state: WebState, directory: Path) -> RunDetails:
    """A run's manifest with each service's state (``runs show``)."""
    from service_ambitions.runs.details import run_details

    return await asyncio.to_thread(state.memo.get, "details", _journal(directory), lambda: run_details(directory))


async def report(state: WebState, directory: Path) -> UsageReport:
    """What a run used and cost, by stage, model and service (``report --by-service``)."""
    from service_ambitions.runs.usage import build_report

    def make() -> UsageReport:
        return build_report(directory, by_service=True)

    return await asyncio.to_thread(state.memo.get, "report", _journal(directory), make)


async def figures(state: WebState, directory: Path) -> LiveFigures:
    """A run's live figures as its journal stands."""
    from service_ambitions.runs.live import live_figures

    return await asyncio.to_thread(state.memo.get, "figures", _journal(directory), lambda: live_figures(directory))


async def findings(state: WebState, path: Path) -> QualityReport:
    """An output's quality findings (``check``)."""
    from service_ambitions.quality.report import check_file, known_roles

    def make() -> QualityReport:
        return check_file(path, state.settings.quality, known_roles(state.settings.reference))

    return await asyncio.to_thread(state.memo.get, "findings", [path], make)


async def roadmap(state: WebState, path: Path, compare: Path | None = None) -> RoadmapPage:
    """An output's roadmap page (``view``), with what changed since ``compare``."""
    from service_ambitions.views.page import roadmap_page

    files = [path] if compare is None else [path, compare]

    def make() -> RoadmapPage:
        # The page needs the findings, and the findings page shows them: one read of the
        # file makes both, whichever is opened first.
        from service_ambitions.quality.report import QualityReport

        known = state.memo.peek("findings", [path], QualityReport)
        page = roadmap_page(state.settings, path, compare=compare, quality=known)
        state.memo.put("findings", [path], page.quality)
        return page

    return await asyncio.to_thread(state.memo.get, "roadmap", files, make)
