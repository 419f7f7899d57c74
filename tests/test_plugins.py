"""Provider plug-ins: found through entry points, used for whole runs and in chains, broken ones named."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.errors import ConfigError
from service_ambitions.jobs.run import generate
from service_ambitions.jobs.setup import prepare
from service_ambitions.llm.resolve import resolve_model
from service_ambitions.runs.usage import build_report

from .conftest import read_jsonl, run_dirs

Install = Callable[..., None]
runner = CliRunner()


async def test_a_whole_run_through_a_plugin_is_named_priced_and_paced_by_it(
    plugins: Install, services_file: Path, tmp_path: Path
) -> None:
    plugins(dummy="tests.plugins.dummy:PLUGIN")
    prepared = prepare(load_settings(overrides=Overrides(model="dummy:house-model")))
    output = tmp_path / "out.jsonl"
    await generate(prepared, services_file, output, tmp_path / "q.jsonl")

    records = read_jsonl(output)
    assert len(records) == 3
    assert records[0]["meta"]["models"]["features"] == "dummy:house-model"  # type: ignore[index]
    (run,) = run_dirs(Path(str(prepared.settings.runs_directory())))
    totals = build_report(run).totals
    spend = totals.spend
    expected = (Decimal(spend.input_tokens) * 1 + Decimal(spend.output_tokens) * 2) / 1_000_000
    assert spend.requests == 63
    assert (spend.cost_usd, spend.unpriced) == (expected, 0)  # the plug-in's prices, to the token


def test_plugin_and_built_in_models_share_a_fallback_chain(plugins: Install) -> None:
    from pydantic_ai.models.fallback import FallbackModel

    from service_ambitions.llm.chains import display_name

    plugins(dummy="tests.plugins.dummy:PLUGIN")
    prepared = prepare(load_settings(overrides=Overrides(model="dummy:refuses-not,offline")))
    model = next(iter(prepared.models.values()))
    assert isinstance(model, FallbackModel)
    assert display_name(model) == "dummy:refuses-not | offline"


def test_a_broken_plugin_is_one_line_and_the_built_in_providers_still_work(plugins: Install, openai_env: None) -> None:
    plugins(
        broken="tests.plugins.dummy:broken",
        missing="tests.plugins.nowhere:PLUGIN",
        openai="tests.plugins.dummy:CLAIMS_OPENAI",
        odd="tests.plugins.dummy:NOT_A_PLUGIN",
        second="tests.plugins.dummy:make_plugin",
    )
    assert resolve_model("openai:gpt-4o-mini").system == "openai"  # the built-in, not the plug-in claiming it
    assert resolve_model("dummy-two:x").model_name == "x"  # a function that returns the plug-in
    with pytest.raises(ConfigError) as caught:
        resolve_model("broken:x")
    assert "installed but cannot be used: RuntimeError: cannot reach the licence server" in caught.value.message

    shown = runner.invoke(app, ["models"])
    assert shown.exit_code == 0, shown.output
    assert "Traceback" not in shown.output
    lines = [line for line in shown.stdout.splitlines() if line.startswith("plug-in")]
    assert lines[0].startswith("plug-in: dummy-two:NAME from ?")
    assert any("left out: broken" in line and "licence server" in line for line in lines)
    assert any("left out: missing" in line and "ModuleNotFoundError" in line for line in lines)
    assert any("left out: openai" in line and "built-in provider" in line for line in lines)
    assert any("left out: odd" in line and "not a ProviderPlugin" in line for line in lines)


def test_models_and_validate_show_the_installed_plugins(plugins: Install, services_file: Path) -> None:
    plugins(dummy="tests.plugins.dummy:PLUGIN")
    report = json.loads(runner.invoke(app, ["models", "--json"]).stdout)
    (row,) = report["plugins"]
    assert (row["prefix"], row["priced"], row["requests_per_minute"], row["max_in_flight"]) == ("dummy", True, 6000, 3)

    checked = runner.invoke(app, ["validate", str(services_file), "--model", "dummy:house-model"])
    assert checked.exit_code == 0, checked.output
    assert "provider plug-ins: dummy (?)" in checked.stdout

    refused = runner.invoke(app, ["validate", str(services_file), "--model", "dummy:refuses"])
    assert refused.exit_code == 4
    assert "the 'dummy' plug-in cannot give model 'dummy:refuses': no such model at this gateway" in refused.output


def test_plugin_hints_apply_where_the_settings_set_no_limit(plugins: Install) -> None:
    from service_ambitions.llm.plugins import plugin_hints

    plugins(dummy="tests.plugins.dummy:PLUGIN")
    prepared = prepare(load_settings(overrides=Overrides(model="dummy:a,offline")))
    hints = plugin_hints(prepared.models.values())
    assert (hints.requests_per_minute, hints.max_in_flight, hints.tokens_per_minute) == (6000, 3, None)
    unpriced = resolve_model("dummy:free")
    from service_ambitions.llm.budget import call_price

    assert call_price(unpriced, 1000, 100) is None  # a plug-in that gives no price: unpriced, never $0
    assert call_price(resolve_model("dummy:a"), 1_000_000, 500_000) == Decimal(2)
