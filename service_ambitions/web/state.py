"""What every part of the web face shares: the state the server serves, and a run id made a run's directory.

Kept apart from the application (``app.py``), which assembles the endpoints and pages:
they all need this, and this needs none of them.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from service_ambitions.config.settings import Settings
from service_ambitions.jobs.launch import JobLauncher
from service_ambitions.web.memo import FileMemo

__all__ = ["RunEndpoint", "WebState", "for_run", "not_found", "run_directory", "web_state"]

_RUN_ID = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{6}$")


@dataclass(frozen=True)
class WebState:
    """What the server serves: the workspace, its settings, the token, and the jobs it started."""

    settings: Settings
    token: str
    workspace: Path = Path(".")
    config: Path | None = None
    """The settings file the server and its runs read (None: the workspace's defaults and environment)."""
    launcher: JobLauncher | None = None
    """Starts runs in their own processes; None: this server only reads."""
    max_upload_bytes: int = 50 * 2**20
    poll_s: float = 0.5
    """How often a followed event stream looks for new events."""
    memo: FileMemo = field(default_factory=FileMemo)
    """Answers kept while their files are unchanged (reports, findings, roadmaps)."""
    stopping: threading.Event = field(default_factory=threading.Event)
    """Set when the server begins to stop: followed streams end, so open pages do not hold it up."""


def web_state(request: Request) -> WebState:
    """The server's state."""
    state: WebState = request.app.state.web
    return state


def run_directory(state: WebState, run_id: str) -> Path | None:
    """The run's directory, when ``run_id`` has a run id's shape and the run exists."""
    if not _RUN_ID.match(run_id):
        return None
    directory = state.settings.runs_directory() / run_id
    return directory if (directory / "manifest.json").is_file() else None


def not_found(request: Request, run_id: str) -> Response:
    """The API's answer for a run id that names no run."""
    return JSONResponse({"error": f"no run {run_id!r}", "hint": "GET /api/runs lists them"}, status_code=404)


RunEndpoint = Callable[[Request, "WebState", Path], Awaitable[Response]]
"""An endpoint about one run: given the run's directory, once its id is known to be a run's."""


def for_run(
    missing: Callable[[Request, str], Response] = not_found,
) -> Callable[[RunEndpoint], Callable[[Request], Awaitable[Response]]]:
    """Resolve ``{run_id}`` to the run's directory before the endpoint runs; ``missing`` answers when there is none.

    The id is checked against the shape run ids have before any path is built.
    """

    def wrap(endpoint: RunEndpoint) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(endpoint)
        async def resolved(request: Request) -> Response:
            state = web_state(request)
            run_id = request.path_params["run_id"]
            directory = run_directory(state, run_id)
            if directory is None:
                return missing(request, run_id)
            return await endpoint(request, state, directory)

        return resolved

    return wrap
