"""Options that several commands share, defined once so they read and behave the same everywhere."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from service_ambitions.config.cache_mode import CacheMode

if TYPE_CHECKING:
    from service_ambitions.config.settings import BatchOverrides

__all__ = [
    "AllowPromptLogging",
    "AsJson",
    "Batch",
    "BatchSize",
    "BatchWait",
    "CacheDirOption",
    "CacheModeOption",
    "Detach",
    "Force",
    "JsonLogs",
    "MaxCost",
    "MaxInFlight",
    "QuarantineOption",
    "Quiet",
    "Resume",
    "RunId",
    "RunsDirOption",
    "Seed",
    "Strict",
    "TraceIds",
    "Workers",
    "batch_flags",
]

_MODELS = "Models"
_RUN = "Run"
_CACHE = "Cache"
_RESUME = "Records and resume"
_BATCH = "Batch mode"

Seed = Annotated[int | None, typer.Option(help="Seed sent to the model.", rich_help_panel=_MODELS)]
MaxInFlight = Annotated[
    int | None, typer.Option(min=1, help="LLM calls in flight at once, all services.", rich_help_panel=_RUN)
]
Workers = Annotated[
    int | None,
    typer.Option(
        min=1,
        max=64,
        help="Processes that run the services, each with its share of concurrency, limits and budget "
        "(for big cold runs; 1: this process). [default: 1]",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
MaxCost = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        help="Budget in USD: no call starts that could take spending past it; the rest waits for --resume.",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=1,
        max=65535,
        help="Serve Prometheus metrics on 127.0.0.1:PORT/metrics while the job runs.",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
WarnCost = Annotated[
    str | None,
    typer.Option(
        "--warn-cost",
        help="Warn once when spending reaches this, in USD (2.50) or as a share of --max-cost (80%); the run goes on.",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
Strict = Annotated[
    bool | None,
    typer.Option(
        "--strict/--no-strict",
        help="Fail a service whose mapping names catalogue ids that do not exist.",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
CacheModeOption = Annotated[
    CacheMode | None,
    typer.Option(
        "--cache-mode",
        help="read: use and fill the cache; refresh: recompute and overwrite; readonly: never write; off.",
        show_default=False,
        rich_help_panel=_CACHE,
    ),
]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        help="Cache directory. [default: the platform's user cache directory]",
        show_default=False,
        rich_help_panel=_CACHE,
    ),
]
QuarantineOption = Annotated[
    Path | None,
    typer.Option(
        "--quarantine",
        help="Where rejected lines and failed services go. [default: OUTPUT with .quarantine.jsonl]",
        show_default=False,
        rich_help_panel=_RUN,
    ),
]
RunsDirOption = Annotated[
    Path | None,
    typer.Option(
        "--runs-dir",
        help="Where run journals go. [default: the platform's user state directory]",
        show_default=False,
        rich_help_panel=_RESUME,
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final one-line result.")]
JsonLogs = Annotated[
    bool, typer.Option("--json-logs", help="Instead of a progress display, every event as a JSON line on stderr.")
]
AllowPromptLogging = Annotated[
    bool,
    typer.Option(
        "--allow-prompt-logging",
        help="Include prompts and answers in telemetry spans (sent to logfire only when LOGFIRE_TOKEN is set).",
    ),
]
TraceIds = Annotated[
    bool, typer.Option("--trace-ids", help="At the end, list failed services with the provider's request id.")
]
AsJson = Annotated[bool, typer.Option("--json", help="With --dry-run: print the plan as one JSON document.")]
Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the run that wrote OUTPUT: skip services already in it, append the rest.",
        rich_help_panel=_RESUME,
    ),
]
RunId = Annotated[
    str | None,
    typer.Option(
        "--run-id",
        help="With --resume: the run to continue (default: the latest that wrote OUTPUT).",
        rich_help_panel=_RESUME,
    ),
]
Force = Annotated[
    bool,
    typer.Option(
        "--force",
        help="With --resume: continue even though the input or result-affecting settings changed.",
        rich_help_panel=_RESUME,
    ),
]
Batch = Annotated[
    bool | None,
    typer.Option(
        "--batch/--live",
        help="Send every request the cache does not answer through the provider's batch API (about half the price; "
        "results within the provider's window, up to 24 h).",
        show_default=False,
        rich_help_panel=_BATCH,
    ),
]
Detach = Annotated[
    bool,
    typer.Option(
        "--detach",
        help="With --batch: exit (code 11) once everything left waits on the provider; "
        "'runs collect RUN_ID' carries the run on.",
        rich_help_panel=_BATCH,
    ),
]
BatchSize = Annotated[
    int | None,
    typer.Option(
        "--batch-size",
        min=1,
        help="Most requests in one batch. [default: 1000]",
        show_default=False,
        rich_help_panel=_BATCH,
    ),
]
BatchWait = Annotated[
    float | None,
    typer.Option(
        "--batch-wait",
        min=0.01,
        help="Seconds the first request of a batch waits for others before it is submitted. [default: 10]",
        show_default=False,
        rich_help_panel=_BATCH,
    ),
]


def batch_flags(batch: bool | None, size: int | None, wait: float | None) -> BatchOverrides:
    """The ``batch`` settings the flags give."""
    from service_ambitions.config.settings import BatchOverrides

    return BatchOverrides(enabled=batch, max_requests=size, max_wait_s=wait)
