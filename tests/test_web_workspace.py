"""The web face over a workspace: files only inside it, uploads read like input, jobs started as the CLI's own runs."""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import pytest

from service_ambitions.config.settings import load_settings

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from service_ambitions.jobs.launch import JobForm, JobLauncher, workspace_file
from service_ambitions.web.agui import json_patch
from service_ambitions.web.app import create_app
from service_ambitions.web.state import WebState

TOKEN = "workspace-test-token"  # pragma: allowlist secret
ORIGIN = "http://127.0.0.1:8000"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}", "Origin": ORIGIN}


def _client(workspace: Path, *, launcher: JobLauncher | None = None, upload_limit: int = 1 << 20) -> TestClient:
    state = WebState(
        load_settings(None),
        TOKEN,
        workspace=workspace,
        launcher=launcher,
        max_upload_bytes=upload_limit,
        poll_s=0.01,
    )
    return TestClient(create_app(state), base_url=ORIGIN)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "workspace"
    folder.mkdir()
    shutil.copy(EXAMPLES / "services.jsonl", folder / "services.jsonl")
    return folder


@pytest.mark.parametrize(
    "name", ["../outside.jsonl", "/etc/passwd", "a/../../x.jsonl", "-rf.jsonl", "", "sub/../../../etc/hosts"]
)
def test_names_outside_the_workspace_are_refused(workspace: Path, name: str) -> None:
    from service_ambitions.core.errors import InputError

    with pytest.raises(InputError):
        workspace_file(workspace, name)


def test_a_symbolic_link_out_of_the_workspace_is_refused(workspace: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text('{"service_id": "x", "name": "x", "description": "x"}\n')
    (workspace / "link.jsonl").symlink_to(secret)
    client = _client(workspace)
    answer = client.get("/api/outputs/findings?file=link.jsonl", headers=_headers())
    assert answer.status_code == 422
    assert "leads outside the workspace" in answer.json()["error"]
    listed = client.get("/api/workspace", headers=_headers()).json()
    assert [row["name"] for row in listed["files"]] == ["services.jsonl"]  # links are not listed
    assert client.get("/api/outputs/roadmap?file=../secret.jsonl", headers=_headers()).status_code == 422
    assert client.get("/api/outputs/diff?old=services.jsonl&new=/etc/passwd", headers=_headers()).status_code == 422


def test_the_workspace_lists_services_and_outputs_and_hides_no_secret(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-hidden-0123456789abcdef")  # pragma: allowlist secret
    (workspace / ".runs").mkdir()
    (workspace / ".runs" / "hidden.jsonl").write_text("{}\n")
    client = _client(workspace)
    view = client.get("/api/workspace", headers=_headers())
    assert view.status_code == 200
    assert [(row["name"], row["kind"]) for row in view.json()["files"]] == [("services.jsonl", "services")]
    assert {row["field"] for row in view.json()["catalogues"]} == {"applications", "data", "technologies"}
    page = client.get("/", headers=_headers())
    assert page.status_code == 200
    assert "sk-hidden" not in view.text + page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]


def test_uploads_are_read_like_input_size_limited_and_never_overwrite(workspace: Path) -> None:
    client = _client(workspace, launcher=JobLauncher(workspace), upload_limit=10_000)
    body = (EXAMPLES / "services.jsonl").read_bytes()
    stored = client.put("/api/files/mine.jsonl", headers=_headers(), content=body + b"not json\n")
    assert stored.status_code == 201
    assert stored.json()["services"] == 8
    assert stored.json()["rejected"][0].startswith("line 9:")
    again = client.put("/api/files/mine.jsonl", headers=_headers(), content=body)
    assert again.status_code == 422
    assert "already" in again.json()["error"]
    assert client.put("/api/files/mine.jsonl?replace=true", headers=_headers(), content=body).status_code == 201
    nothing = client.put("/api/files/bad.jsonl", headers=_headers(), content=b"<html>\n")
    assert nothing.status_code == 422
    assert "holds no service" in nothing.json()["error"]
    assert not (workspace / "bad.jsonl").exists()
    assert client.put("/api/files/big.jsonl", headers=_headers(), content=body * 10).status_code == 413
    assert client.put("/api/files/..%2Fout.jsonl", headers=_headers(), content=body).status_code == 422
    assert client.put("/api/files/notes.txt", headers=_headers(), content=body).status_code == 422
    assert not list(workspace.glob(".upload-*"))  # nothing half-written is left behind


def test_a_read_only_server_starts_nothing(workspace: Path) -> None:
    client = _client(workspace)
    form = {"input": "services.jsonl", "output": "out.jsonl", "model": "offline"}
    answer = client.post("/api/runs", headers=_headers(), json=form)
    assert answer.status_code == 422
    assert "--read-only" in answer.json()["error"]
    assert "Upload a services file" not in client.get("/", headers=_headers()).text


def test_validate_and_dry_run_as_the_cli_does(workspace: Path) -> None:
    client = _client(workspace, launcher=JobLauncher(workspace))
    checks = client.post("/api/validate", headers=_headers(), json={"input": "services.jsonl", "model": "offline"})
    assert checks.status_code == 200
    assert all(row["ok"] for row in checks.json())
    unknown = client.post("/api/validate", headers=_headers(), json={"input": "services.jsonl", "model": "nosuch:x"})
    assert not next(row for row in unknown.json() if row["name"] == "models")["ok"]
    form = {"input": "services.jsonl", "output": "out.jsonl", "model": "offline", "max_services": 3}
    plan = client.post("/api/plan", headers=_headers(), json=form).json()
    assert plan["services"] == 3
    assert [row["calls"] for row in plan["stages"]] == [3, 15, 45]
    wrong = client.post("/api/plan", headers=_headers(), json={**form, "concurrency": 0})
    assert wrong.status_code == 422
    assert wrong.json()["error"].startswith("concurrency:")
    smuggled = client.post("/api/plan", headers=_headers(), json={**form, "model": "--help"})
    assert smuggled.status_code == 422


def test_a_job_form_becomes_the_cli_words_and_nothing_else(workspace: Path) -> None:
    form = JobForm(
        input="services.jsonl",
        output="out/evolutions.jsonl",
        model="openai:gpt-4o-mini",
        mapping_model="offline",
        max_cost="2.5",
        warn_cost="80%",
        batch=True,
    )
    assert form.words(workspace) == [
        "run",
        "./services.jsonl",
        "--output=./out/evolutions.jsonl",
        "--model=openai:gpt-4o-mini",
        "--mapping-model=offline",
        "--max-cost=2.5",
        "--warn-cost=80%",
        "--batch",
    ]
    remap = JobForm(
        command="map",
        input="services.jsonl",
        output="m.jsonl",
        max_services=3,
        workers=2,
        catalogues=["data"],
        cache_mode="refresh",
        strict=False,
    )
    assert remap.words(workspace) == [
        "map",
        "./services.jsonl",
        "--output=./m.jsonl",
        "--cache-mode=refresh",
        "--catalogue=data",
        "--no-strict",
    ]
    assert remap.overrides().cache_mode == "refresh"
    with pytest.raises(ValueError, match="cache_mode"):
        JobForm(input="services.jsonl", output="o.jsonl", cache_mode="sometimes")


def test_json_patch_turns_one_state_into_the_next() -> None:
    old = {"done": 1, "stages": [{"calls": 1}], "paused": ["a"], "gone": 1, "a/b": 1}
    new = {"done": 2, "stages": [{"calls": 1}, {"calls": 2}], "paused": ["a"], "new": None, "a/b": 2}
    patch = json_patch(old, new)
    assert {"op": "replace", "path": "/done", "value": 2} in patch
    assert {"op": "remove", "path": "/gone"} in patch
    assert {"op": "add", "path": "/new", "value": None} in patch
    assert {"op": "replace", "path": "/a~1b", "value": 2} in patch
    assert json_patch(new, new) == []


@pytest.mark.slow
def test_a_run_started_from_the_web_is_an_ordinary_run(workspace: Path) -> None:
    launcher = JobLauncher(workspace, program=[sys.executable, "-m", "service_ambitions"])
    client = _client(workspace, launcher=launcher)
    form = {"input": "services.jsonl", "output": "evolutions.jsonl", "model": "offline", "max_services": 3}
    started = client.post("/api/runs", headers=_headers(), json=form)
    assert started.status_code == 201, started.text
    run_id = started.json()["run_id"]
    stream = client.get(f"/api/runs/{run_id}/agui", headers=_headers()).text  # followed to the end
    events = [json.loads(line.removeprefix("data: ")) for line in stream.splitlines() if line.startswith("data: ")]
    kinds = [event["type"] for event in events]
    assert kinds[0] == "RUN_STARTED"
    assert kinds[-1] == "RUN_FINISHED"
    assert kinds.count("STEP_STARTED") == kinds.count("STEP_FINISHED") == 3
    state = next(event["snapshot"] for event in events if event["type"] == "STATE_SNAPSHOT")
    for event in events:
        if event["type"] == "STATE_DELTA":
            for op in event["delta"]:
                assert op["op"] in {"add", "replace", "remove"}
                target, *keys = [state, *op["path"].split("/")[1:]]
                for key in keys[:-1]:
                    target = target[int(key)] if isinstance(target, list) else target[key]
                target[keys[-1]] = op.get("value")
    report = client.get(f"/api/runs/{run_id}/report", headers=_headers()).json()
    assert state["done"] == 3
    assert state["calls"] == report["totals"]["calls"] == 63
    live = client.get(f"/api/runs/{run_id}/live", headers=_headers()).json()
    assert live["calls"] == 63
    assert [(row["stage"], row["calls"], row["planned"]) for row in live["stages"]] == [
        ("descriptions", 3, 3),
        ("features", 15, 15),
        ("mapping", 45, 45),
    ]
    detail = client.get(f"/api/runs/{run_id}", headers=_headers()).json()
    assert detail["status"] == "completed"
    assert detail["command_line"][1] == "run"
    assert "services.jsonl" in detail["command_line"]
    assert (workspace / "evolutions.jsonl").read_text().count("\n") == 3
    for page in (f"/runs/{run_id}", f"/runs/{run_id}/report", "/runs", "/findings?file=evolutions.jsonl", "/cache"):
        assert client.get(page, headers=_headers()).status_code == 200, page
    roadmap = client.get("/api/outputs/roadmap?file=evolutions.jsonl", headers=_headers())
    assert "'unsafe-inline'" in roadmap.headers["content-security-policy"]
    assert client.get("/api/outputs/findings?file=evolutions.jsonl", headers=_headers()).json()["services"]
    same = client.get("/diff?old=evolutions.jsonl&new=evolutions.jsonl", headers=_headers())
    assert "0 services changed" in same.text
    # A map of that output, one catalogue again.
    remap = {"command": "map", "input": "evolutions.jsonl", "output": "remapped.jsonl", "model": "offline"}
    mapped = client.post("/api/runs", headers=_headers(), json={**remap, "catalogues": ["data"]})
    assert mapped.status_code == 201, mapped.text
    client.get(f"/api/runs/{mapped.json()['run_id']}/agui", headers=_headers())  # to its end
    mapped_run = client.get(f"/api/runs/{mapped.json()['run_id']}", headers=_headers()).json()
    assert (mapped_run["command"], mapped_run["status"]) == ("map", "completed")
    assert "--catalogue" in mapped_run["command_line"]
    mapped_live = client.get(f"/api/runs/{mapped.json()['run_id']}/live", headers=_headers()).json()
    assert [(row["stage"], row["planned"]) for row in mapped_live["stages"]] == [("mapping", 15)]
    assert (workspace / "remapped.jsonl").read_text().count("\n") == 3
    # Continue it: nothing left to do, and the CLI's resume rules apply.
    assert client.post(f"/api/runs/{run_id}/cancel", headers=_headers()).status_code == 409
    resumed = client.post(f"/api/runs/{run_id}/resume", headers=_headers())
    assert resumed.status_code == 201, resumed.text
    assert resumed.json()["run_id"] == run_id


@pytest.mark.slow
def test_a_run_is_stopped_and_continued_from_the_web(workspace: Path, tmp_path: Path) -> None:
    many = workspace / "many.jsonl"
    rows = [json.loads(line) for line in (workspace / "services.jsonl").read_text().splitlines()]
    many.write_text("".join(json.dumps({**rows[i % 8], "service_id": f"svc-{i}"}) + "\n" for i in range(120)))
    launcher = JobLauncher(workspace)
    client = _client(workspace, launcher=launcher)
    form = {"input": "many.jsonl", "output": "many-out.jsonl", "model": "offline", "concurrency": 1}
    run_id = client.post("/api/runs", headers=_headers(), json=form).json()["run_id"]
    assert run_id in launcher.running()
    assert client.post(f"/api/runs/{run_id}/cancel", headers=_headers()).status_code == 202
    deadline = time.monotonic() + 60
    while run_id in launcher.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    detail = client.get(f"/api/runs/{run_id}", headers=_headers()).json()
    assert detail["status"] == "terminated"
    resumed = client.post(f"/api/runs/{run_id}/resume", headers=_headers())
    assert resumed.status_code == 201, resumed.text
    client.get(f"/api/runs/{run_id}/agui", headers=_headers())  # to its end
    detail = client.get(f"/api/runs/{run_id}", headers=_headers()).json()
    assert detail["status"] == "completed"
    assert detail["resumed"] == 1
    assert (workspace / "many-out.jsonl").read_text().count("\n") == 120
    # The server stopping: a run still going is stopped and named; one that ended is not.
    again = client.post("/api/runs", headers=_headers(), json={**form, "output": "again.jsonl"}).json()["run_id"]
    assert launcher.stop_all() == [again]
    assert client.get(f"/api/runs/{again}", headers=_headers()).json()["status"] == "terminated"
    assert launcher.stopped == [again]


@pytest.mark.slow
def test_a_job_that_cannot_start_says_why(workspace: Path) -> None:
    client = _client(workspace, launcher=JobLauncher(workspace))
    form = {"input": "services.jsonl", "output": "out.jsonl", "model": "nosuch:model"}
    answer = client.post("/api/runs", headers=_headers(), json=form)
    assert answer.status_code == 422
    assert answer.json()["error"].startswith("the job did not start: cannot use model 'nosuch:model'")
    assert client.post("/api/runs", headers=_headers(), json={**form, "input": "absent.jsonl"}).status_code == 422


def test_a_followed_stream_ends_when_the_server_stops(tmp_path: Path, services_file: Path) -> None:
    from typer.testing import CliRunner

    from service_ambitions.cli.app import app

    out = tmp_path / "out.jsonl"
    assert (
        CliRunner().invoke(app, ["run", str(services_file), "-o", str(out), "--model", "offline", "-q"]).exit_code == 0
    )
    state = WebState(load_settings(None), TOKEN, workspace=tmp_path, poll_s=0.01)
    client = TestClient(create_app(state), base_url=ORIGIN)
    (run,) = client.get("/api/runs", headers=_headers()).json()
    manifest = Path(load_settings(None).runs_directory()) / run["run_id"] / "manifest.json"
    document = json.loads(manifest.read_text())
    manifest.write_text(json.dumps({**document, "status": "running", "pid": None}))  # as if it still ran elsewhere
    state.stopping.set()
    for path in ("events", "agui"):
        answer = client.get(f"/api/runs/{run['run_id']}/{path}", headers=_headers())
        assert answer.status_code == 200
        assert "run_started" in answer.text or "RUN_STARTED" in answer.text
    ended = client.get(f"/api/runs/{run['run_id']}/agui", headers=_headers()).text
    assert "RUN_FINISHED" not in ended
    assert "RUN_ERROR" not in ended  # it did not end because the run did: the server stopping ended it


def test_answers_are_kept_while_their_files_are_unchanged(tmp_path: Path) -> None:
    import os

    from service_ambitions.web.memo import FileMemo

    memo = FileMemo(size=2)
    source = tmp_path / "a.jsonl"
    source.write_text("1\n")
    made: list[int] = []

    def make() -> int:
        made.append(1)
        return len(made)

    assert memo.get("count", [source], make) == 1
    assert memo.get("count", [source], make) == 1  # kept
    source.write_text("1\n2\n")
    assert memo.get("count", [source], make) == 2  # the file changed
    os.utime(source, ns=(1, 1))
    assert memo.get("count", [source], make) == 3  # touched: made again
    memo.get("other", [source], make)
    memo.get("third", [source], make)
    assert memo.get("count", [source], make) == 6  # the least recently used went first
    assert memo.get("count", [tmp_path / "gone.jsonl"], make) == 7  # a missing file is a key too
    assert memo.peek("made along", [source], str) is None
    memo.put("made along", [source], "kept")
    assert memo.peek("made along", [source], str) == "kept"
    assert memo.peek("made along", [source], int) is None  # kept, but not of the kind asked for
    assert memo.get("made along", [source], make) == "kept"


def test_the_documented_agui_client_follows_a_run(tmp_path: Path, services_file: Path) -> None:
    import importlib.util

    from typer.testing import CliRunner

    from service_ambitions.cli.app import app

    out = tmp_path / "out.jsonl"
    assert (
        CliRunner().invoke(app, ["run", str(services_file), "-o", str(out), "--model", "offline", "-q"]).exit_code == 0
    )
    spec = importlib.util.spec_from_file_location("agui_client", EXAMPLES / "agui_client.py")
    assert spec is not None
    assert spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    client = TestClient(create_app(WebState(load_settings(None), TOKEN, workspace=tmp_path)), base_url=ORIGIN)
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    (run,) = client.get("/api/runs").json()
    seen = list(example.follow(client, run["run_id"]))
    kinds = [type(event).__name__ for event, _ in seen]
    assert kinds[0] == "RunStartedEvent"
    assert kinds[-1] == "RunFinishedEvent"
    assert seen[-1][1]["done"] == 3
    state = {"a": {"b": [1, 2]}, "c": 1}
    from ag_ui.core import StateDeltaEvent

    patch = StateDeltaEvent(
        delta=[
            {"op": "add", "path": "/a/b/1", "value": 9},
            {"op": "remove", "path": "/c"},
            {"op": "replace", "path": "/a/b/0", "value": 0},
        ]
    ).delta
    example.apply_patch(state, patch)
    assert state == {"a": {"b": [0, 9, 2]}}


def test_what_files_and_models_say_is_shown_as_text_on_every_page(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from service_ambitions.cli.app import app

    script = "<script>alert(1)</script>"
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    rows = [
        {"service_id": f'svc-{i}"><img src=x onerror=alert({i})>', "name": f"{script} {i}", "description": script}
        for i in range(2)
    ]
    (workspace / "services.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows) + "<b>not json</b>\n")
    out = workspace / "out.jsonl"
    made = CliRunner().invoke(app, ["run", str(workspace / "services.jsonl"), "-o", str(out), "--model", "offline"])
    assert made.exit_code == 9, made.output  # one line quarantined
    (workspace / "copy.jsonl").write_text(out.read_text())
    client = _client(workspace, launcher=JobLauncher(workspace))
    (run,) = client.get("/api/runs", headers=_headers()).json()
    pages = [
        "/",
        "/runs",
        f"/runs/{run['run_id']}",
        f"/runs/{run['run_id']}/report",
        "/findings?file=out.jsonl",
        "/diff?old=copy.jsonl&new=out.jsonl",
    ]
    for page in pages:
        html = client.get(page, headers=_headers()).text
        assert "<script>alert" not in html, page
        assert "<img src=x" not in html, page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in client.get("/findings?file=out.jsonl", headers=_headers()).text
    stored = client.put(
        "/api/files/%3Cb%3E.jsonl", headers=_headers(), content=(workspace / "services.jsonl").read_bytes()
    )
    assert stored.status_code == 201
    assert "&lt;b&gt;.jsonl" in client.get("/", headers=_headers()).text


@pytest.mark.slow
def test_a_run_the_cli_started_is_stopped_from_the_web(workspace: Path) -> None:
    import subprocess

    from service_ambitions.runs.lock import lock_holder

    from .conftest import subprocess_env

    many = workspace / "many.jsonl"
    rows = [json.loads(line) for line in (workspace / "services.jsonl").read_text().splitlines()]
    many.write_text("".join(json.dumps({**rows[i % 8], "service_id": f"svc-{i}"}) + "\n" for i in range(120)))
    command = [
        sys.executable,
        "-m",
        "service_ambitions",
        "-q",
        "run",
        "many.jsonl",
        "-o",
        "cli.jsonl",
        "--model",
        "offline",
    ]
    child = subprocess.Popen(
        [*command, "--concurrency", "1", "--json-logs"],
        cwd=workspace,
        env=subprocess_env(),
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    run_id = json.loads(child.stderr.readline())["run_id"]  # its first event: journaled, the lock held
    client = _client(workspace, launcher=JobLauncher(workspace))
    runs = Path(load_settings(None).runs_directory())
    assert lock_holder(workspace / "cli.jsonl", runs) == child.pid
    assert lock_holder(workspace / "nothing.jsonl", runs) is None
    stopped = client.post(f"/api/runs/{run_id}/cancel", headers=_headers())
    assert stopped.status_code == 202, stopped.text
    child.stderr.read()
    child.stderr.close()
    assert child.wait(60) == 130
    assert client.get(f"/api/runs/{run_id}", headers=_headers()).json()["status"] == "terminated"
    assert lock_holder(workspace / "cli.jsonl", runs) is None
    again = client.post(f"/api/runs/{run_id}/cancel", headers=_headers())
    assert again.status_code == 409
    assert "not running on this machine" in again.json()["error"]
    # Continued from the web with the words the CLI was given (a global option among them).
    continued = client.post(f"/api/runs/{run_id}/resume", headers=_headers())
    assert continued.status_code == 201, continued.text
    client.get(f"/api/runs/{run_id}/agui", headers=_headers())  # to its end
    assert client.get(f"/api/runs/{run_id}", headers=_headers()).json()["status"] == "completed"
    assert (workspace / "cli.jsonl").read_text().count("\n") == 120


def test_a_run_is_continued_with_the_words_that_started_it() -> None:
    from service_ambitions.jobs.launch import continuing

    started = ["service-ambitions", "--quiet", "run", "--output", "o.jsonl", "--model", "offline", "s.jsonl"]
    assert continuing(started, "R") == [*started[1:], "--resume", "--run-id=R"]
    resumed = [*started, "--resume", "--force", "--run-id", "OLD"]
    assert continuing(resumed, "R") == [*started[1:], "--resume", "--run-id=R"]
    assert continuing([*started, "--run-id=OLD"], "R") == [*started[1:], "--resume", "--run-id=R"]
    assert continuing(["service-ambitions", "run", "s.jsonl", "-o", "o.jsonl", "--dry-run"], "R") is None
    assert continuing(["service-ambitions", "view", "o.jsonl"], "R") is None
