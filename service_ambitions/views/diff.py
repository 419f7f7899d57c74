"""What changed between two runs' records: what a reviewer needs after a re-run with a new model or prompt.

Services are matched by id, plateaus by level, features by plateau, customer type and
feature id. A feature's id is a hash of its service, plateau, customer type and name, so
a feature whose name changed has a new id: among the features of one plateau and customer
type that only one side has, a pair whose names and descriptions read alike (the average
of their difflib ratios at least :data:`RENAME_SIMILARITY`) is reported as renamed, the rest as added or
removed. Matched and renamed features are compared for their score and their mappings.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from service_ambitions.core.models import Feature, PlateauResult, ServiceEvolution
from service_ambitions.inputs.entries import Rejected
from service_ambitions.inputs.records import RecordSet

__all__ = [
    "FeatureRef",
    "MappingChange",
    "Renamed",
    "RunDiff",
    "ScoreChange",
    "ServiceDiff",
    "SkippedLine",
    "diff_runs",
]

RENAME_SIMILARITY = 0.6
"""How alike (0 to 1) an added and a removed feature must read to count as one feature renamed."""


class _Diff(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FeatureRef(_Diff):
    """A feature, where it sits."""

    plateau: int
    customer_type: str
    feature_id: str
    name: str


class Renamed(_Diff):
    """A feature that reads alike on both sides under another name."""

    plateau: int
    customer_type: str
    old_id: str
    new_id: str
    old_name: str
    new_name: str


class ScoreChange(_Diff):
    """A feature whose CMMI level changed."""

    plateau: int
    customer_type: str
    feature_id: str
    name: str
    before: int
    after: int


class MappingChange(_Diff):
    """Catalogue items a feature gained or lost in one catalogue."""

    plateau: int
    customer_type: str
    feature_id: str
    name: str
    catalogue: str
    gained: list[str]
    lost: list[str]


class ServiceDiff(_Diff):
    """Everything that changed in one service present on both sides."""

    service_id: str
    name: str
    plateaus_added: list[int]
    plateaus_removed: list[int]
    descriptions_changed: list[int]
    """Plateaus whose description of the service changed."""
    added: list[FeatureRef]
    removed: list[FeatureRef]
    renamed: list[Renamed]
    scores: list[ScoreChange]
    mappings: list[MappingChange]


class SkippedLine(_Diff):
    """A line of one side that is not a readable record."""

    side: str
    line: int
    reason: str


class RunDiff(_Diff):
    """``diff --json``: what changed from OLD to NEW."""

    old: str
    new: str
    services_added: list[str]
    services_removed: list[str]
    changed: list[ServiceDiff]
    unchanged: int
    migrated: int
    """Records of an older schema version, on either side, carried to the current one first."""
    skipped: list[SkippedLine]


def diff_runs(old: RecordSet, new: RecordSet) -> RunDiff:
    """What changed from ``old`` to ``new``, service by service, in ``new``'s order."""
    changed: list[ServiceDiff] = []
    unchanged = 0
    for service_id, record in new.records.items():
        before = old.records.get(service_id)
        if before is None:
            continue
        found = _service_diff(before, record)
        if _is_empty(found):
            unchanged += 1
        else:
            changed.append(found)
    return RunDiff(
        old=str(old.path),
        new=str(new.path),
        services_added=[sid for sid in new.records if sid not in old.records],
        services_removed=[sid for sid in old.records if sid not in new.records],
        changed=changed,
        unchanged=unchanged,
        migrated=old.migrated + new.migrated,
        skipped=[*_skipped("old", old.skipped), *_skipped("new", new.skipped)],
    )


def _skipped(side: str, lines: Iterable[Rejected]) -> list[SkippedLine]:
    return [SkippedLine(side=side, line=line.line, reason=line.reason) for line in lines]


def _is_empty(found: ServiceDiff) -> bool:
    return not any(
        (
            found.plateaus_added,
            found.plateaus_removed,
            found.descriptions_changed,
            found.added,
            found.removed,
            found.renamed,
            found.scores,
            found.mappings,
        )
    )


def _service_diff(old: ServiceEvolution, new: ServiceEvolution) -> ServiceDiff:
    before = {plateau.plateau: plateau for plateau in old.plateaus}
    after = {plateau.plateau: plateau for plateau in new.plateaus}
    found = ServiceDiff(
        service_id=new.service.service_id,
        name=new.service.name,
        plateaus_added=sorted(set(after) - set(before)),
        plateaus_removed=sorted(set(before) - set(after)),
        descriptions_changed=sorted(
            level
            for level in set(before) & set(after)
            if before[level].service_description != after[level].service_description
        ),
        added=[],
        removed=[],
        renamed=[],
        scores=[],
        mappings=[],
    )
    for level in sorted(set(before) & set(after)):
        _plateau_diff(level, before[level], after[level], found)
    return found


def _plateau_diff(level: int, old: PlateauResult, new: PlateauResult, found: ServiceDiff) -> None:
    groups = sorted({f.customer_type for f in old.features} | {f.customer_type for f in new.features})
    for customer_type in groups:
        was = {f.feature_id: f for f in old.features if f.customer_type == customer_type}
        now = {f.feature_id: f for f in new.features if f.customer_type == customer_type}
        pairs = [(was[fid], now[fid]) for fid in now if fid in was]
        gone = [f for fid, f in was.items() if fid not in now]
        came = [f for fid, f in now.items() if fid not in was]
        for before, after in _renames(gone, came):
            gone.remove(before)
            came.remove(after)
            pairs.append((before, after))
            found.renamed.append(
                Renamed(
                    plateau=level,
                    customer_type=customer_type,
                    old_id=before.feature_id,
                    new_id=after.feature_id,
                    old_name=before.name,
                    new_name=after.name,
                )
            )
        found.added += [_ref(level, feature) for feature in came]
        found.removed += [_ref(level, feature) for feature in gone]
        for before, after in pairs:
            _compare(level, before, after, found)


def _renames(gone: Sequence[Feature], came: Sequence[Feature]) -> list[tuple[Feature, Feature]]:
    """Pairs of a removed and an added feature that read alike, most alike first, each feature once."""
    scored = sorted(
        ((_similarity(old, new), i, j) for i, old in enumerate(gone) for j, new in enumerate(came)),
        reverse=True,
    )
    used_old: set[int] = set()
    used_new: set[int] = set()
    pairs = []
    for ratio, i, j in scored:
        if ratio < RENAME_SIMILARITY:
            break
        if i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        pairs.append((gone[i], came[j]))
    return pairs


def _similarity(old: Feature, new: Feature) -> float:
    """How alike two features read: their names' and their descriptions' likeness, averaged.

    Both count: descriptions written from one template read alike whatever they describe.
    """
    names = difflib.SequenceMatcher(None, old.name.lower(), new.name.lower()).ratio()
    descriptions = difflib.SequenceMatcher(None, old.description, new.description).ratio()
    return (names + descriptions) / 2


def _compare(level: int, old: Feature, new: Feature, found: ServiceDiff) -> None:
    if old.score is not None and new.score is not None and old.score.level != new.score.level:
        found.scores.append(
            ScoreChange(
                plateau=level,
                customer_type=new.customer_type,
                feature_id=new.feature_id,
                name=new.name,
                before=old.score.level,
                after=new.score.level,
            )
        )
    for catalogue in sorted(set(old.mappings) | set(new.mappings)):
        before = {item.item for item in old.mappings.get(catalogue, [])}
        after = {item.item for item in new.mappings.get(catalogue, [])}
        if before != after:
            found.mappings.append(
                MappingChange(
                    plateau=level,
                    customer_type=new.customer_type,
                    feature_id=new.feature_id,
                    name=new.name,
                    catalogue=catalogue,
                    gained=sorted(after - before),
                    lost=sorted(before - after),
                )
            )


def _ref(level: int, feature: Feature) -> FeatureRef:
    return FeatureRef(
        plateau=level, customer_type=feature.customer_type, feature_id=feature.feature_id, name=feature.name
    )
