"""The live panel as a person sees it: a real run in a pseudo-terminal, read through a terminal emulator."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pyte
import pytest
from rich.console import Console

from service_ambitions.cli.panel import RunPanel
from service_ambitions.core.events import (
    CallFinished,
    CallStarted,
    LimitsLearned,
    LimitWaited,
    RetryScheduled,
    ServiceCompleted,
    ServiceFailed,
    ServiceStarted,
    Stage,
)
from service_ambitions.runs.live import LivePlan
from service_ambitions.runs.tally import Tally

from .conftest import EXAMPLES, subprocess_env


def _services(path: Path, count: int) -> Path:
    rows = [json.loads(line) for line in (EXAMPLES / "services.jsonl").read_text().splitlines() if line.strip()]
    path.write_text(
        "".join(json.dumps({**rows[i % len(rows)], "service_id": f"svc-{i:04d}"}) + "\n" for i in range(count))
    )
    return path


@pytest.mark.slow
def test_the_panel_mid_run_in_a_terminal_and_nothing_animated_in_a_pipe(tmp_path: Path) -> None:
    source = _services(tmp_path / "services.jsonl", 40)
    env = subprocess_env(
        SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs"), COLUMNS="80", LINES="40", TERM="xterm"
    )
    command = [sys.executable, "-m", "service_ambitions", "run", str(source), "--model", "offline", "--max-cost", "5"]
    screen = pyte.Screen(80, 40)
    stream = pyte.ByteStream(screen)
    leader, follower = pty.openpty()
    child = subprocess.Popen(
        [*command, "-o", str(tmp_path / "tty.jsonl")], stdin=follower, stdout=follower, stderr=follower, env=env
    )
    os.close(follower)
    frames: list[str] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:
                    break  # the child closed the terminal
                if not chunk:
                    break
                stream.feed(chunk)
                frames.append("\n".join(screen.display))
            elif child.poll() is not None:
                break
    finally:
        child.wait(timeout=60)
        os.close(leader)
    assert child.returncode == 0
    mid_run = next(
        (frame for frame in frames if "ETA" in frame and " running" in frame and "calls done" in frame), None
    )
    assert mid_run is not None, frames[-1]
    for expected in ("services", "rates", "req/min", "tokens/min", "money", "spent", "provider"):
        assert expected in mid_run, expected
    assert "budget" in mid_run, mid_run
    for stage in ("descriptions", "features", "mapping"):
        assert stage in mid_run
    assert "/ 40" in mid_run  # descriptions planned: one per service
    assert all(len(line.rstrip()) <= 80 for line in mid_run.splitlines())

    piped = subprocess.run(
        [*command, "-o", str(tmp_path / "pipe.jsonl")],
        env={**env, "SA_HEARTBEAT_S": "0.2", "SA_CACHE_MODE": "off"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "\x1b[" not in piped.stdout + piped.stderr  # no animation, no colours, in a pipe
    assert "progress: " in piped.stderr  # the heartbeat instead
    summary = " ".join(piped.stdout.split())
    assert re.search(r"throughput │ [\d.,]+ services/min, [\d,]+ requests/min", summary), summary
    assert re.search(r"time in calls \(they overlap\) │ descriptions [\d.,]+ s, features", summary), summary


def test_the_panel_shows_rates_money_health_and_failures_from_events() -> None:
    now = [1000.0]
    tally = Tally()
    panel = RunPanel(
        tally,
        LivePlan(
            services=10,
            calls_per_service={Stage.DESCRIPTIONS: 1, Stage.FEATURES: 2, Stage.MAPPING: 4},
            requests_per_minute=600,
            budget=Decimal("1.00"),
        ),
        clock=lambda: now[0],
    )
    events = [
        ServiceStarted(service_id="a"),
        CallStarted(service_id="a", stage=Stage.FEATURES),
        CallFinished(
            service_id="a",
            stage=Stage.FEATURES,
            model="m",
            requests=2,
            input_tokens=1000,
            cache_read_tokens=750,
            output_tokens=200,
            cost_usd="0.10",
        ),
        CallStarted(service_id="a", stage=Stage.MAPPING),
        RetryScheduled(stage=Stage.MAPPING, model="m", wait_s=30, reason="HTTP 429"),
        ServiceCompleted(service_id="a", features=3, dropped_items=0),
        ServiceFailed(service_id="b[red]", stage=Stage.MAPPING, reason="provider said \x1b[2J no"),
    ]
    for event in events:
        now[0] += 5
        tally(event)
        panel.observe(event)
    buffer = Console(record=True, width=100, force_terminal=True)
    buffer.print(panel)
    text = buffer.export_text()
    assert "1 done · 1 failed · 0 running · 8 left · ETA" in text
    assert "3 of 600 req/min" in text  # 2 requests in the run's first 35 s
    assert "75% of input tokens from the provider's prompt cache" in text

    announced = RunPanel(tally, LivePlan(services=10))
    tally(LimitsLearned(provider="api.openai.com", requests_per_minute=900, tokens_per_minute=150_000))
    tally(LimitWaited(provider="api.openai.com", wait_s=12.5))
    quiet = Console(record=True, width=120)
    quiet.print(announced)
    shown = quiet.export_text()
    assert "of 900 announced req/min" in shown
    assert "of 150,000 announced tokens/min" in shown
    assert "paced 12s in all" in shown
    assert "$0.1000 spent · ~$0.5000 projected · $0.9000 of $1.00 budget left" in text
    assert "1 retries in the last minute (HTTP 429: 1) · waiting" in text
    assert "b[red] (mapping): provider said \\x1b[2J no" in text  # escaped, not markup, not a control
    features_row = next(line for line in text.splitlines() if line.strip().startswith("features"))
    assert "1 / 20" in features_row


def test_the_panel_and_heartbeat_count_batches_and_the_requests_waiting_in_them() -> None:
    from service_ambitions.core.events import BatchSubmitted, BatchUpdated

    tally = Tally()
    panel = RunPanel(tally, LivePlan(services=4))
    for event in (
        BatchSubmitted(batch_id="b1", model="m", requests=8),
        BatchSubmitted(batch_id="b2", model="m", requests=3),
        BatchUpdated(batch_id="b1", status="in_progress"),
        BatchUpdated(batch_id="b1", status="completed", ended=True, succeeded=8, failed=0, unrun=0),
    ):
        tally(event)
        panel.observe(event)
    buffer = Console(record=True, width=100)
    buffer.print(panel)
    assert "2 batches (1 at the provider, 1 ended) · 3 requests waiting" in buffer.export_text()
    assert "2 batches (1 at the provider, 1 ended) · 3 requests waiting" in panel.line()
    assert "batches" not in RunPanel(Tally(), LivePlan(services=4)).line()
