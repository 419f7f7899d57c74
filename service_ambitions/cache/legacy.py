"""Importing the JSON-file answer caches of older tools, for ``run --reuse-imported``.

Older tools in this space cached each answer as a JSON file, laid out by service and
plateau rather than by a hash of the request::

    <context>/<service_id>/<key>.json                               plateau descriptions
    <context>/<service_id>/<plateau>/<key>.json                     features of one plateau
    <context>/<service_id>/<plateau>/mappings/<field>/<key>.json    mappings to one catalogue

Their keys hash requests we cannot reproduce, so an imported answer is filed by what it
answers — stage, service, plateau, catalogue — and a run with ``--reuse-imported`` uses it
for the call about the same thing, when it fits that call's output type (see
``StageBook``). Each file is checked and reduced to the answer's content here; a file
that does not parse or has the wrong shape is counted as corrupt and never stops the
import.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from service_ambitions.cache.store import ResultCache
from service_ambitions.core.errors import InputError
from service_ambitions.core.models import RUN_STAGES, Stage
from service_ambitions.core.problems import describe_errors
from service_ambitions.reference.data import Catalogue, Plateau, Role

__all__ = [
    "ImportReport",
    "import_legacy_cache",
    "imported_descriptions",
    "imported_features",
    "imported_key",
    "imported_mapping",
]

_Shape = TypeVar("_Shape", bound=BaseModel)


class _Description(BaseModel):
    model_config = ConfigDict(extra="ignore")

    plateau: int
    plateau_name: str | None = None
    description: str = Field(min_length=1)


class _Descriptions(BaseModel):
    model_config = ConfigDict(extra="ignore")

    descriptions: list[_Description] = Field(min_length=1)


class _Feature(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str
    description: str
    score: dict[str, Any]


class _Features(BaseModel):
    model_config = ConfigDict(extra="ignore")

    features: dict[str, list[_Feature]] = Field(min_length=1)


class _Item(BaseModel):
    model_config = ConfigDict(extra="ignore")

    item: str
    facets: dict[str, Any] | None = None


class _FeatureMappings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    feature_id: str
    mappings: dict[str, list[_Item]] = Field(default_factory=dict)


class _Mappings(BaseModel):
    model_config = ConfigDict(extra="ignore")

    features: list[_FeatureMappings]


@dataclass
class ImportReport:
    """What ``migrate cache`` found."""

    imported: dict[Stage, int] = field(default_factory=lambda: dict.fromkeys(RUN_STAGES, 0))
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    """Files not in a known layout, or a second answer to the same call."""
    corrupt: list[tuple[Path, str]] = field(default_factory=list)
    """Files that do not parse, or do not hold the answer their place says."""


def imported_key(stage: Stage, service_id: str, plateau: int | None = None, catalogue: str | None = None) -> str:
    """Where an imported answer is filed: ``stage/service_id[/plateau[/catalogue]]``."""
    parts = [stage.value, service_id, None if plateau is None else str(plateau), catalogue]
    return "/".join(part for part in parts if part is not None)


def import_legacy_cache(directory: Path, cache: ResultCache, *, dry_run: bool = False) -> ImportReport:
    """Import every answer file under ``directory`` into ``cache``.

    When two files answer the same call (two contexts, or two keys), the first in path
    order is kept and the other counted as skipped.

    Raises:
        InputError: ``directory`` is not a directory.
    """
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory", hint="give the folder that holds the cached JSON files")
    report = ImportReport()
    answers: dict[str, Any] = {}
    first: dict[str, Path] = {}
    for path, parts in _files(directory):
        try:
            key, stage, payload = _answer(path, parts)
        except _Skip as exc:
            report.skipped.append((path, str(exc)))
            continue
        except ValueError as exc:
            report.corrupt.append((path, str(exc)))
            continue
        if key in first:
            report.skipped.append((path, f"the same answer as {first[key].relative_to(directory)}"))
            continue
        first[key] = path
        answers[key] = payload
        report.imported[stage] += 1
    if answers and not dry_run:
        cache.add_imported(answers)
    return report


def _files(directory: Path) -> Iterator[tuple[Path, tuple[str, ...]]]:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            yield path, path.relative_to(directory).parts


class _Skip(Exception):
    """A file this import does not read."""


def _answer(path: Path, parts: tuple[str, ...]) -> tuple[str, Stage, Any]:
    """The key, stage and normalised content of one file; _Skip or ValueError otherwise."""
    if path.suffix != ".json":
        raise _Skip("not a .json file")
    shape = len(parts)
    if shape == 3:
        _, service_id, _ = parts
        descriptions = _parse(path, _Descriptions)
        payload: Any = {str(d.plateau): d.description for d in descriptions.descriptions}
        return imported_key(Stage.DESCRIPTIONS, service_id), Stage.DESCRIPTIONS, payload
    if shape == 4:
        _, service_id, plateau, _ = parts
        key = imported_key(Stage.FEATURES, service_id, _level(plateau))
        features = _parse(path, _Features)
        payload = {role: [f.model_dump() for f in listed] for role, listed in features.features.items()}
        return key, Stage.FEATURES, payload
    if shape == 6 and parts[3] == "mappings":
        _, service_id, plateau, _, catalogue, _ = parts
        key = imported_key(Stage.MAPPING, service_id, _level(plateau), catalogue)
        mappings = _parse(path, _Mappings)
        payload = [
            {"feature_id": f.feature_id, "items": [item.model_dump() for item in f.mappings.get(catalogue, [])]}
            for f in mappings.features
        ]
        return key, Stage.MAPPING, payload
    raise _Skip("not where descriptions, features or mappings are kept")


def _level(text: str) -> int:
    if not text.isdigit():
        raise _Skip(f"{text!r} is not a plateau number")
    return int(text)


def _parse(path: Path, model: type[_Shape]) -> _Shape:
    try:
        return model.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ValueError(f"not valid JSON: {exc.errors()[0]['msg']}") from exc
        raise ValueError(f"not a {model.__name__.strip('_').lower()} answer: {describe_errors(exc)}") from exc
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror}") from exc


# -- imported answers as this run's output data (for ``llm/imported.py``) -------------------------


def imported_descriptions(plateaus: Sequence[Plateau], imported: dict[str, str]) -> dict[str, str]:
    """Descriptions by plateau level, keyed by this run's plateau ids."""
    missing = [str(p.level) for p in plateaus if str(p.level) not in imported]
    if missing:
        raise ValueError(f"no description for plateau {', '.join(missing)}")
    return {p.id: imported[str(p.level)] for p in plateaus}


def imported_features(
    roles: Sequence[Role], imported: dict[str, list[dict[str, Any]]]
) -> dict[str, list[dict[str, Any]]]:
    """This run's roles, in its order, with their features as drafts (an imported answer has no ids)."""
    missing = [role.role_id for role in roles if role.role_id not in imported]
    if missing:
        raise ValueError(f"no features for role {', '.join(missing)}")
    return {r.role_id: [_imported_draft(f) for f in imported[r.role_id]] for r in roles}


def _imported_draft(feature: dict[str, Any]) -> dict[str, Any]:
    """An imported feature as a draft: its label is dropped (code derives it from the level)."""
    score = feature.get("score")
    if isinstance(score, dict):
        score = {k: v for k, v in score.items() if k in ("level", "justification")}
    return {"name": feature.get("name"), "description": feature.get("description"), "score": score}


def imported_mapping(
    ids: list[str], catalogue: Catalogue, imported: list[dict[str, Any]], by_position: bool
) -> dict[str, Any]:
    """An imported mapping answer, re-keyed to this run's feature ids.

    An older tool gave its features its own ids. When they are not this run's, the answer
    can only be matched by position, and only when this plateau's features are that
    tool's too (reused from its imported features answer, whose order this run keeps):
    features a model wrote afresh are other features, whatever their number.
    """
    given = [entry["feature_id"] for entry in imported]
    if not set(given) <= set(ids):
        if not by_position:
            raise ValueError("it maps features with other ids, and this plateau's features were not imported")
        if len(given) != len(ids):
            raise ValueError(f"it maps {len(given)} features with other ids; this call has {len(ids)}")
        imported = [{**entry, "feature_id": ours} for entry, ours in zip(imported, ids, strict=True)]
    if not catalogue.facets:
        imported = [{**entry, "items": [{"item": i["item"]} for i in entry["items"]]} for entry in imported]
    return {"mappings": imported}
