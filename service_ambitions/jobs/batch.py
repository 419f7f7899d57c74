"""Batch mode's part of a job: running it through batches, and detaching once all is submitted.

A batch run moves through the stages in waves: every service's descriptions go into one
set of batches, then every service's first features, and so on, since each call waits
for the one before it. With ``--detach`` the run ends as soon as everything left waits on
the provider — every call still in progress has its request in a batch, saved in the
run's ``suspended.jsonl`` — and a later ``run --resume`` or ``runs collect`` picks the
same batches up.

A wave is submitted as soon as it is whole — nothing moved for a moment while some call
still waits to be submitted — rather than when its first request has waited
``batch.max_wait_s``, which stays the upper bound. "Everything left waits" is judged from
the lane: every call in it is parked, and nothing moved (no call started, ended or
parked) for a few checks in a row — a service between two calls starts the next one
within milliseconds, so a quiet lane is a waiting one.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service_ambitions.config.settings import Settings
from service_ambitions.core.errors import ConfigError, InputError, ResumeMismatch
from service_ambitions.core.models import RUN_STAGES
from service_ambitions.llm.names import is_offline
from service_ambitions.runs.journal import read_manifest
from service_ambitions.runs.resume import find_run
from service_ambitions.runs.suspended import SuspendedStore

if TYPE_CHECKING:
    from service_ambitions.llm.batching import BatchLane

__all__ = ["DETACH", "Collect", "check_detach", "collect_job", "leaves_batches", "run_batched"]

DETACH = "detach"
"""The cancellation message of a run that detached (``task.cancel(DETACH)``)."""

_CHECK_S = 0.2
_QUIET_CHECKS = 3


async def run_batched(work: Coroutine[Any, Any, None], lane: BatchLane) -> bool:
    """Run ``work`` (the pipeline) in batch mode: True when it detached, False when it finished.

    While it runs, a wave's requests are submitted as soon as nothing moves any more (every
    service has queued its request), rather than after ``batch.max_wait_s``; with
    ``detach``, the run is stopped once every call waits on the provider. The lane's
    background checks stop when this returns.
    """
    task = asyncio.ensure_future(work)
    try:
        return await _watch(task, lane)
    finally:
        await lane.close()


async def _watch(task: asyncio.Future[None], lane: BatchLane) -> bool:
    quiet, seen = 0, -1
    while not task.done():
        await asyncio.wait((task,), timeout=_CHECK_S)
        if task.done():
            break
        still = lane.moves == seen
        seen = lane.moves
        if still and lane.queued():
            await lane.flush()  # the wave is whole: no service has another request to add
        quiet = quiet + 1 if still and lane.options.detach and lane.quiet() else 0
        if quiet >= _QUIET_CHECKS:
            task.cancel(DETACH)
            try:
                await task
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise  # this run was cancelled too (Ctrl-C) while it detached
            return True
    task.result()
    return False


def check_detach(settings: Settings, detach: bool) -> None:
    """Refuse ``--detach`` where nothing could collect the run later.

    Raises:
        ConfigError: batch mode is off, or a stage uses the offline model (its batches
            live in this process only).
    """
    if not detach:
        return
    if not settings.batch.enabled:
        raise ConfigError("--detach needs --batch: only a run waiting on provider batches can detach")
    if any(is_offline(name) for stage in RUN_STAGES for name in settings.model_chain(stage)):
        raise ConfigError(
            "the offline model's batches live in this process only, so a run with it cannot detach",
            hint="drop --detach (the offline model answers its batches at once), or use a provider's model",
        )


def leaves_batches(settings: Settings, output: Path, run_id: str | None, command: str) -> int:
    """How many calls the run that ``--resume`` would continue left waiting on provider batches.

    A resumed run must collect them in batch mode whatever its flags say: sent live, each
    would be paid for twice.
    """
    with contextlib.suppress(ResumeMismatch):  # the run itself says so, in its own words
        found = find_run(settings.runs_directory(), run_id=run_id, output=output, command=command)
        if found is not None:
            return len(SuspendedStore(found[0]))
    return 0


@dataclass(frozen=True)
class Collect:
    """What ``runs collect`` continues: a ``run``'s files and its settings as recorded, batch mode on."""

    run_id: str
    settings: Settings
    input_path: Path
    output_path: Path
    quarantine_path: Path


def collect_job(runs_dir: Path, run_id: str) -> Collect:
    """The run ``run_id`` of ``runs_dir``, to carry on in batch mode with the settings it was started with.

    The settings are the ones its journal holds (nothing from this shell's flags or
    variables, besides the provider's key): a collected run must ask what it asked.

    Raises:
        InputError: there is no such run.
        ResumeMismatch: the run was made by ``map`` (``map --resume --batch`` continues it).
    """
    manifest = read_manifest(runs_dir / run_id)
    if manifest is None:
        raise InputError(f"no run {run_id!r} in {runs_dir}", hint="see `service-ambitions runs list`")
    if manifest.command != "run":
        raise ResumeMismatch(
            f"run {run_id} was made by {manifest.command!r}; `runs collect` continues `run` runs",
            hint=f"continue it with `service-ambitions {manifest.command} ... --resume --batch`",
        )
    recorded = Settings.model_validate(manifest.settings)
    batch = recorded.batch.model_copy(update={"enabled": True})
    return Collect(
        run_id,
        recorded.model_copy(update={"batch": batch}),
        Path(manifest.input_path),
        Path(manifest.output_path),
        Path(manifest.quarantine_path),
    )
