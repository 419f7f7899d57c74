"""Batch mode's part of a job: detaching once everything waits, and what may detach or be collected."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.errors import ConfigError, InputError, ResumeMismatch
from service_ambitions.jobs.batch import check_detach, collect_job, leaves_batches, run_batched
from service_ambitions.llm.batching import BatchOptions


class _Lane:
    def __init__(self, *, detach: bool) -> None:
        self.options = BatchOptions(detach=detach)
        self.parked = self.active = self.moves = self.waiting = 0
        self.closed = False
        self.flushed = 0

    def quiet(self) -> bool:
        return self.parked > 0 and self.parked == self.active

    def queued(self) -> bool:
        return self.active > self.waiting

    async def flush(self) -> None:
        self.flushed += 1
        self.waiting = self.active  # submitted: every call now waits on its batch

    async def close(self) -> None:
        self.closed = True


async def test_a_run_detaches_once_every_call_is_parked_and_nothing_moves() -> None:
    lane = _Lane(detach=True)
    cancelled = asyncio.Event()

    async def work() -> None:
        lane.active = lane.parked = lane.waiting = 2  # both calls wait on the provider
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    assert await run_batched(work(), lane) is True  # type: ignore[arg-type]
    assert cancelled.is_set()
    assert lane.closed


async def test_a_run_that_finishes_does_not_detach() -> None:
    lane = _Lane(detach=True)

    async def work() -> None:
        lane.active = 1  # busy, never parked
        await asyncio.sleep(0)

    assert await run_batched(work(), lane) is False  # type: ignore[arg-type]
    plain = _Lane(detach=False)
    assert await run_batched(work(), plain) is False  # type: ignore[arg-type]
    assert plain.closed


def test_detach_needs_batch_and_a_provider(tmp_path: Path) -> None:
    check_detach(load_settings(overrides=Overrides(model="offline")), False)
    with pytest.raises(ConfigError, match="--detach needs --batch"):
        check_detach(load_settings(overrides=Overrides(model="offline")), True)
    with pytest.raises(ConfigError, match="offline model's batches"):
        check_detach(load_settings(overrides=Overrides(model="offline", batch={"enabled": True})), True)
    check_detach(load_settings(overrides=Overrides(model="openai:gpt-4o-mini", batch={"enabled": True})), True)


def test_collect_continues_only_recorded_run_runs(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    with pytest.raises(InputError, match="no run 'nope'"):
        collect_job(runs, "nope")
    settings = load_settings(overrides=Overrides(model="offline"))
    manifest = {
        "run_id": "r1",
        "command": "map",
        "tool_version": "0",
        "status": "detached",
        "started": "2026-11-28T00:00:00Z",
        "updated": "2026-11-28T00:00:00Z",
        "input_path": str(tmp_path / "in.jsonl"),
        "input_sha256": "0",
        "output_path": str(tmp_path / "out.jsonl"),
        "quarantine_path": str(tmp_path / "q.jsonl"),
        "fingerprint": "f",
        "settings": settings.model_dump(mode="json"),
    }
    (runs / "r1").mkdir(parents=True)
    (runs / "r1" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ResumeMismatch, match="`runs collect` continues `run` runs"):
        collect_job(runs, "r1")
    (runs / "r1" / "manifest.json").write_text(json.dumps({**manifest, "command": "run"}))
    job = collect_job(runs, "r1")
    assert job.settings.batch.enabled
    assert job.settings.model == "offline"
    assert job.output_path == tmp_path / "out.jsonl"
    assert leaves_batches(load_settings(overrides=Overrides(runs_dir=runs)), tmp_path / "out.jsonl", "r1", "run") == 0
    assert leaves_batches(load_settings(overrides=Overrides(runs_dir=runs)), tmp_path / "out.jsonl", "nope", "run") == 0


async def test_a_whole_wave_is_submitted_without_waiting_for_max_wait() -> None:
    lane = _Lane(detach=False)
    submitted = asyncio.Event()
    flush = lane.flush

    async def flushed() -> None:
        await flush()
        submitted.set()

    lane.flush = flushed  # type: ignore[method-assign]

    async def work() -> None:
        lane.active = 3  # three calls queued, none submitted: nothing else will come
        await submitted.wait()

    assert await run_batched(work(), lane) is False  # type: ignore[arg-type]
    assert submitted.is_set()
    assert lane.flushed == 1
