"""The wall clock, in one place.

Modules take a ``clock`` parameter that defaults to :func:`utc_now`; tests pass their own.
"""

from __future__ import annotations

from datetime import UTC, datetime

__all__ = ["utc_now"]


def utc_now() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)
