"""Model names that need no provider to tell apart: kept apart so naming one imports nothing heavy."""

from __future__ import annotations

__all__ = ["OFFLINE_MODEL_NAME", "is_offline"]

OFFLINE_MODEL_NAME = "offline"
"""The built-in synthetic model: deterministic placeholder answers, no network, no key."""


def is_offline(name: str) -> bool:
    """True for the built-in synthetic model."""
    return name == OFFLINE_MODEL_NAME
