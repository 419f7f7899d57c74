"""Run journals, resume, and nothing lost: SIGINT and SIGKILL mid-run, then --resume."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pydantic_ai.models
import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.runs.journal import read_events, read_manifest

from .conftest import EXAMPLES, read_jsonl, run_dirs, subprocess_env
from .fake_openai import BASE_URL, COMPLETIONS, FakeOpenAI

runner = CliRunner()
OFFLINE = ["--model", "offline"]


def run(*args: str) -> str:
    result = runner.invoke(app, ["run", *args])
    assert result.exit_code == 0, result.output
    return result.stdout


def only_run(runs: Path) -> Path:
    (directory,) = run_dirs(runs)
    return directory


def test_a_run_leaves_a_manifest_and_events_without_secrets(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services_file: Path
) -> None:
    secret = "sk-test-never-write-me-0123456789"  # pragma: allowlist secret
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI())
    out = tmp_path / "out.jsonl"
    run(str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini")

    directory = only_run(tmp_path / "runs")
    manifest = read_manifest(directory)
    assert manifest is not None
    assert manifest.status == "completed"
    assert manifest.counts.services_completed == 3
    assert manifest.counts.calls == 63
    assert manifest.output_path == str(out.resolve())
    assert len(manifest.input_sha256) == 64
    assert manifest.settings["model"] == "openai:gpt-4o-mini"
    kinds = [event.type for event in read_events(directory)]
    assert kinds[0] == "run_started"
    assert kinds[-1] == "run_finished"
    assert kinds.count("call_finished") == 63
    assert kinds.count("service_completed") == 3
    everything = [
        path for root in (tmp_path / "runs", tmp_path / "cache") for path in root.rglob("*") if path.is_file()
    ]
    for path in [*everything, out]:
        assert secret.encode() not in path.read_bytes(), path


def test_resume_appends_only_what_is_missing(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    source = str(EXAMPLES / "services.jsonl")
    run(source, "-o", str(out), *OFFLINE, "--max-services", "3")
    first = [r["service"]["service_id"] for r in read_jsonl(out)]  # type: ignore[index]

    summary = run(source, "-o", str(out), *OFFLINE, "--resume")

    ids = [r["service"]["service_id"] for r in read_jsonl(out)]  # type: ignore[index]
    expected = [json.loads(line)["service_id"] for line in (EXAMPLES / "services.jsonl").read_text().splitlines()]
    assert ids == expected
    assert ids[:3] == first
    assert "3 services were already done" in summary
    manifest = read_manifest(only_run(tmp_path / "runs"))
    assert manifest is not None
    assert manifest.resumed == 1
    assert {r["meta"]["run_id"] for r in read_jsonl(out)} == {manifest.run_id}  # type: ignore[index]


def test_resume_drops_a_torn_last_line(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    source = str(EXAMPLES / "services.jsonl")
    run(source, "-o", str(out), *OFFLINE)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:4]) + lines[4][: len(lines[4]) // 2])  # as a crash mid-write leaves it

    run(source, "-o", str(out), *OFFLINE, "--resume")

    records = read_jsonl(out)
    assert len(records) == 8
    assert len({r["service"]["service_id"] for r in records}) == 8  # type: ignore[index]


def test_resume_refuses_when_input_or_settings_changed(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text((EXAMPLES / "services.jsonl").read_text())
    out = tmp_path / "out.jsonl"
    run(str(source), "-o", str(out), *OFFLINE, "--max-services", "2")

    changed_settings = runner.invoke(app, ["run", str(source), "-o", str(out), *OFFLINE, "--seed", "9", "--resume"])
    assert changed_settings.exit_code == 8
    assert "seed changed (they affect results)" in changed_settings.stderr  # names what changed
    assert "--force" in changed_settings.stderr

    source.write_text(source.read_text() + json.dumps({"service_id": "new", "name": "N", "description": "d"}) + "\n")
    changed_input = runner.invoke(app, ["run", str(source), "-o", str(out), *OFFLINE, "--resume"])
    assert changed_input.exit_code == 8
    assert "the input file changed" in changed_input.stderr

    forced = runner.invoke(app, ["run", str(source), "-o", str(out), *OFFLINE, "--resume", "--force"])
    assert forced.exit_code == 0, forced.output
    assert len(read_jsonl(out)) == 9


def test_force_with_other_settings_starts_a_new_output_and_keeps_the_earlier_one(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(str(EXAMPLES / "services.jsonl"), "-o", str(out), *OFFLINE, "--max-services", "2")
    earlier = out.read_text()
    forced = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), *OFFLINE, "--seed", "9", "--resume", "--force"]
    )
    assert forced.exit_code == 0, forced.output
    assert "made with other settings, so a new run starts" in forced.stderr
    assert (tmp_path / "out.jsonl.prev").read_text() == earlier
    records = read_jsonl(out)
    assert len(records) == 8
    assert {r["meta"]["seed"] for r in records} == {9}  # type: ignore[index]  # one file, one set of settings


def test_a_new_run_over_an_existing_output_keeps_it_and_says_where(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    run(str(EXAMPLES / "services.jsonl"), "-o", str(out), *OFFLINE)
    earlier = out.read_text()
    again = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), *OFFLINE, "-q", "--max-services", "1"]
    )
    assert again.exit_code == 0, again.output
    assert f"the earlier output is kept as {out}.prev" in " ".join(again.stderr.split())
    assert (tmp_path / "out.jsonl.prev").read_text() == earlier
    assert len(read_jsonl(out)) == 1
    same = runner.invoke(
        app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--quarantine", str(out), *OFFLINE]
    )
    assert same.exit_code == 3
    assert "the quarantine file would be the output" in same.stderr
    assert len(read_jsonl(out)) == 1  # untouched


def test_a_device_or_pipe_as_output_is_written_through_never_moved(tmp_path: Path) -> None:
    import os

    from service_ambitions.runs.resume import _keep_aside

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert _keep_aside(fifo) is None
    assert fifo.is_fifo()  # still there: moving /dev/null or a FIFO aside would break it


def test_resume_with_nothing_to_resume_starts_a_new_run(tmp_path: Path) -> None:
    # A run killed while starting leaves no output: --resume must still make progress.
    result = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "fresh.jsonl", *OFFLINE, "--resume"])
    assert result.exit_code == 0, result.output
    assert "no earlier run wrote this output, so a new run was started" in result.stderr
    assert len(read_jsonl(tmp_path / "fresh.jsonl")) == 8
    # Records that no run journal vouches for are never appended to blindly.
    (tmp_path / "foreign.jsonl").write_text((tmp_path / "fresh.jsonl").read_text())
    refused = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", "foreign.jsonl", *OFFLINE, "--resume"])
    assert refused.exit_code == 8
    assert "wrote foreign.jsonl, which is not empty" in refused.stderr


def start(tmp_path: Path, source: Path, out: Path) -> subprocess.Popen[bytes]:
    env = subprocess_env(SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs"))
    command = [sys.executable, "-m", "service_ambitions", "run", str(source), "-o", str(out), *OFFLINE, "-q"]
    return subprocess.Popen([*command, "--concurrency", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for_lines(path: Path, count: int, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= count:
            return
        time.sleep(0.02)
    pytest.fail(f"the run never wrote {count} lines")


@pytest.fixture
def many_services(tmp_path: Path) -> Path:
    rows = [json.loads(line) for line in (EXAMPLES / "services.jsonl").read_text().splitlines()]
    source = tmp_path / "many.jsonl"
    source.write_text(
        "".join(json.dumps({**rows[i % 8], "service_id": f"svc-{i:03d}"}) + "\n" for i in range(14)), encoding="utf-8"
    )
    return source


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=lambda s: s.name)
def test_stopped_mid_run_then_resumed_every_service_exactly_once(
    tmp_path: Path, many_services: Path, stop: signal.Signals
) -> None:
    out = tmp_path / "out.jsonl"
    process = start(tmp_path, many_services, out)
    wait_for_lines(out, 2, process)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)

    manifest = read_manifest(only_run(tmp_path / "runs"))
    assert manifest is not None
    if stop == signal.SIGKILL:
        assert process.returncode == -signal.SIGKILL
        # It wrote "running" last; its process is gone, so the record says interrupted.
        assert manifest.status == "interrupted"
        assert "ended without saying how" in str(manifest.stop_reason)
    else:
        assert process.returncode == 130, stderr
        assert b"--resume" in stderr
        assert manifest.status == ("terminated" if stop == signal.SIGTERM else "interrupted")
        assert (b"terminated" if stop == signal.SIGTERM else b"interrupted") in stderr
    for line in out.read_bytes().splitlines()[:-1]:
        json.loads(line)  # every complete line is whole JSON

    if stop == signal.SIGKILL:
        resumed = runner.invoke(
            app,
            ["run", str(many_services), "-o", str(out), *OFFLINE, "--resume"],
            env={"SA_CACHE_DIR": str(tmp_path / "cache"), "SA_RUNS_DIR": str(tmp_path / "runs")},
        )
        assert resumed.exit_code == 0, resumed.output
    else:
        # The printed hint, pasted into a shell as it is, finishes the run.
        hint = next(line for line in stderr.decode().splitlines() if "continue with" in line).split("continue with", 1)[
            1
        ]
        assert hint.strip().startswith("service-ambitions --quiet run ")
        assert manifest.command_line is not None
        shim = tmp_path / "bin"
        shim.mkdir()
        (shim / "service-ambitions").write_text(f'#!/bin/sh\nexec {sys.executable} -m service_ambitions "$@"\n')
        (shim / "service-ambitions").chmod(0o755)
        env = subprocess_env(SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs"))
        env["PATH"] = f"{shim}:{env.get('PATH', '')}"
        pasted = subprocess.run(["/bin/sh", "-c", hint], env=env, capture_output=True, check=False)
        assert pasted.returncode == 0, pasted.stderr
    ids = [r["service"]["service_id"] for r in read_jsonl(out)]  # type: ignore[index]
    assert ids == [f"svc-{i:03d}" for i in range(14)]


@pytest.mark.slow
def test_interrupted_at_many_moments_under_load_every_service_exactly_once(tmp_path: Path, many_services: Path) -> None:
    import random

    from .local_provider import local_provider

    moments = random.Random(7)
    out = tmp_path / "out.jsonl"
    with local_provider(latency_s=0.05) as base_url:
        env = subprocess_env(
            SA_CACHE_DIR=str(tmp_path / "cache"),
            SA_RUNS_DIR=str(tmp_path / "runs"),
            OPENAI_BASE_URL=base_url,
            OPENAI_API_KEY="sk-local-test",  # pragma: allowlist secret
        )
        command = [sys.executable, "-m", "service_ambitions", "run", str(many_services), "-o", str(out)]
        command += ["--model", "openai:gpt-4o-mini", "-q", "--concurrency", "4", "--max-in-flight", "8"]
        stopped = 0
        for attempt in range(6):
            stop = signal.SIGINT if attempt % 2 == 0 else signal.SIGTERM
            process = subprocess.Popen(
                [*command, *(["--resume"] if attempt else [])], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
            )
            time.sleep(moments.uniform(0.8, 2.5))  # a real process, stopped at a random moment
            process.send_signal(stop)
            _, stderr = process.communicate(timeout=60)
            assert b"Traceback" not in stderr, stderr.decode()
            assert b"ValueError" not in stderr
            if process.returncode == 0:
                break  # it finished before the signal came
            assert process.returncode == 130, stderr.decode()
            stopped += 1
            runs = run_dirs(tmp_path / "runs") if (tmp_path / "runs").exists() else []
            assert len(runs) <= 1  # one run, resumed each time (none if stopped while starting)
            for run_dir in runs:
                manifest = read_manifest(run_dir)
                assert manifest is not None
                # This stop's word, or the last one's when it came before the run was reopened;
                # never "running" or "failed".
                assert manifest.status in ("interrupted", "terminated")
            lines = out.read_bytes().splitlines() if out.exists() else []
            for line in lines[:-1]:
                json.loads(line)
        assert stopped >= 2  # the signals did land mid-run
        finished = subprocess.run([*command, "--resume"], env=env, capture_output=True, check=False)
        assert finished.returncode == 0, finished.stderr.decode()
    ids = [r["service"]["service_id"] for r in read_jsonl(out)]  # type: ignore[index]
    assert ids == [f"svc-{i:03d}" for i in range(14)]  # every service once, in input order
    statuses = {manifest.status for d in run_dirs(tmp_path / "runs") if (manifest := read_manifest(d)) is not None}
    assert statuses <= {"completed"}  # one run, resumed to the end: none left running
