"""Full disks, read-only places and busy outputs: one line and an exit code, never a traceback, nothing torn."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.runs.lock import output_lock

from .conftest import EXAMPLES, read_jsonl, subprocess_env

runner = CliRunner()
OFFLINE = ["--model", "offline"]


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_output_on_a_full_device_is_one_line() -> None:
    result = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "/dev/full", *OFFLINE])
    assert result.exit_code == 10
    assert result.stderr.startswith("error: cannot write /dev/full: No space left on device")
    assert result.stderr.count("\n") == 1


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_leaves_whole_lines_and_resume_finishes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    # -B: under the size limit, Python's own bytecode files would be cut short too, and a
    # truncated .pyc in the environment breaks every later process that imports it.
    command = [sys.executable, "-B", "-m", "service_ambitions", "run", str(EXAMPLES / "services.jsonl"), "-o", str(out)]
    env = {
        **subprocess_env(SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs")),
        "PYTHONDONTWRITEBYTECODE": "1",
    }

    def small_disk() -> None:  # files may not grow past 60 KB: the output fills it mid-run
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (60_000, 60_000))

    full = subprocess.run(
        [*command, *OFFLINE, "-q", "--cache-mode", "off"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=small_disk,
    )
    assert full.returncode == 10, full.stderr
    assert "Traceback" not in full.stderr
    assert full.stderr.strip().startswith(f"error: cannot write {out}: File too large")
    written = out.read_bytes()
    assert written.endswith(b"\n")
    kept = [json.loads(line) for line in written.splitlines()]
    assert 0 < len(kept) < 8

    resumed = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), *OFFLINE, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert len(read_jsonl(out)) == 8


def test_two_runs_never_write_one_output(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with output_lock(out, tmp_path / "runs"):  # a live run holds it
        busy = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", f"./{out.name}", *OFFLINE])
    assert busy.exit_code == 10
    assert f"{out.name} is being written by a run that is still going (process {os.getpid()})" in busy.stderr
    assert not out.exists()  # it was not truncated
    # A killed run's lock is released by the kernel: the next run simply takes it.
    again = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), *OFFLINE])
    assert again.exit_code == 0, again.output


def test_the_input_is_protected_by_identity_not_by_name(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes((EXAMPLES / "services.jsonl").read_bytes())
    (tmp_path / "hard.jsonl").hardlink_to(source)
    (tmp_path / "soft.jsonl").symlink_to(source)
    for target in ("hard.jsonl", "soft.jsonl", "./in.jsonl"):
        result = runner.invoke(app, ["run", str(source), "-o", target, *OFFLINE])
        assert result.exit_code == 3, target
        assert "the output would overwrite the input" in result.stderr
    assert source.read_bytes() == (EXAMPLES / "services.jsonl").read_bytes()


def test_unwritable_places_and_unreadable_config_are_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    records = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "o.jsonl", *OFFLINE, "--runs-dir", str(blocker / "runs")]
    )
    assert records.exit_code == 10
    assert "cannot write the run journals in" in records.stderr
    output = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(blocker / "o.jsonl"), *OFFLINE])
    assert output.exit_code == 10
    assert "cannot write" in output.stderr
    config = tmp_path / "latin1.yaml"
    config.write_bytes("model: offline\n# caf\xe9\n".encode("latin-1"))
    bad = runner.invoke(app, ["-c", str(config), "run", str(EXAMPLES / "services.jsonl"), "-o", "o.jsonl"])
    assert bad.exit_code == 4
    assert "is not UTF-8 text" in bad.stderr
    for result in (records, output, bad):
        assert "Traceback" not in result.output
