"""jobs/init.py and config discovery: what an installed tool needs, outside any repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.files import find_config
from service_ambitions.config.settings import Overrides, load_settings

from .conftest import read_jsonl

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent


def test_init_writes_a_folder_the_help_examples_work_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = runner.invoke(app, ["init", "portfolio"])
    assert result.exit_code == 0, result.output
    monkeypatch.chdir(tmp_path / "portfolio")
    settings = load_settings()  # config/app.yaml found, its paths relative to itself
    assert settings.reference.plateaus == Path("config/../reference/plateaus.json")
    run = runner.invoke(app, ["run", "examples/services.jsonl", "-o", "evolutions.jsonl", "--model", "offline"])
    assert run.exit_code == 0, run.output
    assert len(read_jsonl(Path("evolutions.jsonl"))) == 8
    again = runner.invoke(app, ["init", "."])
    assert again.exit_code == 10
    assert "exists already" in again.stderr
    assert runner.invoke(app, ["init", ".", "--force"]).exit_code == 0


def test_the_users_own_config_is_found_wherever_the_tool_runs(tmp_path: Path) -> None:
    home = tmp_path / "xdg"
    (home / "service-ambitions").mkdir(parents=True)
    (home / "service-ambitions" / "config.yaml").write_text("concurrency: 3\nprompts_dir: prompts\n")
    found = find_config(environ={"XDG_CONFIG_HOME": str(home)})
    assert found == home / "service-ambitions" / "config.yaml"
    settings = load_settings(found)
    assert settings.concurrency == 3
    assert settings.prompts_dir == home / "service-ambitions" / "prompts"  # relative to the file
    assert load_settings(found, overrides=Overrides(prompts_dir=Path("mine"))).prompts_dir == Path(
        "mine"
    )  # a flag stays as typed
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "app.yaml").write_text("concurrency: 2\n")
    assert find_config(environ={"XDG_CONFIG_HOME": str(home)}) == Path("config/app.yaml")  # the local one first


def test_packaged_copies_match_the_repository_files() -> None:
    data = ROOT / "service_ambitions" / "reference" / "defaults"
    assert (data / "examples" / "services.jsonl").read_bytes() == (ROOT / "examples" / "services.jsonl").read_bytes()
    assert (data / "config.example.yaml").read_bytes() == (ROOT / "config" / "app.example.yaml").read_bytes()


def test_init_copies_the_prompts_and_points_the_config_at_them(tmp_path: Path) -> None:
    from service_ambitions.config.settings import load_settings
    from service_ambitions.jobs.init import init_project
    from service_ambitions.reference.prompting import load_prompts

    init_project(tmp_path)
    assert (tmp_path / "prompts" / "vision.md").read_text().startswith("Where the university is heading")
    settings = load_settings(tmp_path / "config" / "app.yaml")
    assert settings.prompts_dir is not None
    assert settings.prompts_dir.resolve() == (tmp_path / "prompts").resolve()
    (tmp_path / "prompts" / "vision.md").write_text("Where the council is heading: nowhere fast.")
    assert "nowhere fast" in load_prompts(settings.prompts_dir).blocks["vision"]
