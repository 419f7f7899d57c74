"""Serving the app with uvicorn, so that stopping the server is quick and quiet.

An open run page keeps its event stream open. uvicorn's graceful shutdown waits for open
connections, and past its timeout cancels them with a traceback; here the app learns the
moment a stop begins (Ctrl-C, SIGTERM), its followed streams end at their next look, and
then the runs this server started are stopped (resumable), as the CLI's Ctrl-C stops one.
"""

from __future__ import annotations

import threading
from types import FrameType

import uvicorn

from service_ambitions.web.app import create_app
from service_ambitions.web.state import WebState

__all__ = ["run_server"]


class _Server(uvicorn.Server):
    """uvicorn's server, telling the app when a stop begins."""

    def __init__(self, config: uvicorn.Config, stopping: threading.Event) -> None:
        super().__init__(config)
        self._stopping = stopping

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A stop begins: streams end now, not at the graceful-shutdown timeout."""
        self._stopping.set()
        super().handle_exit(sig, frame)


def run_server(state: WebState, *, host: str, port: int) -> None:
    """Serve ``state``'s workspace until Ctrl-C or SIGTERM."""
    config = uvicorn.Config(create_app(state), host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
    _Server(config, state.stopping).run()
