"""jobs/inputs.py: what a job reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service_ambitions.config.settings import Overrides, load_settings
from service_ambitions.core.errors import ConfigError
from service_ambitions.inputs.entries import Accepted, Rejected
from service_ambitions.inputs.jsonl import read_services
from service_ambitions.jobs.inputs import chosen_catalogues, not_done
from service_ambitions.jobs.setup import prepare


def test_a_resumed_run_reads_only_what_is_left(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    rows = [{"service_id": f"s{i}", "name": "N", "description": "D"} for i in range(3)]
    source.write_text("\n".join(json.dumps(row) for row in rows[:2]) + "\nnot json\n" + json.dumps(rows[2]) + "\n")
    left = list(not_done(read_services(source, max_line_bytes=1 << 20), {"s0"}, set()))
    assert [e.service.service_id if isinstance(e, Accepted) else e.line for e in left] == ["s1", 3, "s2"]
    left = list(not_done(read_services(source, max_line_bytes=1 << 20), {"s0"}, {3}))
    assert not any(isinstance(e, Rejected) for e in left)  # quarantined by the earlier segment already


def test_catalogues_are_chosen_by_field_once_each() -> None:
    reference = prepare(load_settings(overrides=Overrides(model="offline"))).reference
    assert [c.field for c in chosen_catalogues(reference, ["data", "applications", "data"])] == ["data", "applications"]
    assert len(chosen_catalogues(reference, None)) == len(reference.catalogues)
    with pytest.raises(ConfigError, match="unknown catalogue 'apps'"):
        chosen_catalogues(reference, ["apps"])


def test_a_map_reader_reads_the_service_file_once_however_often_it_reads_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service_ambitions.jobs.inputs as inputs

    services = tmp_path / "services.jsonl"
    services.write_text(json.dumps({"service_id": "svc-1", "name": "Permits", "description": "Issue permits."}) + "\n")
    feature = {"feature_id": "F1", "name": "Online", "description": "Online.", "customer_type": "learners"}
    source = tmp_path / "features.jsonl"
    source.write_text(json.dumps({"service_id": "svc-1", "features": [feature]}) + "\n")
    loads: list[Path] = []
    real_load = inputs.load_service_file

    def counted_load(path: Path) -> object:
        loads.append(path)
        return real_load(path)

    monkeypatch.setattr(inputs, "load_service_file", counted_load)

    chosen, read = inputs.map_reader(
        prepare(load_settings(overrides=Overrides(model="offline"))), source, ["data"], services, None
    )
    first, again = list(read()), list(read())

    assert [c.field for c in chosen] == ["data"]
    assert loads == [services]
    for entries in (first, again):
        [entry] = entries
        assert isinstance(entry, Accepted)
        assert entry.service.name == "Permits"
