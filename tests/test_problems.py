from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from service_ambitions.core.models import Service
from service_ambitions.core.problems import describe_errors, value_kind


def _errors(data: object) -> str:
    with pytest.raises(ValidationError) as caught:
        Service.model_validate(data)
    return describe_errors(caught.value)


def test_a_problem_repeated_in_every_list_item_is_named_once() -> None:
    jobs = [{"name": f"job {i}", "role": True} for i in range(24)]
    text = _errors({"service_id": "s", "name": "n", "description": "d", "jobs_to_be_done": jobs})
    assert text == "jobs_to_be_done[*].role: expected text or an object or a list, got true or false (24 times)"


def test_distinct_problems_each_once_with_counts() -> None:
    jobs = [{"explanation": "no name"} for _ in range(3)]
    text = _errors({"service_id": "s", "name": "", "description": "d", "jobs_to_be_done": jobs})
    assert text == ("name: String should have at least 1 character; jobs_to_be_done[*].name: Field required (3 times)")


def test_long_lists_of_problems_are_cut() -> None:
    class Many(BaseModel):
        a: int
        b: int
        c: int

    with pytest.raises(ValidationError) as caught:
        Many.model_validate({})
    assert describe_errors(caught.value, limit=2).endswith("; and 1 more problems")


@pytest.mark.parametrize(
    ("value", "kind"),
    [(None, "null"), (True, "true or false"), (3, "a number"), ("x", "text"), ([], "a list"), ({}, "an object")],
)
def test_value_kinds(value: object, kind: str) -> None:
    assert value_kind(value) == kind
