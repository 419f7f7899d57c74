"""Each run as an AG-UI event stream: a run, a step per stage, and the panel's figures as state.

AG-UI clients (CopilotKit and others) attach to a run at ``/api/runs/{id}/agui``: they get
``RUN_STARTED``; a ``STATE_SNAPSHOT`` of the live figures (:class:`LiveFigures`, the
terminal panel's numbers); ``STEP_STARTED``/``STEP_FINISHED`` for each stage as its first
call starts and as the run ends; a ``STATE_DELTA`` (JSON Patch) whenever figures change;
and ``RUN_FINISHED``, or ``RUN_ERROR`` when the run failed or was stopped. The run page
reads this same stream. Everything is folded from the run's journal, as ``report`` folds it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ag_ui.core import (
    BaseEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
)
from ag_ui.encoder import EventEncoder
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from service_ambitions.core.events import CallStarted, from_line
from service_ambitions.runs.journal import EventTail, RunStatus, read_manifest
from service_ambitions.runs.live import LiveFigures, LivePlan, LiveRun, plan_of
from service_ambitions.runs.tally import Tally
from service_ambitions.web.api import for_run

if TYPE_CHECKING:
    from service_ambitions.web.app import WebState

__all__ = ["json_patch", "live_figures", "run_stream"]


def json_patch(old: Any, new: Any, path: str = "") -> list[dict[str, Any]]:
    """The JSON Patch (RFC 6902) turning ``old`` into ``new``: objects key by key, anything else replaced whole."""
    if isinstance(old, dict) and isinstance(new, dict):
        ops: list[dict[str, Any]] = []
        for key in old.keys() - new.keys():
            ops.append({"op": "remove", "path": f"{path}/{_pointer(key)}"})
        for key, value in new.items():
            where = f"{path}/{_pointer(key)}"
            if key not in old:
                ops.append({"op": "add", "path": where, "value": value})
            else:
                ops += json_patch(old[key], value, where)
        return ops
    return [] if old == new else [{"op": "replace", "path": path, "value": new}]


def _pointer(key: str) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


class _Follower:
    """A run's journal read as it grows: the tally, the live figures and the stages begun."""

    def __init__(self, directory: Path) -> None:
        manifest = read_manifest(directory)
        began = manifest.started.timestamp() if manifest is not None else time.time()
        self.live = LiveRun(Tally(), plan_of(manifest) if manifest is not None else LivePlan(), began=began)
        self.steps: list[str] = []

    def take(self, lines: list[str]) -> list[str]:
        """Fold ``lines``; the stages whose first call they start."""
        begun = []
        for line in lines:
            record = json.loads(line)
            try:
                event = from_line(record)
            except ValueError:
                continue  # an event a later release wrote: not ours to count
            self.live.tally(event)
            self.live.observe(event, _seconds(record.get("ts") or record.get("time")))
            if isinstance(event, CallStarted) and event.stage.value not in self.steps:
                self.steps.append(event.stage.value)
                begun.append(event.stage.value)
        return begun


def _seconds(stamp: object) -> float:
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return time.time()


def live_figures(directory: Path) -> LiveFigures:
    """A run's live figures as its journal stands (now, for a running run)."""
    follower = _Follower(directory)
    with EventTail(directory) as tail:
        follower.take(tail.new_lines())
        running = not tail.ended()
    return follower.live.figures(time.time() if running else None)


def _ending(directory: Path, run_id: str, steps: list[str]) -> Iterator[BaseEvent]:
    for step in steps:
        yield StepFinishedEvent(step_name=step)
    manifest = read_manifest(directory)
    status = manifest.status if manifest is not None else None
    if status is RunStatus.COMPLETED:
        yield RunFinishedEvent(thread_id=run_id, run_id=run_id, result={"status": status.value})
    else:
        why = manifest.stop_reason if manifest is not None and manifest.stop_reason else None
        said = status.value if status is not None else "gone"
        yield RunErrorEvent(message=f"the run stopped: {why}" if why else f"the run ended: {said}", code=said)


async def _stream(directory: Path, run_id: str, *, follow: bool, state: WebState) -> AsyncIterator[str]:
    encoder = EventEncoder()
    follower = await asyncio.to_thread(_Follower, directory)
    yield encoder.encode(RunStartedEvent(thread_id=run_id, run_id=run_id))
    shown: dict[str, Any] | None = None
    with EventTail(directory) as tail:
        while True:
            ended = await asyncio.to_thread(tail.ended)
            begun = follower.take(await asyncio.to_thread(tail.new_lines))
            for step in begun:
                yield encoder.encode(StepStartedEvent(step_name=step))
            now = None if ended else time.time()
            figures = follower.live.figures(now).model_dump(mode="json")
            if shown is None:
                yield encoder.encode(StateSnapshotEvent(snapshot=figures))
            elif patch := json_patch(shown, figures):
                yield encoder.encode(StateDeltaEvent(delta=patch))
            shown = figures
            if ended or not follow or state.stopping.is_set():
                break
            await asyncio.sleep(state.poll_s)
    if ended:
        for event in _ending(directory, run_id, follower.steps):
            yield encoder.encode(event)


@for_run()
async def run_stream(request: Request, state: WebState, directory: Path) -> Response:
    """The run as AG-UI events (server-sent events), followed while it runs.

    ---
    summary: The run as an AG-UI event stream (RUN_STARTED, STEP_*, STATE_SNAPSHOT/DELTA, RUN_FINISHED/ERROR).
    description: ?follow=false stops at what is written. The state is the live figures of /api/runs/{id}/live.
    """
    run_id = directory.name
    follow = request.query_params.get("follow", "true") != "false"
    stream = _stream(directory, run_id, follow=follow, state=state)
    return StreamingResponse(stream, media_type="text/event-stream", headers={"Cache-Control": "no-store"})
