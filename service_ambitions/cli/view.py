"""``service-ambitions view``: a run's records as one self-contained HTML roadmap."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import markup_safe
from service_ambitions.cli.state import AppState
from service_ambitions.core.tuning import tune_gc

__all__ = ["view"]


def view(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Argument(metavar="EVOLUTIONS", help="Evolutions JSONL written by run or map.", show_default=False)
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The HTML file to write. [default: EVOLUTIONS.html]", show_default=False),
    ] = None,
    compare: Annotated[
        Path | None,
        typer.Option(help="An earlier run's evolutions: the page gains a section of what changed.", show_default=False),
    ] = None,
    quarantine: Annotated[
        Path | None,
        typer.Option(
            help="The run's quarantine file. [default: EVOLUTIONS.quarantine.jsonl, if there]", show_default=False
        ),
    ] = None,
    title: Annotated[str | None, typer.Option(help="The page's title. [default: the file's name]")] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print each file written as a file_written event line (path, bytes, lines, sha256)."
        ),
    ] = False,
) -> None:
    """Write a run's records as one self-contained HTML roadmap.

    A portfolio heat-map (every service by plateau, coloured by the mean CMMI level, with
    filters and sorting), each service's roadmap (plateau timeline, features by customer
    type with scores, justifications and the catalogue items they rely on, provenance),
    catalogue coverage, and with --compare what changed since an earlier run. No network:
    the file opens anywhere, from a USB stick too. Everything from a record is escaped.

    For example:

    \b
        service-ambitions view evolutions.jsonl -o roadmap.html
        service-ambitions view evolutions.jsonl --compare evolutions-before.jsonl
    """
    from datetime import UTC, datetime

    from service_ambitions.core.errors import ConfigError, OutputError
    from service_ambitions.inputs.entries import JsonObject
    from service_ambitions.inputs.jsonl import read_json_objects
    from service_ambitions.inputs.records import read_records
    from service_ambitions.reference.data import load_reference
    from service_ambitions.runs.resume import refuse_overwrite
    from service_ambitions.views.diff import diff_runs
    from service_ambitions.views.html import render_roadmap
    from service_ambitions.views.portfolio import portfolio

    tune_gc()
    state: AppState = ctx.obj
    target = output or input_path.with_suffix(".html")
    refuse_overwrite(input_path, target)
    found = read_records(input_path)
    records = list(found.records.values())
    quarantine = quarantine or input_path.with_name(f"{input_path.stem}.quarantine.jsonl")
    quarantined = 0
    if quarantine.is_file():
        quarantined = sum(
            1
            for entry in read_json_objects(quarantine)
            if isinstance(entry, JsonObject) and entry.data.get("kind") == "service"
        )
    from service_ambitions.quality.report import QualityReport, check_evolutions
    from service_ambitions.quality.rules import KnownRoles

    settings = state.settings()
    roles: KnownRoles | None = None
    try:
        files = settings.reference
        reference = load_reference(plateaus=files.plateaus, roles=files.roles, catalogues=files.catalogues)
        catalogues = reference.catalogues
        roles = KnownRoles.of(reference)
    except ConfigError as exc:
        state.err.print(f"[yellow]note:[/] unused catalogue items not shown: {markup_safe(exc.message)}")
        catalogues = ()
    quality: QualityReport = check_evolutions(records, settings.quality, roles)
    changes = diff_runs(read_records(compare), found) if compare is not None else None
    page = render_roadmap(
        records,
        portfolio(records, catalogues, quarantined, quality),
        title=title or input_path.stem,
        source=input_path.name,
        skipped=len(found.skipped),
        changes=changes,
        made=datetime.now(UTC),
        quality=quality,
        item_names={c.field: {item.id: item.name for item in c.items} for c in catalogues},
    )
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from exc
    state.err.print(
        f"{len(records):,} services written to {markup_safe(target)} ({len(page.encode()) / 2**20:.1f} MiB)"
        + (f"; {len(found.skipped):,} unreadable lines skipped" if found.skipped else ""),
        highlight=False,
        soft_wrap=True,
    )
    from service_ambitions.cli.render import render_skipped

    render_skipped(state.err, found.skipped)
    if as_json:
        from service_ambitions.cli.render import echo_files_written

        echo_files_written([target], "view")
