"""eval: two configurations on one sample, side by side, on the offline model and a faked provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import EXAMPLES
from .fake_openai import BASE_URL, COMPLETIONS, FakeOpenAI

runner = CliRunner()

pytestmark = pytest.mark.slow


def _prompts_b(tmp_path: Path) -> Path:
    folder = tmp_path / "prompts-b"
    folder.mkdir()
    (folder / "rubric.md").write_text("Maturity: give every feature level 1, whatever it is.\n")
    return folder


def test_eval_on_the_offline_model_with_the_offline_judge(tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", str(EXAMPLES / "services.jsonl"), "--b", str(_prompts_b(tmp_path))]
    args += ["--model-a", "offline", "--model-b", "offline", "--sample", "3", "--judge-model", "offline"]
    result = runner.invoke(app, [*args, "-o", str(out), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert len(report["sample"]) == 3
    a, b = report["sides"]
    assert a["described"] == "model offline"
    assert b["described"].startswith("prompts ")
    assert b["described"].endswith("prompts-b, model offline")
    for side in (a, b):
        assert side["services"] == 3
        assert sum(side["maturity"].values()) > 0
        assert set(side["coverage"]) == {"applications", "data", "technologies"}
        assert set(side["judge"]["means"]) == {"maturity", "features", "progression", "writing", "mapping"}
        assert len(side["judge"]["services"]) == 3
        assert all(1 <= s["mean"] <= 5 for s in side["judge"]["services"])
    # Only side B's features calls changed (its rubric): descriptions were answered from the cache.
    assert b["spend"]["requests"] > 0
    assert (out / "sample.jsonl").read_text().count("\n") == 3
    assert (out / "a.jsonl").read_text().count("\n") == 3
    assert (out / "b.judge.jsonl").read_text().count("\n") == 3
    # The same evaluation again is all cache hits: no request, same scores.
    again = runner.invoke(app, [*args, "-o", str(tmp_path / "again"), "--json"])
    assert again.exit_code == 0, again.output
    repeated = json.loads(again.stdout)
    assert [s["spend"]["requests"] for s in repeated["sides"]] == [0, 0]
    assert [s["judge"]["spend"]["requests"] for s in repeated["sides"]] == [0, 0]
    assert repeated["sides"][1]["judge"]["means"] == b["judge"]["means"]
    # The judge's calls are a recorded run: report counts them under their own stage.
    judged = json.loads(runner.invoke(app, ["report", b["judge"]["run_id"], "--json"]).stdout)
    assert judged["command"] == "judge"
    assert [row["key"] for row in judged["by_stage"]] == ["judge"]

    table = runner.invoke(app, [*args, "-o", str(tmp_path / "table")])
    assert table.exit_code == 0, table.output
    assert "judge: overall" in table.stdout
    assert "quality: mean score" in table.stdout


def test_eval_against_a_provider_with_a_judge_counts_what_it_reported(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services_file: Path
) -> None:
    import pydantic_ai.models

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-eval")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    fake = FakeOpenAI(usage=(1000, 50))
    respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    args = ["eval", str(services_file), "--model-a", "openai:gpt-4o-mini", "--model-b", "offline"]
    result = runner.invoke(app, [*args, "--judge-model", "openai:gpt-4o-mini", "-o", str(tmp_path / "e"), "--json"])
    assert result.exit_code == 0, result.output
    a, b = json.loads(result.stdout)["sides"]
    judge_bodies = [r for r in fake.requests if "maturity" in r["tools"][0]["function"]["parameters"]["properties"]]
    assert len(judge_bodies) == 6  # 3 services, both sides
    body = judge_bodies[0]
    assert "Maturity (CMMI level) of a feature" in body["messages"][0]["content"]  # the rubric, shared part
    assert "## Roadmap" in body["messages"][1]["content"]
    assert a["judge"]["means"]["maturity"] == 4.0
    assert a["judge"]["spend"]["requests"] == 3
    assert a["judge"]["spend"]["input_tokens"] == 3 * 1000  # as the provider reported
    assert a["spend"]["requests"] == len(fake.requests) - 6
    assert a["spend"]["input_tokens"] == 1000 * a["spend"]["requests"]
    assert b["spend"]["requests"] > 0
    assert b["spend"]["cost_usd"] == "0"
    assert "sk-test-eval" not in result.output


def test_a_side_that_is_neither_a_file_nor_a_folder_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", str(EXAMPLES / "services.jsonl"), "--b", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "neither a settings file nor a prompts folder" in result.output
