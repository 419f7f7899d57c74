"""Quality rules: what an architect would flag reading one service's roadmap.

Each rule reads one :class:`~service_ambitions.core.models.ServiceEvolution` and yields
findings; none calls a model, so ``check`` is free, deterministic and fast. What a rule
counts as a defect comes from :class:`~service_ambitions.config.settings.QualitySettings`.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from itertools import combinations, pairwise

from pydantic import BaseModel, ConfigDict

from service_ambitions.config.settings import QualitySettings
from service_ambitions.core.models import Feature, PlateauResult, ServiceEvolution
from service_ambitions.reference.data import ReferenceData

__all__ = ["RULES", "Finding", "KnownRoles", "Rule", "Severity", "check_service", "packaged_vendors", "service_score"]


class Severity(StrEnum):
    """How much a finding matters: an error makes the roadmap wrong, a warning weaker, info is worth a look."""

    ERROR = "error"
    WARNING = "warning"
    INFO = "info"


_WEIGHT = {Severity.ERROR: 10, Severity.WARNING: 3, Severity.INFO: 1}


class Finding(BaseModel):
    """One defect: where it is, which rule found it, and why it matters, in one line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    service_id: str
    rule: str
    severity: Severity
    why: str
    plateau: int | None = None
    role: str | None = None
    feature_id: str | None = None


@dataclass(frozen=True)
class KnownRoles:
    """The roles of the reference data a record may have been made with, and their file's SHA-256."""

    sha256: str
    role_ids: tuple[str, ...]

    @classmethod
    def of(cls, reference: ReferenceData) -> KnownRoles:
        """The roles of loaded reference data."""
        return cls(reference.hashes["roles"], tuple(role.role_id for role in reference.roles))


@dataclass(frozen=True)
class _Context:
    evolution: ServiceEvolution
    settings: QualitySettings
    vendors: tuple[str, ...]
    dropped: int
    roles: KnownRoles | None = None

    def expected_roles(self) -> set[str]:
        """Every role that should have features: those the record has, and the reference's when it made the record."""
        found = {feature.customer_type for result in self.evolution.plateaus for feature in result.features}
        reference = self.evolution.meta.reference
        if self.roles is not None and reference is not None and reference.roles == self.roles.sha256:
            found |= set(self.roles.role_ids)
        return found

    def finding(self, rule: str, severity: Severity, why: str, **where: str | int | None) -> Finding:
        return Finding(service_id=self.evolution.service.service_id, rule=rule, severity=severity, why=why, **where)


@dataclass(frozen=True)
class Rule:
    """A rule: its id (for ``quality.skip``), what it looks for, and the check."""

    id: str
    summary: str
    check: Callable[[_Context], Iterator[Finding]]


_WORD = re.compile(r"[a-z0-9]+")
_ACRONYM = re.compile(r"\b[A-Z][A-Z0-9]{1,5}s?\b")


def _words(text: str) -> set[str]:
    return {word for word in _WORD.findall(text.lower()) if len(word) > 2}


def _features(evolution: ServiceEvolution) -> Iterator[tuple[PlateauResult, Feature]]:
    for result in evolution.plateaus:
        for feature in result.features:
            yield result, feature


def _justification(feature: Feature) -> str:
    return feature.score.justification if feature.score is not None else ""


def _maturity_not_rising(context: _Context) -> Iterator[Finding]:
    means = [
        (result.plateau, sum(levels) / len(levels))
        for result in context.evolution.plateaus
        if (levels := [f.score.level for f in result.features if f.score is not None])
    ]
    for (low, before), (high, after) in pairwise(means):
        if after < before:
            yield context.finding(
                "maturity-not-rising",
                Severity.WARNING,
                f"mean maturity falls from {before:.1f} at plateau {low} to {after:.1f} at plateau {high}",
                plateau=high,
            )
    if len(means) > 1 and means[-1][1] <= means[0][1]:
        yield context.finding(
            "maturity-not-rising",
            Severity.WARNING,
            f"mean maturity does not rise over the roadmap ({means[0][1]:.1f} at the first plateau, "
            f"{means[-1][1]:.1f} at the last)",
        )


def _level_copies_plateau(context: _Context) -> Iterator[Finding]:
    pairs = [
        (result.plateau, feature.score.level)
        for result, feature in _features(context.evolution)
        if feature.score is not None
    ]
    if len(pairs) < 4:
        return
    copied = sum(1 for plateau, level in pairs if plateau == level)
    share = copied / len(pairs)
    if share > context.settings.level_copy_share:
        yield context.finding(
            "level-copies-plateau",
            Severity.WARNING,
            f"{copied} of {len(pairs)} features ({share:.0%}) score exactly their plateau's number: "
            "maturity looks copied from the plateau, not judged",
        )


def _repeated_feature(context: _Context) -> Iterator[Finding]:
    features = list(_features(context.evolution))
    texts = [_words(f"{feature.name} {feature.description}") for _, feature in features]
    # Words most of the service's features share (its name, its domain) say nothing about
    # whether two features are the same: they are left out of the comparison.
    spread = Counter(word for words in texts for word in words)
    background = {word for word, count in spread.items() if count > max(2, len(features) * 0.3)}
    rows = [
        (result.plateau, feature, words - background, " ".join(_WORD.findall(feature.name.lower())))
        for (result, feature), words in zip(features, texts, strict=True)
    ]
    similarity = context.settings.similarity
    for (p1, f1, w1, n1), (p2, f2, w2, n2) in combinations(rows, 2):
        if p1 == p2 and f1.customer_type == f2.customer_type:
            continue  # siblings in one list are the model's own choice; repeats across lists are the defect
        smaller, larger = sorted((len(w1), len(w2)))
        if n1 != n2 and smaller < similarity * larger:
            continue  # even if every word of the smaller were shared, too few to count (a bound, not a guess)
        shared = len(w1 & w2)
        either = smaller + larger - shared
        overlap = shared / either if either else 0.0
        if n1 == n2 or overlap >= similarity:
            where = f"plateau {p1}" if p1 == p2 else f"plateaus {p1} and {p2}"
            yield context.finding(
                "repeated-feature",
                Severity.WARNING,
                f"'{f2.name}' repeats '{f1.name}' ({where}, {overlap:.0%} of their words shared)",
                plateau=p2,
                role=f2.customer_type,
                feature_id=f2.feature_id,
            )


def _role_without_features(context: _Context) -> Iterator[Finding]:
    roles = sorted(context.expected_roles())
    for result in context.evolution.plateaus:
        present = {feature.customer_type for feature in result.features}
        for role in roles:
            if role not in present:
                yield context.finding(
                    "role-without-features",
                    Severity.ERROR,
                    f"no feature for {role} at plateau {result.plateau}",
                    plateau=result.plateau,
                    role=role,
                )


def _feature_relies_on_nothing(context: _Context) -> Iterator[Finding]:
    for result, feature in _features(context.evolution):
        if feature.mappings and not any(feature.mappings.values()):
            yield context.finding(
                "feature-relies-on-nothing",
                Severity.INFO,
                f"'{feature.name}' relies on no item of any catalogue",
                plateau=result.plateau,
                role=feature.customer_type,
                feature_id=feature.feature_id,
            )


def _catalogue_unused(context: _Context) -> Iterator[Finding]:
    used: dict[str, int] = defaultdict(int)
    for _, feature in _features(context.evolution):
        for field, items in feature.mappings.items():
            used[field] += len(items)
    for field, count in sorted(used.items()):
        if count == 0:
            yield context.finding(
                "catalogue-unused", Severity.WARNING, f"no feature of the service relies on any {field} item"
            )


def _invented_ids(context: _Context) -> Iterator[Finding]:
    if context.dropped > context.settings.max_dropped_items:
        yield context.finding(
            "invented-ids",
            Severity.WARNING,
            f"{context.dropped} catalogue ids the model invented were dropped (more than "
            f"{context.settings.max_dropped_items}): the catalogue may not fit the service, or the prompt is unclear",
        )


def _repeated_justification(context: _Context) -> Iterator[Finding]:
    seen: Counter[str] = Counter()
    first: dict[str, Feature] = {}
    for result, feature in _features(context.evolution):
        if feature.score is None:
            continue
        text = " ".join(_WORD.findall(feature.score.justification.lower()))
        seen[text] += 1
        if seen[text] == 1:
            first[text] = feature
        elif seen[text] == 2:
            yield context.finding(
                "repeated-justification",
                Severity.WARNING,
                f"'{feature.name}' has word for word the justification of '{first[text].name}'",
                plateau=result.plateau,
                role=feature.customer_type,
                feature_id=feature.feature_id,
            )


def _vendor_name(context: _Context) -> Iterator[Finding]:
    if not context.vendors:
        return
    pattern = re.compile(r"\b(" + "|".join(re.escape(name) for name in context.vendors) + r")\b")
    for result in context.evolution.plateaus:
        if match := pattern.search(result.service_description):
            yield context.finding(
                "vendor-name",
                Severity.WARNING,
                f"the plateau description names {match.group(1)}",
                plateau=result.plateau,
            )
        for feature in result.features:
            text = f"{feature.name} {feature.description} {_justification(feature)}"
            if match := pattern.search(text):
                yield context.finding(
                    "vendor-name",
                    Severity.WARNING,
                    f"'{feature.name}' names {match.group(1)}: describe the capability, not a product",
                    plateau=result.plateau,
                    role=feature.customer_type,
                    feature_id=feature.feature_id,
                )


def _acronym_unexplained(context: _Context) -> Iterator[Finding]:
    texts = [result.service_description for result in context.evolution.plateaus] + [
        f"{feature.name}. {feature.description} {_justification(feature)}"
        for _, feature in _features(context.evolution)
    ]
    whole = "\n".join(texts)
    known = {*context.settings.acronyms, context.evolution.service.service_id}
    for acronym in sorted({match.rstrip("s") for match in _ACRONYM.findall(whole)} - known):
        spelled = re.search(rf"\({re.escape(acronym)}s?\)|\b{re.escape(acronym)}s? \(", whole)
        if not spelled and not acronym.isdigit():
            yield context.finding(
                "acronym-unexplained", Severity.INFO, f"{acronym} is never spelled out for a non-specialist reader"
            )


def _description_names_plateau(context: _Context) -> Iterator[Finding]:
    for result in context.evolution.plateaus:
        text = result.service_description
        named = (
            re.search(rf"\b{re.escape(result.plateau_name)}\b", text, re.IGNORECASE) if result.plateau_name else None
        )
        if named or re.search(r"\bplateau\b", text, re.IGNORECASE):
            yield context.finding(
                "plateau-description",
                Severity.INFO,
                "the description names the plateau instead of describing the service there",
                plateau=result.plateau,
            )
        elif len(_words(text) - _words(context.evolution.service.name)) < 8:
            yield context.finding(
                "plateau-description",
                Severity.WARNING,
                "the description says little beyond the service's name",
                plateau=result.plateau,
            )


RULES: Sequence[Rule] = (
    Rule(
        "maturity-not-rising",
        "mean maturity falls between plateaus, or does not rise over the roadmap",
        _maturity_not_rising,
    ),
    Rule("level-copies-plateau", "too many features score exactly their plateau's number", _level_copies_plateau),
    Rule(
        "repeated-feature", "a feature repeats one of another plateau or role (name and description)", _repeated_feature
    ),
    Rule("role-without-features", "a role has no feature at a plateau", _role_without_features),
    Rule("feature-relies-on-nothing", "a feature relies on no catalogue item", _feature_relies_on_nothing),
    Rule("catalogue-unused", "no feature of the service uses any item of a catalogue", _catalogue_unused),
    Rule("invented-ids", "many invented catalogue ids were dropped", _invented_ids),
    Rule("repeated-justification", "two features share a justification word for word", _repeated_justification),
    Rule("vendor-name", "a vendor or product name (quality.vendors)", _vendor_name),
    Rule("acronym-unexplained", "an acronym is never spelled out (quality.acronyms are exempt)", _acronym_unexplained),
    Rule(
        "plateau-description",
        "a plateau description names the plateau, or says little beyond the service's name",
        _description_names_plateau,
    ),
)
"""Every rule, in the order findings are reported."""


def packaged_vendors() -> tuple[str, ...]:
    """The vendor and product names shipped with the tool."""
    text = (resources.files("service_ambitions.reference") / "defaults" / "vendors.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def check_service(
    evolution: ServiceEvolution,
    settings: QualitySettings,
    *,
    dropped: int = 0,
    vendors: Sequence[str] | None = None,
    roles: KnownRoles | None = None,
) -> list[Finding]:
    """Every finding of every rule not skipped, for one service.

    ``roles``: the reference data's roles; a record made with that very file must give
    each of them features at every plateau, even one it left out everywhere.
    """
    names = tuple(vendors if vendors is not None else settings.vendors if settings.vendors is not None else ())
    context = _Context(evolution, settings, names, dropped, roles)
    skipped = set(settings.skip)
    return [finding for rule in RULES if rule.id not in skipped for finding in rule.check(context)]


def service_score(findings: Sequence[Finding]) -> int:
    """100 for a clean roadmap, less 10 an error, 3 a warning and 1 an info, never below 0."""
    return max(0, 100 - sum(_WEIGHT[finding.severity] for finding in findings))
