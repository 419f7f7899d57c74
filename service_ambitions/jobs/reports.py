"""What the maintenance commands report, as Pydantic models: every ``--json`` is one dump.

``cache stats | validate | purge | repair`` and ``migrate records | cache`` each turn the
library's result into one of these; the tables are rendered from the same facts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from service_ambitions.cache.maintenance import CacheStats, ValidationReport
from service_ambitions.cache.repair import RepairReport
from service_ambitions.jobs.checks import Check
from service_ambitions.jobs.plan import Estimate

__all__ = [
    "CacheRepairReport",
    "CacheStatsReport",
    "CacheValidationReport",
    "CheckRow",
    "ImportReport",
    "MigrationReport",
    "PathProblem",
    "PlanReport",
    "PlanRow",
    "PurgeReport",
    "RowProblemRow",
    "StageModelCount",
]


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StageModelCount(_Report):
    """Entries of one stage and model."""

    stage: str
    model: str
    entries: int


def _counts(pairs: Mapping[tuple[str, str], int]) -> list[StageModelCount]:
    return [StageModelCount(stage=stage, model=model, entries=count) for (stage, model), count in pairs.items()]


class CacheStatsReport(_Report):
    """``cache stats --json``."""

    directory: str
    entries: int
    transcripts: int
    bytes_on_disk: int
    unreadable: int
    imported: int
    snapshots: int
    """Snapshots: whole services' results, one row each."""
    oldest: datetime | None
    newest: datetime | None
    oldest_by_stage: dict[str, datetime] = {}
    expired: int = 0
    """Answers older than their stage's ``cache_ttl``."""
    by_stage_model: list[StageModelCount]

    @classmethod
    def of(cls, stats: CacheStats) -> CacheStatsReport:
        """The report of what ``ResultCache.stats`` found."""
        return cls(
            directory=str(stats.directory),
            entries=stats.entries,
            transcripts=stats.transcripts,
            bytes_on_disk=stats.bytes_on_disk,
            unreadable=stats.unreadable,
            imported=stats.imported,
            snapshots=stats.snapshots,
            oldest=stats.oldest,
            newest=stats.newest,
            oldest_by_stage=stats.oldest_by_stage,
            expired=stats.expired,
            by_stage_model=_counts(stats.by_stage_model),
        )


class RowProblemRow(_Report):
    """One row ``cache validate`` found wrong."""

    key: str | None
    kind: str
    reason: str
    rowid: int


class CacheValidationReport(_Report):
    """``cache validate --json``."""

    good: int
    transcripts: int
    schemas: int
    imported: int
    snapshots: int
    corrupt: int
    schema_invalid: int
    orphan_transcripts: int
    orphan_snapshots: int
    unsafe: int
    removed: int
    problems: list[RowProblemRow]

    @classmethod
    def of(cls, report: ValidationReport) -> CacheValidationReport:
        """The report of what ``ResultCache.validate`` found (and removed)."""
        return cls(
            good=report.good,
            transcripts=report.transcripts,
            schemas=report.schemas,
            imported=report.imported,
            snapshots=report.snapshots,
            corrupt=report.count("corrupt"),
            schema_invalid=report.count("schema-invalid"),
            orphan_transcripts=report.count("orphan-transcript"),
            orphan_snapshots=report.count("orphan-snapshot"),
            unsafe=report.count("unsafe"),
            removed=report.removed,
            problems=[RowProblemRow(key=p.key, kind=p.kind, reason=p.reason, rowid=p.rowid) for p in report.problems],
        )


class PurgeReport(_Report):
    """``cache purge --json``."""

    removed: int
    by_stage_model: list[StageModelCount]

    @classmethod
    def of(cls, removed: Mapping[tuple[str, str], int]) -> PurgeReport:
        """The report of what ``ResultCache.purge`` removed."""
        return cls(removed=sum(removed.values()), by_stage_model=_counts(removed))


class CacheRepairReport(_Report):
    """``cache repair --json``."""

    directory: str
    recovered: int
    lost: int | None
    """None when the damage left no row readable and their number unknown."""
    damaged_copy: str

    @classmethod
    def of(cls, report: RepairReport) -> CacheRepairReport:
        """The report of what ``repair_cache`` salvaged."""
        return cls(
            directory=str(report.directory),
            recovered=report.recovered,
            lost=report.lost,
            damaged_copy=str(report.damaged_copy),
        )


class LineProblem(_Report):
    """An input line that could not be migrated."""

    line: int
    reason: str


class MigrationReport(_Report):
    """``migrate records --json``."""

    migrated: int
    already_current: int
    failed: int
    from_versions: dict[str, int]
    failures: list[LineProblem]
    output: str | None
    quarantine: str | None

    @classmethod
    def of(
        cls,
        *,
        migrated: int,
        current: int,
        from_versions: Mapping[str, int],
        failures: Sequence[tuple[int, str]],
        output: Path | None,
        quarantine: Path | None,
    ) -> MigrationReport:
        """The report of a ``migrate_records`` pass."""
        return cls(
            migrated=migrated,
            already_current=current,
            failed=len(failures),
            from_versions=dict(from_versions),
            failures=[LineProblem(line=line, reason=reason) for line, reason in failures],
            output=None if output is None else str(output),
            quarantine=None if quarantine is None else str(quarantine),
        )


class PathProblem(_Report):
    """A legacy file ``migrate cache`` skipped or found corrupt."""

    path: str
    reason: str


class ImportReport(_Report):
    """``migrate cache --json``."""

    imported: dict[str, int]
    skipped: list[PathProblem]
    corrupt: list[PathProblem]
    dry_run: bool


class CheckRow(_Report):
    """One pre-flight check of ``validate --json``."""

    name: str
    ok: bool
    detail: str
    exit_code: int | None
    """The exit code its failure means; None when it passed."""

    @classmethod
    def of(cls, check: Check) -> CheckRow:
        """The row of one check's outcome."""
        failed = check.error
        return cls(
            name=check.name, ok=failed is None, detail=check.detail, exit_code=failed.exit_code if failed else None
        )


class PlanRow(_Report):
    """One stage of a plan: calls, cache hits, and token and cost ranges for the rest."""

    stage: str
    model: str
    calls: int
    cached: int
    input_tokens: tuple[int, int]
    output_tokens: tuple[int, int]
    cost_usd: tuple[str, str] | None
    """Low and high USD for the calls the cache does not answer; None when the price is unknown."""


class PlanReport(_Report):
    """``run --dry-run --json`` and ``map --dry-run --json``."""

    services: int
    rejected_lines: int
    stages: list[PlanRow]
    batch_prices: bool = False
    """Costs are at the providers' batch prices (``--batch``)."""

    @classmethod
    def of(cls, plan: Estimate) -> PlanReport:
        """The report of a dry-run estimate."""
        return cls(
            services=plan.scan.services,
            rejected_lines=len(plan.scan.rejected),
            batch_prices=plan.batch,
            stages=[
                PlanRow(
                    stage=row.stage.value,
                    model=row.model,
                    calls=row.calls,
                    cached=row.cached,
                    input_tokens=row.input_tokens,
                    output_tokens=row.output_tokens,
                    cost_usd=(str(row.cost[0]), str(row.cost[1])) if row.cost else None,
                )
                for row in plan.stages
            ],
        )
