from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from service_ambitions.core.errors import ResumeMismatch
from service_ambitions.core.events import ServiceStarted
from service_ambitions.runs.journal import Manifest, RunCounts, RunJournal, RunStatus, read_events, read_manifest
from service_ambitions.runs.resume import find_run, recover_output, recover_quarantine

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def manifest(run_id: str, output: Path, started: datetime = NOW) -> Manifest:
    return Manifest(
        run_id=run_id,
        tool_version="0",
        status=RunStatus.RUNNING,
        started=started,
        updated=started,
        input_path="in.jsonl",
        input_sha256="a",
        output_path=str(output.resolve()),
        quarantine_path="q.jsonl",
        fingerprint="f",
        settings={},
    )


def record(service_id: str) -> bytes:
    return json.dumps({"service": {"service_id": service_id}}).encode() + b"\n"


def test_torn_last_line_is_dropped_and_complete_ones_kept(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    out.write_bytes(record("a") + record("b") + b'{"service": {"serv')
    assert recover_output(out) == {"a", "b"}
    assert out.read_bytes() == record("a") + record("b")
    assert recover_output(tmp_path / "missing.jsonl") == set()


def test_quarantine_recovery_keeps_input_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"kind":"input","line":4,"reason":"x"}\n{"kind":"service","line":7,"reason":"y"}\n{"kind"')
    assert recover_quarantine(path) == {4}
    assert path.read_text().count("\n") == 2


def test_recorder_writes_events_and_an_atomic_manifest(tmp_path: Path) -> None:
    directory = tmp_path / "runs" / "r1"
    with RunJournal(directory, manifest("r1", tmp_path / "o.jsonl"), clock=lambda: NOW) as recorder:
        recorder(ServiceStarted(service_id="s1"))
        recorder.finish(RunStatus.COMPLETED, RunCounts(services_completed=1))
    saved = read_manifest(directory)
    assert saved is not None
    assert (saved.status, saved.counts.services_completed) == (RunStatus.COMPLETED, 1)
    assert not list(directory.glob("*.tmp"))
    assert read_events(directory) == [ServiceStarted(service_id="s1")]
    line = json.loads((directory / "events.jsonl").read_text())
    assert line == {
        "v": 2,
        "ts": NOW.isoformat(),
        "level": "info",
        "run_id": saved.run_id,
        "type": "service_started",
        "service_id": "s1",
        "data": {},
    }


def test_event_files_of_either_shape_read_the_same(tmp_path: Path) -> None:
    from service_ambitions.core.events import CallFinished, as_envelope, from_line
    from service_ambitions.core.models import Stage
    from service_ambitions.core.spend import Spend

    old = {
        "time": "2026-01-01T00:00:00+00:00",
        "type": "call_finished",
        "service_id": "s",
        "stage": "mapping",
        "model": "m",
        "requests": 1,
        "input_tokens": 3,
        "output_tokens": 1,
        "cost_usd": "0.1",
    }
    event = from_line(old)
    assert event == CallFinished(
        service_id="s",
        stage=Stage.MAPPING,
        model="m",
        spend=Spend(requests=1, input_tokens=3, output_tokens=1, cost_usd=Decimal("0.1")),
    )
    lifted = as_envelope(old, "r1")
    assert (lifted["v"], lifted["ts"], lifted["level"], lifted["stage"], lifted["data"]["model"]) == (
        2,
        "2026-01-01T00:00:00+00:00",
        "debug",
        "mapping",
        "m",
    )
    assert from_line(lifted) == event


def test_find_run_by_id_or_latest_for_the_output(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    out = tmp_path / "o.jsonl"
    for run_id, day in (("old", 1), ("new", 2)):
        RunJournal(runs / run_id, manifest(run_id, out, datetime(2026, 3, day, tzinfo=UTC))).close()
    RunJournal(runs / "other", manifest("other", tmp_path / "x.jsonl")).close()
    assert find_run(runs, run_id=None, output=out) == (runs / "new", read_manifest(runs / "new"))
    assert find_run(runs, run_id="old", output=out) == (runs / "old", read_manifest(runs / "old"))
    with pytest.raises(ResumeMismatch, match="no run 'nope'"):
        find_run(runs, run_id="nope", output=out)
    assert find_run(runs, run_id=None, output=tmp_path / "never.jsonl") is None


def test_a_running_record_whose_process_is_gone_reads_as_interrupted(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    dead_pid = int(gone.stdout)
    record = manifest("r1", tmp_path / "o.jsonl").model_copy(update={"pid": dead_pid, "host": socket.gethostname()})
    RunJournal(tmp_path / "runs" / "r1", record).close()
    read = read_manifest(tmp_path / "runs" / "r1")
    assert read is not None
    assert read.status == RunStatus.INTERRUPTED
    elsewhere = record.model_copy(update={"host": "another-machine"})
    RunJournal(tmp_path / "runs" / "r2", elsewhere.model_copy(update={"run_id": "r2"})).close()
    assert read_manifest(tmp_path / "runs" / "r2").status == RunStatus.RUNNING  # type: ignore[union-attr]


def test_following_a_run_waits_while_it_runs_and_stops_once_it_does_not(tmp_path: Path) -> None:
    from service_ambitions.core.events import RunFinished
    from service_ambitions.runs.journal import follow_events

    directory = tmp_path / "runs" / "r1"
    recorder = RunJournal(directory, manifest("r1", tmp_path / "o.jsonl"))
    recorder(ServiceStarted(service_id="a"))
    recorder(RunFinished(run_id="r1", status="interrupted"))  # an earlier segment's end: not the run's
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 2:  # meanwhile the run goes on, and ends
            recorder(ServiceStarted(service_id="b"))
            recorder.finish(RunStatus.COMPLETED, RunCounts())

    lines = list(follow_events(directory, follow=True, sleep=nap))
    recorder.close()
    assert [json.loads(line)["type"] for line in lines] == ["service_started", "run_finished", "service_started"]
    assert len(naps) == 2
    assert list(follow_events(directory)) == lines  # without follow: what is there now


def test_a_torn_event_line_is_cut_before_a_resumed_segment_appends(tmp_path: Path) -> None:
    directory = tmp_path / "runs" / "r1"
    with RunJournal(directory, manifest("r1", tmp_path / "o.jsonl"), clock=lambda: NOW) as recorder:
        recorder(ServiceStarted(service_id="s1"))
    with (directory / "events.jsonl").open("a") as handle:
        handle.write('{"time": "x", "service_id": "s2", "ty')  # a full disk cut this line short
    with RunJournal(directory, manifest("r1", tmp_path / "o.jsonl"), clock=lambda: NOW) as recorder:
        recorder(ServiceStarted(service_id="s3"))
    assert read_events(directory) == [ServiceStarted(service_id="s1"), ServiceStarted(service_id="s3")]

    with (directory / "events.jsonl").open("a") as handle:
        handle.write("not json\n")  # a damaged line in the middle is skipped, not fatal
    assert len(read_events(directory)) == 2
