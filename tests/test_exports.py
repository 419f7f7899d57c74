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
