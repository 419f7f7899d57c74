"""Output streams tools can consume: records alone on stdout, whole tables in pipes, quiet runs, heartbeats."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.cli.job import heartbeat
from service_ambitions.cli.panel import RunPanel
from service_ambitions.core.events import ServiceCompleted, ServiceStarted
from service_ambitions.runs.live import LivePlan
from service_ambitions.runs.tally import Tally

from .conftest import EXAMPLES, subprocess_env

runner = CliRunner()


def test_run_to_stdout_writes_only_json_lines_there(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "-", "--model", "offline"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 8
    assert "Run summary" in result.stderr
    assert "output: standard output" in result.stderr


def test_quiet_prints_only_the_final_line(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "out.jsonl", "--model", "offline", "--quiet"]
    )
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    assert result.stdout.startswith("completed: 8 services done, 168 requests, $0.0000 spent; output out.jsonl; run ")


@pytest.mark.slow
def test_tables_in_a_pipe_are_never_cut(tmp_path: Path) -> None:
    long_id = "svc-" + "x" * 120
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"service_id": long_id, "name": "N", "description": "D"}) + "\n")
    env = subprocess_env(SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs"))
    env.pop("COLUMNS", None)
    command = [sys.executable, "-m", "service_ambitions"]
    done = subprocess.run(
        [*command, "run", str(source), "-o", str(tmp_path / "o.jsonl"), "--model", "offline"],
        env=env,
        capture_output=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = subprocess.run(
        [*command, "report", "--by-service"], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert long_id in report  # not folded over lines nor cut with an ellipsis
    assert "…" not in report


def test_heartbeat_lines_off_a_terminal() -> None:
    buffer = io.StringIO()
    console = Console(file=buffer, width=200)
    tally = Tally()
    panel = RunPanel(tally, LivePlan(services=5))
    for event in (ServiceStarted(service_id="a"), ServiceCompleted(service_id="a", features=3, dropped_items=0)):
        tally(event)
        panel.observe(event)
    with heartbeat(console, panel.line, every=0.01, enabled=True):
        deadline = time.monotonic() + 10
        while "progress:" not in buffer.getvalue() and time.monotonic() < deadline:
            time.sleep(0.01)
    assert buffer.getvalue().startswith("progress: 1/5 services done, 0 failed, ETA ")
    assert "0 calls (0 cached), 0 in flight; 0 req/min; $0.0000 spent" in buffer.getvalue()
    silent = io.StringIO()
    with heartbeat(Console(file=silent), panel.line, every=0.01, enabled=False):
        pass
    assert silent.getvalue() == ""


@pytest.mark.slow
@pytest.mark.parametrize("command", ["run", "map"])
def test_a_reader_that_closes_the_pipe_early_ends_the_command_quietly(tmp_path: Path, command: str) -> None:
    env = subprocess_env(SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs"))
    source = EXAMPLES / "services.jsonl"
    if command == "map":
        source = tmp_path / "evolutions.jsonl"
        first_run = [sys.executable, "-m", "service_ambitions", "run", str(EXAMPLES / "services.jsonl")]
        made = subprocess.run(
            [*first_run, "-o", str(source), "--model", "offline", "-q"],
            env=env,
            capture_output=True,
            check=False,
        )
        assert made.returncode == 0, made.stderr
    args = [sys.executable, "-m", "service_ambitions", command, str(source), "-o", "-", "--model", "offline"]
    reader = subprocess.Popen(  # `… -o - | head -1`
        [*args, "--cache-mode", "off"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert reader.stdout is not None
    first = reader.stdout.readline()
    reader.stdout.close()
    _, stderr = reader.communicate(timeout=120)
    assert json.loads(first)["service"]["service_id"]
    assert reader.returncode == 0
    assert b"Traceback" not in stderr
    assert b"BrokenPipeError" not in stderr
    listed = subprocess.run(
        [sys.executable, "-m", "service_ambitions", "runs", "list"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    newest = next(line for line in listed.splitlines() if line.split()[1:2] == [command])
    assert "interrupted" in newest or "completed" in newest  # never "failed": a tiny run may finish first
