"""Domain and output models: what a service is, and what its evolution looks like.

Input models keep fields they do not know (users bring richer records than we need);
output models forbid them, so a record that validates is exactly the versioned schema
that ``service-ambitions schema`` prints.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

__all__ = [
    "CMMI_LABELS",
    "RUN_STAGES",
    "SCHEMA_VERSION",
    "CMMILabel",
    "ExistingFeature",
    "Feature",
    "FeatureScore",
    "JobRole",
    "JobToBeDone",
    "MappedItem",
    "Meta",
    "PlateauResult",
    "ReferenceHashes",
    "Service",
    "ServiceEvolution",
    "Stage",
    "StageModels",
]

SCHEMA_VERSION = "2.0"
"""Version of the ``ServiceEvolution`` layout written by this release.

"2.0" and not "1.0", because records of an older layout from other tools in this
space already call themselves "1.0".
"""


class Stage(StrEnum):
    """The LLM calls made for one service, in the order they run; and ``eval``'s judge."""

    DESCRIPTIONS = "descriptions"
    FEATURES = "features"
    MAPPING = "mapping"
    JUDGE = "judge"
    """Not a stage of a run: ``eval``'s rubric scores of a finished roadmap."""


RUN_STAGES: tuple[Stage, ...] = (Stage.DESCRIPTIONS, Stage.FEATURES, Stage.MAPPING)
"""The stages ``run`` makes calls for, in order (``map`` only maps)."""


CMMILabel = Literal["Initial", "Managed", "Defined", "Quantitatively Managed", "Optimizing"]

CMMI_LABELS: dict[int, CMMILabel] = {
    1: "Initial",
    2: "Managed",
    3: "Defined",
    4: "Quantitatively Managed",
    5: "Optimizing",
}
"""The CMMI maturity label that belongs to each level."""


class JobRole(BaseModel):
    """A customer role named by a job, as files of the earlier service-ambitions tool give it."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    name: str | None = None
    role_id: str | None = None
    description: str | None = None

    def label(self) -> str:
        """How prompts name the role: its name, else its id."""
        return self.name or self.role_id or "unnamed role"


class JobToBeDone(BaseModel):
    """A job a customer hires the service to do.

    ``role`` comes in every shape the family of files users bring has: a string, one role
    object, a list of role objects (or strings), or nothing. It is kept as given.
    """

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    name: str = Field(min_length=1)
    job_to_be_done_id: str | None = None
    explanation: str | None = None
    role: str | JobRole | list[str | JobRole] | None = None

    def role_names(self) -> list[str]:
        """The roles this job is for, as prompts name them, in the order given."""
        roles = self.role if isinstance(self.role, list) else [self.role] if self.role is not None else []
        return [role if isinstance(role, str) else role.label() for role in roles]


class ExistingFeature(BaseModel):
    """A feature the service already offers, as the input describes it."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    name: str = Field(min_length=1)
    description: str | None = None
    feature_id: str | None = None


class Service(BaseModel):
    """One business service: one line of the input JSONL.

    Unknown fields are kept and written back unchanged in the output. Ids given as
    numbers are read as text.
    """

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    service_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    customer_type: str | None = None
    parent_id: str | None = None
    jobs_to_be_done: list[str | JobToBeDone] = Field(default_factory=list)
    features: list[ExistingFeature] = Field(default_factory=list)

    @field_validator("service_id", "name", "description")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value

    @field_validator("jobs_to_be_done", "features", mode="before")
    @classmethod
    def _null_is_none(cls, value: Any) -> Any:
        # Files of other tools write null for "no jobs" / "no features".
        return [] if value is None else value


class FeatureScore(BaseModel):
    """How mature a feature is, on the CMMI scale: the level, its label and why.

    The label is always the level's: code derives it, so no answer and no input record
    can pair a level with another level's label. A record that gives a label which does
    not match its level (older tools wrote such records) is read with the level's label.
    """

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    level: int = Field(ge=1, le=5)
    """CMMI maturity level, 1 (Initial) to 5 (Optimizing)."""
    label: CMMILabel
    """The CMMI label of that level: 1 Initial, 2 Managed, 3 Defined, 4 Quantitatively Managed, 5 Optimizing."""
    justification: str = Field(min_length=1)
    """One sentence on why the feature sits at this level."""

    @model_validator(mode="before")
    @classmethod
    def _label_from_level(cls, data: Any) -> Any:
        if isinstance(data, dict):
            level = data.get("level")
            if isinstance(level, int) and not isinstance(level, bool) and level in CMMI_LABELS:
                return {**data, "label": CMMI_LABELS[level]}
        return data


FacetValue = str | bool | float | int | None


class MappedItem(BaseModel):
    """A catalogue item a feature relies on, with the catalogue's facets if it declares any."""

    model_config = ConfigDict(extra="forbid")

    item: str
    facets: dict[str, FacetValue] | None = None


class Feature(BaseModel):
    """A feature the service offers one customer type at one plateau."""

    model_config = ConfigDict(extra="forbid")

    feature_id: str = Field(min_length=1)
    name: str
    description: str
    score: FeatureScore | None = None
    """Always set by ``run``; None only for a feature brought to ``map`` without a score."""
    customer_type: str
    mappings: dict[str, list[MappedItem]] = Field(default_factory=dict)


class PlateauResult(BaseModel):
    """The service as it looks at one maturity plateau."""

    model_config = ConfigDict(extra="forbid")

    plateau: int = Field(ge=1)
    plateau_id: str
    plateau_name: str
    service_description: str
    features: list[Feature]


class StageModels(BaseModel):
    """The model that answered each stage."""

    model_config = ConfigDict(extra="forbid")

    descriptions: str
    features: str
    mapping: str


class ReferenceHashes(BaseModel):
    """SHA-256 of the reference data and prompts a record was made with."""

    model_config = ConfigDict(extra="forbid")

    plateaus: str
    roles: str
    catalogues: dict[str, str]
    prompts: str


class Meta(BaseModel):
    """How, when and from what a record was made."""

    model_config = ConfigDict(extra="forbid")

    schema_version: Literal["2.0"] = "2.0"
    run_id: str
    created: datetime
    generator: str
    models: StageModels
    seed: int | None
    """None only for a migrated record whose original did not say."""
    synthetic: bool
    """True when the offline model wrote the content: it is placeholder text, not advice."""
    reference: ReferenceHashes | None
    """None only for a migrated record: the older layout did not record them."""
    dropped_items: Annotated[int, Field(ge=0)] = 0
    """Catalogue ids the model named that do not exist in the catalogue; they were removed."""
    legacy: dict[str, Any] | None = None
    """For a record ``migrate records`` converted from an older layout: that layout's fields
    with no place in this one (its schema version, meta fields, role and catalogue item
    names), kept as they were."""


class ServiceEvolution(BaseModel):
    """One output line: a service and how it evolves across the plateaus."""

    model_config = ConfigDict(extra="forbid")

    meta: Meta
    service: Service
    plateaus: list[PlateauResult]

    @field_serializer("service")
    def _service_as_given(self, service: Service) -> dict[str, Any]:
        # Write the service back as the input had it: no null or empty fields it never set.
        return service.model_dump(mode="json", exclude_unset=True)
