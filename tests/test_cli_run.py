"""`service-ambitions run` end to end, on the offline model and on a faked OpenAI endpoint."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
import respx
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.reference.data import load_reference

from .conftest import EXAMPLES, read_jsonl
from .fake_openai import BASE_URL, COMPLETIONS, FakeOpenAI

runner = CliRunner()


def output_schema() -> dict[str, object]:
    result = runner.invoke(app, ["schema"])
    assert result.exit_code == 0, result.output
    schema: dict[str, object] = json.loads(result.stdout)
    return schema


def test_offline_run_writes_valid_complete_evolutions(tmp_path: Path) -> None:
    out = tmp_path / "evolutions.jsonl"
    result = runner.invoke(app, ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline"])

    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.output
    inputs = read_jsonl(EXAMPLES / "services.jsonl")
    records = read_jsonl(out)
    assert [r["service"]["service_id"] for r in records] == [s["service_id"] for s in inputs]  # type: ignore[index]
    validator = jsonschema.Draft202012Validator(output_schema())
    reference = load_reference()
    role_ids = {role.role_id for role in reference.roles}
    for record in records:
        validator.validate(record)
        assert record["meta"]["synthetic"] is True  # type: ignore[index]
        assert [p["plateau"] for p in record["plateaus"]] == [1, 2, 3, 4, 5]  # type: ignore[index]
        for plateau in record["plateaus"]:  # type: ignore[attr-defined]
            roles = [f["customer_type"] for f in plateau["features"]]
            assert set(roles) == role_ids
            assert all(2 <= roles.count(role) <= 4 for role in role_ids)
            for feature in plateau["features"]:
                for catalogue in reference.catalogues:
                    for mapped in feature["mappings"][catalogue.field]:
                        assert mapped["item"] in catalogue.item_ids
                        if catalogue.facet_model is not None:
                            catalogue.facet_model.model_validate(mapped["facets"])
    unknown_fields = next(r for r in records if r["service"]["service_id"] == "svc-placements")["service"]
    assert unknown_fields["owner"] == "Careers and Employability"  # type: ignore[index]
    assert "parent_id" not in records[0]["service"]  # type: ignore[operator]
    assert not (tmp_path / "evolutions.quarantine.jsonl").exists()


def test_offline_run_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    def run(name: str, seed: str) -> list[dict[str, object]]:
        out = tmp_path / name
        args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--seed", seed]
        assert runner.invoke(app, [*args, "--max-services", "2"]).exit_code == 0
        return [{"plateaus": r["plateaus"]} for r in read_jsonl(out)]

    assert run("a.jsonl", "7") == run("b.jsonl", "7")
    assert run("c.jsonl", "8") != run("a.jsonl", "7")


def test_bad_lines_are_quarantined_and_the_rest_processed(tmp_path: Path) -> None:
    source = tmp_path / "mixed.jsonl"
    good = {"service_id": "ok-1", "name": "Good", "description": "A valid service."}
    source.write_text(
        "\n".join(
            [
                json.dumps(good),
                "{not json",
                json.dumps({"service_id": "no-name", "description": "missing name"}),
                "[1, 2]",
                "",
                json.dumps(good),
                json.dumps({**good, "service_id": "ok-2"}),
            ]
        )
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["run", str(source), "-o", str(out), "--model", "offline"])

    assert result.exit_code == 9, result.output
    assert [r["service"]["service_id"] for r in read_jsonl(out)] == ["ok-1", "ok-2"]  # type: ignore[index]
    quarantined = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert [(q["kind"], q["line"]) for q in quarantined] == [("input", 2), ("input", 3), ("input", 4), ("input", 6)]
    reasons = [str(q["reason"]) for q in quarantined]
    assert reasons[0].startswith("not valid JSON")
    assert "name: Field required" in reasons[1]
    assert "expected a JSON object" in reasons[2]
    assert "duplicate service_id 'ok-1' (first on line 1)" in reasons[3]
    assert quarantined[0]["raw"] == "{not json"
    assert "see" in result.stderr
    assert "out.quarantine.jsonl" in result.stderr


def test_missing_key_fails_before_any_work_with_one_line(tmp_path: Path, services_file: Path) -> None:
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini"])

    assert result.exit_code == 4
    assert result.stderr.strip().count("\n") == 0
    assert "OPENAI_API_KEY is not set" in result.stderr
    assert "--model offline" in result.stderr
    assert "Traceback" not in result.output
    assert not out.exists()


def test_missing_input_file_is_an_input_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["run", str(tmp_path / "nope.jsonl"), "-o", "out.jsonl", "--model", "offline"])

    assert result.exit_code == 3
    assert "nope.jsonl: cannot read input" in result.stderr


def test_max_services_limits_the_run(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--max-services", "3"]
    assert runner.invoke(app, args).exit_code == 0
    assert len(read_jsonl(out)) == 3


@respx.mock(assert_all_called=False)
def test_dry_run_prints_the_plan_and_calls_nothing(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-dry-run")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    route = respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI())
    out = tmp_path / "out.jsonl"
    result = runner.invoke(
        app,
        ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "openai:gpt-4o-mini", "--dry-run"],
        env={"COLUMNS": "200"},
    )

    assert result.exit_code == 0, result.output
    assert route.call_count == 0
    assert not out.exists()
    assert "services: 8" in result.stdout
    rows = {
        cells[0]: cells for line in result.stdout.splitlines() if (cells := [c.strip() for c in line.split("│")[1:-1]])
    }
    assert rows["descriptions"][1] == "openai:gpt-4o-mini"
    assert rows["mapping"][2] == "120"  # 8 services x 5 plateaus x 3 catalogues
    assert rows["total"][2] == "168"
    # Each stage's request starts with what every call of it shares: most of it is cacheable.
    assert all(int(rows[stage][5].rstrip("%")) >= 60 for stage in ("descriptions", "features", "mapping"))
    low, high = (Decimal(part.strip("$")) for part in rows["total"][7].split(" to "))
    assert 0 < low < high  # a priced model gets a cost range


def test_run_through_openai_chat_completions(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services_file: Path
) -> None:
    import pydantic_ai.models

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)  # respx answers; nothing leaves
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret-123")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    fake = FakeOpenAI(invent_id="APP-DOES-NOT-EXIST")
    route = respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    out = tmp_path / "out.jsonl"

    result = runner.invoke(app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini"])

    assert result.exit_code == 0, result.output
    assert route.call_count == 3 * 21
    first = fake.requests[0]
    assert first["model"] == "gpt-4o-mini"
    assert first["tool_choice"] == "required"
    assert first["seed"] == 0
    assert first["messages"][0]["role"] == "system"
    assert "public university" in first["messages"][0]["content"]
    assert fake.headers[0]["authorization"] == "Bearer sk-test-secret-123"
    stages = {tuple(sorted(r["tools"][0]["function"]["parameters"]["properties"])) for r in fake.requests}
    assert ("disruptive", "enhanced", "experimental", "foundational", "transformative") in stages
    assert ("academics", "learners", "partners") in stages
    records = read_jsonl(out)
    assert len(records) == 3
    meta = records[0]["meta"]
    assert meta["synthetic"] is False  # type: ignore[index]
    assert meta["models"]["mapping"] == "openai:gpt-4o-mini"  # type: ignore[index]
    # One invented id per feature (2 per role, 3 roles) and per plateau (5) and catalogue (3).
    assert meta["dropped_items"] == 6 * 5 * 3  # type: ignore[index]
    mapped = records[0]["plateaus"][0]["features"][0]["mappings"]  # type: ignore[index]
    assert [m["item"] for m in mapped["applications"]] == ["APP-SIS"]
    assert mapped["applications"][0]["facets"]["contribution"] == "core"
    assert "sk-test-secret-123" not in out.read_text() + result.output
    assert "invented catalogue ids dropped" in result.stdout


def test_strict_mode_fails_services_with_invented_ids(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services_file: Path
) -> None:
    import pydantic_ai.models

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    respx_mock.post(COMPLETIONS).mock(side_effect=FakeOpenAI(invent_id="TECH-NOPE"))
    out = tmp_path / "out.jsonl"

    result = runner.invoke(
        app, ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--strict"]
    )

    assert result.exit_code == 9
    assert read_jsonl(out) == []
    failures = read_jsonl(tmp_path / "out.quarantine.jsonl")
    assert [(f["kind"], f["service_id"], f["stage"]) for f in failures] == [
        ("service", "svc-1", "mapping"),
        ("service", "svc-2", "mapping"),
        ("service", "svc-3", "mapping"),
    ]
    assert "TECH-NOPE" in str(failures[0]["reason"])


@pytest.mark.slow
def test_python_dash_m_and_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "service_ambitions", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.startswith("service-ambitions ")


def test_output_never_overwrites_the_input(tmp_path: Path, services_file: Path) -> None:
    before = services_file.read_bytes()
    result = runner.invoke(app, ["run", str(services_file), "-o", str(services_file), "--model", "offline"])
    assert result.exit_code == 3
    assert "the output would overwrite the input" in result.stderr
    assert services_file.read_bytes() == before


def test_a_stale_quarantine_file_is_removed_by_a_clean_run(tmp_path: Path, services_file: Path) -> None:
    stale = tmp_path / "out.quarantine.jsonl"
    stale.write_text('{"kind":"input","line":9,"reason":"from an earlier run"}\n')
    result = runner.invoke(app, ["run", str(services_file), "-o", str(tmp_path / "out.jsonl"), "--model", "offline"])
    assert result.exit_code == 0, result.output
    assert not stale.exists()


def test_dry_run_counts_what_the_cache_already_answers(tmp_path: Path) -> None:
    source = str(EXAMPLES / "services.jsonl")
    first = runner.invoke(
        app, ["run", source, "-o", str(tmp_path / "a.jsonl"), "--model", "offline", "--max-services", "2"]
    )
    assert first.exit_code == 0, first.output

    plan = runner.invoke(
        app, ["run", source, "-o", str(tmp_path / "b.jsonl"), "--model", "offline", "--dry-run"], env={"COLUMNS": "200"}
    )

    assert plan.exit_code == 0, plan.output
    rows = {
        cells[0]: cells for line in plan.stdout.splitlines() if (cells := [c.strip() for c in line.split("│")[1:-1]])
    }
    assert rows["descriptions"][2:4] == ["8", "2"]  # calls, cached
    assert rows["features"][2:4] == ["40", "10"]
    assert rows["mapping"][2:4] == ["120", "30"]
    assert rows["total"][2:4] == ["168", "42"]
    assert rows["mapping"][7] == "$0.00 to $0.00"  # the offline model is free
    assert not (tmp_path / "b.jsonl").exists()


def test_prompt_cache_tokens_are_counted_shown_and_priced_as_the_provider_reported(
    respx_mock: respx.MockRouter, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, services_file: Path
) -> None:
    import pydantic_ai.models

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)
    monkeypatch.setenv("COLUMNS", "200")
    fake = FakeOpenAI(usage=20, prefix_cache=True)
    respx_mock.post(COMPLETIONS).mock(side_effect=fake)
    out = tmp_path / "out.jsonl"
    args = ["run", str(services_file), "-o", str(out), "--model", "openai:gpt-4o-mini", "--cache-mode", "off"]

    result = runner.invoke(app, [*args, "--check"])

    assert result.exit_code == 0, result.output
    cached = sum(fake.cached_tokens)
    # The shared part leads every request, so most calls after a stage's first reuse it.
    assert sum(1 for n in fake.cached_tokens if n) > len(fake.cached_tokens) / 2
    total = next(line for line in result.stdout.splitlines() if line.strip().startswith("total"))
    assert f"{cached:,}" in total.split()
    assert "of input tokens were served from the provider's prompt cache" in result.stdout
    assert "quality:" in result.stdout  # --check: the summary of check's findings
    report = json.loads(runner.invoke(app, ["report", "--json"]).stdout)
    assert report["totals"]["spend"]["cache_read_tokens"] == cached
    prompt = report["totals"]["spend"]["input_tokens"]
    from genai_prices import Usage, calc_price

    expected = calc_price(
        Usage(input_tokens=prompt, cache_read_tokens=cached, output_tokens=report["totals"]["spend"]["output_tokens"]),
        "gpt-4o-mini",
        provider_id="openai",
    ).total_price
    assert abs(Decimal(report["totals"]["spend"]["cost_usd"]) - expected) < Decimal("0.000001")
