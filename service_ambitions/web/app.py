"""The runtime API: what a browser page or a monitoring script reads about runs, as JSON.

Every request needs the server's token: ``Authorization: Bearer TOKEN``, or the
``sa_token`` cookie that ``/?token=TOKEN`` sets (the URL ``serve`` prints). Requests that
change anything must come from the same origin too (none does yet: this API reads). Run
ids are checked against the shape the tool gives them before any path is built, so no
request names a file outside the runs directory.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.schemas import SchemaGenerator

from service_ambitions.config.settings import Settings

__all__ = ["WebState", "create_app"]

_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")
_COOKIE = "sa_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SCHEMAS = SchemaGenerator({"openapi": "3.0.0", "info": {"title": "service-ambitions runtime API", "version": "1"}})


@dataclass(frozen=True)
class WebState:
    """What the server serves: the workspace's settings (where runs and the cache are) and its token."""

    settings: Settings
    token: str
    poll_s: float = 0.5
    """How often a followed event stream looks for new events."""


def _json(document: str) -> Response:
    return Response(document, media_type="application/json")


def _run_directory(state: WebState, run_id: str) -> Path | None:
    """The run's directory, when ``run_id`` has a run id's shape and the run exists."""
    if not _RUN_ID.match(run_id):
        return None
    directory = state.settings.runs_directory() / run_id
    return directory if (directory / "manifest.json").is_file() else None


def _not_found(run_id: str) -> Response:
    return JSONResponse({"error": f"no run {run_id!r}", "hint": "GET /api/runs lists them"}, status_code=404)


class _Auth(BaseHTTPMiddleware):
    """The token on every request; the same origin on every request that is not a read."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str) -> None:
        super().__init__(app)
        self._token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.query_params.get("token")
        if request.url.path == "/" and given is not None and hmac.compare_digest(given, self._token):
            # The URL serve printed: the token goes into a cookie, and out of the address bar.
            response = RedirectResponse("/api/docs", status_code=303)
            response.set_cookie(_COOKIE, self._token, httponly=True, samesite="strict")
            return response
        if not self._authorised(request):
            return JSONResponse(
                {
                    "error": "a token is needed",
                    "hint": "open the URL serve printed, or send Authorization: Bearer TOKEN",
                },
                status_code=401,
            )
        if request.method not in _SAFE_METHODS and not _same_origin(request):
            return JSONResponse({"error": "requests that change anything must come from this server's pages"}, 403)
        return await call_next(request)

    def _authorised(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        offered = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        offered = offered or request.cookies.get(_COOKIE)
        return offered is not None and hmac.compare_digest(offered, self._token)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is not None and origin == f"{request.url.scheme}://{request.url.netloc}"


async def list_runs(request: Request) -> Response:
    """Every run journaled in the workspace's runs directory, newest first (their manifests).

    ---
    summary: Every run journaled in the workspace's runs directory, newest first (their manifests).
    """
    from pydantic import TypeAdapter

    from service_ambitions.runs.journal import Manifest
    from service_ambitions.runs.usage import list_runs as manifests

    state: WebState = request.app.state.web
    found = await asyncio.to_thread(manifests, state.settings.runs_directory())
    return _json(TypeAdapter(list[Manifest]).dump_json(found).decode())


async def run_detail(request: Request) -> Response:
    """One run's manifest with each service's state, the files it wrote and its provider batches.

    ---
    summary: One run's manifest with each service's state, the files it wrote and its provider batches.
    """
    from service_ambitions.runs.details import run_details

    run_id = request.path_params["run_id"]
    directory = _run_directory(request.app.state.web, run_id)
    if directory is None:
        return _not_found(run_id)
    details = await asyncio.to_thread(run_details, directory)
    return _json(details.model_dump_json(exclude_none=True))


async def run_report(request: Request) -> Response:
    """What the run used and cost, in total and by stage, model and service (report --json).

    ---
    summary: What the run used and cost, in total and by stage, model and service (report --json).
    """
    from service_ambitions.runs.usage import build_report

    run_id = request.path_params["run_id"]
    directory = _run_directory(request.app.state.web, run_id)
    if directory is None:
        return _not_found(run_id)
    report = await asyncio.to_thread(build_report, directory, by_service=True)
    return _json(report.model_dump_json())


async def run_events(request: Request) -> Response:
    """The run's events as server-sent events, followed while the run runs.

    ---
    summary: The run's events as server-sent events (one envelope each, id = its line), followed while it runs.
    description: Resumable with Last-Event-ID; ?follow=false stops at the end of what is written.
    """
    state: WebState = request.app.state.web
    run_id = request.path_params["run_id"]
    directory = _run_directory(state, run_id)
    if directory is None:
        return _not_found(run_id)
    after = request.headers.get("last-event-id", "0")
    start = int(after) if after.isdigit() else 0
    follow = request.query_params.get("follow", "true") != "false"
    stream = _event_stream(directory, run_id, start, follow=follow, poll_s=state.poll_s)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})


async def _event_stream(directory: Path, run_id: str, start: int, *, follow: bool, poll_s: float) -> AsyncIterator[str]:
    """Each event line after ``start`` as an SSE message; following, until the run is no longer running."""
    from service_ambitions.core.events import as_envelope
    from service_ambitions.runs.journal import EventTail

    seen = 0
    with EventTail(directory) as tail:
        while True:
            ended = follow and await asyncio.to_thread(tail.ended)
            for line in tail.new_lines():  # after `ended`: what was written before the status changed too
                seen += 1
                if seen > start:
                    envelope = as_envelope(json.loads(line), run_id)
                    yield f"id: {seen}\nevent: {envelope['type']}\ndata: {json.dumps(envelope)}\n\n"
            if not follow or ended:
                return
            await asyncio.sleep(poll_s)


async def cache_stats(request: Request) -> Response:
    """What the cache holds (cache stats --json), with the ages its cache_ttl setting gives.

    ---
    summary: What the cache holds (cache stats --json), with the ages its cache_ttl setting gives.
    """
    from service_ambitions.jobs.cache import cache_stats as stats
    from service_ambitions.jobs.reports import CacheStatsReport

    state: WebState = request.app.state.web
    found = await asyncio.to_thread(stats, state.settings)
    return _json(CacheStatsReport.of(found).model_dump_json())


async def openapi(request: Request) -> Response:
    """This API's OpenAPI description.

    ---
    summary: This API's OpenAPI description.
    """
    return JSONResponse(_SCHEMAS.get_schema(routes=request.app.routes))


async def docs(request: Request) -> Response:
    """The API's endpoints, in words.

    ---
    summary: The API's endpoints, in words.
    """
    schema = _SCHEMAS.get_schema(routes=request.app.routes)
    rows = "".join(
        f"<li><code>{method.upper()} {path}</code>: {_escape(operation.get('summary', ''))}</li>"
        for path, operations in schema.get("paths", {}).items()
        for method, operation in operations.items()
    )
    page = f"<!doctype html><title>service-ambitions API</title><h1>service-ambitions runtime API</h1><ul>{rows}</ul>"
    return Response(page, media_type="text/html")


def _escape(text: str) -> str:
    from html import escape

    return escape(str(text))


def create_app(state: WebState) -> Starlette:
    """The application serving ``state``'s workspace."""
    routes = [
        Route("/api/runs", list_runs, methods=["GET"]),
        Route("/api/runs/{run_id}", run_detail, methods=["GET"]),
        Route("/api/runs/{run_id}/report", run_report, methods=["GET"]),
        Route("/api/runs/{run_id}/events", run_events, methods=["GET"]),
        Route("/api/cache", cache_stats, methods=["GET"]),
        Route("/api/openapi.json", openapi, methods=["GET"], include_in_schema=False),
        Route("/api/docs", docs, methods=["GET"], include_in_schema=False),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_Auth, token=state.token)])
    app.state.web = state
    return app
