"""The same CLI everywhere: shared flags, --json where a machine may read, suggestions for typos."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import EXAMPLES, read_jsonl

runner = CliRunner()
OFFLINE = ["--model", "offline"]


def test_json_documents_for_machines(tmp_path: Path) -> None:
    plan = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "o.jsonl", *OFFLINE, "--dry-run", "--json"]
    )
    assert plan.exit_code == 0, plan.output
    document = json.loads(plan.stdout)
    assert document["services"] == 8
    assert [row["stage"] for row in document["stages"]] == ["descriptions", "features", "mapping"]
    checks = runner.invoke(app, ["validate", str(EXAMPLES / "services.jsonl"), *OFFLINE, "--json"])
    assert checks.exit_code == 0, checks.output
    assert all(row["ok"] for row in json.loads(checks.stdout))
    assert runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "o.jsonl", *OFFLINE, "-q"]).exit_code == 0
    listing = runner.invoke(app, ["runs", "list", "--json"])
    assert listing.exit_code == 0
    (run,) = json.loads(listing.stdout)
    assert (run["command"], run["status"], run["counts"]["services_completed"]) == ("run", "completed", 8)


def test_map_takes_the_flags_run_takes(tmp_path: Path) -> None:
    assert runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "e.jsonl", *OFFLINE, "-q"]).exit_code == 0
    result = runner.invoke(
        app,
        ["map", "e.jsonl", "-o", "m.jsonl", *OFFLINE, "--seed", "3", "--strict", "--max-in-flight", "2", "--trace-ids"],
    )
    assert result.exit_code == 0, result.output
    assert read_jsonl(tmp_path / "m.jsonl")[0]["meta"]["seed"] == 3  # type: ignore[index]
    plan = runner.invoke(app, ["map", "e.jsonl", "-o", "m2.jsonl", *OFFLINE, "--dry-run", "--json"])
    assert [row["stage"] for row in json.loads(plan.stdout)["stages"]] == ["mapping"]


def test_typos_get_suggestions() -> None:
    command = runner.invoke(app, ["rnu"])
    assert command.exit_code == 2
    assert "Did you mean 'run'?" in command.output
    model = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "o.jsonl", "--model", "opneai:gpt-4o-mini"]
    )
    assert model.exit_code == 4
    assert "did you mean openai:gpt-4o-mini?" in model.stderr


def test_global_options_may_follow_the_command() -> None:
    from service_ambitions.cli.app import hoist_global_options

    assert hoist_global_options(["run", "in.jsonl", "-o", "o", "--config", "c.yaml", "--no-color"]) == [
        "--config",
        "c.yaml",
        "--no-color",
        "run",
        "in.jsonl",
        "-o",
        "o",
    ]
    assert hoist_global_options(["run", "--config=c.yaml", "x", "--", "--no-color"]) == [
        "--config=c.yaml",
        "run",
        "x",
        "--",
        "--no-color",
    ]


def test_quiet_before_the_command() -> None:
    result = runner.invoke(app, ["-q", "run", str(EXAMPLES / "services.jsonl"), "-o", "o.jsonl", *OFFLINE])
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    assert result.stdout.startswith("completed: 8 services done")
