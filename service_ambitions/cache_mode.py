"""How a run uses the result cache: a small module, so the command line can name the modes cheaply."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["CacheMode"]


class CacheMode(StrEnum):
    """How a run uses the cache."""

    READ = "read"
    """Use hits, fill misses (the default)."""
    REFRESH = "refresh"
    """Ignore hits, call the model, overwrite the entry."""
    READONLY = "readonly"
    """Use hits, never write; a miss calls the model."""
    OFF = "off"
    """Neither read nor write."""
