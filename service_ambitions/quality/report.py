"""Findings over a file of records: what ``check``, ``view`` and ``run --check`` show.

One service's findings and score per record, and the totals a portfolio board reads
first: how many services are clean, which rules fire most.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from service_ambitions.config.settings import QualitySettings, ReferenceFiles
from service_ambitions.core.models import ServiceEvolution
from service_ambitions.inputs.records import read_records
from service_ambitions.quality.rules import Finding, KnownRoles, check_service, packaged_vendors, service_score

__all__ = ["QualityReport", "ServiceQuality", "check_evolutions", "check_file", "known_roles"]


class ServiceQuality(BaseModel):
    """One service's findings and its score (100 clean)."""

    model_config = ConfigDict(extra="forbid")

    service_id: str
    name: str
    score: int
    findings: list[Finding]


class QualityReport(BaseModel):
    """Every service's findings, and what they add up to: ``check --json`` prints this."""

    model_config = ConfigDict(extra="forbid")

    path: str | None = None
    services: list[ServiceQuality]
    skipped_lines: int = 0
    rules_skipped: list[str] = Field(default_factory=list)

    @property
    def findings(self) -> int:
        """How many findings in all."""
        return sum(len(service.findings) for service in self.services)

    @property
    def clean(self) -> int:
        """Services without a finding."""
        return sum(1 for service in self.services if not service.findings)

    def by_rule(self) -> list[tuple[str, int]]:
        """Findings per rule, most first."""
        counts = Counter(finding.rule for service in self.services for finding in service.findings)
        return counts.most_common()

    def mean_score(self) -> float:
        """The portfolio's mean score (100 when there is no service)."""
        return sum(s.score for s in self.services) / len(self.services) if self.services else 100.0


def check_evolutions(
    evolutions: list[ServiceEvolution], settings: QualitySettings, roles: KnownRoles | None = None
) -> QualityReport:
    """The findings of records already read."""
    vendors = settings.vendors if settings.vendors is not None else packaged_vendors()
    services = []
    for evolution in evolutions:
        findings = check_service(
            evolution, settings, dropped=evolution.meta.dropped_items, vendors=vendors, roles=roles
        )
        services.append(
            ServiceQuality(
                service_id=evolution.service.service_id,
                name=evolution.service.name,
                score=service_score(findings),
                findings=findings,
            )
        )
    return QualityReport(services=services, rules_skipped=sorted(settings.skip))


def check_file(path: Path, settings: QualitySettings, roles: KnownRoles | None = None) -> QualityReport:
    """The findings of every record in ``path`` (older schema versions migrated on the way in).

    Raises:
        InputError: the file cannot be opened.
    """
    found = read_records(path)
    report = check_evolutions(list(found.records.values()), settings, roles)
    return report.model_copy(update={"path": str(path), "skipped_lines": len(found.skipped)})


def known_roles(files: ReferenceFiles) -> KnownRoles | None:
    """The roles of the reference data ``files`` name, for records made with them; None when it cannot be read."""
    from service_ambitions.core.errors import ConfigError
    from service_ambitions.reference.data import load_reference

    try:
        reference = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
    except ConfigError:
        return None
    return KnownRoles.of(reference)
