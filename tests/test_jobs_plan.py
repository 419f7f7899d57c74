"""jobs/plan.py: the dry-run estimate walks the stages through the cache only."""

from __future__ import annotations

from pathlib import Path

from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.models import Stage
from service_ambitions.jobs.plan import estimate
from service_ambitions.jobs.setup import prepare

from .conftest import EXAMPLES


def test_an_estimate_counts_every_call_of_every_stage(services_file: Path) -> None:
    prepared = prepare(load_settings(overrides=Overrides(model="offline")))
    plan = estimate(prepared, services_file)
    calls = {row.stage: row.calls for row in plan.stages}
    plateaus, catalogues = len(prepared.reference.plateaus), len(prepared.reference.catalogues)
    assert calls == {Stage.DESCRIPTIONS: 3, Stage.FEATURES: 3 * plateaus, Stage.MAPPING: 3 * plateaus * catalogues}
    assert all(row.cached == 0 for row in plan.stages)
    assert all(row.cost == (0, 0) for row in plan.stages)  # the offline model costs nothing
    assert plan.scan.services == 3


def test_an_estimate_with_a_limit_counts_only_those_services() -> None:
    plan = estimate(
        prepare(load_settings(overrides=Overrides(model="offline"))), EXAMPLES / "services.jsonl", max_services=2
    )
    assert plan.scan.services == 2
