"""Caching seen from the command line: re-runs make no call, changes recompute only what they touch."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import EXAMPLES, read_jsonl, subprocess_env
from .fake_openai import COMPLETIONS, FakeOpenAI

runner = CliRunner()
MODEL = ["--model", "openai:gpt-4o-mini"]


@pytest.fixture
def provider(respx_mock: respx.MockRouter, openai_env: None) -> respx.Route:
    return respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI())


def run(source: Path, out: Path, *extra: str) -> str:
    result = runner.invoke(app, ["run", str(source), "-o", str(out), *MODEL, *extra])
    assert result.exit_code == 0, result.output
    return result.stdout


def without_run_identity(records: list[dict[str, object]]) -> list[dict[str, object]]:
    for record in records:
        meta = record["meta"]
        assert isinstance(meta, dict)
        meta.pop("run_id")
        meta.pop("created")
    return records


def test_second_run_makes_no_request_and_writes_the_same_records(
    provider: respx.Route, tmp_path: Path, services_file: Path
) -> None:
    run(services_file, tmp_path / "first.jsonl")
    assert provider.call_count == 63
    summary = run(services_file, tmp_path / "second.jsonl")

    assert provider.call_count == 63
    assert without_run_identity(read_jsonl(tmp_path / "first.jsonl")) == without_run_identity(
        read_jsonl(tmp_path / "second.jsonl")
    )
    total = next(cells for line in summary.splitlines() if (cells := line.split())[:1] == ["total"])
    assert total[1:4] == ["63", "63", "0"]  # calls, cached, requests


def test_changing_one_service_recomputes_only_its_calls(
    provider: respx.Route, tmp_path: Path, services_file: Path
) -> None:
    run(services_file, tmp_path / "a.jsonl")
    rows = read_jsonl(services_file)
    rows[1]["description"] = "Now also handles timetable clashes."
    services_file.write_text("".join(json.dumps(row) + "\n" for row in rows))

    run(services_file, tmp_path / "b.jsonl")
    # Every call of that service carries its description (the mapping calls too, so the
    # model matches features on what the service is); no other service's call is redone.
    assert provider.call_count == 63 + 21
    recomputed = [json.loads(call.request.content)["messages"][1]["content"] for call in provider.calls[63:]]
    assert all("Service: Service 2 (svc-2)" in prompt for prompt in recomputed)


def test_changing_the_mapping_prompt_recomputes_only_mapping_calls(
    provider: respx.Route, tmp_path: Path, services_file: Path
) -> None:
    run(services_file, tmp_path / "a.jsonl")
    prompts = tmp_path / "prompts"
    prompts.mkdir()
    packaged = Path(__file__).resolve().parent.parent / "service_ambitions" / "reference" / "prompts" / "mapping.md"
    (prompts / "mapping.md").write_text(packaged.read_text() + "\nName at most two items per feature.\n")

    run(services_file, tmp_path / "b.jsonl", "--cache-mode", "read")
    assert provider.call_count == 63
    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(tmp_path / "c.jsonl"), *MODEL], env={"SA_PROMPTS_DIR": str(prompts)}
    )
    assert result.exit_code == 0, result.output
    assert provider.call_count == 63 + 3 * 15
    mapping_bodies = [json.loads(call.request.content) for call in provider.calls[63:]]
    assert all("mappings" in body["tools"][0]["function"]["parameters"]["properties"] for body in mapping_bodies)


def test_cache_modes(provider: respx.Route, tmp_path: Path, services_file: Path) -> None:
    run(services_file, tmp_path / "o.jsonl", "--cache-mode", "off")
    run(services_file, tmp_path / "o.jsonl", "--cache-mode", "readonly")  # nothing stored by either
    assert provider.call_count == 126
    run(services_file, tmp_path / "o.jsonl")  # read: fills
    run(services_file, tmp_path / "o.jsonl", "--cache-mode", "readonly")  # uses hits
    assert provider.call_count == 189
    run(services_file, tmp_path / "o.jsonl", "--cache-mode", "refresh")  # recomputes everything
    assert provider.call_count == 252


def test_a_corrupt_entry_is_a_miss_reported_once_and_replaced(
    provider: respx.Route, tmp_path: Path, services_file: Path
) -> None:
    run(services_file, tmp_path / "a.jsonl")
    database = tmp_path / "cache" / "cache.db"
    connection = sqlite3.connect(database)
    rowid, blob = connection.execute("SELECT rowid, value FROM Cache WHERE key LIKE 'r:%' LIMIT 1").fetchone()
    connection.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(blob)[:-4] + b"oops", rowid))
    connection.execute("DELETE FROM Cache WHERE key LIKE 'e:%'")  # so the stages' answers are read
    connection.commit()
    connection.close()

    summary = run(services_file, tmp_path / "b.jsonl")
    assert provider.call_count == 64
    assert summary.count("was unusable") == 1
    assert "checksum mismatch" in summary or "damaged" in summary
    run(services_file, tmp_path / "c.jsonl")
    assert provider.call_count == 64


def test_a_snapshot_whose_answer_went_bad_is_an_orphan_that_fix_removes(
    provider: respx.Route, tmp_path: Path, services_file: Path
) -> None:
    first = run(services_file, tmp_path / "a.jsonl")
    assert provider.call_count == 63
    connection = sqlite3.connect(tmp_path / "cache" / "cache.db")
    rowid, blob = connection.execute("SELECT rowid, value FROM Cache WHERE key LIKE 'r:%' LIMIT 1").fetchone()
    connection.execute("UPDATE Cache SET value = ? WHERE rowid = ?", (bytes(blob)[:-4] + b"oops", rowid))
    connection.commit()
    connection.close()

    # The snapshots answer (each has its own checksum): nothing is asked again.
    again = run(services_file, tmp_path / "b.jsonl")
    assert provider.call_count == 63
    assert (tmp_path / "b.jsonl").read_text().count("\n") == 3
    assert "was unusable" not in first + again

    checked = json.loads(runner.invoke(app, ["cache", "validate", "--json"]).stdout)
    assert (checked["corrupt"], checked["orphan_snapshots"], checked["snapshots"]) == (1, 1, 2)
    fixed = json.loads(runner.invoke(app, ["cache", "validate", "--fix", "--json"]).stdout)
    assert fixed["removed"] == 2
    # That service's stages answer now: one call is asked again, then its snapshot is back.
    run(services_file, tmp_path / "c.jsonl")
    assert provider.call_count == 64
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["snapshots"] == 3


def test_cache_commands(tmp_path: Path, services_file: Path) -> None:
    assert (
        runner.invoke(app, ["run", str(services_file), "-o", str(tmp_path / "o.jsonl"), "--model", "offline"]).exit_code
        == 0
    )

    stats = json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)
    assert stats["entries"] == 63
    assert stats["transcripts"] == 63
    assert stats["snapshots"] == 3  # one snapshot per service
    assert {row["stage"]: row["entries"] for row in stats["by_stage_model"]} == {
        "descriptions": 3,
        "features": 15,
        "mapping": 45,
    }
    table = runner.invoke(app, ["cache", "stats"])
    assert table.exit_code == 0
    assert "mapping" in table.stdout
    assert "\x1b" not in table.stdout

    checked = runner.invoke(app, ["cache", "validate", "--json"])
    assert checked.exit_code == 0
    assert json.loads(checked.stdout)["good"] == 63
    assert json.loads(checked.stdout)["transcripts"] == 63  # every answer keeps its transcript
    assert json.loads(checked.stdout)["schemas"] > 0

    refused = runner.invoke(app, ["cache", "purge", "--stage", "mapping"], input="n\n")
    assert refused.exit_code == 1
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["entries"] == 63

    purged = runner.invoke(app, ["cache", "purge", "--stage", "mapping", "--yes", "--json"])
    assert purged.exit_code == 0, purged.output
    assert json.loads(purged.stdout)["removed"] == 45
    # Every snapshot was built from mapping answers: they go with them.
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["snapshots"] == 0

    everything = runner.invoke(app, ["cache", "purge", "--all"], input="y\n")
    assert everything.exit_code == 0
    assert "18" in everything.stdout
    assert json.loads(runner.invoke(app, ["cache", "stats", "--json"]).stdout)["entries"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cache", "purge"], "say what to remove"),
        (["cache", "purge", "--stage", "nope", "--yes"], "unknown stage 'nope'"),
        (["cache", "purge", "--older-than", "7 fortnights", "--yes"], "use a number and a unit"),
    ],
)
def test_purge_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_unusable_cache_directory_is_a_warning_for_a_run_and_one_line_for_cache_commands(
    tmp_path: Path, services_file: Path
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = runner.invoke(
        app, ["run", str(services_file), "-o", "o.jsonl", "--model", "offline", "--cache-dir", str(blocker / "cache")]
    )
    # A run goes on without a cache it cannot open, and says so once; the cache commands fail.
    assert result.exit_code == 0, result.output
    assert "cannot open the cache" in result.output
    assert "the run went on without the cache" in " ".join(result.output.split())
    stats = runner.invoke(app, ["cache", "stats", "--cache-dir", str(blocker / "cache")])
    assert stats.exit_code == 7
    assert "cannot open the cache" in stats.stderr
    assert "--cache-mode off" in stats.stderr


@pytest.mark.slow
def test_two_processes_share_one_cache(tmp_path: Path) -> None:
    source = EXAMPLES / "services.jsonl"
    env = subprocess_env(SA_CACHE_DIR=str(tmp_path / "shared"))
    command = [sys.executable, "-m", "service_ambitions", "run", str(source), "--model", "offline", "-q"]
    processes = [
        subprocess.Popen(
            [*command, "-o", str(tmp_path / name)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        for name in ("a.jsonl", "b.jsonl")
    ]
    for process in processes:
        _, errors = process.communicate(timeout=120)
        assert process.returncode == 0, errors

    assert len(read_jsonl(tmp_path / "a.jsonl")) == len(read_jsonl(tmp_path / "b.jsonl")) == 8
    check = runner.invoke(app, ["cache", "validate", "--json", "--cache-dir", str(tmp_path / "shared")])
    assert check.exit_code == 0, check.output
    report = json.loads(check.stdout)
    assert report["good"] == 8 * 21
    assert report["problems"] == []
