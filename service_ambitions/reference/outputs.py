"""What each stage asks the model for: its output types, built at run time from the reference data.

So the JSON Schema the model sees names the actual plateaus and roles and holds the
catalogue's facet model, and nothing code can derive (a CMMI label) is asked for.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from service_ambitions.config.settings import FeatureCount
from service_ambitions.reference.data import Catalogue, Plateau, Role

__all__ = [
    "FeatureDraft",
    "JudgeScores",
    "ScoreDraft",
    "descriptions_model",
    "features_model",
    "field_name",
    "mapping_model",
]


# Class and field docstrings here are prompt text: pydantic puts them in the JSON Schema
# the model reads. Notes for developers go in comments like this one.
#
# The CMMI label is not asked for: code derives it from the level (core.models.FeatureScore),
# so every answer the schema allows is a valid answer and no output retry is spent on a
# label that does not match its level.


class ScoreDraft(BaseModel):
    """The feature's own maturity, judged by the rubric, whatever the plateau."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    level: int = Field(ge=1, le=5)
    """CMMI level: 1 Initial, 2 Managed, 3 Defined, 4 Quantitatively Managed, 5 Optimizing."""
    justification: str = Field(min_length=1)
    """One sentence naming the evidence for this level; not a restatement of the feature."""


class FeatureDraft(BaseModel):
    """A feature a customer notices and uses, tied to one of the service's jobs to be done."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    name: str = Field(min_length=1, max_length=120)
    """A few words a customer would recognise; no vendor or product names."""
    description: str = Field(min_length=1)
    """One or two sentences: what the customer can now do, the value to them, and what changes in operations."""
    score: ScoreDraft
    """The feature's maturity."""


class JudgeScores(BaseModel):
    """Scores of one service's roadmap against the rubric, each 1 (poor) to 5 (excellent)."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    maturity: int = Field(ge=1, le=5)
    """Levels judged per feature with the rubric, not copied from the plateau; justifications name evidence."""
    features: int = Field(ge=1, le=5)
    """Features are things customers notice and use, tied to the jobs to be done, specific enough to test."""
    progression: int = Field(ge=1, le=5)
    """Each plateau builds on the one before without repeating it; the last ones aim at the organisation's direction."""
    writing: int = Field(ge=1, le=5)
    """Plain language, acronyms explained, no vendor or product names, no invented statistics."""
    mapping: int = Field(ge=1, le=5)
    """The catalogue items each feature relies on fit what it needs; none missing, none forced."""
    comment: str = Field(min_length=1, max_length=400)
    """One sentence: the most important improvement."""

    @property
    def mean(self) -> float:
        """The mean of the five scores."""
        return (self.maturity + self.features + self.progression + self.writing + self.mapping) / 5


def field_name(index: int) -> str:
    """The field of the index-th plateau or role: ids may hold dashes, so fields get safe names, ids as aliases."""
    return f"f{index}"


def descriptions_model(plateaus: Sequence[Plateau]) -> type[BaseModel]:
    """One paragraph per plateau, each field aliased by the plateau's id."""
    fields: dict[str, Any] = {
        field_name(i): (
            str,
            Field(
                alias=plateau.id,
                min_length=1,
                description=f"Plateau {plateau.level}, {plateau.name} (one paragraph): how the service looks there.",
            ),
        )
        for i, plateau in enumerate(plateaus)
    }
    return create_model("PlateauDescriptions", __config__=ConfigDict(extra="forbid"), **fields)


def features_model(roles: Sequence[Role], count: FeatureCount) -> type[BaseModel]:
    """A list of features per role, of the configured length, each field aliased by the role's id."""
    fields: dict[str, Any] = {
        field_name(i): (
            list[FeatureDraft],
            Field(
                alias=role.role_id,
                min_length=count.min,
                max_length=count.max,
                description=f"Features for {role.name} ({count.min} to {count.max}).",
            ),
        )
        for i, role in enumerate(roles)
    }
    return create_model("PlateauFeatures", __config__=ConfigDict(extra="forbid"), **fields)


def mapping_model(catalogue: Catalogue) -> type[BaseModel]:
    """Per feature, the catalogue's items it relies on, with the catalogue's facet model when it has one."""
    prefix = "".join(part.title() for part in catalogue.field.split("_"))
    item_fields: dict[str, Any] = {
        "item": (str, Field(description=f"The id of a {catalogue.label} catalogue item, exactly as in the table."))
    }
    facet_model = catalogue.facet_model
    if facet_model is not None:
        required = any(facet.required for facet in catalogue.facets)
        item_fields["facets"] = (facet_model if required else facet_model | None, ... if required else None)
    item_model = create_model(f"{prefix}Item", __config__=ConfigDict(extra="forbid"), **item_fields)
    feature_model = create_model(
        f"{prefix}FeatureMapping",
        __config__=ConfigDict(extra="forbid"),
        feature_id=(str, Field(description="The feature's id, exactly as listed.")),
        items=(list[item_model], Field(description="Catalogue items the feature relies on; may be empty.")),
    )
    return create_model(
        f"{prefix}Mapping",
        __config__=ConfigDict(extra="forbid"),
        mappings=(list[feature_model], Field(description="One entry per feature.")),
    )
