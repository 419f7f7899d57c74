"""``service-ambitions serve``: the runtime API over a workspace's runs (the ``web`` extra)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import plain
from service_ambitions.cli.state import AppState
from service_ambitions.core.tuning import tune_gc

__all__ = ["serve"]

_LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
_SHORTEST_TOKEN = 16


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
        typer.Option(
            envvar="SERVICE_AMBITIONS_TOKEN",
            help="The token every request needs (or $SERVICE_AMBITIONS_TOKEN, kept out of the process list). "
            "[default: a new random one, printed]",
            show_default=False,
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Listen beyond this machine (needs --token).")
    ] = False,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Show runs and outputs; start, stop and upload nothing.")
    ] = False,
    max_upload_mb: Annotated[
        float, typer.Option(min=0.001, help="Largest services file an upload may be, in MiB.")
    ] = 50.0,
) -> None:
    """Serve a workspace in the browser: upload, validate, dry-run, start, watch, stop and continue runs.

    Pages for the workspace's files and settings, runs (live, as the terminal panel shows
    them), reports, roadmaps, quality findings, comparisons and the cache; underneath, a
    JSON API (/api/docs) with each run also as an AG-UI event stream. Runs started here are
    ordinary runs of the CLI, in their own processes, in WORKSPACE: the CLI sees them, and
    they see the CLI's. Every request needs the token: open the URL it prints (it sets a
    cookie), or send Authorization: Bearer TOKEN. Listens on 127.0.0.1 unless
    --allow-remote. Needs the web extra: uv run --extra web service-ambitions serve
    (or uv tool install 'service-ambitions[web]').

    For example:

    \b
        service-ambitions serve
        service-ambitions serve my-portfolio --port 8080
        SERVICE_AMBITIONS_TOKEN=... service-ambitions serve --read-only --allow-remote --host 0.0.0.0
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
    if token is not None and len(token) < _SHORTEST_TOKEN:
        raise ConfigError(
            f"the token is too short to guard the server ({len(token)} characters; {_SHORTEST_TOKEN} at least)",
            hint="make one with: python -c 'import secrets; print(secrets.token_urlsafe(24))'",
        )
    try:
        from service_ambitions.web.server import run_server
        from service_ambitions.web.state import WebState
    except ImportError as exc:
        raise ConfigError(
            "serve needs the web extra, which is not installed",
            hint="in a checkout: uv run --extra web service-ambitions serve; "
            "as a tool: uv tool install 'service-ambitions[web]'",
        ) from exc
    import os

    from service_ambitions.config.settings import load_settings
    from service_ambitions.jobs.launch import JobLauncher

    if not workspace.is_dir():
        raise ConfigError(f"{workspace} is not a folder", hint="give the folder that holds your services files")
    given = state.config.resolve() if state.config else None
    # The server works in the workspace, as the CLI does when started there: relative paths
    # in its settings, and the runs it starts, mean the same thing.
    os.chdir(workspace)
    found = given or Path("config/app.yaml").resolve()
    config = found if found.is_file() else None
    settings = load_settings(config)
    root = Path.cwd()
    tune_gc()  # a server reads thousands of records at a time, as view and check do
    launcher = None if read_only else JobLauncher(root, config=config)
    chosen = token or secrets.token_urlsafe(24)
    shown = f"[{host}]" if ":" in host else host
    # A token made here is printed to be opened; one given is the user's and stays unsaid.
    where = f"http://{shown}:{port}/?token={chosen}" if token is None else f"http://{shown}:{port}/?token=YOUR_TOKEN"
    state.err.print(
        plain(f"serving {root} at {where}  (Ctrl-C stops)"),
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    web = WebState(
        settings, chosen, workspace=root, config=config, launcher=launcher, max_upload_bytes=int(max_upload_mb * 2**20)
    )
    # uvicorn hands Ctrl-C or SIGTERM on once it has stopped: for a server it is the way to stop.
    with contextlib.suppress(KeyboardInterrupt):
        run_server(web, host=host, port=port)
    state.err.print("stopped serving", highlight=False, markup=False)
    if launcher is not None and launcher.stopped:
        stopped = ", ".join(launcher.stopped)
        state.err.print(
            plain(f"stopped the runs started here: {stopped}; continue them from their pages, or with --resume"),
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
