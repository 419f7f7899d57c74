"""``service-ambitions serve``: the runtime API over a workspace's runs (the ``web`` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import plain
from service_ambitions.cli.state import AppState

__all__ = ["serve"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


def serve(
    ctx: typer.Context,
    workspace: Annotated[
        Path,
        typer.Argument(help="The folder to serve: its config/app.yaml (if any) names the runs and the cache."),
    ] = Path("."),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(help="The token every request needs. [default: a new random one, printed]", show_default=False),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Listen beyond this machine (needs --token).")
    ] = False,
) -> None:
    """Serve the runtime API over a workspace's runs: runs, their details, reports, live events, cache stats.

    JSON over HTTP, documented at /api/docs and /api/openapi.json. Every request needs the
    token: open the URL it prints (it sets a cookie), or send Authorization: Bearer TOKEN.
    Listens on 127.0.0.1 unless --allow-remote. Needs the web extra:
    uv run --extra web service-ambitions serve (or uv tool install 'service-ambitions[web]').

    For example:

    \b
        service-ambitions serve
        service-ambitions serve my-portfolio --port 8080
        curl -H "Authorization: Bearer $TOKEN" http://127.0.0.1:8000/api/runs
    """
    import secrets

    from service_ambitions.core.errors import ConfigError

    state: AppState = ctx.obj
    if host not in _LOOPBACK and not (allow_remote and token):
        raise ConfigError(
            f"listening on {host} lets other machines in",
            hint="pass --allow-remote and a --token of your own, or keep the default 127.0.0.1",
        )
    try:
        import uvicorn

        from service_ambitions.web.app import WebState, create_app
    except ImportError as exc:
        raise ConfigError(
            "serve needs the web extra, which is not installed",
            hint="in a checkout: uv run --extra web service-ambitions serve; "
            "as a tool: uv tool install 'service-ambitions[web]'",
        ) from exc
    from service_ambitions.config.settings import load_settings

    config = state.config or (workspace / "config" / "app.yaml")
    settings = load_settings(config if config.is_file() else None)
    chosen = token or secrets.token_urlsafe(24)
    shown = f"[{host}]" if ":" in host else host
    state.err.print(
        plain(f"serving {settings.runs_directory()} at http://{shown}:{port}/?token={chosen}  (Ctrl-C stops)"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    uvicorn.run(create_app(WebState(settings, chosen)), host=host, port=port, log_level="warning")
