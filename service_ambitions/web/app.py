"""The web face: the application serving a workspace — pages, the runtime API, the AG-UI stream.

Every request needs the server's token: ``Authorization: Bearer TOKEN``, or the
``sa_token`` cookie that ``/?token=TOKEN`` sets (the URL ``serve`` prints). Requests that
change anything must come from the same origin too. Run ids are checked against the
shape the tool gives them and file names against the workspace before any path is
built, so no request names a file outside the workspace or the runs directory.
"""

from __future__ import annotations

import asyncio
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from service_ambitions.core.errors import ServiceAmbitionsError
from service_ambitions.web import agui, api, pages
from service_ambitions.web.state import WebState

__all__ = ["create_app"]

_COOKIE = "sa_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class _Guard(BaseHTTPMiddleware):
    """The token on every request, the same origin on every change, and the headers every answer carries."""

    def __init__(self, app: Callable[..., Awaitable[None]], token: str) -> None:
        super().__init__(app)
        self._token = token

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        given = request.query_params.get("token")
        if request.url.path == "/" and given is not None and hmac.compare_digest(given, self._token):
            # The URL serve printed: the token goes into a cookie, and out of the address bar.
            response: Response = RedirectResponse("/", status_code=303)
            response.set_cookie(_COOKIE, self._token, httponly=True, samesite="strict")
        elif (offered := self._offered(request)) is None or not hmac.compare_digest(offered, self._token):
            response = JSONResponse(
                {
                    "error": "a token is needed" if offered is None else "that token is not this server's",
                    "hint": "open the URL serve printed, or send Authorization: Bearer TOKEN",
                },
                status_code=401,
            )
        elif request.method not in _SAFE_METHODS and not _same_origin(request):
            response = JSONResponse(
                {"error": "requests that change anything must come from this server's pages"}, status_code=403
            )
        else:
            response = await call_next(request)
        response.headers.setdefault("Content-Security-Policy", _PAGE_POLICY)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers.setdefault("Cache-Control", "no-store")
        return response

    @staticmethod
    def _offered(request: Request) -> str | None:
        """The token the request carries: its Bearer header, else the cookie."""
        header = request.headers.get("authorization", "")
        offered = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else None
        return offered or request.cookies.get(_COOKIE)


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    return origin is not None and origin == f"{request.url.scheme}://{request.url.netloc}"


async def _refused(request: Request, exc: Exception) -> Response:
    """A user's error (a bad file name, a setting, a job that did not start) as one line and a hint."""
    assert isinstance(exc, ServiceAmbitionsError)  # nosec B101  # registered for this class only
    return JSONResponse({"error": exc.message, "hint": exc.hint or None}, status_code=422)


async def _icon(request: Request) -> Response:
    """Browsers ask for /favicon.ico whatever a page says (the roadmap page says nothing)."""
    return RedirectResponse("/static/icon.svg", status_code=301)


def create_app(state: WebState) -> Starlette:
    """The application serving ``state``'s workspace."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.stopping.set()
        if state.launcher is not None:  # the server stops: its runs stop as Ctrl-C stops the CLI's
            await asyncio.to_thread(state.launcher.stop_all)

    routes = [
        *pages.routes(),
        *api.routes(),
        Route("/api/runs/{run_id}/agui", agui.run_stream, methods=["GET"]),
        Route("/favicon.ico", _icon, methods=["GET"], include_in_schema=False),
        Mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, token=state.token)],
        exception_handlers={ServiceAmbitionsError: _refused},
        lifespan=lifespan,
    )
    app.state.web = state
    return app
