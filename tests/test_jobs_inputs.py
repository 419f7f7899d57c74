"""jobs/inputs.py: what a job reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service_ambitions.config import load_settings
from service_ambitions.errors import ConfigError
from service_ambitions.jobs import prepare
from service_ambitions.jobs.inputs import chosen_catalogues, remaining_services
from service_ambitions.jsonl import Accepted, Rejected


def test_a_resumed_run_reads_only_what_is_left(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"service_id": f"s{i}", "name": "N", "description": "D"} for i in range(3)]
    source.write_text("\n".join(json.dumps(row) for row in rows[:2]) + "\nnot json\n" + json.dumps(rows[2]) + "\n")
    left = list(remaining_services(source, {"s0"}, set(), 1 << 20))
    assert [e.service.service_id if isinstance(e, Accepted) else e.line for e in left] == ["s1", 3, "s2"]
    left = list(remaining_services(source, {"s0"}, {3}, 1 << 20))
    assert not any(isinstance(e, Rejected) for e in left)  # quarantined by the earlier segment already


def test_catalogues_are_chosen_by_field_once_each() -> None:
    reference = prepare(load_settings(model="offline")).reference
    assert [c.field for c in chosen_catalogues(reference, ["data", "applications", "data"])] == ["data", "applications"]
    assert len(chosen_catalogues(reference, None)) == len(reference.catalogues)
    with pytest.raises(ConfigError, match="unknown catalogue 'apps'"):
        chosen_catalogues(reference, ["apps"])
