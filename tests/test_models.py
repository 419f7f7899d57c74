from __future__ import annotations

import pytest
from pydantic import ValidationError

from service_ambitions.errors import ConfigError, InputError, ProviderError
from service_ambitions.models import FeatureScore, Service


def test_cmmi_label_must_match_level() -> None:
    assert FeatureScore(level=4, label="Quantitatively Managed", justification="Measured.").level == 4
    with pytest.raises(ValidationError, match="level 3 is 'Defined'"):
        FeatureScore(level=3, label="Managed", justification="x")


def test_service_keeps_unknown_fields_and_accepts_both_job_shapes() -> None:
    service = Service.model_validate(
        {
            "service_id": "s",
            "name": "S",
            "description": "d",
            "cost_centre": 42,
            "jobs_to_be_done": ["plain", {"name": "rich", "job_to_be_done_id": "j1", "priority": "high"}],
        }
    )
    assert service.model_extra == {"cost_centre": 42}
    assert service.model_dump(exclude_unset=True)["jobs_to_be_done"][1]["priority"] == "high"


def test_error_messages_carry_context_and_hints() -> None:
    error = ProviderError("provider answered HTTP 500", stage="mapping", model="openai:gpt-4o-mini").bind(
        service_id="svc-1"
    )
    assert error.user_message == "service svc-1, stage mapping, model openai:gpt-4o-mini: provider answered HTTP 500"
    assert error.exit_code == 5
    assert ConfigError("bad", hint="fix it").user_message == "bad (fix it)"
    assert InputError("oops", path="in.jsonl", line=3).user_message == "in.jsonl:3: oops"
    assert InputError("oops", path="in.jsonl").user_message == "in.jsonl: oops"
