"""jobs/checks.py: every pre-flight check on its own, so one validate shows every problem."""

from __future__ import annotations

from pathlib import Path

from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.jobs.checks import run_checks, scan_input


def test_every_check_runs_even_when_an_earlier_one_fails(tmp_path: Path, services_file: Path) -> None:
    settings = load_settings(overrides=Overrides(model="offline", prompts_dir=tmp_path / "missing"))
    checks = run_checks(settings, tmp_path / "no-input.jsonl")
    assert [check.name for check in checks] == ["reference data", "prompts", "provider plug-ins", "models", "input"]
    failed = {check.name for check in checks if check.error is not None}
    assert "input" in failed
    assert "reference data" not in failed
    assert scan_input(services_file).services == 3
