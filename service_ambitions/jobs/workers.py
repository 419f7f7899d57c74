"""Worker processes: a cold run's services spread over several processes, the output still in input order.

One process answers every call on one event loop, and each call costs CPU (building the
request, validating the answer, writing the cache): with the offline model or many calls
in flight, one core is the limit. With ``workers`` > 1, the run's services are dealt out
in turn to that many worker processes (:mod:`.worker`), each with its own pipeline and
gateway and its share of ``concurrency``, ``max_in_flight``, the rate limits and the
budget; they share the cache. This process stays the run: it reads the input, writes the
output and the quarantine file in input order (each worker's services come back in the
order it got them, so one message of the right worker is all the next line waits for),
records every event the workers send, and shows them.

A budget stop in one worker stops only its share; a resumed run puts the output back in
input order as usual.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from service_ambitions.config.settings import Settings
from service_ambitions.core import errors
from service_ambitions.core.errors import BudgetExceeded, ServiceAmbitionsError
from service_ambitions.core.events import Event, EventSink, LineQuarantined
from service_ambitions.inputs.entries import Accepted, QuarantineRecord, Rejected
from service_ambitions.inputs.jsonl import JsonlWriter

__all__ = ["WorkersOutcome", "run_in_workers", "run_job_in_workers", "share"]

_EVENTS: TypeAdapter[Event] = TypeAdapter(Event)
_STDERR_TAIL = 2_000


@dataclass
class WorkersOutcome:
    """How the workers ended, as a pipeline would say it."""

    budget_stop: BudgetExceeded | None = None
    unstarted: int = 0


def share(settings: Settings, workers: int) -> Settings:
    """One worker's settings: its share of concurrency, calls in flight, rate limits and budget."""
    limits = settings.limits

    def part(value: int | None) -> int | None:
        return None if value is None else max(1, math.ceil(value / workers))

    return settings.model_copy(
        update={
            "workers": 1,
            "concurrency": part(settings.concurrency),
            "max_in_flight": part(settings.max_in_flight),
            "max_cost": None if settings.max_cost is None else settings.max_cost / Decimal(workers),
            "limits": limits.model_copy(
                update={
                    "requests_per_minute": part(limits.requests_per_minute),
                    "tokens_per_minute": part(limits.tokens_per_minute),
                }
            ),
        }
    )


async def run_job_in_workers(
    settings: Settings,
    run_id: str,
    entries: Iterable[Accepted | Rejected],
    paths: tuple[Path, Path],
    emit: EventSink,
    *,
    append: bool,
    max_services: int | None = None,
) -> WorkersOutcome:
    """:func:`run_in_workers` writing the run's output and quarantine files (``paths``), appending when resumed."""
    output_path, quarantine_path = paths
    with (
        JsonlWriter(output_path, append=append, durable=True) as output,
        JsonlWriter(quarantine_path, append=append, durable=True) as quarantine,
    ):
        output.open()
        return await run_in_workers(
            settings, run_id, entries, output.write, quarantine.write, emit, max_services=max_services
        )


async def run_in_workers(
    settings: Settings,
    run_id: str,
    entries: Iterable[Accepted | Rejected],
    write: Callable[[str], None],
    write_quarantine: Callable[[QuarantineRecord | str], None],
    emit: EventSink,
    *,
    max_services: int | None = None,
) -> WorkersOutcome:
    """Run ``entries`` in ``settings.workers`` processes; write their records and quarantine in input order.

    Raises:
        ServiceAmbitionsError: an error that stops the run, as the worker that met it reported it.
    """
    count = settings.workers
    order, shards = _dealt(entries, count, max_services)
    header = {"run_id": run_id, "settings": share(settings, count).model_dump(mode="json")}
    pool = [_Worker(json.dumps(header).encode() + b"\n", shard, emit) for shard in shards]
    try:
        await asyncio.gather(*(worker.start() for worker in pool))
        for item in order:
            await _write_in_order(item, pool, write, write_quarantine, emit)
        outcome = WorkersOutcome()
        for worker in pool:
            end = await worker.finish()
            outcome.unstarted += end.get("unstarted", 0)
            if end.get("budget_stop") and outcome.budget_stop is None:
                outcome.budget_stop = BudgetExceeded(end["budget_stop"])
        return outcome
    finally:
        for worker in pool:
            await worker.stop()


def _dealt(
    entries: Iterable[Accepted | Rejected], count: int, max_services: int | None
) -> tuple[list[Rejected | int], list[list[bytes]]]:
    """The services dealt round the workers (one JSON line each), and the input order: a rejected line or a worker."""
    order: list[Rejected | int] = []
    shards: list[list[bytes]] = [[] for _ in range(count)]
    services = 0
    for entry in entries:
        if isinstance(entry, Rejected):
            order.append(entry)
            continue
        if max_services is not None and services >= max_services:
            break
        index = services % count
        services += 1
        order.append(index)
        line = {"line": entry.line, "service": entry.service.model_dump(mode="json", exclude_unset=True)}
        shards[index].append(json.dumps(line).encode() + b"\n")
    return order, shards


async def _write_in_order(
    item: Rejected | int,
    pool: list[_Worker],
    write: Callable[[str], None],
    write_quarantine: Callable[[QuarantineRecord | str], None],
    emit: EventSink,
) -> None:
    """The next line of the output or quarantine, in input order: a rejected line, or how a service ended."""
    if isinstance(item, Rejected):
        write_quarantine(QuarantineRecord.of_line(item))
        emit(LineQuarantined(line=item.line, reason=item.reason))
        return
    try:
        message = await pool[item].next_service()
    except _WorkerEnded:
        return  # its worker's budget ran out first: left for --resume
    if "record" in message:
        write(message["record"])
    elif "quarantine" in message:
        write_quarantine(message["quarantine"])


class _Worker:
    """One worker process: feeds it its services, passes its events on, queues how each service ended."""

    def __init__(self, header: bytes, shard: list[bytes], emit: EventSink) -> None:
        self._input = [header, *shard]
        self._emit = emit
        self._process: asyncio.subprocess.Process | None = None
        self._services: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._end: dict[str, Any] | None = None
        self._error: dict[str, str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stderr = b""

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service_ambitions.jobs.worker",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYDANTIC_DISABLE_PLUGINS": "__all__"},
            limit=2**26,  # a record line can be long
        )
        self._tasks = [
            asyncio.create_task(self._feed()),
            asyncio.create_task(self._read()),
            asyncio.create_task(self._read_stderr()),
        ]

    def _running(self) -> asyncio.subprocess.Process:
        assert self._process is not None  # nosec B101  # start() set it before any reader runs
        return self._process

    async def _feed(self) -> None:
        stdin = self._running().stdin
        assert stdin is not None  # nosec B101  # the process was started with stdin=PIPE
        for line in self._input:
            stdin.write(line)
            await stdin.drain()
        stdin.close()

    async def _read(self) -> None:
        stdout = self._running().stdout
        assert stdout is not None  # nosec B101  # the process was started with stdout=PIPE
        async for line in stdout:
            message = json.loads(line)
            if "event" in message:
                self._emit(_EVENTS.validate_python(message["event"]))
            elif "line" in message:
                await self._services.put(message)
            elif "end" in message:
                self._end = message
            elif "error" in message:
                self._error = message["error"]
        await self._services.put({"closed": True})

    async def _read_stderr(self) -> None:
        stderr = self._running().stderr
        assert stderr is not None  # nosec B101  # the process was started with stderr=PIPE
        async for line in stderr:
            self._stderr = (self._stderr + line)[-_STDERR_TAIL:]

    async def next_service(self) -> dict[str, Any]:
        """How this worker's next service ended; raises when the worker stopped first."""
        message = await self._services.get()
        if "closed" in message:
            await self._services.put(message)  # every later ask sees it too
            self._raise()
        return message

    async def finish(self) -> dict[str, Any]:
        """Wait for the worker to end, and return its last word."""
        await asyncio.gather(*self._tasks)
        await self._running().wait()
        if self._end is None:
            self._raise()
        assert self._end is not None  # nosec B101  # _read sets it before it ends without raising
        return self._end

    def _raise(self) -> None:
        if self._error is not None:
            kind = getattr(errors, self._error["type"], ServiceAmbitionsError)
            if not (isinstance(kind, type) and issubclass(kind, ServiceAmbitionsError)):
                kind = ServiceAmbitionsError
            raise kind(self._error["message"])
        if self._end is not None:
            # It ended (a budget stop) before its remaining services: they stay undone.
            raise _WorkerEnded
        last = self._stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise ServiceAmbitionsError(f"a worker process stopped unexpectedly: {last[0]}")

    async def stop(self) -> None:
        """End the process if it still runs (the run was stopped), and its readers."""
        if self._process is not None and self._process.returncode is None:
            self._process.terminate()
            await self._process.wait()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


class _WorkerEnded(Exception):
    """A worker ended before some of its services (the budget): nothing more comes from it."""
