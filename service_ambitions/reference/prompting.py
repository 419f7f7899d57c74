"""Prompt templates and the text blocks rendered into them.

Templates are Markdown files with ``$name`` placeholders (:class:`string.Template`), shipped
in ``service_ambitions/reference/prompts``; a prompts directory given in settings replaces any of them
by file name. Each template may use only the placeholders listed in :data:`PLACEHOLDERS`, so
a typo in a custom template fails at ``validate`` time, not after an hour of calls.

The block renderers give every list a fixed, compact shape. The offline model reads the
same shapes back (see ``llm/offline.py``): catalogue items are table rows ``| id | name |
description |`` and features are bullets that start with their id in backticks.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.models import ExistingFeature, JobToBeDone, Service, ServiceEvolution
from service_ambitions.reference.data import Catalogue, CatalogueItem, FacetOption, Plateau, Role

__all__ = [
    "BLOCKS",
    "PER_CALL_MARKER",
    "PLACEHOLDERS",
    "PromptSet",
    "StagePlaceholders",
    "StageTemplate",
    "load_prompts",
    "render_catalogue_items",
    "render_facets",
    "render_plateaus",
    "render_roadmap",
    "render_roles",
    "render_service",
    "render_service_summary",
]

BLOCKS: Mapping[str, str] = {
    "context": "context",
    "vision": "vision",
    "writing": "writing",
    "rubric": "rubric",
    "feature_definition": "feature",
}
"""Shared blocks: placeholder → template file (without ``.md``). Plain text that any
stage's static part may include: who the organisation is, where it is heading, the
writing rules, the maturity rubric and what a feature is."""


@dataclass(frozen=True)
class StagePlaceholders:
    """What one stage's template may use: above the per-call marker, and below it."""

    static: frozenset[str]
    """The same for every call of the stage (a catalogue's items for every call mapping to it)."""
    call: frozenset[str]
    """What changes with each call: the service, the plateau, the features."""


PLACEHOLDERS: Mapping[str, StagePlaceholders] = {
    "descriptions": StagePlaceholders(
        static=frozenset({*BLOCKS, "plateaus"}),
        call=frozenset({"service"}),
    ),
    "features": StagePlaceholders(
        static=frozenset({*BLOCKS, "plateaus", "roles", "min_features", "max_features"}),
        call=frozenset(
            {
                "service",
                "plateau_level",
                "plateau_name",
                "plateau_description",
                "service_description",
                "earlier_features",
            }
        ),
    ),
    "mapping": StagePlaceholders(
        static=frozenset(
            {*BLOCKS, "plateaus", "catalogue_label", "catalogue_description", "catalogue_items", "facets"}
        ),
        call=frozenset(
            {
                "service",
                "service_name",
                "service_summary",
                "plateau_level",
                "plateau_name",
                "plateau_description",
                "service_description",
                "shortlist",
                "features",
            }
        ),
    ),
    "judge": StagePlaceholders(static=frozenset(BLOCKS), call=frozenset({"service", "roadmap"})),
}
"""The stage templates and the placeholders each may use (``judge`` is ``eval``'s, not a run's)."""

_UNHASHED = frozenset({"judge"})
"""Templates that do not shape a run's answers, so editing them changes no run's fingerprint."""

PER_CALL_MARKER = "<!-- per call"
"""A stage template's line that starts with this splits it: above, the instructions every
call of the stage shares (sent first, so providers can reuse them as a cached prefix);
below, the request of one call. The marker line itself is never sent."""


@dataclass(frozen=True)
class StageTemplate:
    """One stage's template, split at the per-call marker."""

    static: Template
    call: Template


@dataclass(frozen=True)
class PromptSet:
    """The templates of one run, checked, with a hash of their text for the output's meta."""

    stages: Mapping[str, StageTemplate]
    blocks: Mapping[str, str]
    sha256: str
    sources: Mapping[str, Path]

    def instructions(self, stage: str, **values: object) -> str:
        """The part every call of ``stage`` shares, the shared blocks filled in."""
        text = _tidy(self.stages[stage].static.substitute(self._values(values)))
        return text or self.blocks["context"]

    def request(self, stage: str, **values: object) -> str:
        """One call's request: the part below the marker (the whole template when it has none)."""
        return _tidy(self.stages[stage].call.substitute(self._values(values)))

    def _values(self, values: Mapping[str, object]) -> dict[str, str]:
        return {**self.blocks, **{key: str(value) for key, value in values.items()}}


_BLANK_RUN = re.compile(r"\n{3,}")


def _tidy(text: str) -> str:
    """No runs of blank lines where an empty block stood (no facets, no description): tokens read for nothing."""
    return _BLANK_RUN.sub("\n\n", text).strip()


def load_prompts(directory: Path | None = None) -> PromptSet:
    """Load the packaged templates, replaced by any same-named file in ``directory``.

    Raises:
        ConfigError: the directory is missing, a template cannot be read, it uses a
            placeholder its stage does not provide, or per-call content above the marker.
    """
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"prompts directory {directory} does not exist")
    packaged = resources.files("service_ambitions.reference") / "prompts"
    sources: dict[str, Path] = {}
    digest = hashlib.sha256()

    def read(name: str) -> tuple[str, Path]:
        custom = directory / f"{name}.md" if directory else None
        path = custom if custom and custom.is_file() else Path(str(packaged / f"{name}.md"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read prompt template {path}: {exc.strerror}") from exc
        sources[name] = path
        if name not in _UNHASHED:
            digest.update(f"{name}\0{text}\0".encode())
        return text, path

    blocks: dict[str, str] = {}
    for placeholder, name in BLOCKS.items():
        text, path = read(name)
        template = Template(text)
        _check_placeholders(template, frozenset(), path)
        blocks[placeholder] = template.substitute({}).strip()
    stages = {name: _split(*read(name), allowed) for name, allowed in PLACEHOLDERS.items()}
    return PromptSet(stages, blocks, digest.hexdigest(), sources)


def _split(text: str, path: Path, allowed: StagePlaceholders) -> StageTemplate:
    lines = text.splitlines(keepends=True)
    cut = next((i for i, line in enumerate(lines) if line.lstrip().startswith(PER_CALL_MARKER)), None)
    static, call = ("", text) if cut is None else ("".join(lines[:cut]), "".join(lines[cut + 1 :]))
    static_template, call_template = Template(static), Template(call)
    _check_placeholders(static_template, allowed.static, path, above_marker=allowed.call)
    _check_placeholders(call_template, allowed.static | allowed.call, path)
    return StageTemplate(static_template, call_template)


def _check_placeholders(
    template: Template, allowed: frozenset[str], path: Path, *, above_marker: frozenset[str] = frozenset()
) -> None:
    if not template.is_valid():
        raise ConfigError(f"{path}: a '$' is not followed by a placeholder name (write '$$' for a dollar sign)")
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown and unknown[0] in above_marker:
        raise ConfigError(
            f"{path}: ${unknown[0]} changes with every call, so it belongs below the '{PER_CALL_MARKER} -->' line",
            hint="above it goes only what every call of the stage shares: providers reuse that part as a cached prefix",
        )
    if unknown:
        available = ", ".join(f"${name}" for name in sorted(allowed)) or "none (write '$$' for a dollar sign)"
        raise ConfigError(f"{path}: unknown placeholder ${unknown[0]}", hint=f"available here: {available}")


def render_service(service: Service) -> str:
    """The service as the model needs it: what it is, for whom, and what it already does."""
    lines = [f"Service: {service.name} ({service.service_id})", f"Description: {service.description}"]
    if service.customer_type:
        lines.append(f"Customer type: {service.customer_type}")
    if service.jobs_to_be_done:
        lines.append("Jobs to be done:")
        lines += [f"- {_job_text(job)}" for job in service.jobs_to_be_done]
    if service.features:
        lines.append("Features it already offers:")
        lines += [f"- {_existing_feature_text(feature)}" for feature in service.features]
    return "\n".join(lines)


def render_service_summary(service: Service) -> str:
    """The service in two lines, for a request that needs to know what it is but not its jobs."""
    return f"Service: {service.name} ({service.service_id})\nDescription: {service.description}"


def render_roadmap(evolution: ServiceEvolution) -> str:
    """A finished roadmap as a judge reads it: each plateau's description, then its features per role."""
    lines: list[str] = []
    for result in evolution.plateaus:
        lines += ["", f"### Plateau {result.plateau}: {result.plateau_name}", result.service_description]
        for feature in result.features:
            score = f" [level {feature.score.level}: {feature.score.justification}]" if feature.score else ""
            items = "; ".join(
                f"{field}: {', '.join(item.item for item in chosen)}"
                for field, chosen in feature.mappings.items()
                if chosen
            )
            relies = f" (relies on {items})" if items else " (relies on no catalogue item)"
            lines.append(f"- {feature.customer_type}: {feature.name}: {feature.description}{score}{relies}")
    return "\n".join(lines).strip()


def _job_text(job: str | JobToBeDone) -> str:
    if isinstance(job, str):
        return job
    text = job.name
    if roles := job.role_names():
        text += f" (for {', '.join(roles)})"
    if job.explanation:
        text += f": {job.explanation}"
    return text


def _existing_feature_text(feature: ExistingFeature) -> str:
    return f"{feature.name}: {feature.description}" if feature.description else feature.name


def render_plateaus(plateaus: Iterable[Plateau]) -> str:
    """Every plateau with its level, id and description."""
    return "\n\n".join(f"### Plateau {p.level}: {p.name} (id `{p.id}`)\n{p.describe()}" for p in plateaus)


def render_roles(roles: Iterable[Role]) -> str:
    """One bullet per role, id first."""
    return "\n".join(f"- `{role.role_id}` {role.name}: {role.description}" for role in roles)


def render_catalogue_items(catalogue: Catalogue, items: Sequence[CatalogueItem] | None = None) -> str:
    """The catalogue (or ``items`` shortlisted from it) as a Markdown table: the densest form models read well."""
    rows = ["| id | name | description |", "| --- | --- | --- |"]
    rows += [f"| {item.id} | {item.name} | {_cell(item.description)} |" for item in items or catalogue.items]
    return "\n".join(rows)


def _cell(text: str) -> str:
    return text.replace("|", "/").replace("\n", " ")


def _option_text(option: FacetOption) -> str:
    return f"{option.id} ({option.label})" if option.label and option.label != option.id else option.id


def render_facets(catalogue: Catalogue) -> str:
    """What each facet means, or nothing when the catalogue declares none."""
    if not catalogue.facets:
        return ""
    lines = ["- For every item you name, also give these facets:"]
    for facet in catalogue.facets:
        need = "required" if facet.required else "optional"
        kind = f"one of: {', '.join(_option_text(o) for o in facet.options)}" if facet.type == "enum" else facet.type
        lines.append(f"  - `{facet.id}` ({need}; {kind}): {facet.describe()}")
    return "\n".join(lines) + "\n"
