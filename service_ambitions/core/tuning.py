"""Process tuning for commands that build many thousands of models: one place, for every process that does."""

from __future__ import annotations

__all__ = ["tune_gc"]


def tune_gc() -> None:
    """Set the garbage collector for a process that builds many thousands of models.

    What was built before (modules, settings, reference data) lives until the end: freezing
    it keeps the collector from scanning it again and again, and a higher first threshold
    suits thousands of short-lived, acyclic models a second. A fully cached run of 1,000
    services took a quarter less time; reading 1,000 records for ``view``, a third.
    """
    import gc

    gc.freeze()
    gc.set_threshold(10_000, 50, 100)
