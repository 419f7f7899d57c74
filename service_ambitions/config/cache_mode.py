"""How a run uses the result cache, and where it lives by default.

A small module, so the command line and the settings can name these cheaply, without
importing the cache itself.
"""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Literal

__all__ = ["CacheMode", "Eviction", "default_cache_dir", "parse_age"]

_AGE = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_age(text: str) -> timedelta:
    """'90m', '12h', '7d', '2w' as a duration.

    Raises:
        ValueError: not a number and a unit.
    """
    match = _AGE.match(text.strip().lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration: use a number and a unit, such as 30m, 12h, 7d or 2w")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


Eviction = Literal["none", "least-recently-stored", "least-recently-used", "least-frequently-used"]
"""diskcache's eviction policies, and ``none`` (the default: never drop an answer)."""


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


def default_cache_dir() -> Path:
    """The platform's user cache directory for this tool."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("service-ambitions", appauthor=False))
