"""Snapshots: a cached re-run reads one row per service, builds no gateway and imports no provider code."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from pydantic_ai.models import Model

from service_ambitions.cache.maintenance import CacheMaintenance
from service_ambitions.cache.store import ResultCache
from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.models import Stage, StageModels
from service_ambitions.core.spend import Spend
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import prepare
from service_ambitions.llm.requests import LLMAnswer
from service_ambitions.pipeline.snapshots import Snapshots, endpoint_environment
from service_ambitions.runs.usage import build_report

from .conftest import EXAMPLES, read_jsonl, subprocess_env


def _never(name: str) -> Model:
    raise AssertionError(f"model {name} resolved, but every service has a snapshot")


def _without_meta(path: Path) -> list[dict[str, object]]:
    return [{k: v for k, v in record.items() if k != "meta"} for record in read_jsonl(path)]


async def test_a_cached_rerun_reads_snapshots_and_never_resolves_a_model(tmp_path: Path) -> None:
    source = EXAMPLES / "services.jsonl"
    first = await generate(
        prepare(load_settings(overrides=Overrides(model="offline"))), source, tmp_path / "a.jsonl", tmp_path / "q.jsonl"
    )
    with ResultCache(tmp_path / "cache") as cache:
        assert CacheMaintenance(cache).stats().snapshots == len(read_jsonl(tmp_path / "a.jsonl"))

    again = prepare(load_settings(overrides=Overrides(model="offline")), model_factory=_never, resolve_models=False)
    second = await generate(again, source, tmp_path / "b.jsonl", tmp_path / "q.jsonl")

    assert _without_meta(tmp_path / "b.jsonl") == _without_meta(tmp_path / "a.jsonl")
    metas = [record["meta"] for record in read_jsonl(tmp_path / "b.jsonl")]
    assert {meta["run_id"] for meta in metas} == {second.run_id}  # type: ignore[index]
    assert all(meta["models"]["mapping"] == "offline" and meta["synthetic"] for meta in metas)  # type: ignore[index]
    # The report counts every call of every service as a cache hit, as the first run counted them.
    made, replayed = build_report(first.directory), build_report(second.directory)
    assert replayed.totals.calls == replayed.totals.cached == made.totals.calls
    assert replayed.totals.spend.requests == 0
    assert {row.key: row.calls for row in replayed.by_stage} == {row.key: row.calls for row in made.by_stage}


async def test_refresh_reads_no_snapshot_and_a_changed_setting_misses(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_text('{"service_id": "a", "name": "A", "description": "Helps students enrol."}\n')
    await generate(
        prepare(load_settings(overrides=Overrides(model="offline"))), source, tmp_path / "a.jsonl", tmp_path / "q.jsonl"
    )

    refresh = prepare(load_settings(overrides=Overrides(model="offline", cache_mode=CacheMode.REFRESH)))
    refreshed = await generate(refresh, source, tmp_path / "b.jsonl", tmp_path / "q.jsonl")
    assert build_report(refreshed.directory).totals.spend.requests == 21  # every stage asked again

    other_seed = prepare(load_settings(overrides=Overrides(model="offline", seed=99)))
    assert other_seed.snapshot_scope != refresh.snapshot_scope
    reseeded = await generate(other_seed, source, tmp_path / "c.jsonl", tmp_path / "q.jsonl")
    assert build_report(reseeded.directory).totals.spend.requests == 21


def test_the_key_changes_with_the_endpoint_but_never_reads_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    before = prepare(load_settings(overrides=Overrides(model="offline")), resolve_models=False).snapshot_scope
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")
    moved = prepare(load_settings(overrides=Overrides(model="offline")), resolve_models=False).snapshot_scope
    assert moved != before
    environ = {"OPENAI_BASE_URL": "u", "AZURE_OPENAI_ENDPOINT": "e", "OPENAI_API_KEY": "k", "OTEL_X_ENDPOINT": "o"}
    seen = endpoint_environment(environ)
    assert seen == {"AZURE_OPENAI_ENDPOINT": "e", "OPENAI_BASE_URL": "u"}


def test_no_snapshot_unless_every_answer_is_a_verified_cache_entry(tmp_path: Path) -> None:
    models = StageModels(descriptions="m", features="m", mapping="m")

    def answer(key: str | None, *, cost: str | None = "0.5") -> tuple[Stage, LLMAnswer[object]]:
        spend = Spend.priced(Decimal(cost) if cost else None, requests=1, input_tokens=10, output_tokens=2)
        return Stage.MAPPING, LLMAnswer(None, "m", spend, (), key=key)

    with ResultCache(tmp_path / "cache") as cache:
        records = Snapshots(cache, "scope", CacheMode.READ)
        assert records.entry([], models, [], [answer("k1"), answer(None)]) is None  # one answer is in no entry
        assert records.entry([], models, [], []) is None
        entry = records.entry([], models, ["x"], [answer("k1"), answer("k2", cost=None)])
        assert entry is not None
        assert entry.deps == ["k1", "k2"]
        (group,) = entry.calls
        assert (group.calls, group.spend.requests, group.spend.input_tokens) == (2, 2, 20)
        assert (group.spend.cost_usd, group.spend.unpriced, group.spend.cost) == (Decimal("0.5"), 1, None)
        readonly = Snapshots(cache, "scope", CacheMode.READONLY)
        assert readonly.entry([], models, [], [answer("k1")]) is None  # never written in readonly mode


_LEAN_CHECK = """
import json, sys
from service_ambitions.cli.app import main
sys.argv = ["service-ambitions", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = {name.split(".")[0] for name, module in sys.modules.items() if module is not None}  # None: blocked
heavy = sorted(loaded & {"pydantic_ai", "openai", "httpx", "httpx2", "logfire"})
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


@pytest.mark.slow
def test_a_cached_run_and_the_read_side_commands_import_no_provider_code(tmp_path: Path) -> None:
    source = EXAMPLES / "services.jsonl"
    out = tmp_path / "out.jsonl"
    env = subprocess_env(SA_CACHE_DIR=str(tmp_path / "cache"), SA_RUNS_DIR=str(tmp_path / "runs"))

    def heavy_modules(*args: str) -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", _LEAN_CHECK, json.dumps(args)], env=env, capture_output=True, text=True, check=False
        )
        outcome = json.loads(done.stderr.strip().splitlines()[-1])
        assert outcome["code"] in (0, None), done.stderr
        heavy: list[str] = outcome["heavy"]
        return heavy

    assert "pydantic_ai" in heavy_modules("run", str(source), "-o", str(out), "--model", "offline", "-q")  # cold
    assert heavy_modules("run", str(source), "-o", str(out), "--model", "offline", "-q") == []  # all cached
    for command in (["--help"], ["--version"], ["report"], ["runs", "list"], ["cache", "stats"], ["cache", "validate"]):
        assert heavy_modules(*command) == [], command
