"""``service-ambitions export``: a run's records as CSV, XLSX or Markdown."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from service_ambitions.cli.safe import markup_safe
from service_ambitions.cli.state import AppState
from service_ambitions.core.tuning import tune_gc

__all__ = ["export"]


class ExportFormat(StrEnum):
    """What ``export`` writes."""

    CSV = "csv"
    XLSX = "xlsx"
    MD = "md"


_DEFAULT_SUFFIX = {ExportFormat.CSV: "-csv", ExportFormat.XLSX: ".xlsx", ExportFormat.MD: "-roadmaps"}


def export(
    ctx: typer.Context,
    input_path: Annotated[
        Path, typer.Argument(metavar="EVOLUTIONS", help="Evolutions JSONL written by run or map.", show_default=False)
    ],
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format", "-f", help="csv: a table per file; xlsx: a sheet per table; md: a roadmap per service."
        ),
    ] = ExportFormat.CSV,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where to write: a folder (csv, md), a .zip (csv) or a .xlsx file. [default: beside the input]",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json", help="Print each file written as a file_written event line (path, bytes, lines, sha256)."
        ),
    ] = False,
) -> None:
    """Write a run's records as flat tables or Markdown roadmaps.

    Tables (services, plateaus, features, mappings) repeat their keys in every row, for
    spreadsheets and BI tools; cells a spreadsheet would read as a formula are written as
    text. Records of an older schema version are migrated on the way in; unreadable lines
    are skipped and counted.

    For example:

    \b
        service-ambitions export evolutions.jsonl                      # evolutions-csv/*.csv
        service-ambitions export evolutions.jsonl -f csv -o tables.zip
        service-ambitions export evolutions.jsonl -f xlsx -o roadmap.xlsx
        service-ambitions export evolutions.jsonl -f md -o wiki/roadmaps
    """
    from service_ambitions.inputs.records import read_records
    from service_ambitions.runs.resume import refuse_overwrite
    from service_ambitions.views.exports import write_export

    tune_gc()
    state: AppState = ctx.obj
    target = output or input_path.with_name(input_path.stem + _DEFAULT_SUFFIX[export_format])
    refuse_overwrite(input_path, target)
    found = read_records(input_path)
    records = list(found.records.values())
    written = write_export(export_format, records, target)
    where = target if len(written) != 1 else written[0]
    state.err.print(
        f"{len(records):,} services written to {markup_safe(where)} ({len(written):,} file(s))"
        + (f"; {found.migrated:,} older records migrated" if found.migrated else ""),
        highlight=False,
        soft_wrap=True,
    )
    from service_ambitions.cli.render import render_skipped

    render_skipped(state.err, found.skipped)
    if as_json:
        from service_ambitions.cli.render import echo_files_written

        echo_files_written(written, "export")
