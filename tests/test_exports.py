"""The package's public surface is chosen: every exported name resolves, and nothing else is exported."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import service_ambitions


def test_every_exported_name_resolves() -> None:
    for name in service_ambitions.__all__:
        assert getattr(service_ambitions, name) is not None


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError):
        service_ambitions.nope  # noqa: B018


@pytest.mark.parametrize(
    "module",
    sorted(info.name for info in pkgutil.walk_packages(service_ambitions.__path__, "service_ambitions.")),
)
def test_every_module_declares_all(module: str) -> None:
    if module.endswith("__main__"):
        return
    imported = importlib.import_module(module)
    assert hasattr(imported, "__all__"), module
    for name in imported.__all__:
        assert hasattr(imported, name), f"{module}.{name}"


def test_every_error_class_lives_in_errors_and_is_exported() -> None:
    import inspect

    import service_ambitions.core.errors as errors

    for module in sorted(info.name for info in pkgutil.walk_packages(service_ambitions.__path__, "service_ambitions.")):
        if module.endswith("__main__"):
            continue
        for name, value in vars(importlib.import_module(module)).items():
            if inspect.isclass(value) and issubclass(value, errors.ServiceAmbitionsError):
                assert value.__module__ == "service_ambitions.core.errors", f"{module}.{name}"
                assert name in errors.__all__, name


def test_public_names_and_all_agree_both_ways() -> None:
    import service_ambitions.core.errors as errors

    exported = set(service_ambitions.__all__)
    modules = {info.name for info in pkgutil.iter_modules(service_ambitions.__path__)}
    public = {name for name in vars(service_ambitions) if not name.startswith("_")} - modules - {"annotations"}
    assert public <= exported, public - exported  # nothing public that is not declared
    for name in exported:  # and everything declared is there
        assert getattr(service_ambitions, name) is not None
    error_classes = {name for name in errors.__all__ if name[0].isupper()}
    assert error_classes - {"EXIT_DETACHED", "EXIT_INTERRUPTED", "EXIT_QUARANTINED"} <= exported


def test_every_name_is_importable_from_one_place() -> None:
    # A module's __all__ lists only what it defines: no room re-exports another's names
    # (the package root, the library's chosen surface, is the one exception).
    import inspect

    for module in sorted(info.name for info in pkgutil.walk_packages(service_ambitions.__path__, "service_ambitions.")):
        if module.endswith("__main__"):
            continue
        imported = importlib.import_module(module)
        for name in imported.__all__:
            value = getattr(imported, name)
            if inspect.isclass(value) or inspect.isfunction(value):
                assert value.__module__ == module, f"{module}.{name} is {value.__module__}.{name}"
