"""service-ambitions: turn business services into service evolutions with structured LLM output.

The library API is re-exported here and imported lazily, so that the command-line tool
starts fast; ``service_ambitions.cli`` is a thin layer over these names.
"""

from __future__ import annotations

import typing as _typing
from importlib import import_module as _import_module

if _typing.TYPE_CHECKING:
    from .config import Settings, load_settings
    from .errors import (
        BudgetExceeded,
        CacheCorrupt,
        CacheUnavailable,
        ConfigError,
        InputError,
        MappingError,
        OutputError,
        OutputInvalid,
        ProviderError,
        ProviderRefused,
        ResumeMismatch,
        ServiceAmbitionsError,
    )
    from .jobs import Prepared, generate, prepare, run_checks, scan_input
    from .llm.gateway import Gateway, LLMAnswer, LLMRequest
    from .llm.offline import offline_model
    from .llm.resolve import resolve_model
    from .models import SCHEMA_VERSION, Service, ServiceEvolution, Stage
    from .prompting import load_prompts
    from .reference import load_reference

_EXPORTS = {
    "Settings": "config",
    "load_settings": "config",
    "BudgetExceeded": "errors",
    "CacheCorrupt": "errors",
    "CacheUnavailable": "errors",
    "ConfigError": "errors",
    "InputError": "errors",
    "MappingError": "errors",
    "OutputError": "errors",
    "OutputInvalid": "errors",
    "ProviderError": "errors",
    "ProviderRefused": "errors",
    "ResumeMismatch": "errors",
    "ServiceAmbitionsError": "errors",
    "Prepared": "jobs",
    "generate": "jobs",
    "prepare": "jobs",
    "run_checks": "jobs",
    "scan_input": "jobs",
    "Gateway": "llm.gateway",
    "LLMAnswer": "llm.gateway",
    "LLMRequest": "llm.gateway",
    "offline_model": "llm.offline",
    "resolve_model": "llm.resolve",
    "SCHEMA_VERSION": "models",
    "Service": "models",
    "ServiceEvolution": "models",
    "Stage": "models",
    "load_prompts": "prompting",
    "load_reference": "reference",
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
    "OutputError",
    "OutputInvalid",
    "Prepared",
    "ProviderError",
    "ProviderRefused",
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
