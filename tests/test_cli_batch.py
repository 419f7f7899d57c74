"""Batch mode end to end: the CLI against the OpenAI Files + Batches wire format (respx), and offline.

The provider's own records are the reference: every request line it received (by custom
id), the usage of every line it answered, and whether anything arrived outside a batch.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
import respx
from genai_prices import Usage, calc_price
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.core.errors import EXIT_DETACHED

from .conftest import read_jsonl, run_dirs
from .fake_batches import FakeBatches

runner = CliRunner()

_FAST = {"SA_BATCH__POLL_INTERVAL_S": "0.01", "SA_BATCH__MAX_POLL_INTERVAL_S": "0.02", "COLUMNS": "200"}
_CALLS = 2 * 21  # descriptions, 5 plateaus of features, 3 catalogues x 5 plateaus of mappings: per service, 21


def _price(answers: list[dict[str, int]], *, batch: bool) -> Decimal:
    return sum(
        (
            calc_price(
                Usage(input_tokens=a["prompt_tokens"], output_tokens=a["completion_tokens"]),
                "gpt-4o-mini",
                provider_id="openai",
                price_context={"processing": "batch"} if batch else None,
            ).total_price
            for a in answers
        ),
        Decimal(0),
    )


def _run(services: Path, out: Path) -> list[str]:
    return ["run", str(services), "-o", str(out), "--model", "openai:gpt-4o-mini", "--batch", "--batch-wait", "0.05"]


def _detached(router: respx.MockRouter, services: Path, out: Path, seed: int) -> tuple[FakeBatches, Path]:
    """A run detached with its first wave at a provider that runs nothing until told: the provider and the run."""
    provider = FakeBatches(seed=seed, checks_before_done=10**6)
    provider.mount(router)
    result = runner.invoke(app, [*_run(services, out), "--detach"], env=_FAST)
    assert result.exit_code == EXIT_DETACHED, result.output
    assert "runs collect" in result.output
    return provider, run_dirs(out.parent / "runs")[0]


@pytest.fixture
def two_services(services_file: Path) -> Path:
    lines = services_file.read_text(encoding="utf-8").splitlines()[:2]
    services_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return services_file


def test_a_batch_run_sends_every_request_through_batches_and_reports_batch_prices(
    respx_mock: respx.MockRouter, openai_env: None, two_services: Path, tmp_path: Path
) -> None:
    provider = FakeBatches(seed=5, expire=2, fail=1)
    provider.mount(respx_mock)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, _run(two_services, out), env=_FAST)
    assert result.exit_code == 0, result.output  # every expired or failed line got its answer in a later batch
    assert provider.live == 0  # nothing went live
    # Expired and failed lines were sent again in later batches, and only those (2 expired, then 1 failed).
    assert sum(provider.sent.values()) - len(provider.sent) == 3
    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)
    totals = report["totals"]
    assert totals["spend"]["requests"] == len(provider.answers)
    assert totals["spend"]["input_tokens"] == sum(a["prompt_tokens"] for a in provider.answers)
    assert Decimal(totals["spend"]["cost_usd"]) == _price(provider.answers, batch=True)
    assert Decimal(totals["spend"]["batch_live_usd"]) == _price(provider.answers, batch=False)
    assert Decimal(totals["spend"]["batch_cost_usd"]) * 2 == Decimal(
        totals["spend"]["batch_live_usd"]
    )  # gpt-4o-mini: half price
    ended = [batch for batch in report["batches"] if batch["ended"]]
    assert len(ended) == len(report["batches"]) == provider.endpoints["batches.create"]
    assert any(batch["status"] == "expired" and batch["unrun"] == 2 for batch in ended)
    assert sum(batch["failed"] for batch in ended) == 1
    text = runner.invoke(app, ["report"], env={"COLUMNS": "200"}).stdout
    assert "batches saved $" in text
    # A batch answer and a live answer are interchangeable: a live re-run is all cache hits.
    again = runner.invoke(
        app, ["run", str(two_services), "-o", str(tmp_path / "live.jsonl"), "--model", "openai:gpt-4o-mini", "-q"]
    )
    assert again.exit_code == 0, again.output
    assert provider.live == 0
    assert [row["plateaus"] for row in read_jsonl(tmp_path / "live.jsonl")] == [
        row["plateaus"] for row in read_jsonl(out)
    ]
    live_report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)["totals"]
    assert live_report["cached"] == live_report["calls"] == _CALLS


def test_detach_then_collect_never_sends_a_request_twice(
    respx_mock: respx.MockRouter, openai_env: None, two_services: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    provider, run = _detached(respx_mock, two_services, out, seed=2)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "detached"
    shown = json.loads(runner.invoke(app, ["runs", "show", run.name]).stdout)
    assert shown["requests_waiting"] == 2  # both services' descriptions
    assert [batch["status"] for batch in shown["batches"]] == ["validating"]
    assert (run / "suspended.jsonl").is_file()
    # Still running: collecting with --detach checks it and detaches again, sending nothing.
    again = runner.invoke(app, ["runs", "collect", run.name, "--detach"], env=_FAST)
    assert again.exit_code == EXIT_DETACHED, again.output
    assert provider.endpoints["batches.create"] == 1
    shown = json.loads(runner.invoke(app, ["runs", "show", run.name]).stdout)
    assert [batch["status"] for batch in shown["batches"]] == ["in_progress"]
    # The provider finishes; a plain collect carries the run to the end, wave by wave.
    provider.checks_before_done = 0
    done = runner.invoke(app, ["runs", "collect", run.name], env=_FAST)
    assert done.exit_code == 0, done.output
    assert len(read_jsonl(out)) == 2
    assert set(provider.sent.values()) == {1}  # every request reached the provider once
    assert len(provider.sent) == len(provider.answers) == _CALLS
    assert provider.live == 0
    report = json.loads(runner.invoke(app, ["report", "--json", run.name]).stdout)
    assert report["totals"]["spend"]["requests"] == _CALLS
    assert report["status"] == "completed"


def test_resume_of_a_detached_run_collects_in_batch_mode_even_without_the_flag(
    respx_mock: respx.MockRouter, openai_env: None, two_services: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.jsonl"
    provider, _ = _detached(respx_mock, two_services, out, seed=4)
    provider.checks_before_done = 0
    args = ["run", str(two_services), "-o", str(out), "--model", "openai:gpt-4o-mini", "--resume"]
    resumed = runner.invoke(app, [*args, "--batch-wait", "0.05"], env=_FAST)
    assert resumed.exit_code == 0, resumed.output
    assert "resuming in batch mode: 2 requests wait in provider batches" in resumed.output
    assert set(provider.sent.values()) == {1}
    assert provider.live == 0


def test_batch_mode_with_the_offline_model_gives_the_live_answers(tmp_path: Path, services_file: Path) -> None:
    live, batched = tmp_path / "live.jsonl", tmp_path / "batched.jsonl"
    args = ["run", str(services_file), "--model", "offline", "-q"]
    assert runner.invoke(app, [*args, "-o", str(live), "--cache-mode", "off"]).exit_code == 0
    result = runner.invoke(app, [*args, "-o", str(batched), "--batch", "--batch-wait", "0.05"])
    assert result.exit_code == 0, result.output
    strip = [{**row, "meta": None} for row in read_jsonl(live)]
    assert [{**row, "meta": None} for row in read_jsonl(batched)] == strip
    batch_run = next(
        d
        for d in run_dirs(tmp_path / "runs")
        if json.loads((d / "manifest.json").read_text())["settings"]["batch"]["enabled"]
    )
    events = [json.loads(line) for line in (batch_run / "events.jsonl").read_text().splitlines()]
    finished = [e for e in events if e["type"] == "call_finished"]
    assert [e for e in finished if not e["data"]["batch"]] == []
    assert finished
    assert any(e["type"] == "batch_submitted" for e in events)


def test_detach_is_refused_where_nothing_could_collect(tmp_path: Path, services_file: Path) -> None:
    out = str(tmp_path / "o.jsonl")
    live = runner.invoke(app, ["run", str(services_file), "-o", out, "--model", "offline", "--detach"])
    assert live.exit_code == 4
    assert "--detach needs --batch" in live.output
    offline = runner.invoke(app, ["run", str(services_file), "-o", out, "--model", "offline", "--batch", "--detach"])
    assert offline.exit_code == 4
    assert "offline model's batches live in this process only" in offline.output


def test_a_model_without_a_batch_api_is_one_clear_error(tmp_path: Path, services_file: Path) -> None:
    result = runner.invoke(
        app,
        ["run", str(services_file), "-o", str(tmp_path / "o.jsonl"), "--model", "offline", "--batch"],
        env={"SA_MODELS__MAPPING": "offline,offline"},
    )
    assert result.exit_code == 4
    assert "is a fallback chain" in result.output


def test_dry_run_prices_at_batch_rates(openai_env: None, services_file: Path, tmp_path: Path) -> None:
    args = ["run", str(services_file), "-o", str(tmp_path / "o.jsonl"), "--model", "openai:gpt-4o-mini"]
    live = json.loads(runner.invoke(app, [*args, "--dry-run", "--json"]).stdout)
    batch = json.loads(runner.invoke(app, [*args, "--batch", "--dry-run", "--json"]).stdout)
    assert batch["batch_prices"]
    assert not live["batch_prices"]
    for live_row, batch_row in zip(live["stages"], batch["stages"], strict=True):
        assert Decimal(batch_row["cost_usd"][1]) * 2 == Decimal(live_row["cost_usd"][1])


_COLLECT_IN_A_CHILD = """
import sys
from pathlib import Path

import httpx2

httpx2.alias_httpx()
import pydantic_ai.models
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from tests.fake_batches import FakeBatches

pydantic_ai.models.ALLOW_MODEL_REQUESTS = True
state = Path(sys.argv[1])
provider = FakeBatches.load(state)
with respx.mock(assert_all_called=False) as router:
    provider.mount(router)
    result = CliRunner().invoke(app, ["runs", "collect", sys.argv[2]])
provider.save(state)
print(result.output)
sys.exit(result.exit_code)
"""


@pytest.mark.slow
def test_a_fresh_process_collects_the_batches_another_left(
    respx_mock: respx.MockRouter, openai_env: None, two_services: Path, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from .conftest import subprocess_env

    out = tmp_path / "out.jsonl"
    provider, run = _detached(respx_mock, two_services, out, seed=7)
    provider.checks_before_done = 0
    state = tmp_path / "provider.json"
    provider.save(state)
    root = Path(__file__).resolve().parent.parent
    env = subprocess_env(**_FAST, SA_BATCH__MAX_WAIT_S="0.05", PYTHONPATH=str(root))
    child = subprocess.run(
        [sys.executable, "-c", _COLLECT_IN_A_CHILD, str(state), run.name],
        env={**env, **{k: os.environ[k] for k in ("SA_RUNS_DIR", "SA_CACHE_DIR", "OPENAI_API_KEY", "OPENAI_BASE_URL")}},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert child.returncode == 0, child.stdout + child.stderr
    after = FakeBatches.load(state)
    assert set(after.sent.values()) == {1}  # the detached requests were collected, not sent again
    assert len(after.sent) == _CALLS
    assert after.live == 0
    assert len(read_jsonl(out)) == 2


def test_a_batch_the_provider_fails_is_reported_with_its_message(
    respx_mock: respx.MockRouter, openai_env: None, two_services: Path, tmp_path: Path
) -> None:
    provider = FakeBatches(seed=1, reject="Model gpt-4o-mini is not available for batch in this project.")
    provider.mount(respx_mock)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, _run(two_services, out), env=_FAST)
    assert result.exit_code == 9, result.output
    quarantined = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert len(quarantined) == 2
    assert all("not available for batch in this project" in str(row["reason"]) for row in quarantined)
    run = run_dirs(tmp_path / "runs")[0]
    shown = json.loads(runner.invoke(app, ["runs", "show", run.name]).stdout)
    assert shown["batches"][0]["status"] == "failed"
    assert shown["batches"][0]["message"] == "Model gpt-4o-mini is not available for batch in this project."
    assert shown["requests_waiting"] == 0
    assert set(provider.sent.values()) == {1}  # a rejected request is not sent again


def test_a_cancelled_batch_quarantines_its_services_and_is_not_sent_again(
    respx_mock: respx.MockRouter, openai_env: None, two_services: Path, tmp_path: Path
) -> None:
    provider = FakeBatches(seed=3, cancel=True)
    provider.mount(respx_mock)
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, _run(two_services, out), env=_FAST)
    assert result.exit_code == 9, result.output
    reasons = [str(row["reason"]) for row in read_jsonl(tmp_path / "out.quarantine.jsonl")]
    assert reasons == ["provider failed: The batch was canceled before the model ran the request."] * 2
    assert set(provider.sent.values()) == {1}  # cancelled on purpose: not resubmitted
    shown = json.loads(runner.invoke(app, ["runs", "show", run_dirs(tmp_path / "runs")[0].name]).stdout)
    assert [(b["status"], b["unrun"]) for b in shown["batches"]] == [("cancelled", 2)]
