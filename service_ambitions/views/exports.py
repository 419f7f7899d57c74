"""Flat exports of a run's records: CSV (a folder or a zip), XLSX (a sheet per table), Markdown (a roadmap per service).

Everything in a record came from a model or an input file, so it is data everywhere:
a cell that a spreadsheet would read as a formula (``=``, ``+``, ``-``, ``@``, tab or
carriage return first) is written with a leading apostrophe in CSV and as a string in
XLSX; Markdown escapes the characters that would make markup or break a table; and a
service id never becomes a path (file names are a slug and a hash of it).
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

from service_ambitions.core.errors import OutputError
from service_ambitions.core.models import ServiceEvolution
from service_ambitions.views.tables import Table, tables

__all__ = ["markdown_roadmap", "roadmap_file_name", "write_csv", "write_export", "write_markdown", "write_xlsx"]

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~])")


def _csv_cell(value: object) -> object:
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value  # read as text by spreadsheets, never as a formula
    return "" if value is None else value


def _csv_text(table: Table) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([_csv_cell(cell) for cell in row] for row in table.rows)
    return buffer.getvalue()


def write_export(kind: str, records: Sequence[ServiceEvolution], target: Path) -> list[Path]:
    """Write ``records`` as ``kind`` (``csv``, ``xlsx`` or ``md``) to ``target``; the files written.

    Raises:
        OutputError: ``target`` cannot be written (a folder where a file is wanted, or a
            file where a folder is, no permission, a full disk).
    """
    from xlsxwriter.exceptions import FileCreateError  # type: ignore[import-untyped]

    wants_file = kind == "xlsx" or (kind == "csv" and target.suffix.lower() == ".zip")
    if wants_file and target.is_dir():
        kind_of_file = "xlsx" if kind == "xlsx" else "zip"
        raise OutputError(f"cannot write {target}: it is a folder", hint=f"name a .{kind_of_file} file")
    if not wants_file and target.exists() and not target.is_dir():
        raise OutputError(
            f"cannot write {target}: it is a file, and {kind} exports go to a folder", hint="name a folder"
        )
    try:
        if kind == "md":
            return write_markdown(records, target)
        if kind == "xlsx":
            return write_xlsx(tables(records), target)
        return write_csv(tables(records), target)
    except (OSError, FileCreateError) as exc:
        # xlsxwriter's error repeats the OSError's text ("[Errno 2] No such file …: 'path'").
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc).splitlines()[0]
        reason = re.sub(r"^\[Errno \d+\] ([^:]*).*", r"\1", reason)
        raise OutputError(f"cannot write {target}: {reason}", hint="choose a writable place with -o") from exc


def write_csv(tables: Iterable[Table], target: Path) -> list[Path]:
    """One CSV per table (UTF-8 with a byte-order mark, for spreadsheets): in a folder, or a ``.zip`` file."""
    if target.suffix.lower() == ".zip":
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for table in tables:
                archive.writestr(f"{table.name}.csv", "\ufeff" + _csv_text(table))
        return [target]
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for table in tables:
        path = target / f"{table.name}.csv"
        path.write_text("\ufeff" + _csv_text(table), encoding="utf-8")
        written.append(path)
    return written


def write_xlsx(tables: Iterable[Table], target: Path) -> list[Path]:
    """One sheet per table: header row frozen, filters on, every string written as a string."""
    import xlsxwriter  # type: ignore[import-untyped]  # no type information shipped

    target.parent.mkdir(parents=True, exist_ok=True)
    book = xlsxwriter.Workbook(
        str(target), {"strings_to_formulas": False, "strings_to_urls": False, "strings_to_numbers": False}
    )
    try:
        bold = book.add_format({"bold": True})
        for table in tables:
            sheet = book.add_worksheet(table.name)
            sheet.write_row(0, 0, table.columns, bold)
            for number, row in enumerate(table.rows, start=1):
                sheet.write_row(number, 0, ["" if cell is None else cell for cell in row])
            sheet.freeze_panes(1, 0)
            sheet.autofilter(0, 0, max(len(table.rows), 1), len(table.columns) - 1)
            for column, name in enumerate(table.columns):
                sheet.set_column(column, column, 48 if name in {"description", "justification"} else 18)
    finally:
        book.close()
    return [target]


def roadmap_file_name(service_id: str) -> str:
    """A file name for a service's roadmap that is never a path: a slug of the id and a hash of it."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", service_id).strip("-.")[:60] or "service"
    return f"{slug}-{hashlib.sha256(service_id.encode()).hexdigest()[:8]}.md"


def write_markdown(records: Iterable[ServiceEvolution], target: Path) -> list[Path]:
    """A Markdown roadmap per service in the folder ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for record in records:
        path = target / roadmap_file_name(record.service.service_id)
        path.write_text(markdown_roadmap(record), encoding="utf-8")
        written.append(path)
    return written


def _md(value: object) -> str:
    """Text from a record, taken literally by Markdown (and kept on one table line)."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(str(value).split()))


def markdown_roadmap(record: ServiceEvolution) -> str:
    """One service's roadmap: its plateaus in order, each with its description and features by customer type."""
    service, meta = record.service, record.meta
    lines = [f"# {_md(service.name)} (`{_md(service.service_id)}`)", "", _md(service.description), ""]
    provenance = f"Made by run {_md(meta.run_id)} with {_md(', '.join(sorted(set(meta.models.model_dump().values()))))}"
    if meta.synthetic:
        provenance += ". **Synthetic placeholder content (offline model): not advice.**"
    lines += [f"_{provenance}_", ""]
    for plateau in record.plateaus:
        lines += [f"## {plateau.plateau}. {_md(plateau.plateau_name)}", "", _md(plateau.service_description), ""]
        roles = sorted({feature.customer_type for feature in plateau.features})
        for role in roles:
            lines += [f"### {_md(role)}", "", "| feature | level | why | relies on |", "|---|---|---|---|"]
            for feature in (f for f in plateau.features if f.customer_type == role):
                score = feature.score
                level = f"{score.level} {score.label}" if score else ""
                items = "; ".join(
                    f"{_md(catalogue)}: {', '.join(_md(item.item) for item in found)}"
                    for catalogue, found in feature.mappings.items()
                    if found
                )
                lines.append(
                    f"| **{_md(feature.name)}**<br>{_md(feature.description)} | {_md(level)} | "
                    f"{_md(score.justification) if score else ''} | {items} |"
                )
            lines.append("")
    return "\n".join(lines)
