from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import EXAMPLES

runner = CliRunner()


def test_everything_valid_with_the_offline_model() -> None:
    result = runner.invoke(app, ["validate", str(EXAMPLES / "services.jsonl"), "--model", "offline"])
    assert result.exit_code == 0, result.output
    assert "ok   input: 8 services" in result.stdout
    assert "ok   reference data: 5 plateaus, 3 roles" in result.stdout
    assert "all checks passed" in result.stdout


def test_every_problem_is_reported_and_the_first_sets_the_exit_code(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "features.md").write_text("$nope")
    bad_input = tmp_path / "in.jsonl"
    bad_input.write_text('{"service_id": "a", "name": "A", "description": "x"}\n{broken\n')
    config = tmp_path / "app.yaml"
    config.write_text(f"prompts_dir: {prompts}\nmodel: openai:gpt-4o-mini\n")

    result = runner.invoke(app, ["--config", str(config), "validate", str(bad_input)])

    assert result.exit_code == 4  # prompts fail first: a configuration error
    lines = result.stdout.splitlines()
    assert any(line.startswith("ok   reference data") for line in lines)
    assert any(line.startswith("fail prompts:") and "$nope" in line for line in lines)
    assert any(line.startswith("fail models:") and "OPENAI_API_KEY is not set" in line for line in lines)
    assert any(line.startswith("fail input:") and "in.jsonl:2: 1 of 2 lines rejected" in line for line in lines)
    assert "all checks passed" not in result.stdout


def test_custom_prompts_are_named(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "context.md").write_text("You work for a hospital trust.")
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"service_id": "a", "name": "A", "description": "x"}) + "\n")
    result = runner.invoke(app, ["validate", str(source), "--model", "offline"], env={"SA_PROMPTS_DIR": str(prompts)})
    assert result.exit_code == 0, result.output
    assert f"(context from {prompts})" in result.stdout


def test_invalid_setting_from_the_environment_is_one_line() -> None:
    result = runner.invoke(app, ["validate", "x.jsonl"], env={"SA_CONCURRENCY": "zero"})
    assert result.exit_code == 4
    assert result.stderr.startswith("error: invalid setting concurrency:")
    assert len(result.stderr.strip().splitlines()) == 1


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert result.exit_code == 2
    assert "run" in result.output
    assert "validate" in result.output
    assert "schema" in result.output


def test_usage_error_exit_code() -> None:
    assert runner.invoke(app, ["run", "in.jsonl", "-o", "o.jsonl", "--concurrency", "0"]).exit_code == 2
