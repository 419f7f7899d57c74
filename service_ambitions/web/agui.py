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
import time
from collections.abc import AsyncIterator, Iterator
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

from service_ambitions.runs.journal import EventTail, RunStatus, read_manifest
from service_ambitions.runs.live import RunFollower
from service_ambitions.web.state import for_run

if TYPE_CHECKING:
    from service_ambitions.web.state import WebState

__all__ = ["json_patch", "run_stream"]


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
    follower = await asyncio.to_thread(RunFollower, directory)
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
