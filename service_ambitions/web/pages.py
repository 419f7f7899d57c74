"""The pages: server-rendered (Jinja2, autoescaped), from the same calls the API answers with.

Each page is rendered from the model its API endpoint returns, and everything a page
*does* — upload, validate, dry-run, start, stop, continue, follow a run — it does through
the API (``static/app.js``), so a script can do all of it too.
"""

from __future__ import annotations

import asyncio
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from service_ambitions.core.errors import ServiceAmbitionsError
from service_ambitions.web import reads
from service_ambitions.web.state import for_run, web_state

if TYPE_CHECKING:
    from service_ambitions.web.state import WebState

__all__ = ["routes"]


@cache
def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("service_ambitions.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["money"] = lambda value: "—" if value is None else f"${float(value):,.4f}"
    environment.filters["exact_money"] = lambda value: "—" if value is None else f"${value}"
    environment.filters["count"] = lambda value: "—" if value is None else f"{int(value):,}"
    environment.filters["duration"] = _duration
    return environment


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    whole = int(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 60}m{whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def _page(template: str, request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    """``template`` rendered with ``context`` and what every page shows (the workspace, whether it only reads)."""
    state = web_state(request)
    shared = {"workspace": str(state.workspace), "read_only": state.launcher is None}
    return HTMLResponse(_environment().get_template(template).render({**shared, **context}), status_code=status_code)


def _problem(request: Request, title: str, message: str, hint: str | None = None, status_code: int = 404) -> Response:
    return _page("problem.html.j2", request, {"title": title, "message": message, "hint": hint}, status_code)


async def workspace_page(request: Request) -> Response:
    """The workspace: files, catalogues, upload, and the form that validates, plans and starts a job."""
    from service_ambitions.jobs.workspace import list_workspace

    state = web_state(request)
    view = await asyncio.to_thread(list_workspace, state.workspace, state.settings)
    return _page("workspace.html.j2", request, {"title": "Workspace", "view": view})


async def runs_page(request: Request) -> Response:
    """Every run of the runs directory, newest first."""
    from service_ambitions.runs.usage import list_runs

    state = web_state(request)
    found = await asyncio.to_thread(list_runs, state.settings.runs_directory())
    running = state.launcher.running() if state.launcher else set()
    return _page("runs.html.j2", request, {"title": "Runs", "runs": found, "running_here": running})


def _no_run(request: Request, run_id: str) -> Response:
    return _problem(request, "No such run", f"There is no run {run_id!r}.", "The runs page lists them.")


@for_run(_no_run)
async def run_page(request: Request, state: WebState, directory: Path) -> Response:
    """One run, live: the panel's figures, kept current by the run's AG-UI stream."""
    run_id = directory.name
    details = await reads.details(state, directory)
    figures = await reads.figures(state, directory)
    output = _workspace_name(state.workspace, details.output_path)
    context = {"title": f"Run {run_id}", "run": details, "figures": figures, "output": output}
    return _page("run.html.j2", request, context)


def _workspace_name(root: Path, path: str) -> str | None:
    """``path`` relative to the workspace, when it is inside it (for links to its roadmap)."""
    resolved, base = Path(path).resolve(), root.resolve()
    return resolved.relative_to(base).as_posix() if resolved.is_relative_to(base) and resolved.is_file() else None


@for_run(_no_run)
async def report_page(request: Request, state: WebState, directory: Path) -> Response:
    """What a run used and cost, by stage, model and service."""
    report = await reads.report(state, directory)
    return _page("report.html.j2", request, {"title": f"Report of {directory.name}", "report": report})


async def findings_page(request: Request) -> Response:
    """An output's quality findings, by service."""
    from service_ambitions.jobs.launch import workspace_file

    state = web_state(request)
    name = request.query_params.get("file", "")
    try:
        path = workspace_file(state.workspace, name)
        report = await reads.findings(state, path)
    except ServiceAmbitionsError as exc:
        return _problem(request, "Cannot check that file", exc.message, exc.hint, 422)
    return _page("findings.html.j2", request, {"title": f"Findings of {name}", "name": name, "report": report})


async def diff_page(request: Request) -> Response:
    """What changed between two outputs of the workspace (a form, then the changes)."""
    from service_ambitions.inputs.records import read_records
    from service_ambitions.jobs.launch import workspace_file
    from service_ambitions.jobs.workspace import list_workspace
    from service_ambitions.views.diff import diff_runs

    state = web_state(request)
    view = await asyncio.to_thread(list_workspace, state.workspace, state.settings)
    old, new = request.query_params.get("old"), request.query_params.get("new")
    changes = None
    if old and new:
        try:
            before, after = workspace_file(state.workspace, old), workspace_file(state.workspace, new)
            changes = await asyncio.to_thread(lambda: diff_runs(read_records(before), read_records(after)))
        except ServiceAmbitionsError as exc:
            return _problem(request, "Cannot compare those files", exc.message, exc.hint, 422)
    context = {"title": "Compare outputs", "view": view, "old": old, "new": new, "changes": changes}
    return _page("diff.html.j2", request, context)


async def cache_page(request: Request) -> Response:
    """What the cache holds."""
    from service_ambitions.jobs.cache import cache_stats
    from service_ambitions.jobs.reports import CacheStatsReport

    state = web_state(request)
    try:
        stats = CacheStatsReport.of(await asyncio.to_thread(cache_stats, state.settings))
    except ServiceAmbitionsError as exc:
        return _problem(request, "Cannot read the cache", exc.message, exc.hint, 500)
    return _page("cache.html.j2", request, {"title": "Cache", "stats": stats})


def routes() -> list[BaseRoute]:
    """The pages' routes (left out of the API's description)."""
    return [
        Route("/", workspace_page, methods=["GET"], include_in_schema=False),
        Route("/runs", runs_page, methods=["GET"], include_in_schema=False),
        Route("/runs/{run_id}", run_page, methods=["GET"], include_in_schema=False),
        Route("/runs/{run_id}/report", report_page, methods=["GET"], include_in_schema=False),
        Route("/findings", findings_page, methods=["GET"], include_in_schema=False),
        Route("/diff", diff_page, methods=["GET"], include_in_schema=False),
        Route("/cache", cache_page, methods=["GET"], include_in_schema=False),
    ]
