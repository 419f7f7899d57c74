from __future__ import annotations

import pytest
from pydantic import ValidationError

from service_ambitions.core.errors import ConfigError, InputError, ProviderError
from service_ambitions.core.models import FeatureScore, Service


def test_cmmi_label_is_derived_from_the_level() -> None:
    assert FeatureScore.model_validate({"level": 4, "justification": "Measured."}).label == "Quantitatively Managed"
    # A record that pairs a level with another level's label is read with the level's label.
    assert FeatureScore(level=3, label="Managed", justification="x").label == "Defined"
    with pytest.raises(ValidationError, match="less than or equal to 5"):
        FeatureScore.model_validate({"level": 6, "justification": "x"})


@pytest.mark.parametrize(
    ("role", "names"),
    [
        ("learners", ["learners"]),
        ({"name": "Domestic", "role_id": "ROL0105"}, ["Domestic"]),
        (
            [{"name": "Domestic", "role_id": "ROL0105", "description": "Local."}, {"role_id": "ROL0106"}],
            ["Domestic", "ROL0106"],
        ),
        (["learners", "staff"], ["learners", "staff"]),
        (None, []),
    ],
)
def test_a_job_role_comes_in_every_shape_and_is_kept_as_given(role: object, names: list[str]) -> None:
    job = {"name": "Apply", "role": role} if role is not None else {"name": "Apply"}
    service = Service.model_validate({"service_id": "s", "name": "S", "description": "d", "jobs_to_be_done": [job]})
    parsed = service.jobs_to_be_done[0]
    assert not isinstance(parsed, str)
    assert parsed.role_names() == names
    assert service.model_dump(mode="json", exclude_unset=True)["jobs_to_be_done"] == [job]


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
