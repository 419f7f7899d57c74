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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from service_ambitions.core.errors import ConfigError
from service_ambitions.core.models import ExistingFeature, JobToBeDone, Service
from service_ambitions.reference.data import Catalogue, CatalogueItem, FacetOption, Plateau, Role

__all__ = [
    "PLACEHOLDERS",
    "PromptSet",
    "load_prompts",
    "render_catalogue_items",
    "render_facets",
    "render_plateaus",
    "render_roles",
    "render_service",
]

PLACEHOLDERS: Mapping[str, frozenset[str]] = {
    "context": frozenset(),
    "descriptions": frozenset({"service", "plateaus"}),
    "features": frozenset(
        {
            "service",
            "roles",
            "plateau_level",
            "plateau_name",
            "plateau_description",
            "service_description",
            "earlier_features",
            "min_features",
            "max_features",
        }
    ),
    "mapping": frozenset(
        {
            "service_name",
            "plateau_level",
            "plateau_name",
            "catalogue_label",
            "catalogue_description",
            "catalogue_items",
            "facets",
            "features",
        }
    ),
}
"""The templates a prompt set holds, and the placeholders each may use."""


@dataclass(frozen=True)
class PromptSet:
    """The templates of one run, checked, with a hash of their text for the output's meta."""

    templates: Mapping[str, Template]
    sha256: str
    sources: Mapping[str, Path]

    def render(self, name: str, **values: object) -> str:
        """Fill template ``name``; every placeholder it uses was checked at load time."""
        return self.templates[name].substitute({key: str(value) for key, value in values.items()})


def load_prompts(directory: Path | None = None) -> PromptSet:
    """Load the packaged templates, replaced by any same-named file in ``directory``.

    Raises:
        ConfigError: the directory is missing, a template cannot be read, or it uses a
            placeholder its stage does not provide.
    """
    if directory is not None and not directory.is_dir():
        raise ConfigError(f"prompts directory {directory} does not exist")
    packaged = resources.files("service_ambitions.reference") / "prompts"
    templates: dict[str, Template] = {}
    sources: dict[str, Path] = {}
    digest = hashlib.sha256()
    for name, allowed in PLACEHOLDERS.items():
        custom = directory / f"{name}.md" if directory else None
        path = custom if custom and custom.is_file() else Path(str(packaged / f"{name}.md"))
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read prompt template {path}: {exc.strerror}") from exc
        template = Template(text)
        _check_placeholders(template, allowed, path)
        templates[name], sources[name] = template, path
        digest.update(f"{name}\0{text}\0".encode())
    return PromptSet(templates, digest.hexdigest(), sources)


def _check_placeholders(template: Template, allowed: frozenset[str], path: Path) -> None:
    if not template.is_valid():
        raise ConfigError(f"{path}: a '$' is not followed by a placeholder name (write '$$' for a dollar sign)")
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown:
        available = ", ".join(f"${name}" for name in sorted(allowed)) or "none"
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
    lines = ["", "For every item you name, also give these facets:"]
    for facet in catalogue.facets:
        kind = f"one of {', '.join(_option_text(o) for o in facet.options)}" if facet.type == "enum" else facet.type
        need = "required" if facet.required else "optional"
        lines.append(f"- `{facet.id}` ({kind}, {need}): {facet.describe()}")
    return "\n".join(lines) + "\n"
