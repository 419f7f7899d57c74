"""Pre-flight checks: what ``validate`` reports, each check on its own, nothing spent."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from service_ambitions.config.settings import Settings
from service_ambitions.core.errors import (
    InputError,
    ServiceAmbitionsError,
)
from service_ambitions.core.models import RUN_STAGES
from service_ambitions.inputs.entries import Rejected
from service_ambitions.inputs.jsonl import read_services
from service_ambitions.reference.data import load_reference
from service_ambitions.reference.prompting import load_prompts

if TYPE_CHECKING:
    from pydantic_ai.models import Model

__all__ = ["Check", "InputScan", "run_checks", "scan_input"]


@dataclass
class InputScan:
    """What an input file holds, read without calling any model."""

    services: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def scan_input(path: Path, *, max_services: int | None = None, max_line_bytes: int = 1 << 20) -> InputScan:
    """Read the whole input once: valid services (up to ``max_services``) and rejected lines.

    Raises:
        InputError: the file cannot be read.
    """
    scan = InputScan()
    for entry in read_services(path, max_line_bytes=max_line_bytes):
        if isinstance(entry, Rejected):
            scan.rejected.append(entry)
        elif max_services is None or scan.services < max_services:
            scan.services += 1
    return scan


@dataclass(frozen=True)
class Check:
    """The outcome of one pre-flight check."""

    name: str
    detail: str
    error: ServiceAmbitionsError | None = None


def run_checks(
    settings: Settings, input_path: Path, *, model_factory: Callable[[str], Model] | None = None
) -> list[Check]:
    """Check input, reference data, prompts, models and credentials, each on its own.

    Unlike :func:`prepare`, a failure does not stop the later checks, so one
    ``validate`` shows every problem at once. No model is called.
    """
    checks: list[Check] = []
    steps: list[tuple[str, Callable[[], str]]] = [
        ("reference data", functools.partial(_reference, settings)),
        ("prompts", functools.partial(_prompts, settings)),
        ("provider plug-ins", _plugins),
        ("models", functools.partial(_models, settings, model_factory)),
        ("input", functools.partial(_services, settings, input_path)),
    ]
    for name, action in steps:
        try:
            checks.append(Check(name, action()))
        except ServiceAmbitionsError as exc:
            checks.append(Check(name, exc.user_message, exc))
    return checks


def _reference(settings: Settings) -> str:
    files = settings.reference
    data = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
    sizes = ", ".join(f"{c.field} ({len(c.items)} items)" for c in data.catalogues)
    return f"{len(data.plateaus)} plateaus, {len(data.roles)} roles, catalogues: {sizes}"


def _prompts(settings: Settings) -> str:
    loaded = load_prompts(settings.prompts_dir)
    custom = sorted(
        name for name, path in loaded.sources.items() if settings.prompts_dir and path.parent == settings.prompts_dir
    )
    return f"{len(loaded.stages)} stage templates, {len(loaded.blocks)} shared blocks" + (
        f" ({', '.join(custom)} from {settings.prompts_dir})" if custom else ""
    )


def _plugins() -> str:
    from service_ambitions.llm.plugins import installed_plugins

    installed = installed_plugins()
    usable = [f"{prefix} ({package})" for prefix, (_, package) in sorted(installed.plugins.items())]
    left_out = [f"{broken.name} ({broken.reason})" for broken in installed.broken]
    if not usable and not left_out:
        return "none installed"
    return ", ".join(usable or ["none usable"]) + (f"; left out: {'; '.join(left_out)}" if left_out else "")


def _models(settings: Settings, model_factory: Callable[[str], Model] | None) -> str:
    from service_ambitions.llm.names import is_offline
    from service_ambitions.llm.resolve import resolve_model

    names = sorted({name for stage in RUN_STAGES for name in settings.model_chain(stage)})
    for name in names:
        (model_factory or resolve_model)(name)
    described = [f"{name} (built in: no key, no network)" if is_offline(name) else name for name in names]
    needing = [name for name in names if not is_offline(name)]
    return ", ".join(described) + (" (credentials present; no call made)" if needing else "")


def _services(settings: Settings, input_path: Path) -> str:
    scan = scan_input(input_path, max_line_bytes=settings.max_line_bytes)
    if not scan.services and not scan.rejected:
        raise InputError(f"{input_path} holds no service: it is empty", hint="give one JSON object per line")
    if scan.rejected:
        first = scan.rejected[0]
        raise InputError(
            f"{len(scan.rejected)} of {scan.services + len(scan.rejected)} lines rejected; first: {first.reason}",
            path=str(input_path),
            line=first.line,
        )
    return f"{scan.services} services"
