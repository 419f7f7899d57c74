"""`report` and `runs`: usage read back from a run's events."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import run_dirs
from .fake_openai import COMPLETIONS, FakeOpenAI

runner = CliRunner()


@pytest.fixture
def two_runs(respx_mock: respx.MockRouter, openai_env: None, services_file: Path) -> respx.Route:
    route = respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI(usage=(1000, 100)))
    for name in ("first.jsonl", "second.jsonl"):  # the second is answered from the cache
        result = runner.invoke(app, ["run", str(services_file), "-o", name, "--model", "openai:gpt-4o-mini"])
        assert result.exit_code == 0, result.output
    return route


def test_report_json_matches_the_provider_usage_and_prices(two_runs: respx.Route) -> None:
    result = runner.invoke(app, ["report", "--json", "--by-service"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    totals = report["totals"]
    assert (totals["calls"], totals["cached"], totals["spend"]["requests"]) == (63, 63, 0)  # the last run: all cached
    # 63 calls x (1,000 input + 100 output tokens) at gpt-4o-mini's $0.15 / $0.60 per million:
    assert Decimal(totals["saved_usd"]) == 63 * (Decimal("0.00015") + Decimal("0.00006"))
    assert Decimal(totals["spend"]["cost_usd"]) == 0
    assert {row["key"] for row in report["by_stage"]} == {"descriptions", "features", "mapping"}
    assert {row["key"] for row in report["by_service"]} == {"svc-1", "svc-2", "svc-3"}
    assert report["price_data"].startswith("genai-prices ")


def test_report_of_a_named_run_and_the_runs_commands(two_runs: respx.Route, tmp_path: Path) -> None:
    # In start order (two runs in one second: their ids' random parts decide nothing).
    by_start = sorted(
        run_dirs(tmp_path / "runs"), key=lambda d: json.loads((d / "manifest.json").read_text())["started"]
    )
    first, second = (path.name for path in by_start)
    listing = runner.invoke(app, ["runs", "list"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0
    assert listing.stdout.index(second) < listing.stdout.index(first)  # newest first

    report = json.loads(runner.invoke(app, ["report", first, "--json"]).stdout)
    assert report["totals"]["spend"]["requests"] == 63
    assert Decimal(report["totals"]["spend"]["cost_usd"]) == 63 * (Decimal("0.00015") + Decimal("0.00006"))
    table = runner.invoke(app, ["report", first])
    assert "spent $0.0132" in table.stdout
    assert "By model" in table.stdout

    shown = json.loads(runner.invoke(app, ["runs", "show", first]).stdout)
    assert shown["run_id"] == first
    assert shown["status"] == "completed"

    tail = runner.invoke(app, ["runs", "tail", first, "--type", "service_completed"])
    assert [json.loads(line)["service_id"] for line in tail.stdout.splitlines()] == ["svc-1", "svc-2", "svc-3"]
    followed = runner.invoke(app, ["runs", "tail", first, "-f"])  # a finished run: stops at run_finished
    assert json.loads(followed.stdout.splitlines()[-1])["type"] == "run_finished"


def test_report_without_runs_is_one_line() -> None:
    result = runner.invoke(app, ["report"])
    assert result.exit_code == 3
    assert "no run journaled" in result.stderr
    missing = runner.invoke(app, ["runs", "show", "nope"])
    assert missing.exit_code == 3
    assert "no run 'nope'" in missing.stderr


def test_tail_by_level_schema_and_json_logs(tmp_path: Path, services_file: Path) -> None:
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(tmp_path / "o.jsonl"), "--model", "offline", "--json-logs"]
    )
    assert result.exit_code == 0, result.output
    logged = [json.loads(line) for line in result.stderr.splitlines()]
    assert logged[0]["type"] == "run_started"
    assert sum(1 for event in logged if event["type"] == "call_finished") == 63
    assert "\x1b" not in result.stderr

    info = runner.invoke(app, ["runs", "tail", "--level", "info"])
    kinds = {json.loads(line)["type"] for line in info.stdout.splitlines()}
    assert "call_finished" not in kinds  # calls are debug
    assert {"run_started", "service_completed", "run_finished"} <= kinds
    assert runner.invoke(app, ["runs", "tail", "--level", "loud"]).exit_code == 2

    schema = json.loads(runner.invoke(app, ["report", "--schema"]).stdout)
    assert {"totals", "by_stage", "failures_by_cause", "price_data"} <= set(schema["properties"])
