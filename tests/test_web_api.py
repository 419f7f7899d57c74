"""The runtime API: token on every request, run ids never paths, runs and their events as the CLI sees them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import Settings

pytest.importorskip("starlette")
from starlette.testclient import TestClient

from service_ambitions.web.app import create_app
from service_ambitions.web.state import WebState

TOKEN = "test-token-for-the-api"  # pragma: allowlist secret
runner = CliRunner()


@pytest.fixture
def client(tmp_path: Path, services_file: Path) -> TestClient:
    out = tmp_path / "out.jsonl"
    assert runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "offline", "-q"]).exit_code == 0
    settings = Settings(runs_dir=Path(str(Settings().runs_directory())), cache_dir=Settings().cache_directory())
    return TestClient(create_app(WebState(settings, TOKEN, poll_s=0.01)), base_url="http://127.0.0.1:8000")


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_every_request_needs_the_token(client: TestClient) -> None:
    assert client.get("/?token=wrong", follow_redirects=False).status_code == 401
    assert client.get("/api/runs").status_code == 401
    wrong = client.get("/api/runs", headers={"Authorization": "Bearer wrong"})
    assert wrong.status_code == 401
    assert wrong.json()["error"] == "that token is not this server's"
    assert client.get("/api/runs").json()["error"] == "a token is needed"
    assert client.get("/api/runs", headers=_auth()).status_code == 200
    landing = client.get(f"/?token={TOKEN}", follow_redirects=False)
    assert landing.status_code == 303
    assert "sa_token" in landing.headers["set-cookie"]
    assert "httponly" in landing.headers["set-cookie"].lower()
    assert client.get("/api/runs").status_code == 200  # the cookie now carries it


def test_changes_need_the_same_origin(client: TestClient) -> None:
    other = client.post("/api/runs", headers={**_auth(), "Origin": "http://evil.test"})
    assert other.status_code == 403
    same = client.post("/api/runs", headers={**_auth(), "Origin": "http://127.0.0.1:8000"})
    assert same.status_code == 422  # past the checks: the body is no job
    assert client.put("/api/files/x.jsonl", headers=_auth(), content=b"{}").status_code == 403  # no Origin at all


@pytest.mark.parametrize("run_id", ["..", "../../etc", "..%2F..%2Fetc%2Fpasswd", "20261206T000000Z-abcdef", "x" * 30])
def test_run_ids_are_never_paths(client: TestClient, run_id: str) -> None:
    for suffix in ("", "/report", "/events"):
        response = client.get(f"/api/runs/{run_id}{suffix}", headers=_auth())
        assert response.status_code == 404, (run_id, suffix)


def test_runs_detail_report_and_cache_as_the_cli_sees_them(client: TestClient) -> None:
    (run,) = client.get("/api/runs", headers=_auth()).json()
    detail = client.get(f"/api/runs/{run['run_id']}", headers=_auth()).json()
    assert detail["service_states"] == {"done": 3}
    assert detail["files"]["output"]["lines"] == 3
    report = client.get(f"/api/runs/{run['run_id']}/report", headers=_auth()).json()
    assert report["totals"]["calls"] == 63
    assert len(report["by_service"]) == 3
    cache = client.get("/api/cache", headers=_auth()).json()
    assert cache["entries"] == 63
    schema = client.get("/api/openapi.json", headers=_auth()).json()
    assert "/api/runs/{run_id}/events" in schema["paths"]
    start = schema["paths"]["/api/runs"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert schema["components"]["schemas"][start["$ref"].rsplit("/", 1)[-1]]["properties"]["max_cost"]
    described = client.get("/api/docs", headers=_auth()).text
    assert "server-sent events" in described
    assert "<code>cache_mode</code>: CacheMode or null" in described


def test_events_stream_and_resume_from_the_last_event_id(client: TestClient) -> None:
    (run,) = client.get("/api/runs", headers=_auth()).json()
    url = f"/api/runs/{run['run_id']}/events"
    whole = client.get(url, headers=_auth()).text
    messages = [block for block in whole.split("\n\n") if block]
    first = messages[0].splitlines()
    assert first[0] == "id: 1"
    assert first[1] == "event: run_started"
    assert json.loads(first[2].removeprefix("data: "))["v"] == 2
    rest = client.get(url, headers={**_auth(), "Last-Event-ID": "3"}).text
    assert [block for block in rest.split("\n\n") if block] == messages[3:]


def test_serve_refuses_other_machines_without_a_token() -> None:
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0"])
    assert result.exit_code == 4
    assert "listening on 0.0.0.0 lets other machines in" in result.output


def test_serve_refuses_a_short_token_and_a_workspace_that_is_no_folder(tmp_path: Path) -> None:
    short = runner.invoke(app, ["serve", "--token", "abc"])
    assert short.exit_code == 4
    assert "the token is too short" in short.output
    nowhere = runner.invoke(app, ["serve", str(tmp_path / "absent")])
    assert nowhere.exit_code == 4
    assert "is not a folder" in nowhere.output
