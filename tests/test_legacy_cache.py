"""`migrate cache` on an older tool's JSON-file cache, then `run --reuse-imported`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_ai.messages import ModelMessage, ModelResponse
from pydantic_ai.models.function import AgentInfo
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.events import CacheEntryRejected, CallFinished, Event
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import prepare

from .conftest import EXAMPLES, read_jsonl
from .test_pipeline import scripted

runner = CliRunner()


def write(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content))


def legacy_tree(root: Path, records: list[dict[str, Any]]) -> None:
    """The files an older tool would have cached for these evolutions, with its own feature ids."""
    for record in records:
        base = root / "ctx-university" / record["service"]["service_id"]
        descriptions = [
            {"plateau": p["plateau"], "plateau_name": p["plateau_name"], "description": p["service_description"]}
            for p in record["plateaus"]
        ]
        write(base / "0a1b2c.json", {"descriptions": descriptions})
        for plateau in record["plateaus"]:
            by_role: dict[str, list[dict[str, Any]]] = {}
            for f in plateau["features"]:
                by_role.setdefault(f["customer_type"], []).append(
                    {"name": f["name"], "description": f["description"], "score": f["score"]}
                )
            write(base / str(plateau["plateau"]) / "3d4e5f.json", {"features": by_role})
            for field in ("applications", "technologies", "data"):
                answer = [
                    {"feature_id": f"OLD-{i}", "mappings": {field: f["mappings"][field]}}
                    for i, f in enumerate(plateau["features"])
                ]
                write(base / str(plateau["plateau"]) / "mappings" / field / "6a7b8c.json", {"features": answer})


@pytest.fixture
def generated(tmp_path: Path) -> list[dict[str, Any]]:
    out = tmp_path / "generated.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--max-services", "2"]
    assert runner.invoke(app, [*args, "--cache-dir", str(tmp_path / "first-cache")]).exit_code == 0
    return read_jsonl(out)  # type: ignore[return-value]


def test_import_counts_answers_and_survives_corrupt_files(tmp_path: Path, generated: list[dict[str, Any]]) -> None:
    legacy = tmp_path / "legacy"
    legacy_tree(legacy, generated)
    write(legacy / "ctx-university" / "svc-x" / "1" / "broken.json", '{"features": {')
    write(legacy / "ctx-university" / "svc-x" / "2" / "wrong.json", {"features": 3})
    write(legacy / "ctx-university" / "svc-x" / "zzz" / "a.json", {})
    write(legacy / "notes.txt", "not an answer")
    duplicate = legacy / "ctx-other" / generated[0]["service"]["service_id"] / "9f9f9f.json"
    write(duplicate, (legacy / "ctx-university" / generated[0]["service"]["service_id"] / "0a1b2c.json").read_text())

    result = runner.invoke(app, ["migrate", "cache", str(legacy), "--json"])

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["imported"] == {"descriptions": 2, "features": 10, "mapping": 30}
    corrupt = {Path(row["path"]).name: row["reason"] for row in report["corrupt"]}
    assert corrupt["broken.json"].startswith("not valid JSON")
    assert "not a features answer" in corrupt["wrong.json"]
    skipped = {Path(row["path"]).name: row["reason"] for row in report["skipped"]}
    # Two answers to one call: the first in path order (ctx-other) is kept.
    assert set(skipped) == {"a.json", "notes.txt", "0a1b2c.json"}
    assert "the same answer as ctx-other/" in skipped["0a1b2c.json"]
    assert "'zzz' is not a plateau number" in skipped["a.json"]
    stats = json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert stats["imported"] == 42
    check = json.loads(runner.invoke(app, ["cache", "validate", "--json"]).stdout)
    assert check["imported"] == 42
    assert runner.invoke(app, ["cache", "purge", "--all", "--yes"]).exit_code == 0
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["imported"] == 0
    assert check["corrupt"] == 0


async def test_a_run_that_reuses_imported_answers_calls_no_model(
    tmp_path: Path, generated: list[dict[str, Any]]
) -> None:
    legacy = tmp_path / "legacy"
    legacy_tree(legacy, generated)
    assert runner.invoke(app, ["migrate", "cache", str(legacy)]).exit_code == 0
    calls = 0

    async def count(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> ModelResponse | None:
        nonlocal calls
        calls += 1
        return None

    events: list[Event] = []
    two = tmp_path / "two.jsonl"
    two.write_text("".join(EXAMPLES.joinpath("services.jsonl").read_text().splitlines(keepends=True)[:2]))
    settings = load_settings(overrides=Overrides(reuse_imported=True))
    prepared = prepare(settings, model_factory=lambda name: scripted(count))
    out = tmp_path / "reused.jsonl"

    await generate(prepared, two, out, tmp_path / "q.jsonl", on_event=events.append)

    assert calls == 0
    finished = [e for e in events if isinstance(e, CallFinished)]
    assert len(finished) == 42
    assert all(e.cached and e.model == "imported" for e in finished)
    reused = read_jsonl(out)

    def decided(record: dict[str, Any]) -> list[Any]:
        return [
            [p["service_description"]]
            + [(f["name"], f["customer_type"], f["score"], f["mappings"]) for f in p["features"]]
            for p in record["plateaus"]
        ]

    assert [decided(r) for r in reused] == [decided(r) for r in generated]  # type: ignore[arg-type]

    # Refreshing ignores them as it ignores every stored answer; without the flag they are not used.
    refresh = load_settings(overrides=Overrides(reuse_imported=True, cache_mode="refresh"))
    await generate(prepare(refresh, model_factory=lambda name: scripted(count)), two, out, tmp_path / "q.jsonl")
    assert calls == 42
    without = prepare(
        load_settings(overrides=Overrides(cache_dir=tmp_path / "empty-cache")),
        model_factory=lambda name: scripted(count),
    )
    await generate(without, two, out, tmp_path / "q.jsonl")
    assert calls == 84


async def test_an_imported_answer_that_does_not_fit_is_reported_and_recomputed(
    tmp_path: Path, generated: list[dict[str, Any]]
) -> None:
    legacy = tmp_path / "legacy"
    legacy_tree(legacy, generated[:1])
    service_dir = legacy / "ctx-university" / generated[0]["service"]["service_id"]
    answer = json.loads((service_dir / "1" / "3d4e5f.json").read_text())
    del answer["features"]["partners"]
    write(service_dir / "1" / "3d4e5f.json", answer)
    assert runner.invoke(app, ["migrate", "cache", str(legacy)]).exit_code == 0
    one = tmp_path / "one.jsonl"
    one.write_text(EXAMPLES.joinpath("services.jsonl").read_text().splitlines(keepends=True)[0])
    events: list[Event] = []
    prepared = prepare(
        load_settings(overrides=Overrides(reuse_imported=True)), model_factory=lambda name: scripted(_none)
    )

    await generate(prepared, one, tmp_path / "out.jsonl", tmp_path / "q.jsonl", on_event=events.append)

    rejected = [e for e in events if isinstance(e, CacheEntryRejected)]
    assert "no features for role partners" in rejected[0].reason
    # The plateau's features were written afresh, so the imported mappings (which name the
    # old tool's feature ids) are not matched to them by position: they are asked for again.
    assert [e.stage.value for e in rejected[1:]] == ["mapping"] * 3
    assert all("were not imported" in e.reason for e in rejected[1:])
    made = [e for e in events if isinstance(e, CallFinished) and not e.cached]
    assert [e.stage.value for e in made] == ["features", "mapping", "mapping", "mapping"]
    assert sum(1 for e in events if isinstance(e, CallFinished) and e.model == "imported") == 21 - 4


async def _none(prompt: str, messages: list[ModelMessage], info: AgentInfo) -> None:
    return None
