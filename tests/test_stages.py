from __future__ import annotations

from service_ambitions.config import FeatureCount
from service_ambitions.models import Feature, FeatureScore, Service
from service_ambitions.prompting import load_prompts
from service_ambitions.reference import load_reference
from service_ambitions.stages import FeatureIds, StageBook

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
    assert "between 1 and 2 features" in request.prompt
    assert "Mostly online." in request.prompt
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
    assert "| TECH-IAM | Identity and access management |" in request.prompt
    assert request.prompt.index("TECH-IAM") < request.prompt.index("`f1`")  # stable material first
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
    assert "`contribution` (one of core, supporting, enabling, required)" in request.prompt
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
