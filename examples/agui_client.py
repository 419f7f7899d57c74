"""A minimal AG-UI client: follow one run of a ``service-ambitions serve`` and print its progress.

    SERVICE_AMBITIONS_TOKEN=... python examples/agui_client.py http://127.0.0.1:8000 RUN_ID

It reads the run's AG-UI stream (``/api/runs/RUN_ID/agui``): the first ``STATE_SNAPSHOT``
is the run's live figures, each ``STATE_DELTA`` a JSON Patch to them, ``STEP_STARTED`` /
``STEP_FINISHED`` a stage, and ``RUN_FINISHED`` or ``RUN_ERROR`` the end. It needs httpx
and ag-ui-protocol (both come with the ``web`` extra).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import httpx
from ag_ui.core import (
    Event,
    RunErrorEvent,
    RunFinishedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    StepStartedEvent,
)
from pydantic import TypeAdapter

# --8<-- [start:follow]
EVENTS: TypeAdapter[Event] = TypeAdapter(Event)


def apply_patch(state: dict[str, Any], patch: list[Any]) -> None:
    """Apply the JSON Patch operations the stream sends (add, replace, remove) to ``state``."""
    for operation in patch:
        *parents, last = [key.replace("~1", "/").replace("~0", "~") for key in operation.path.split("/")[1:]]
        target: Any = state
        for key in parents:
            target = target[int(key)] if isinstance(target, list) else target[key]
        if operation.op == "remove":
            del target[int(last) if isinstance(target, list) else last]
        elif isinstance(target, list) and operation.op == "add":
            target.insert(int(last), operation.value)
        else:
            target[int(last) if isinstance(target, list) else last] = operation.value


def follow(client: httpx.Client, run_id: str) -> Iterator[tuple[Event, dict[str, Any]]]:
    """Each event of the run's stream, with the figures as they stand after it."""
    state: dict[str, Any] = {}
    with client.stream("GET", f"/api/runs/{run_id}/agui") as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: "):
                continue
            event = EVENTS.validate_json(line.removeprefix("data: "))
            if isinstance(event, StateSnapshotEvent):
                state = dict(event.snapshot)
            elif isinstance(event, StateDeltaEvent):
                apply_patch(state, event.delta)
            yield event, state


# --8<-- [end:follow]


def main() -> int:
    """Print the run's progress until it ends; exit 1 if it did not complete."""
    base, run_id = sys.argv[1], sys.argv[2]
    headers = {"Authorization": f"Bearer {os.environ['SERVICE_AMBITIONS_TOKEN']}"}
    with httpx.Client(base_url=base, headers=headers, timeout=None) as client:
        for event, state in follow(client, run_id):
            if isinstance(event, StepStartedEvent):
                print(f"stage {event.step_name} started")
            elif isinstance(event, StateSnapshotEvent | StateDeltaEvent):
                print(
                    f"{state['done']}/{state['services_total']} done, {state['failed']} failed, ${state['spent_usd']}"
                )
            elif isinstance(event, RunFinishedEvent):
                print("finished")
                return 0
            elif isinstance(event, RunErrorEvent):
                print(f"ended: {event.message}")
                return 1
    return 1


if __name__ == "__main__":
    sys.exit(main())
