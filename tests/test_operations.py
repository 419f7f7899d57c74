"""The operator's controls: prices the user sets, a soft budget, and how long cached answers stay good."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import Overrides, Settings, load_settings
from service_ambitions.core.errors import ConfigError
from service_ambitions.core.spend import ModelPrice
from service_ambitions.runs.journal import read_events

from .conftest import run_dirs
from .fake_openai import COMPLETIONS, FakeOpenAI

runner = CliRunner()


def test_a_price_in_the_settings_prices_a_model_genai_prices_does_not_know(
    respx_mock: respx.MockRouter, openai_env: None, tmp_path: Path, services_file: Path
) -> None:
    fake = FakeOpenAI(usage=(1000, 100))
    respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    config = tmp_path / "app.yaml"
    config.write_text('prices:\n  openai:house-llm: {input: "2", output: "8", per_request: "0.001"}\n')
    args = ["--config", str(config), "run", str(services_file), "-o", str(tmp_path / "o.jsonl")]
    result = runner.invoke(app, [*args, "--model", "openai:house-llm", "--max-cost", "5", "-q"])
    assert result.exit_code == 0, result.output

    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)
    requests = len(fake.requests)
    expected = requests * (Decimal(1000) * 2 + Decimal(100) * 8) / 1_000_000 + requests * Decimal("0.001")
    assert Decimal(report["totals"]["spend"]["cost_usd"]) == expected  # what the provider reported, at these prices
    assert report["totals"]["spend"]["unpriced"] == 0

    quoted = runner.invoke(app, ["--config", str(config), "models", "prices", "openai:house-llm"])
    assert "input $2, output $8 per million tokens, and $0.001 a request — from settings (prices:)" in quoted.stdout
    unknown = runner.invoke(app, ["models", "prices", "openai:house-llm"])
    assert "openai:house-llm: no known price (genai-prices" in unknown.stdout
    known = json.loads(runner.invoke(app, ["models", "prices", "openai:gpt-4o-mini", "--json"]).stdout)
    assert (Decimal(known[0]["input"]), Decimal(known[0]["batch_input"])) == (Decimal("0.15"), Decimal("0.075"))


def test_batch_and_cached_prices() -> None:
    price = ModelPrice(input=Decimal(2), output=Decimal(8), cached_input=Decimal("0.5"), batch_input=Decimal(1))
    assert price.of(1_000_000, 0) == 2
    assert price.of(1_000_000, 0, 1_000_000) == Decimal("0.5")
    assert price.of(1_000_000, 1_000_000, batch=True) == 1 + 8  # no batch output price: the live one


def test_the_soft_budget_warns_once_and_the_run_goes_on(
    respx_mock: respx.MockRouter, openai_env: None, tmp_path: Path, services_file: Path
) -> None:
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI(usage=(1000, 100)))
    out = tmp_path / "o.jsonl"
    args = ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--max-cost", "1"]
    result = runner.invoke(app, [*args, "--warn-cost", "1%"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("past the warning threshold of $0.0100 (warn_cost); the run goes on") == 1
    assert len(out.read_text().splitlines()) == 3  # every service done
    (run,) = run_dirs(Path(str(load_settings().runs_directory())))
    (warning,) = [event for event in read_events(run) if event.type == "budget_warning"]
    assert warning.threshold_usd == Decimal("0.01")  # type: ignore[union-attr]
    assert warning.spent_usd >= Decimal("0.01")  # type: ignore[union-attr]


def test_a_share_of_a_budget_that_is_not_there_is_refused() -> None:
    assert Settings(warn_cost="2.5").warn_amount() == Decimal("2.5")
    assert Settings(warn_cost="80%", max_cost=Decimal(10)).warn_amount() == Decimal(8)
    with pytest.raises(ConfigError, match="share of max_cost, and no max_cost is set"):
        Settings(warn_cost="80%").warn_amount()
    with pytest.raises(ConfigError):
        load_settings(overrides=Overrides(warn_cost="lots"))


def test_cached_answers_expire_after_their_stage_ttl(tmp_path: Path, services_file: Path) -> None:
    env = {"SA_CACHE_DIR": str(tmp_path / "cache")}
    args = ["run", str(services_file), "--model", "offline", "-q"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "a.jsonl")], env=env).exit_code == 0
    settings = Settings(cache_dir=tmp_path / "cache", cache_ttl={"mapping": "7d"})
    assert settings.cache_ttls() == {"mapping": timedelta(days=7)}

    # A week and a day later (the cache's clock moved on): mapping answers are misses, the rest hits.
    from service_ambitions.cache.maintenance import CacheMaintenance
    from service_ambitions.cache.store import ResultCache
    from service_ambitions.core.clock import utc_now

    with ResultCache(tmp_path / "cache", clock=lambda: utc_now() + timedelta(days=8)) as cache:
        stats = CacheMaintenance(cache).stats(settings.cache_ttls())
    assert stats.expired == 45
    assert set(stats.oldest_by_stage) == {"descriptions", "features", "mapping"}


def test_a_ttl_makes_a_run_ask_again_and_purge_expired_removes_them(tmp_path: Path, services_file: Path) -> None:
    env = {"SA_CACHE_DIR": str(tmp_path / "cache")}
    args = ["run", str(services_file), "--model", "offline", "-q"]
    assert runner.invoke(app, [*args, "-o", str(tmp_path / "a.jsonl")], env=env).exit_code == 0
    fresh = runner.invoke(app, [*args, "-o", str(tmp_path / "b.jsonl")], env={**env, "SA_CACHE_TTL": "1h"})
    assert "0 requests" in fresh.stdout  # nothing has expired: every answer (and no snapshot) from the cache
    none_left = runner.invoke(app, ["cache", "purge", "--expired", "--yes"], env={**env, "SA_CACHE_TTL": "1h"})
    assert none_left.exit_code == 0, none_left.output
    refused = runner.invoke(app, ["cache", "purge", "--expired", "--yes"], env=env)
    assert refused.exit_code == 4
    assert "no cache_ttl is set" in refused.output
    mixed = runner.invoke(app, ["cache", "purge", "--expired", "--all", "--yes"], env=env)
    assert mixed.exit_code == 2


def test_runs_verify_says_whether_the_files_are_what_the_run_wrote(tmp_path: Path, services_file: Path) -> None:
    out = tmp_path / "out.jsonl"
    made = runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "offline", "-q"])
    assert made.exit_code == 0, made.output
    (run,) = run_dirs(Path(str(load_settings().runs_directory())))
    written = [event for event in read_events(run) if event.type == "file_written"]
    assert [(e.why, e.lines, e.path) for e in written] == [("output", 3, str(out.resolve()))]  # type: ignore[union-attr]

    assert runner.invoke(app, ["runs", "verify", run.name]).exit_code == 0
    out.write_text(out.read_text().replace("svc-", "SVC-", 1))
    changed = runner.invoke(app, ["runs", "verify", run.name])
    assert changed.exit_code == 1
    assert "changed: output" in changed.stdout
    out.unlink()
    missing = json.loads(runner.invoke(app, ["runs", "verify", run.name, "--json"]).stdout)
    assert [(check["why"], check["state"]) for check in missing] == [("output", "missing")]


def test_runs_show_and_tail_after_a_resumed_run(tmp_path: Path, services_file: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["run", str(services_file), "-o", str(out), "--model", "offline", "-q"]
    assert runner.invoke(app, [*args, "--max-services", "1"]).exit_code == 0
    assert runner.invoke(app, [*args, "--resume"]).exit_code == 0
    (run,) = run_dirs(Path(str(load_settings().runs_directory())))

    shown = json.loads(runner.invoke(app, ["runs", "show", run.name]).stdout)
    assert shown["service_states"] == {"skipped": 1, "done": 2}
    assert shown["files"]["output"]["lines"] == 3

    lines = runner.invoke(app, ["runs", "tail", run.name, "--stage", "mapping", "--service", "svc-2"]).stdout
    events = [json.loads(line) for line in lines.splitlines()]
    assert events
    assert {(e["stage"], e["service_id"], e["v"]) for e in events} == {("mapping", "svc-2", 2)}
    assert all({"ts", "level", "run_id", "type", "data"} <= set(e) for e in events)
    warnings = runner.invoke(app, ["runs", "tail", run.name, "--level", "warning"]).stdout
    assert warnings == ""


def test_the_metrics_say_what_the_events_say_and_are_served_on_loopback() -> None:
    import httpx2

    from service_ambitions.core.events import CallFinished, CallStarted, RetryScheduled, ThrottleChanged
    from service_ambitions.core.models import Stage
    from service_ambitions.core.spend import Spend
    from service_ambitions.jobs.metrics import served_metrics

    spend = Spend(requests=2, input_tokens=100, cache_read_tokens=60, output_tokens=10, cost_usd=Decimal("0.5"))
    with served_metrics(0, max_in_flight=8) as metrics:
        metrics(CallStarted(service_id="a", stage=Stage.MAPPING))
        metrics(CallFinished(service_id="a", stage=Stage.MAPPING, model="m", spend=spend, latency_ms=300, queue_ms=100))
        metrics(CallStarted(service_id="b", stage=Stage.MAPPING))
        metrics(CallFinished(service_id="b", stage=Stage.MAPPING, model="m", spend=spend, cached=True))
        metrics(RetryScheduled(stage=Stage.MAPPING, model="m", wait_s=1, reason="HTTP 429"))
        metrics(ThrottleChanged(limit=4, reason="rate limited (HTTP 429)"))
        page = httpx2.get(f"http://127.0.0.1:{metrics.port}/metrics").text
    assert 'sa_calls_total{model="m",stage="mapping"} 2.0' in page
    assert 'sa_cache_hits_total{model="m",stage="mapping"} 1.0' in page
    assert 'sa_requests_total{model="m",stage="mapping"} 2.0' in page  # the cache hit billed nothing
    assert 'sa_tokens_total{kind="cached",model="m",stage="mapping"} 60.0' in page
    assert 'sa_retries_total{model="m",reason="HTTP 429",stage="mapping"} 1.0' in page
    assert "sa_max_in_flight 4.0" in page
    assert 'sa_calls_in_flight{stage="mapping"} 0.0' in page
    assert 'sa_queue_wait_seconds_sum{stage="mapping"} 0.1' in page
    assert 'sa_call_seconds_sum{stage="mapping"} 0.2' in page


def test_a_metrics_port_in_use_is_one_line(services_file: Path, tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["run", str(services_file), "-o", str(tmp_path / "o.jsonl"), "--model", "offline"]
        result = runner.invoke(app, [*args, "--metrics-port", str(port)])
    assert result.exit_code == 4
    assert f"cannot serve metrics on 127.0.0.1:{port}" in result.output


def test_view_and_export_say_each_file_they_wrote(tmp_path: Path, services_file: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "offline", "-q"]).exit_code == 0
    page = runner.invoke(app, ["view", str(out), "-o", str(tmp_path / "r.html"), "--json"])
    (line,) = [json.loads(text) for text in page.stdout.splitlines()]
    assert (line["type"], line["data"]["why"], line["data"]["path"]) == (
        "file_written",
        "view",
        str(tmp_path / "r.html"),
    )
    tables = runner.invoke(app, ["export", str(out), "-o", str(tmp_path / "csv"), "--json"])
    written = [json.loads(text)["data"] for text in tables.stdout.splitlines()]
    assert sorted(Path(w["path"]).name for w in written) == [
        "features.csv",
        "mappings.csv",
        "plateaus.csv",
        "services.csv",
    ]
    assert all(w["lines"] > 1 and len(w["sha256"]) == 64 for w in written)


def test_an_answer_older_than_its_stage_ttl_is_a_miss(tmp_path: Path) -> None:
    from pydantic import BaseModel

    from service_ambitions.cache.store import ResultCache
    from service_ambitions.config.cache_mode import CacheMode
    from service_ambitions.core.clock import utc_now
    from service_ambitions.core.models import Stage
    from service_ambitions.core.spend import Spend
    from service_ambitions.llm.answers import CachedAnswers
    from service_ambitions.llm.keys import OutputTypes
    from service_ambitions.llm.requests import LLMAnswer, LLMRequest

    class Out(BaseModel):
        value: int

    request = LLMRequest(Stage.MAPPING, "", "?", Out)
    with ResultCache(tmp_path / "c") as cache:
        CachedAnswers(cache, CacheMode.READ, OutputTypes(), lambda e: None).write(
            request, "k", LLMAnswer(Out(value=1), "m", Spend(), ())
        )
    later = utc_now() + timedelta(days=2)
    with ResultCache(tmp_path / "c", clock=lambda: later) as cache:

        def read(ttls: dict[Stage, timedelta]) -> LLMAnswer[Out] | None:
            return CachedAnswers(cache, CacheMode.READ, OutputTypes(), lambda e: None, ttls=ttls).read(request, "k")

        assert read({Stage.MAPPING: timedelta(days=1)}) is None  # two days old, one day to live
        hit = read({Stage.MAPPING: timedelta(days=3)})
        assert hit is not None
        assert hit.output == Out(value=1)
        assert read({Stage.FEATURES: timedelta(days=1)}) is not None  # another stage's TTL
    assert Settings(cache_ttl="1d").snapshots is False
    assert Settings().snapshots is True
