"""What ``map`` reads: evolution records of any known version, or features-only records.

An evolution record (a line with ``meta``) is migrated to the current version first. A
features-only record ``{"service": {...}, "features": [...]}`` is turned into an
evolution with one plateau per plateau its features name; its ``meta`` is written by the
map run. Either way, each line becomes an :class:`Accepted` entry holding the record to
map, or a :class:`Rejected` one with the reason.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from service_ambitions.core.errors import InputError
from service_ambitions.core.models import Feature, FeatureScore, MappedItem, PlateauResult, Service
from service_ambitions.core.problems import describe_errors
from service_ambitions.inputs.entries import Accepted, Existing, JsonObject, Rejected, raw_prefix
from service_ambitions.inputs.jsonl import DEFAULT_MAX_LINE_BYTES, read_json_objects, read_services
from service_ambitions.inputs.migrations import MigrationFailed, migrate_record
from service_ambitions.reference.data import Plateau

__all__ = ["FeatureInput", "FeaturesRecord", "load_service_file", "read_map_input"]


class _RoleRef(BaseModel):
    model_config = ConfigDict(extra="allow")

    role_id: str = Field(min_length=1)


class FeatureInput(BaseModel):
    """A feature as a features-only record gives it."""

    model_config = ConfigDict(extra="forbid")

    feature_id: str = Field(min_length=1)
    name: str = Field(min_length=1)
    description: str
    score: FeatureScore | None = None
    customer_type: str | None = None
    role: _RoleRef | list[_RoleRef] | None = None
    """Older files name the role here instead of in ``customer_type``: one role object or a list
    (the first is the feature's customer type)."""
    plateau: int | str | None = None
    """Plateau level or id; unset means the first plateau of the reference data."""
    mappings: dict[str, list[MappedItem]] = Field(default_factory=dict)
    """Kept for catalogues the run does not map."""

    @model_validator(mode="after")
    def _has_role(self) -> FeatureInput:
        if not self.customer_type and not self.role:
            raise ValueError("needs customer_type (the role id)")
        return self

    @property
    def role_id(self) -> str:
        """The role the feature is for: ``customer_type``, else the (first) role's id."""
        if self.customer_type:
            return self.customer_type
        role = self.role[0] if isinstance(self.role, list) else self.role
        return role.role_id if role is not None else ""


class FeaturesRecord(BaseModel):
    """A service's features, without plateau descriptions or meta."""

    model_config = ConfigDict(extra="forbid")

    service: Service | None = None
    service_id: str | None = None
    """Names the service in ``--service-file`` when the record has no service block."""
    features: list[FeatureInput] = Field(min_length=1)


def load_service_file(path: Path) -> dict[str, Service]:
    """Services by id from a services JSONL (the ``run`` input format).

    Raises:
        InputError: the file cannot be read or has a line that is not a service.
    """
    services: dict[str, Service] = {}
    for entry in read_services(path):
        if isinstance(entry, Rejected):
            raise InputError(f"service file: {entry.reason}", path=str(path), line=entry.line)
        services[entry.service.service_id] = entry.service
    return services


def read_map_input(
    path: Path,
    plateaus: Sequence[Plateau],
    *,
    services: Mapping[str, Service] | None = None,
    service_id: str | None = None,
    max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
) -> Iterator[Accepted | Rejected]:
    """Every line of ``path`` as a record to map, in order; other services' lines skipped with ``service_id``.

    The file is opened now, so a missing file fails here rather than at the first read.

    Raises:
        InputError: the file cannot be opened; or, once the lines run out, no line was
            for ``service_id``.
    """
    objects = read_json_objects(path, max_line_bytes=max_line_bytes)
    return _records(objects, plateaus, services or {}, service_id, path)


def _records(
    objects: Iterator[JsonObject | Rejected],
    plateaus: Sequence[Plateau],
    services: Mapping[str, Service],
    service_id: str | None,
    path: Path,
) -> Iterator[Accepted | Rejected]:
    first_seen: dict[str, int] = {}
    wanted_seen = False
    for entry in objects:
        if isinstance(entry, Rejected):
            yield entry
            continue
        claimed = _claimed_id(entry.data)
        if service_id is not None and claimed not in (service_id, None):
            continue
        parsed = _record(entry, plateaus, services)
        if isinstance(parsed, Accepted):
            sid = parsed.service.service_id
            if service_id is not None and sid != service_id:
                continue
            if sid in first_seen:
                reason = f"duplicate service_id {sid!r} (first on line {first_seen[sid]})"
                parsed = Rejected(entry.line, reason, raw_prefix(entry.raw))
            else:
                first_seen[sid] = entry.line
        # With service_id, whatever is yielded is that service's, unless it names no service.
        wanted_seen = wanted_seen or isinstance(parsed, Accepted) or claimed == service_id
        yield parsed
    if service_id is not None and not wanted_seen:
        raise InputError(f"no record for service {service_id!r}", path=str(path), hint="check --service-id")


def _claimed_id(data: Mapping[str, Any]) -> Any:
    """The service id a line names, if it names one, before it is validated."""
    service = data.get("service")
    return service.get("service_id") if isinstance(service, Mapping) else data.get("service_id")


def _record(entry: JsonObject, plateaus: Sequence[Plateau], services: Mapping[str, Service]) -> Accepted | Rejected:
    if "meta" in entry.data:
        try:
            record, _ = migrate_record(entry.data, raw=entry.raw)
        except MigrationFailed as exc:
            return Rejected(entry.line, str(exc), raw_prefix(entry.raw))
        return Accepted(entry.line, record.service, Existing(record.plateaus, record.meta))
    try:
        features = FeaturesRecord.model_validate(entry.data)
    except ValidationError as exc:
        return Rejected(
            entry.line, f"not an evolution or features record: {describe_errors(exc)}", raw_prefix(entry.raw)
        )
    try:
        service = _service(features, services)
        return Accepted(entry.line, service, Existing(_plateaus(features, plateaus), meta=None))
    except ValueError as exc:
        return Rejected(entry.line, str(exc), raw_prefix(entry.raw))


def _service(record: FeaturesRecord, services: Mapping[str, Service]) -> Service:
    service = record.service
    if service is None:
        if record.service_id is None:
            raise ValueError("no service block and no service_id to look one up with --service-file")
        service = services.get(record.service_id)
        if service is None:
            where = "is not in the --service-file" if services else "has no block and no --service-file was given"
            raise ValueError(f"service {record.service_id!r} {where}")
    return service


def _plateaus(record: FeaturesRecord, plateaus: Sequence[Plateau]) -> list[PlateauResult]:
    grouped: dict[str, list[Feature]] = {plateau.id: [] for plateau in plateaus}
    for feature in record.features:
        plateau = _plateau(feature.plateau, plateaus)
        role_id = feature.role_id
        grouped[plateau.id].append(
            Feature(
                feature_id=feature.feature_id,
                name=feature.name,
                description=feature.description,
                score=feature.score,
                customer_type=role_id,
                mappings=feature.mappings,
            )
        )
    return [
        PlateauResult(
            plateau=plateau.level,
            plateau_id=plateau.id,
            plateau_name=plateau.name,
            service_description="",
            features=grouped[plateau.id],
        )
        for plateau in plateaus
        if grouped[plateau.id]
    ]


def _plateau(wanted: Any, plateaus: Sequence[Plateau]) -> Plateau:
    if wanted is None:
        return plateaus[0]
    for plateau in plateaus:
        if wanted in (plateau.level, plateau.id) or str(wanted).casefold() == plateau.name.casefold():
            return plateau
    known = ", ".join(f"{plateau.level} ({plateau.id})" for plateau in plateaus)
    raise ValueError(f"plateau {wanted!r} is not one of the reference plateaus: {known}")
