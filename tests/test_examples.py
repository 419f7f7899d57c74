"""The documented example commands work as written."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.reference.prompting import load_prompts

from .conftest import EXAMPLES, read_jsonl

ROOT = EXAMPLES.parent


def test_council_example_uses_its_plateaus_roles_catalogue_with_facets_and_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository root, as documented
    out = tmp_path / "council.jsonl"
    args = ["--config", "examples/council.yaml", "run", "examples/services.jsonl", "-o", str(out), "--model", "offline"]
    result = CliRunner().invoke(app, args)

    assert result.exit_code == 0, result.output
    record = read_jsonl(out)[0]
    assert [p["plateau_id"] for p in record["plateaus"]] == ["reactive", "digital", "anticipatory"]  # type: ignore[index]
    features = [f for p in record["plateaus"] for f in p["features"]]  # type: ignore[index]
    assert {f["customer_type"] for f in features} == {"residents", "businesses", "partners"}
    mapped = [m for f in features for m in f["mappings"]["capabilities"]]
    assert mapped
    assert all(m["item"].startswith("CAP-") for m in mapped)
    assert all(m["facets"]["role"] in {"primary", "secondary"} for m in mapped)
    assert set(record["meta"]["reference"]["catalogues"]) == {"capabilities", "technologies"}  # type: ignore[index]
    assert "city council" in (ROOT / "examples" / "prompts" / "context.md").read_text()
    # ...and that prompt, not the packaged one, is what the run used:
    assert record["meta"]["reference"]["prompts"] == load_prompts(ROOT / "examples" / "prompts").sha256  # type: ignore[index]
    assert record["meta"]["reference"]["prompts"] != load_prompts().sha256  # type: ignore[index]


def test_validate_accepts_the_council_example(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(
        app, ["--config", "examples/council.yaml", "validate", "examples/services.jsonl", "--model", "offline"]
    )
    assert result.exit_code == 0, result.output
    assert "(context, vision from examples/prompts)" in result.stdout
