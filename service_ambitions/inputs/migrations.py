"""Schema versions of output records, and the steps that carry a record from one to the next.

Each step is a small pure function from one version's record (plain JSON data) to the
next version's, registered in :data:`STEPS`; :func:`migrate_record` follows them until the
record reaches the target, and the result is validated against the target's model. A
record already at the target is returned as it came, so migrating twice changes nothing.

Besides this tool's own layout, the registry reads the "1.0" layout written by earlier
tools in this space. That layout repeats each plateau's features in two denormalised
views: ``roles[]`` (each role with its features) and ``mappings`` (features grouped by
catalogue item). The step merges both back into the features — a feature found only in
a view is kept, and the ``mappings`` view is where a feature's mappings come from when its
own are empty — and keeps what has no place in the current layout (the meta fields, role
and catalogue item names, view entries naming features that do not exist) under
``meta.legacy``, so nothing is lost silently.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from service_ambitions.core.errors import InputError
from service_ambitions.core.models import CMMI_LABELS, SCHEMA_VERSION, ServiceEvolution
from service_ambitions.core.problems import describe_errors
from service_ambitions.inputs.entries import JsonObject, QuarantineRecord, Rejected, raw_prefix
from service_ambitions.inputs.jsonl import JsonlWriter, is_stdout, read_json_objects

__all__ = [
    "KNOWN_VERSIONS",
    "STEPS",
    "MigrationFailed",
    "MigrationReport",
    "Outcome",
    "migrate_record",
    "migrate_records",
    "record_version",
]

Record = dict[str, Any]
Step = Callable[[Record], Record]


class MigrationFailed(ValueError):
    """A record that cannot be carried to the target version; the message says why."""


def record_version(record: Mapping[str, Any]) -> str:
    """The schema version a record declares.

    Raises:
        MigrationFailed: the record has no ``meta.schema_version``.
    """
    meta = record.get("meta")
    version = meta.get("schema_version") if isinstance(meta, Mapping) else None
    if not isinstance(version, str):
        raise MigrationFailed("no meta.schema_version: not a service evolution record")
    return version


Outcome = tuple[ServiceEvolution, bool]
"""The record at the target version, and whether it had to change to get there."""


def migrate_record(record: Record, *, to: str = SCHEMA_VERSION, raw: str | None = None) -> Outcome:
    """Carry ``record`` to version ``to`` and validate it there.

    ``raw``, the record's JSON text, lets a record already at ``to`` be validated from its
    text, which pydantic-core does several times faster than from Python objects.

    Raises:
        MigrationFailed: the version is unknown, there is no way to ``to``, or the result
            does not validate; the message says which.
    """
    if to != SCHEMA_VERSION:
        raise MigrationFailed(f"records can only be migrated to {SCHEMA_VERSION}, the version this release writes")
    version = record_version(record)
    if version == to and raw is not None:
        try:
            return ServiceEvolution.model_validate_json(raw), False
        except ValidationError as exc:
            raise MigrationFailed(f"not a valid {to} record: {describe_errors(exc)}") from exc
    changed = False
    while version != to:
        if version not in STEPS:
            known = ", ".join(KNOWN_VERSIONS)
            raise MigrationFailed(f"unknown schema version {version!r} (known: {known})")
        source, (version, step) = version, STEPS[version]
        try:
            record = step(record)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            # A record of that version in a shape its writers never produced.
            raise MigrationFailed(f"not a readable {source} record: {type(exc).__name__}: {exc}") from exc
        changed = True
    try:
        return ServiceEvolution.model_validate(record), changed
    except ValidationError as exc:
        raise MigrationFailed(f"not a valid {to} record: {describe_errors(exc)}") from exc


@dataclass
class MigrationReport:
    """What ``migrate records`` did, line by line counted."""

    migrated: int = 0
    current: int = 0
    """Records already at the target version: written back unchanged."""
    failed: int = 0
    from_versions: Counter[str] = field(default_factory=Counter)
    failures: list[tuple[int, str]] = field(default_factory=list)
    """(line, reason) of every failed line, in order."""


def migrate_records(
    input_path: Path, output_path: Path, quarantine_path: Path, *, to: str = SCHEMA_VERSION, dry_run: bool = False
) -> MigrationReport:
    """Migrate every record of a JSONL file, in input order.

    Records already at ``to`` are copied byte for byte; lines that cannot be migrated go
    to ``quarantine_path`` with the reason (the file only appears when one does). With
    ``dry_run`` nothing is written.

    Raises:
        InputError: the input cannot be read, or the output would overwrite it.
    """
    _check_migration(input_path, output_path, quarantine_path, to)
    report = MigrationReport()
    entries = read_json_objects(input_path)
    if not dry_run:
        quarantine_path.unlink(missing_ok=True)  # an older run's would be mistaken for this one's
    with JsonlWriter(output_path) as output, JsonlWriter(quarantine_path) as quarantine:
        if not dry_run:
            output.open()
        for entry in entries:
            migrated = _migrated_entry(entry, to, report)
            if dry_run:
                continue
            if isinstance(migrated, QuarantineRecord):
                quarantine.write(migrated)
            else:
                output.write(migrated)
    return report


def _check_migration(input_path: Path, output_path: Path, quarantine_path: Path, to: str) -> None:
    """Raises InputError for an output over the input, or a version this release cannot write."""
    if not is_stdout(output_path) and input_path.resolve() in (output_path.resolve(), quarantine_path.resolve()):
        raise InputError("the output would overwrite the input", path=str(input_path), hint="choose another -o")
    if to != SCHEMA_VERSION:
        raise InputError(
            f"cannot migrate to {to!r}: this release writes {SCHEMA_VERSION} only",
            hint=f"leave out --to; records may come from versions {', '.join(KNOWN_VERSIONS)}",
        )


def _migrated_entry(
    entry: JsonObject | Rejected, to: str, report: MigrationReport
) -> ServiceEvolution | str | QuarantineRecord:
    """One line migrated (a record, or the line as it was when already current), or its quarantine record."""
    try:
        if isinstance(entry, Rejected):
            raise MigrationFailed(entry.reason)
        report.from_versions[record_version(entry.data)] += 1
        record, changed = migrate_record(entry.data, to=to)
    except MigrationFailed as exc:
        report.failed += 1
        report.failures.append((entry.line, str(exc)))
        return QuarantineRecord(kind="input", line=entry.line, reason=str(exc), raw=raw_prefix(entry.raw))
    if changed:
        report.migrated += 1
        return record
    report.current += 1
    return entry.raw


# -- 1.0 → 2.0 ---------------------------------------------------------------------------

_META_KEPT_1_0 = frozenset({"schema_version", "run_id", "created", "seed", "models", "generator"})
_STAGES = ("descriptions", "features", "mapping")


def _from_1_0(old: Record) -> Record:
    meta = dict(old.get("meta") or {})
    legacy: Record = {"schema_version": "1.0"}
    legacy.update({key: value for key, value in meta.items() if key not in _META_KEPT_1_0})
    extras = {key: value for key, value in old.items() if key not in {"meta", "service", "plateaus"}}
    if extras:
        legacy["record"] = extras
    models = meta.get("models")
    if isinstance(models, Mapping) and set(models) - set(_STAGES):
        legacy["models"] = dict(models)
    names = _LegacyNames()
    plateaus = [_plateau_from_1_0(plateau, names) for plateau in old.get("plateaus") or []]
    legacy.update(names.as_legacy())
    return {
        "meta": {
            "schema_version": "2.0",
            "run_id": meta.get("run_id"),
            "created": meta.get("created"),
            "generator": meta.get("generator") or "unknown (schema 1.0)",
            "models": {stage: _stage_model(models, stage) for stage in _STAGES},
            "seed": meta.get("seed"),
            "synthetic": False,
            "reference": None,
            "legacy": legacy,
        },
        "service": old.get("service"),
        "plateaus": plateaus,
    }


def _stage_model(models: Any, stage: str) -> str:
    if isinstance(models, str):
        return models
    if isinstance(models, Mapping) and isinstance(models.get(stage), str):
        return str(models[stage])
    return "unknown"


class _LegacyNames:
    """What the 1.0 views say that the current layout has no field for."""

    def __init__(self) -> None:
        self.roles: dict[str, Record] = {}
        self.items: dict[str, dict[str, str]] = {}
        self.unplaced: list[Record] = []
        self.relabelled: list[str] = []

    def role(self, role: Any) -> str | None:
        if not isinstance(role, Mapping) or not isinstance(role.get("role_id"), str):
            return None
        role_id = str(role["role_id"])
        known = self.roles.setdefault(role_id, {})
        known.update({key: role[key] for key in ("name", "description") if role.get(key) is not None})
        return role_id

    def as_legacy(self) -> Record:
        found: Record = {}
        if self.roles:
            found["roles"] = [{"role_id": role_id, **fields} for role_id, fields in self.roles.items()]
        if self.items:
            found["catalogue_items"] = self.items
        if self.unplaced:
            found["unplaced_mappings"] = self.unplaced
        if self.relabelled:
            found["relabelled_scores"] = self.relabelled
        return found


def _plateau_from_1_0(old: Any, names: _LegacyNames) -> Any:
    if not isinstance(old, Mapping):
        return old  # validation reports it
    level = old.get("plateau")
    features = [_feature_from_1_0(feature, names) for feature in old.get("features") or []]
    by_id = {feature.get("feature_id"): feature for feature in features}
    for role in old.get("roles") or []:
        role_id = names.role(role)
        for listed in role.get("features") or [] if isinstance(role, Mapping) else []:
            feature = by_id.get(listed.get("feature_id")) if isinstance(listed, Mapping) else None
            if feature is None and isinstance(listed, Mapping):
                # Only in the roles view: keep it rather than lose it.
                feature = _feature_from_1_0({"customer_type": role_id, **listed}, names)
                features.append(feature)
                by_id[feature.get("feature_id")] = feature
            elif feature is not None and not feature.get("customer_type"):
                feature["customer_type"] = role_id
    _merge_mapping_view(old.get("mappings"), by_id, names, level)
    for feature in features:
        feature.pop("_own_fields", None)
    name = old.get("plateau_name")
    return {
        "plateau": level,
        "plateau_id": _slug(name) if isinstance(name, str) and _slug(name) else f"plateau-{level}",
        "plateau_name": name,
        "service_description": old.get("service_description", ""),
        "features": features,
    }


def _feature_from_1_0(old: Any, names: _LegacyNames) -> Record:
    if not isinstance(old, Mapping):
        return {"feature_id": None}  # validation reports it
    role_id = names.role(old.get("role"))
    mappings = {
        catalogue: [_mapped_item(item) for item in items]
        for catalogue, items in (old.get("mappings") or {}).items()
        if isinstance(items, list)
    }
    return {
        "feature_id": old.get("feature_id"),
        "name": old.get("name"),
        "description": old.get("description"),
        "score": _score(old.get("score"), old.get("feature_id"), names),
        "customer_type": old.get("customer_type") or role_id,
        "mappings": mappings,
        "_own_fields": {catalogue for catalogue, items in mappings.items() if items},
    }


def _mapped_item(item: Any) -> Any:
    if isinstance(item, Mapping):
        return {"item": item.get("item", item.get("id")), "facets": item.get("facets")}
    return {"item": item, "facets": None} if isinstance(item, str) else item


def _score(score: Any, feature_id: Any, names: _LegacyNames) -> Any:
    """The score, its label made the one that belongs to its level (older tools let them drift)."""
    if not isinstance(score, Mapping) or score.get("level") not in CMMI_LABELS:
        return score
    label = CMMI_LABELS[score["level"]]
    if str(score.get("label", "")).casefold() != label.casefold():
        names.relabelled.append(str(feature_id))
    return {**score, "label": label}


def _merge_mapping_view(view: Any, by_id: Mapping[Any, Record], names: _LegacyNames, level: Any) -> None:
    """Fill each feature's empty mappings from the plateau's features-by-item view."""
    if not isinstance(view, Mapping):
        return
    for catalogue, items in view.items():
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, Mapping) or item.get("id") is None:
                continue
            item_id = str(item["id"])
            if item.get("name"):
                names.items.setdefault(catalogue, {})[item_id] = str(item["name"])
            for reference in item.get("mappings") or []:
                _merge_reference(reference, by_id, names, (level, catalogue, item_id))


def _merge_reference(
    reference: Any, by_id: Mapping[Any, Record], names: _LegacyNames, where: tuple[Any, str, str]
) -> None:
    """One item's reference to a feature, as that feature's mapping (or as unplaced when no feature has its id)."""
    level, catalogue, item_id = where
    feature_id = reference.get("feature_id") if isinstance(reference, Mapping) else None
    feature = by_id.get(feature_id)
    if feature is None:
        names.unplaced.append({"plateau": level, "field": catalogue, "item": item_id, "feature_id": feature_id})
        return
    if catalogue in feature["_own_fields"]:
        return  # the feature's own list is the more specific (it may carry facets)
    chosen = feature["mappings"].setdefault(catalogue, [])
    if all(existing.get("item") != item_id for existing in chosen):
        chosen.append({"item": item_id, "facets": None})


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


STEPS: dict[str, tuple[str, Step]] = {
    "1.0": ("2.0", _from_1_0),
}
"""From each version: the next version, and the step that gets a record there."""

KNOWN_VERSIONS = (*STEPS, SCHEMA_VERSION)
"""Every version a record may declare."""
