"""service-ambitions: turn business services into service evolutions with structured LLM output.

The library API is re-exported here and imported lazily, so that the command-line tool
starts fast; ``service_ambitions.cli`` is a thin layer over these names.
"""

from __future__ import annotations

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
    from service_ambitions.config.settings import Settings, load_settings
    from service_ambitions.core.errors import (
        BudgetExceeded,
        CacheCorrupt,
        CacheUnavailable,
        ConfigError,
        InputError,
        MappingError,
        OutputClosed,
        OutputError,
        OutputInvalid,
        ProviderError,
        ProviderRefused,
        ProviderUnreachable,
        ResumeMismatch,
        ServiceAmbitionsError,
    )
    from service_ambitions.core.models import SCHEMA_VERSION, Service, ServiceEvolution, Stage
    from service_ambitions.jobs.checks import run_checks, scan_input
    from service_ambitions.jobs.run import generate
    from service_ambitions.jobs.setup import Prepared, prepare
    from service_ambitions.llm.gateway import Gateway
    from service_ambitions.llm.offline import offline_model
    from service_ambitions.llm.requests import LLMAnswer, LLMRequest
    from service_ambitions.llm.resolve import resolve_model
    from service_ambitions.reference.data import load_reference
    from service_ambitions.reference.prompting import load_prompts

_EXPORTS = {
    "Settings": "config.settings",
    "load_settings": "config.settings",
    "BudgetExceeded": "core.errors",
    "CacheCorrupt": "core.errors",
    "CacheUnavailable": "core.errors",
    "ConfigError": "core.errors",
    "InputError": "core.errors",
    "MappingError": "core.errors",
    "OutputClosed": "core.errors",
    "OutputError": "core.errors",
    "OutputInvalid": "core.errors",
    "ProviderError": "core.errors",
    "ProviderRefused": "core.errors",
    "ProviderUnreachable": "core.errors",
    "ResumeMismatch": "core.errors",
    "ServiceAmbitionsError": "core.errors",
    "Prepared": "jobs.setup",
    "generate": "jobs.run",
    "prepare": "jobs.setup",
    "run_checks": "jobs.checks",
    "scan_input": "jobs.checks",
    "Gateway": "llm.gateway",
    "LLMAnswer": "llm.requests",
    "LLMRequest": "llm.requests",
    "offline_model": "llm.offline",
    "resolve_model": "llm.resolve",
    "SCHEMA_VERSION": "core.models",
    "Service": "core.models",
    "ServiceEvolution": "core.models",
    "Stage": "core.models",
    "load_prompts": "reference.prompting",
    "load_reference": "reference.data",
}

__all__ = [
    "SCHEMA_VERSION",
    "BudgetExceeded",
    "CacheCorrupt",
    "CacheUnavailable",
    "ConfigError",
    "Gateway",
    "InputError",
    "LLMAnswer",
    "LLMRequest",
    "MappingError",
    "OutputClosed",
    "OutputError",
    "OutputInvalid",
    "Prepared",
    "ProviderError",
    "ProviderRefused",
    "ProviderUnreachable",
    "ResumeMismatch",
    "Service",
    "ServiceAmbitionsError",
    "ServiceEvolution",
    "Settings",
    "Stage",
    "__version__",
    "generate",
    "load_prompts",
    "load_reference",
    "load_settings",
    "offline_model",
    "prepare",
    "resolve_model",
    "run_checks",
    "scan_input",
]


def __getattr__(name: str) -> _typing.Any:
    if name == "__version__":
        from importlib.metadata import version

        return version("service-ambitions")
    if name in _EXPORTS:
        return getattr(_import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
