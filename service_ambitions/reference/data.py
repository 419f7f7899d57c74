"""Reference data: maturity plateaus, customer roles and the catalogues features map to.

All of it is data, read from JSON files; the defaults ship inside the package under
``service_ambitions/reference/defaults`` and any file can be replaced through settings. A catalogue
may declare *facets* (typed attributes every mapping must carry); :meth:`Catalogue.facet_model`
turns that declaration into a Pydantic model at run time, so the model's answers are
validated against it like any other output.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from service_ambitions.core.errors import ConfigError

__all__ = [
    "Catalogue",
    "CatalogueItem",
    "Facet",
    "FacetOption",
    "Plateau",
    "PlateauProfile",
    "ReferenceData",
    "Role",
    "default_catalogue_paths",
    "load_reference",
]


class PlateauProfile(BaseModel):
    """A structured plateau description."""

    model_config = ConfigDict(extra="forbid")

    core_idea: str
    key_characteristics: list[str] = Field(default_factory=list)
    what_it_feels_like: str | None = None


class Plateau(BaseModel):
    """One maturity level a service can reach."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][\w-]*$")
    name: str = Field(min_length=1)
    level: int = Field(default=0, ge=0)
    description: str | PlateauProfile

    def describe(self) -> str:
        """The description as prompt text, whichever form the file used."""
        if isinstance(self.description, str):
            return self.description
        profile = self.description
        lines = [profile.core_idea]
        lines += [f"- {item}" for item in profile.key_characteristics]
        if profile.what_it_feels_like:
            lines.append(f"What it feels like: {profile.what_it_feels_like}")
        return "\n".join(lines)


class Role(BaseModel):
    """A kind of customer a service has features for."""

    model_config = ConfigDict(extra="forbid")

    role_id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][\w-]*$")
    name: str = Field(min_length=1)
    description: str = ""


class FacetOption(BaseModel):
    """One value an enum facet allows: its id (what answers carry) and an optional label."""

    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)

    id: str = Field(min_length=1)
    label: str | None = None


class Facet(BaseModel):
    """A typed attribute a catalogue asks for on every mapping to it.

    Files of the earlier service-ambitions tool give each facet a ``label`` and an enum's
    options as ``{"id", "label"}`` objects; plain strings work too. Answers carry the
    option's id.
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1, pattern=r"^[A-Za-z_][\w]*$")
    type: Literal["boolean", "enum", "string", "number", "integer"]
    label: str | None = None
    description: str = ""
    options: list[FacetOption] = Field(default_factory=list)
    required: bool = False

    @field_validator("options", mode="before")
    @classmethod
    def _options_as_objects(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"id": option} if isinstance(option, str | int | float) else option for option in value]
        return value

    @model_validator(mode="after")
    def _enum_has_options(self) -> Facet:
        if self.type == "enum" and not self.options:
            raise ValueError(f"enum facet {self.id!r} needs a non-empty 'options' list")
        _require_unique(f"option of facet {self.id!r}", [option.id for option in self.options])
        return self

    @property
    def option_ids(self) -> list[str]:
        """The values an enum facet allows."""
        return [option.id for option in self.options]

    def annotation(self) -> Any:
        """The Python type a value of this facet must have."""
        base: Any = {"boolean": bool, "string": str, "number": float, "integer": int}.get(self.type)
        if self.type == "enum":
            base = Literal[tuple(self.option_ids)]
        return base if self.required else base | None

    def describe(self) -> str:
        """What the facet means, as prompts say it: its label and description."""
        parts = [part for part in (self.label, self.description) if part]
        return ". ".join(parts)


class CatalogueItem(BaseModel):
    """One entry of a catalogue."""

    model_config = ConfigDict(extra="allow")

    id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str = ""


class Catalogue(BaseModel):
    """A named list of items (applications, technologies, data…) features can rely on.

    Fields this tool does not use (other tools' metadata) are accepted and ignored.
    """

    model_config = ConfigDict(extra="ignore")

    field: str = Field(min_length=1, pattern=r"^[a-z][a-z0-9_]*$")
    label: str = Field(min_length=1)
    description: str = ""
    facets: list[Facet] = Field(default_factory=list)
    items: list[CatalogueItem] = Field(min_length=1)

    @model_validator(mode="after")
    def _ids_are_unique(self) -> Catalogue:
        _require_unique("item id", [item.id for item in self.items])
        _require_unique("facet id", [facet.id for facet in self.facets])
        return self

    @cached_property
    def item_ids(self) -> frozenset[str]:
        """Every id the catalogue holds: the only ids a mapping may name."""
        return frozenset(item.id for item in self.items)

    @cached_property
    def facet_model(self) -> type[BaseModel] | None:
        """A Pydantic model of the declared facets, or None when the catalogue has none."""
        if not self.facets:
            return None
        fields: dict[str, Any] = {
            facet.id: (
                facet.annotation(),
                Field(... if facet.required else None, description=facet.describe() or None),
            )
            for facet in self.facets
        }
        name = "".join(part.title() for part in self.field.split("_")) + "Facets"
        return create_model(name, __config__=ConfigDict(extra="forbid"), **fields)


def _require_unique(what: str, values: Sequence[str]) -> None:
    duplicates = sorted(value for value, count in Counter(values).items() if count > 1)
    if duplicates:
        raise ValueError(f"duplicate {what}: {', '.join(duplicates)}")


@dataclass(frozen=True)
class ReferenceData:
    """Everything a run knows about plateaus, roles and catalogues, with content hashes."""

    plateaus: tuple[Plateau, ...]
    roles: tuple[Role, ...]
    catalogues: tuple[Catalogue, ...]
    hashes: dict[str, str]
    """SHA-256 of each file's bytes, keyed ``plateaus``, ``roles`` and ``catalogue:<field>``."""

    def catalogue(self, field: str) -> Catalogue:
        """The catalogue whose mappings are written under ``field``."""
        for catalogue in self.catalogues:
            if catalogue.field == field:
                return catalogue
        known = ", ".join(c.field for c in self.catalogues)
        raise ConfigError(f"unknown catalogue {field!r}; known catalogues: {known}")


_DATA = resources.files("service_ambitions.reference") / "defaults"


def default_catalogue_paths() -> list[Path]:
    """The catalogue files that ship with the package."""
    folder = _DATA / "catalogues"
    return sorted(Path(str(folder / entry.name)) for entry in folder.iterdir() if entry.name.endswith(".json"))


def load_reference(
    *,
    plateaus: Path | None = None,
    roles: Path | None = None,
    catalogues: Sequence[Path] | None = None,
) -> ReferenceData:
    """Read and check the reference files; None means the packaged default.

    Raises:
        ConfigError: a file is missing, is not JSON, or does not match its format.
    """
    plateau_path = plateaus or Path(str(_DATA / "plateaus.json"))
    role_path = roles or Path(str(_DATA / "roles.json"))
    catalogue_paths = list(catalogues) if catalogues else default_catalogue_paths()

    hashes: dict[str, str] = {}
    plateau_raw, hashes["plateaus"] = _read_json(plateau_path)
    role_raw, hashes["roles"] = _read_json(role_path)
    loaded_plateaus = _number_plateaus(_validate(list[Plateau], plateau_raw, plateau_path))
    loaded_roles = _validate(list[Role], role_raw, role_path)
    _check_unique_in_file("plateau id", [p.id for p in loaded_plateaus], plateau_path)
    _check_unique_in_file("plateau level", [str(p.level) for p in loaded_plateaus], plateau_path)
    _check_unique_in_file("role_id", [r.role_id for r in loaded_roles], role_path)

    loaded_catalogues: list[Catalogue] = []
    for path in catalogue_paths:
        raw, digest = _read_json(path)
        if isinstance(raw, list):
            # A bare list of items: the file name says which catalogue it is.
            raw = {"field": path.stem, "label": path.stem.replace("_", " ").title(), "items": raw}
        catalogue = _validate(Catalogue, raw, path)
        if f"catalogue:{catalogue.field}" in hashes:
            raise ConfigError(f"{path}: a second catalogue uses field {catalogue.field!r}")
        hashes[f"catalogue:{catalogue.field}"] = digest
        loaded_catalogues.append(catalogue)

    return ReferenceData(tuple(loaded_plateaus), tuple(loaded_roles), tuple(loaded_catalogues), hashes)


def _read_json(path: Path) -> tuple[Any, str]:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read reference file {path}: {exc.strerror}") from exc
    try:
        return json.loads(data), hashlib.sha256(data).hexdigest()
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from exc


def _validate(kind: Any, raw: Any, path: Path) -> Any:
    try:
        result = TypeAdapter(kind).validate_python(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "(top level)"
        raise ConfigError(f"{path}: {where}: {first['msg']}") from exc
    if isinstance(result, list) and not result:
        raise ConfigError(f"{path}: the file holds no entries")
    return result


def _number_plateaus(plateaus: list[Plateau]) -> list[Plateau]:
    """Give plateaus without an explicit level their position (1-based) and sort by level."""
    numbered = [p if p.level else p.model_copy(update={"level": i}) for i, p in enumerate(plateaus, start=1)]
    return sorted(numbered, key=lambda p: p.level)


def _check_unique_in_file(what: str, values: list[str], path: Path) -> None:
    try:
        _require_unique(what, values)
    except ValueError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
