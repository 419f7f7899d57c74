"""export: tidy tables as CSV (folder or zip) and XLSX, Markdown roadmaps; content stays data everywhere."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.inputs.records import read_records
from service_ambitions.views.exports import markdown_roadmap, roadmap_file_name

from .conftest import EXAMPLES
from .test_views_diff import _feature, _record, _write

runner = CliRunner()
HOSTILE = '=HYPERLINK("http://x") | <script>alert(1)</script> [link](http://x) *bold*'


def _hostile_file(tmp_path: Path) -> Path:
    feature = _feature("f1", HOSTILE, 2, ["APP-1", "@SUM(A1)"], text="-1+2 and a\nsecond line")
    return _write(tmp_path / "evolutions.jsonl", [_record("../../etc/passwd", "Svc | one", [feature])], extra="bad\n")


def test_csv_tables_repeat_their_keys_and_never_hold_a_formula(tmp_path: Path) -> None:
    source = _hostile_file(tmp_path)
    result = runner.invoke(app, ["export", str(source)])
    assert result.exit_code == 0, result.output
    assert "1 services written" in result.stderr
    assert "skipped line 2" in result.stderr
    folder = tmp_path / "evolutions-csv"
    assert sorted(path.name for path in folder.iterdir()) == [
        "features.csv",
        "mappings.csv",
        "plateaus.csv",
        "services.csv",
    ]
    features = list(csv.DictReader(io.StringIO((folder / "features.csv").read_text(encoding="utf-8-sig"))))
    assert features[0]["name"] == "'" + HOSTILE  # a spreadsheet reads it as text
    assert features[0]["description"] == "'-1+2 and a\nsecond line"
    assert features[0]["service_id"] == "../../etc/passwd"  # a value, never a path
    mappings = list(csv.DictReader(io.StringIO((folder / "mappings.csv").read_text(encoding="utf-8-sig"))))
    assert [row["item"] for row in mappings] == ["APP-1", "'@SUM(A1)"]
    assert {row["feature_id"] for row in mappings} == {"f1"}

    zipped = runner.invoke(app, ["export", str(source), "-o", str(tmp_path / "tables.zip")])
    assert zipped.exit_code == 0
    with zipfile.ZipFile(tmp_path / "tables.zip") as archive:
        assert sorted(archive.namelist()) == ["features.csv", "mappings.csv", "plateaus.csv", "services.csv"]


def test_xlsx_has_a_sheet_per_table_with_frozen_headers_filters_and_strings(tmp_path: Path) -> None:
    source = _hostile_file(tmp_path)
    target = tmp_path / "roadmap.xlsx"
    assert runner.invoke(app, ["export", str(source), "-f", "xlsx", "-o", str(target)]).exit_code == 0
    book = load_workbook(target)
    assert book.sheetnames == ["services", "plateaus", "features", "mappings"]
    sheet = book["features"]
    assert sheet.freeze_panes == "A2"
    assert sheet.auto_filter.ref is not None
    header = [cell.value for cell in sheet[1]]
    name = sheet.cell(row=2, column=header.index("name") + 1)
    assert name.value == HOSTILE
    assert name.data_type == "s"  # a string, not a formula
    assert sheet.cell(row=2, column=header.index("level") + 1).value == 2


def test_markdown_roadmaps_escape_content_and_name_files_safely(tmp_path: Path) -> None:
    source = _hostile_file(tmp_path)
    target = tmp_path / "wiki"
    assert runner.invoke(app, ["export", str(source), "-f", "md", "-o", str(target)]).exit_code == 0
    (page,) = list(target.iterdir())
    assert page.parent == target  # ../../etc/passwd became a file name inside the folder
    assert page.name == roadmap_file_name("../../etc/passwd")
    text = page.read_text(encoding="utf-8")
    assert "<script>" not in text
    assert "\\<script\\>" in text
    assert "Svc \\| one" in text
    assert "\\[link\\]" in text
    row = next(line for line in text.splitlines() if "HYPERLINK" in line)
    assert row.count(" | ") == 3  # the cell's own pipe cannot split the row


def test_the_examples_export_in_every_format_and_say_they_are_synthetic(tmp_path: Path) -> None:
    out = tmp_path / "evolutions.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--max-services", "2"]
    assert runner.invoke(app, args).exit_code == 0
    records = read_records(out)
    assert len(records.records) == 2
    page = markdown_roadmap(next(iter(records.records.values())))
    assert "Synthetic placeholder content" in page
    before = out.read_bytes()
    for fmt in ("csv", "xlsx", "md"):
        assert runner.invoke(app, ["export", str(out), "-f", fmt]).exit_code == 0
    assert (tmp_path / "evolutions-csv" / "features.csv").stat().st_size > 0
    assert (tmp_path / "evolutions.xlsx").stat().st_size > 0
    assert len(list((tmp_path / "evolutions-roadmaps").iterdir())) == 2
    assert out.read_bytes() == before  # the input is untouched
    link = tmp_path / "same.jsonl"
    link.symlink_to(out)
    for command in (["export", str(out), "-f", "xlsx", "-o", str(link)], ["view", str(out), "-o", str(link)]):
        refused = runner.invoke(app, command)
        assert refused.exit_code == 3, refused.output  # the same file by another name
        assert "the output would overwrite the input" in refused.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    ("kind", "where", "said"),
    [
        ("xlsx", "a-folder", "it is a folder"),
        ("csv", "a-file.txt", "it is a file, and csv exports go to a folder"),
        ("md", "a-file.txt", "it is a file, and md exports go to a folder"),
        ("xlsx", "missing/deeper/../../a-file.txt/x.xlsx", "cannot write"),
    ],
)
def test_an_export_that_cannot_be_written_is_one_line(tmp_path: Path, kind: str, where: str, said: str) -> None:
    source = _write(tmp_path / "evolutions.jsonl", [_record("svc-a", "A", [_feature("f1", "F", 2, ["APP-1"])])])
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "a-file.txt").write_text("keep me")
    result = runner.invoke(app, ["export", str(source), "-f", kind, "-o", str(tmp_path / where)])
    assert result.exit_code == 10, result.output
    assert said in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output
    assert (tmp_path / "a-file.txt").read_text() == "keep me"
