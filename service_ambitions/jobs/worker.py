"""One worker process of a run with ``workers`` > 1: its share of the services, through its own pipeline.

Started by :mod:`.workers` as ``python -m service_ambitions.jobs.worker``. It reads, on
standard input, one header line (the run's id and the settings, with this worker's share
of the limits and budget) and then one line per service (its input line number and the
service), and answers on standard output with one JSON line per message:

- ``{"event": {...}}``: every event of its services, as the run journals them;
- ``{"line": N, "record": "..."}``, ``{"line": N, "quarantine": "..."}`` or ``{"line": N,
  "skip": true}`` (deferred by the budget): how the service of line N ended, in the order
  its services came, as the pipeline writes them;
- ``{"end": true, "budget_stop": ..., "unstarted": N}`` once done, or ``{"error": {...}}``
  for an error that stops the run.

The cache is shared (SQLite serialises the writers); the run's journal stays the parent's.
"""

from __future__ import annotations

import asyncio
import functools
import json
import sys
from contextlib import ExitStack
from typing import IO, Any

from service_ambitions.config.settings import Settings
from service_ambitions.core.clock import utc_now
from service_ambitions.core.errors import ServiceAmbitionsError
from service_ambitions.core.events import Event, ServiceDeferred
from service_ambitions.core.models import Service, ServiceEvolution
from service_ambitions.core.telemetry import configure_telemetry
from service_ambitions.core.tuning import tune_gc
from service_ambitions.inputs.entries import Accepted, QuarantineRecord
from service_ambitions.jobs.compose import assemble_pipeline, run_cache, run_gateway
from service_ambitions.jobs.setup import prepare
from service_ambitions.pipeline.run import RecordSink

__all__ = ["main"]


class _Channel:
    """Messages to the parent, one JSON line each, flushed at once (the parent shows progress from them)."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream

    def send(self, message: dict[str, Any]) -> None:
        self._stream.write(json.dumps(message).encode() + b"\n")
        self._stream.flush()


async def _work(settings: Settings, run_id: str, entries: list[Accepted], channel: _Channel) -> None:
    lines = {entry.service.service_id: entry.line for entry in entries}

    def emit(event: Event) -> None:
        channel.send({"event": event.model_dump(mode="json")})
        if isinstance(event, ServiceDeferred):
            channel.send({"line": lines[event.service_id], "skip": True})

    def write_record(evolution: ServiceEvolution) -> None:
        channel.send({"line": lines[evolution.service.service_id], "record": evolution.model_dump_json()})

    def write_quarantine(record: QuarantineRecord) -> None:
        channel.send({"line": record.line, "quarantine": record.model_dump_json(exclude_none=True)})

    prepared = prepare(settings, resolve_models=False)
    with ExitStack() as stack:
        cache = run_cache(settings, stack, emit)
        # Built at the first call that needs it, once: a worker whose services are all cached builds none.
        gateway = functools.cache(lambda: run_gateway(prepared, cache, emit))
        pipeline = assemble_pipeline(prepared, gateway, run_id=run_id, emit=emit, cache=cache, clock=utc_now)
        await pipeline.run(entries, RecordSink(write_record, write_quarantine), concurrency=settings.concurrency)
    stop = pipeline.budget_stop
    channel.send({"end": True, "budget_stop": stop.message if stop else None, "unstarted": pipeline.unstarted})


def main() -> int:
    """Run this worker's services; the exit code is 0 unless an error stopped the run."""
    channel = _Channel(sys.stdout.buffer)
    # As the parent: telemetry where there is somewhere to send it; otherwise logfire is never imported.
    configure_telemetry()
    header = json.loads(sys.stdin.readline())
    settings = Settings.model_validate(header["settings"])
    entries = [
        Accepted(item["line"], Service.model_validate(item["service"]))
        for item in (json.loads(line) for line in sys.stdin)
    ]
    tune_gc()  # as the parent's job runner does: thousands of short-lived models
    try:
        asyncio.run(_work(settings, header["run_id"], entries, channel))
    except ServiceAmbitionsError as exc:
        channel.send({"error": {"type": type(exc).__name__, "message": exc.user_message}})
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
