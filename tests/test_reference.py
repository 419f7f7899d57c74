from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from service_ambitions.core.errors import ConfigError
from service_ambitions.reference.data import Catalogue, load_reference


def test_packaged_defaults() -> None:
    reference = load_reference()
    assert [p.level for p in reference.plateaus] == [1, 2, 3, 4, 5]
    assert len(reference.roles) == 3
    assert {c.field for c in reference.catalogues} == {"applications", "technologies", "data"}
    assert all(len(c.items) >= 15 for c in reference.catalogues)
    facets = {f.type for c in reference.catalogues for f in c.facets}
    assert {"enum", "boolean", "string"} <= facets
    assert set(reference.hashes) == {
        "plateaus",
        "roles",
        "catalogue:applications",
        "catalogue:data",
        "catalogue:technologies",
    }


def test_facet_model_validates_answers() -> None:
    model = load_reference().catalogue("applications").facet_model
    assert model is not None
    ok = model.model_validate({"contribution": "core", "integration_notes": "reads enrolments"})
    assert ok.model_dump()["replacement_candidate"] is None
    with pytest.raises(ValidationError):
        model.model_validate({"contribution": "essential", "integration_notes": "x"})
    with pytest.raises(ValidationError):
        model.model_validate({"contribution": "core"})  # a required facet is missing
    with pytest.raises(ValidationError):
        model.model_validate({"contribution": "core", "integration_notes": "x", "colour": "red"})


def test_catalogue_without_facets_has_no_model() -> None:
    assert load_reference().catalogue("technologies").facet_model is None


def test_bare_list_catalogue_takes_its_name_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "business_capabilities.json"
    path.write_text(json.dumps([{"id": "CAP-1", "name": "Recruit"}]))
    reference = load_reference(catalogues=[path])
    catalogue = reference.catalogue("business_capabilities")
    assert catalogue.label == "Business Capabilities"
    assert catalogue.item_ids == frozenset({"CAP-1"})


def test_custom_plateaus_with_explicit_levels_are_sorted(tmp_path: Path) -> None:
    path = tmp_path / "plateaus.json"
    path.write_text(
        json.dumps(
            [
                {"id": "later", "name": "Later", "level": 2, "description": "Then."},
                {"id": "now", "name": "Now", "level": 1, "description": "First."},
            ]
        )
    )
    assert [p.id for p in load_reference(plateaus=path).plateaus] == ["now", "later"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "holds no entries"),
        ('[{"id": "a"}]', "name: Field required"),
        ('[{"id": "a", "name": "A", "description": "x"}, {"id": "a", "name": "B", "description": "y"}]', "duplicate"),
    ],
)
def test_bad_plateau_files_name_the_file_and_the_fault(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "plateaus.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message) as caught:
        load_reference(plateaus=path)
    assert str(path) in caught.value.user_message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read reference file"):
        load_reference(roles=tmp_path / "roles.json")


def test_catalogue_rules() -> None:
    with pytest.raises(ValidationError, match="needs a non-empty 'options'"):
        Catalogue.model_validate(
            {"field": "x", "label": "X", "facets": [{"id": "f", "type": "enum"}], "items": [{"id": "1", "name": "a"}]}
        )
    with pytest.raises(ValidationError, match="duplicate item id: 1"):
        Catalogue.model_validate({"field": "x", "label": "X", "items": [{"id": "1", "name": "a"}] * 2})


def test_two_catalogues_with_one_field(tmp_path: Path) -> None:
    for name in ("a.json", "b.json"):
        (tmp_path / name).write_text(
            json.dumps({"field": "apps", "label": "Apps", "items": [{"id": "1", "name": "x"}]})
        )
    with pytest.raises(ConfigError, match="a second catalogue uses field 'apps'"):
        load_reference(catalogues=[tmp_path / "a.json", tmp_path / "b.json"])


def test_unknown_catalogue() -> None:
    with pytest.raises(ConfigError, match="unknown catalogue 'nope'"):
        load_reference().catalogue("nope")


EARLIER_TOOL = Path(__file__).parent / "fixtures" / "earlier-tool"


def test_the_earlier_tools_faceted_catalogue_is_read() -> None:
    catalogue = load_reference(catalogues=[EARLIER_TOOL / "applications.json"]).catalogue("applications")
    service_type, exposure, _replicas, _ = catalogue.facets
    assert service_type.label == "ServiceType"
    assert service_type.option_ids == ["ui", "api", "batch"]
    assert exposure.option_ids == ["internal", "partner", "public"]
    model = catalogue.facet_model
    assert model is not None
    facets = model.model_validate({"service_type": "api", "replicas": 3, "security_posture": "OIDC"})
    assert facets.model_dump()["replicas"] == 3
    with pytest.raises(ValidationError):
        model.model_validate({"service_type": "API", "security_posture": "OIDC"})  # the label is not the value
    schema = model.model_json_schema()
    assert schema["properties"]["service_type"]["enum"] == ["ui", "api", "batch"]
    assert schema["properties"]["service_type"]["description"] == "ServiceType"


def test_prompts_name_facet_labels_and_option_labels() -> None:
    from service_ambitions.reference.prompting import render_facets

    text = render_facets(load_reference(catalogues=[EARLIER_TOOL / "applications.json"]).catalogue("applications"))
    assert "- `service_type` (required; one of: ui (UI), api (API), batch (Batch)): ServiceType" in text
    assert "- `replicas` (optional; integer): Replicas. Instances the feature needs." in text
    assert "required)" not in text  # "required" never reads as one more option


def test_duplicate_enum_options_are_refused() -> None:
    with pytest.raises(ValidationError, match="duplicate option of facet 'f': a"):
        Catalogue.model_validate(
            {
                "field": "x",
                "label": "X",
                "facets": [{"id": "f", "type": "enum", "options": ["a", {"id": "a", "label": "A"}]}],
                "items": [{"id": "1", "name": "a"}],
            }
        )
