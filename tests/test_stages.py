from __future__ import annotations

import json
from pathlib import Path

import pytest

from service_ambitions.config.settings import FeatureCount, ShortlistSettings
from service_ambitions.core.models import Feature, FeatureScore, Service
from service_ambitions.pipeline.stages import FeatureIds, StageBook
from service_ambitions.reference.data import load_reference
from service_ambitions.reference.prompting import load_prompts, render_catalogue_items

SERVICE = Service(service_id="svc", name="Enrolment", description="Enrol students.")


def book() -> StageBook:
    return StageBook(load_reference(), load_prompts(), FeatureCount(min=1, max=2))


def feature(feature_id: str, name: str = "Online enrolment") -> Feature:
    score = FeatureScore(level=2, label="Managed", justification="Repeatable.")
    return Feature(feature_id=feature_id, name=name, description="Enrol online.", score=score, customer_type="learners")


def test_feature_ids_are_deterministic_short_and_unique_within_a_service() -> None:
    first, second = FeatureIds("svc"), FeatureIds("svc")
    a = first.next(1, "learners", "Online  Enrolment")
    assert a == second.next(1, "learners", "online enrolment")  # case and spacing do not matter
    assert len(a) == 8
    assert a.isalnum()
    again = first.next(1, "learners", "Online enrolment")  # same name twice in one service
    assert again != a
    assert again == second.next(1, "learners", "Online enrolment")  # resolved the same way every time
    assert FeatureIds("other").next(1, "learners", "Online enrolment") != a
    assert first.next(2, "learners", "Online enrolment") != a


def test_features_request_lists_earlier_features_and_counts() -> None:
    stages = book()
    plateau = stages.reference.plateaus[1]
    earlier = [(stages.reference.plateaus[0], feature("abc", "Paper form"))]
    request = stages.features_request(SERVICE, plateau, "Mostly online.", earlier)
    assert "- Plateau 1, Learners: Paper form: Enrol online." in request.prompt
    later = stages.features_request(
        SERVICE,
        stages.reference.plateaus[2],
        "Pilots.",
        [(stages.reference.plateaus[0], feature("a", "Paper form")), (stages.reference.plateaus[1], feature("b"))],
    )
    assert "- Plateau 1, Learners: Paper form\n" in later.prompt  # older plateaus by name
    assert "- Plateau 2, Learners: Online enrolment: Enrol online." in later.prompt  # the one below in full
    assert "between 1 and 2 features" in request.instructions
    assert "Mostly online." in request.prompt
    for knowledge in ("Quantitatively Managed: measured against targets", "What a feature is:", "Writing rules:"):
        assert knowledge in request.instructions
    assert "Where the university is heading:" in request.instructions
    schema = request.output_type.model_json_schema()
    assert set(schema["properties"]) == {"learners", "academics", "partners"}
    assert schema["properties"]["learners"]["minItems"] == 1
    first = stages.features_request(SERVICE, stages.reference.plateaus[0], "x", [])
    assert "None: this is the first plateau." in first.prompt


def test_mapping_keeps_known_ids_drops_invented_and_ignores_unknown_features() -> None:
    stages = book()
    catalogue = stages.reference.catalogue("technologies")
    plateau = stages.reference.plateaus[0]
    features = [feature("f1"), feature("f2", "Chat")]
    request = stages.mapping_request(SERVICE, plateau, catalogue, features)
    assert "| TECH-IAM | Identity and access management |" in request.instructions  # shared by every call
    assert "`f1`" in request.prompt
    assert "Match on meaning, not on shared words" in request.instructions
    assert "never invent one" in request.instructions
    assert "Where the university is heading" not in request.instructions  # the vision is not for mapping
    output = request.output_type.model_validate(
        {
            "mappings": [
                {"feature_id": "f1", "items": [{"item": "TECH-IAM"}, {"item": "TECH-IAM"}, {"item": "TECH-MADE-UP"}]},
                {"feature_id": "zzz", "items": [{"item": "TECH-CLOUD"}]},
            ]
        }
    )
    result = stages.read_mapping(output, catalogue, features)
    assert [m.item for m in result.items["f1"]] == ["TECH-IAM"]
    assert result.items["f2"] == []
    assert result.dropped == ["TECH-MADE-UP"]


def test_mapping_with_facets_keeps_them() -> None:
    stages = book()
    catalogue = stages.reference.catalogue("applications")
    request = stages.mapping_request(SERVICE, stages.reference.plateaus[0], catalogue, [feature("f1")])
    assert "`contribution` (required; one of: core, supporting, enabling)" in request.instructions
    output = request.output_type.model_validate(
        {
            "mappings": [
                {
                    "feature_id": "f1",
                    "items": [{"item": "APP-SIS", "facets": {"contribution": "core", "integration_notes": "reads"}}],
                }
            ]
        }
    )
    mapped = stages.read_mapping(output, catalogue, [feature("f1")]).items["f1"][0]
    assert mapped.facets == {"contribution": "core", "replacement_candidate": None, "integration_notes": "reads"}


def test_per_call_material_comes_last_so_prompt_prefixes_are_shared() -> None:
    stages = book()
    catalogue = stages.reference.catalogues[0]
    first = stages.mapping_request(SERVICE, stages.reference.plateaus[0], catalogue, [feature("aaa")])
    other_service = Service(service_id="lib", name="Library", description="Lends books.")
    second = stages.mapping_request(other_service, stages.reference.plateaus[3], catalogue, [feature("bbb", "Loans")])
    assert first.instructions == second.instructions  # what every call shares is sent first, identical
    assert render_catalogue_items(catalogue) in first.instructions
    assert SERVICE.name not in first.instructions
    assert "Enrol online" not in first.instructions
    features = stages.features_request(SERVICE, stages.reference.plateaus[0], "Paper.", [])
    other = stages.features_request(other_service, stages.reference.plateaus[3], "Online.", [])
    assert features.instructions == other.instructions
    assert "## Roles" in features.instructions
    assert features.prompt.index("## Service") < features.prompt.index("## Plateau")
    # No stage carries material it does not use.
    assert "| id | name |" not in features.instructions + features.prompt
    # A mapping call knows what the service is and what it looks like at that plateau.
    described = stages.mapping_request(
        SERVICE, stages.reference.plateaus[0], catalogue, [feature("aaa")], "Paper forms, by hand."
    )
    assert SERVICE.description in described.prompt
    assert "Paper forms, by hand." in described.prompt
    assert stages.reference.plateaus[0].describe() in described.instructions


def test_big_catalogues_send_a_shortlist_and_are_still_validated_whole(tmp_path: Path) -> None:
    path = tmp_path / "applications.json"
    path.write_text(json.dumps({"field": "applications", "label": "Applications", "items": synthetic_items(500)}))
    reference = load_reference(catalogues=[path])
    shortlisted = StageBook(reference, load_prompts(), FeatureCount(), ShortlistSettings(threshold=100, size=12))
    whole = StageBook(reference, load_prompts(), FeatureCount(), ShortlistSettings(threshold=None))
    catalogue = reference.catalogues[0]
    features = [feature("aaa", "Library loans"), feature("bbb", "Timetable clash alerts")]
    plateau = reference.plateaus[0]

    short = shortlisted.mapping_request(SERVICE, plateau, catalogue, features)
    full = whole.mapping_request(SERVICE, plateau, catalogue, features)

    rows = [line for line in short.prompt.splitlines() if line.startswith("| app-")]
    assert len(rows) == 12
    assert any("library" in row.lower() for row in rows)
    assert any("timetabl" in row.lower() for row in rows)
    assert "| app-" not in short.instructions  # the shortlist changes per call: it goes with the request
    assert len([line for line in full.instructions.splitlines() if line.startswith("| app-")]) == 500
    assert len(short.instructions + short.prompt) < len(full.instructions + full.prompt) / 10
    # An id the shortlist left out is still a catalogue id: it is kept, not dropped.
    outside = next(item.id for item in catalogue.items if f"| {item.id} |" not in short.prompt)
    answer = short.output_type.model_validate(
        {"mappings": [{"feature_id": "aaa", "items": [{"item": outside}, {"item": "no-such-id"}]}]}
    )
    result = shortlisted.read_mapping(answer, catalogue, features)
    assert [m.item for m in result.items["aaa"]] == [outside]
    assert result.dropped == ["no-such-id"]


def synthetic_items(count: int) -> list[dict[str, str]]:
    """A big catalogue of plausible university applications, deterministic."""
    subjects = ["library", "timetable", "payroll", "admissions", "research", "estates", "finance", "careers"]
    kinds = ["portal", "database", "workflow", "analytics", "mobile app", "integration", "archive", "scheduler"]
    verbs = ["loans", "clash alerts", "grants", "offers", "room bookings", "invoices", "placements", "ethics"]
    return [
        {
            "id": f"app-{i:03d}",
            "name": f"{subjects[i % 8].title()} {kinds[(i // 8) % 8]} {i}",
            "description": f"Handles {subjects[i % 8]} {verbs[(i // 64) % 8]} for staff and students.",
        }
        for i in range(count)
    ]


def test_the_stage_plan_is_the_one_order_of_a_services_calls() -> None:
    from service_ambitions.config.settings import Overrides, load_settings
    from service_ambitions.jobs.setup import prepare
    from service_ambitions.pipeline.stages import Call, Described, Featured, service_plan

    book = prepare(load_settings(overrides=Overrides(model="offline"))).book
    plan = service_plan(book, Service(service_id="s", name="S", description="D"))
    order: list[str] = []
    step = next(plan, None)
    while step is not None:
        if isinstance(step, Call):
            order.append(f"{step.request.stage.value}:{step.plateau.level if step.plateau else '-'}")
            step = plan.send(None) if step.catalogue is None else next(plan, None)
        else:
            assert isinstance(step, Described | Featured)
            step = next(plan, None)
    catalogues = len(book.reference.catalogues)
    expected = ["descriptions:-"]
    for level in range(1, len(book.reference.plateaus) + 1):
        expected += [f"features:{level}"] + [f"mapping:{level}"] * catalogues
    assert order == expected


def test_a_big_catalogue_without_the_shortlist_extra_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from service_ambitions.core.errors import ConfigError
    from service_ambitions.reference.data import Catalogue
    from service_ambitions.reference.shortlist import Shortlister

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "bm25s" else real(name, *a))
    catalogue = Catalogue.model_validate(
        {"field": "apps", "label": "Apps", "items": [{"id": str(i), "name": f"n{i}"} for i in range(3)]}
    )
    with pytest.raises(ConfigError) as caught:
        Shortlister(catalogue)
    assert "uv sync --extra shortlist" in caught.value.user_message
