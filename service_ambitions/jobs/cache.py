"""The cache commands' jobs: stats, validate, purge, repair and importing an older tool's answers.

The faces never open the cache themselves (an import-linter contract holds them to it):
each job here opens the store the settings name, does one thing and returns its report.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from service_ambitions.cache.maintenance import CacheMaintenance
from service_ambitions.jobs.setup import open_cache

if TYPE_CHECKING:
    from service_ambitions.cache.legacy import ImportReport
    from service_ambitions.cache.maintenance import CacheStats, ValidationReport
    from service_ambitions.cache.repair import RepairReport
    from service_ambitions.config.settings import Settings

__all__ = ["cache_stats", "import_answers", "purge_cache", "purge_expired", "repair_cache", "validate_cache"]


def cache_stats(settings: Settings) -> CacheStats:
    """What the cache holds: entries by stage and model, size, ages."""
    with open_cache(settings) as cache:
        return CacheMaintenance(cache).stats(settings.cache_ttls())


def validate_cache(settings: Settings, *, fix: bool) -> ValidationReport:
    """Check every entry; with ``fix``, remove the bad ones.

    Raises:
        CacheCorrupt: the database itself is damaged (``repair_cache`` salvages it).
    """
    with open_cache(settings) as cache:
        return CacheMaintenance(cache).validate(fix=fix)


def purge_cache(
    settings: Settings, *, stage: str | None, model: str | None, older_than: timedelta | None
) -> dict[tuple[str, str], int]:
    """Remove the entries matching every filter given (all of them when none is)."""
    with open_cache(settings) as cache:
        return CacheMaintenance(cache).purge(stage=stage, model=model, older_than=older_than)


def purge_expired(settings: Settings) -> dict[tuple[str, str], int]:
    """Remove the answers older than their stage's ``cache_ttl``.

    Raises:
        ConfigError: no ``cache_ttl`` is set, so nothing can have expired.
    """
    from service_ambitions.core.errors import ConfigError

    ttls = settings.cache_ttls()
    if not ttls:
        raise ConfigError(
            "no cache_ttl is set, so no entry has expired", hint="set cache_ttl (e.g. 30d), or use --older-than"
        )
    removed: dict[tuple[str, str], int] = {}
    with open_cache(settings) as cache:
        maintenance = CacheMaintenance(cache)
        for stage, ttl in ttls.items():
            removed |= maintenance.purge(stage=stage.value, older_than=ttl)
    return removed


def repair_cache(settings: Settings) -> RepairReport:
    """Salvage a damaged database into a fresh one, keeping the damaged copy."""
    from service_ambitions.cache.repair import repair_cache as salvage

    return salvage(settings.cache_directory())


def import_answers(settings: Settings, legacy_dir: Path, *, dry_run: bool) -> ImportReport:
    """Import an older tool's JSON-file answers into the cache (``migrate cache``)."""
    from service_ambitions.cache.legacy import import_legacy_cache

    with open_cache(settings) as store:
        return import_legacy_cache(legacy_dir, store, dry_run=dry_run)
