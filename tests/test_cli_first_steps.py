"""What a new user meets first: inputs of the wrong shape, settings with several mistakes, hints that work."""

from __future__ import annotations

import json
import stat
from pathlib import Path

from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import EXAMPLES

runner = CliRunner()
OFFLINE = ["--model", "offline"]


def test_a_json_array_is_named_and_the_conversion_given(tmp_path: Path) -> None:
    rows = [json.loads(line) for line in (EXAMPLES / "services.jsonl").read_text().splitlines()[:2]]
    array = tmp_path / "services.json"
    array.write_text(json.dumps(rows, indent=2))
    result = runner.invoke(app, ["validate", str(array), *OFFLINE])
    assert result.exit_code == 3
    assert "looks like a JSON array" in result.output
    assert "jq -c '.[]'" in result.output


def test_an_empty_services_file_fails_validate_and_run(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n  \n")
    checked = runner.invoke(app, ["validate", str(empty), *OFFLINE])
    assert checked.exit_code == 3
    assert "holds no service: it is empty" in checked.output
    ran = runner.invoke(app, ["run", str(empty), "-o", str(tmp_path / "o.jsonl"), *OFFLINE])
    assert ran.exit_code == 3
    assert "holds no service: it is empty" in ran.stderr


def test_null_jobs_mean_none_and_blank_names_are_refused(tmp_path: Path) -> None:
    source = tmp_path / "s.jsonl"
    source.write_text(
        json.dumps({"service_id": "a", "name": "A", "description": "d", "jobs_to_be_done": None, "features": None})
        + "\n"
        + json.dumps({"service_id": "b", "name": "   ", "description": "\t"})
        + "\n"
    )
    result = runner.invoke(app, ["validate", str(source), *OFFLINE])
    assert result.exit_code == 3
    assert "1 of 2 lines rejected" in result.output
    assert "name: Value error, must not be blank" in result.output


def test_every_bad_setting_is_named_once_and_yaml_errors_are_one_readable_line(tmp_path: Path) -> None:
    config = tmp_path / "app.yaml"
    config.write_text("concurrency: -1\nmax_in_flight: 0\n")
    result = runner.invoke(app, ["-c", str(config), "validate", str(EXAMPLES / "services.jsonl")])
    assert result.exit_code == 4
    assert "concurrency:" in result.stderr
    assert "max_in_flight:" in result.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("model: [offline\n")
    result = runner.invoke(app, ["-c", str(broken), "validate", str(EXAMPLES / "services.jsonl")])
    assert result.exit_code == 4
    assert "is not valid YAML at line 2, column 1" in result.stderr
    assert "\\x0a" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_a_bad_flag_value_blames_the_flag_not_a_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(tmp_path / "o.jsonl"), *OFFLINE, "--max-cost", "0"]
    )
    assert result.exit_code == 4
    assert "check --max-cost" in result.stderr
    assert "config/app.yaml" not in result.stderr


def test_diff_exit_code_says_whether_the_runs_differ(tmp_path: Path) -> None:
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(first), *OFFLINE]).exit_code == 0
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(second), *OFFLINE, "--seed", "7"]
    assert runner.invoke(app, args).exit_code == 0
    assert runner.invoke(app, ["diff", str(first), str(first), "--exit-code"]).exit_code == 0
    assert runner.invoke(app, ["diff", str(first), str(second), "--exit-code"]).exit_code == 1
    assert runner.invoke(app, ["diff", str(first), str(second)]).exit_code == 0  # without it: informational


def test_the_runs_directory_is_owner_only_and_validate_says_offline_needs_no_key(tmp_path: Path) -> None:
    runs = tmp_path / "fresh-runs"
    result = runner.invoke(
        app,
        ["run", str(EXAMPLES / "services.jsonl"), "-o", str(tmp_path / "o.jsonl"), *OFFLINE, "--runs-dir", str(runs)],
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(runs.stat().st_mode) == 0o700
    checked = runner.invoke(app, ["validate", str(EXAMPLES / "services.jsonl"), *OFFLINE])
    assert "offline (built in: no key, no network)" in checked.output
    assert "credentials present" not in checked.output


def test_runs_collect_help_offers_no_flag_it_does_not_have() -> None:
    result = runner.invoke(app, ["runs", "collect", "--help"])
    assert result.exit_code == 0
    assert "--batch" not in result.output


def test_init_config_says_how_it_is_found(tmp_path: Path) -> None:
    assert runner.invoke(app, ["init", str(tmp_path / "proj")]).exit_code == 0
    text = (tmp_path / "proj" / "config" / "app.yaml").read_text()
    assert "Copy to config/app.yaml" not in text
    assert "written by `service-ambitions init`" in text


def test_install_hints_name_where_the_tool_was_installed_from() -> None:
    from service_ambitions.core.install import install_source

    source = install_source()
    assert source != "service-ambitions"  # this checkout, installed from its folder
    assert Path(source.strip("'")).is_dir()
