"""Worker processes: the same records in the same order as one process, every event recorded once."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import Settings
from service_ambitions.jobs.workers import share

from .conftest import EXAMPLES, read_jsonl, run_dirs

runner = CliRunner()


def test_each_worker_gets_its_share_of_the_limits_and_the_budget() -> None:
    settings = Settings(
        model="offline", concurrency=5, max_in_flight=8, max_cost=Decimal("3"), limits={"requests_per_minute": 100}
    )
    part = share(settings, 2)
    assert (part.workers, part.concurrency, part.max_in_flight) == (1, 3, 4)
    assert part.max_cost == Decimal("1.5")
    assert part.limits.requests_per_minute == 50
    assert part.limits.tokens_per_minute is None


@pytest.mark.slow
def test_two_workers_write_what_one_process_writes_in_input_order(tmp_path: Path) -> None:
    source = tmp_path / "services.jsonl"
    lines = (EXAMPLES / "services.jsonl").read_text(encoding="utf-8").splitlines()
    source.write_text("\n".join([*lines[:3], "not json", *lines[3:]]) + "\n", encoding="utf-8")
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    base = ["run", str(source), "--model", "offline", "-q"]
    assert runner.invoke(app, [*base, "-o", str(one), "--cache-mode", "off"]).exit_code == 9
    result = runner.invoke(app, [*base, "-o", str(two), "--workers", "2"])
    assert result.exit_code == 9, result.output
    assert "completed: 8 services done, 0 failed, 1 lines rejected" in result.output
    first, second = read_jsonl(one), read_jsonl(two)
    assert [r["service"] for r in second] == [r["service"] for r in first]  # input order
    assert [r["plateaus"] for r in second] == [r["plateaus"] for r in first]  # the same answers
    assert [row["line"] for row in read_jsonl(tmp_path / "two.quarantine.jsonl")] == [4]
    run = next(
        d
        for d in run_dirs(tmp_path / "runs")
        if json.loads((d / "manifest.json").read_text())["settings"]["workers"] == 2
    )
    events = [json.loads(line) for line in (run / "events.jsonl").read_text().splitlines()]
    completed = [e["service_id"] for e in events if e["type"] == "service_completed"]
    assert sorted(completed) == sorted(r["service"]["service_id"] for r in first)  # each once
    assert [e["type"] for e in events].count("run_started") == 1
    report = json.loads(runner.invoke(app, ["report", "--json", run.name]).stdout)
    assert report["totals"]["calls"] == 8 * 21


def _fake_worker(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-python"
    path.write_text("#!/bin/sh\ncat > /dev/null\n" + script, encoding="utf-8")
    path.chmod(0o755)
    return str(path)


@pytest.mark.parametrize(
    ("script", "code", "message"),
    [
        (
            "echo 'Traceback: boom in the worker' >&2\nexit 3\n",
            1,
            "a worker process stopped unexpectedly: Traceback: boom",
        ),
        (
            "echo '"
            + json.dumps({"error": {"type": "ProviderRefused", "message": "provider answered HTTP 401: bad key"}})
            + "'\nexit 1\n",
            5,
            "provider answered HTTP 401: bad key",
        ),
    ],
)
def test_a_worker_that_stops_stops_the_run_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str, code: int, message: str
) -> None:
    import service_ambitions.jobs.workers as workers

    monkeypatch.setattr(workers.sys, "executable", _fake_worker(tmp_path, script))
    out = tmp_path / "out.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--workers", "2", "-q"]
    result = runner.invoke(app, args)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.output.split())
    manifest = json.loads((run_dirs(tmp_path / "runs")[0] / "manifest.json").read_text())
    assert manifest["status"] == "failed"
