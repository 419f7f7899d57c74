"""Nothing from an input file, a model or a run journal reaches the terminal raw: no markup, no control codes."""

from __future__ import annotations

import json
from pathlib import Path

from rich.text import Text
from typer.testing import CliRunner

from service_ambitions.cli.app import app
from service_ambitions.cli.safe import cell, json_safe, markup_safe, plain

runner = CliRunner()
HOSTILE = "svc-x[/red][link=https://evil.example]click[/link]\x1b[2J\x07\r\u202e"


def test_helpers_escape_markup_and_controls() -> None:
    assert plain("a\x1b[31mb\x07\u202e") == "a\\x1b[31mb\\x07\\u202e"
    assert markup_safe("x[/red]") == "x\\[/red]"
    assert isinstance(cell("[bold]"), Text)
    assert cell("[bold]\x1b").plain == "[bold]\\x1b"
    assert json.loads(json_safe(json.dumps({"k": "a\x9bb\u202e"}, ensure_ascii=False))) == {"k": "a\x9bb\u202e"}
    assert "\x9b" not in json_safe(json.dumps({"k": "a\x9bb"}, ensure_ascii=False))


def test_a_hostile_service_id_is_printed_as_written(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    service = {"service_id": HOSTILE, "name": "[bold]Name[/bold]", "description": "d\x1b]0;title\x07"}
    broken = {"service_id": "broken", "name": "N", "description": "d", "jobs_to_be_done": [{"role": "x[/]"}]}
    source.write_text(json.dumps(service) + "\n" + json.dumps(broken) + "\n")
    out = tmp_path / "out.jsonl"
    run = runner.invoke(app, ["run", str(source), "-o", str(out), "--model", "offline", "--trace-ids"])
    assert run.exit_code == 9, run.output
    report = runner.invoke(app, ["report", "--by-service", "--failures"], env={"COLUMNS": "300"})
    assert report.exit_code == 0, report.output
    listing = runner.invoke(app, ["runs", "list"])
    tail = runner.invoke(app, ["runs", "tail"])
    for result in (run, report, listing, tail):
        assert "\x1b" not in result.output
        assert "\x07" not in result.output
        assert "\u202e" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "svc-x[/red][link=https://evil.example]click[/link]\\x1b[2J\\x07\\x0d\\u202e" in report.stdout


def test_skipped_lines_are_shown_escaped_and_counted_past_the_first_ten() -> None:
    from rich.console import Console

    from service_ambitions.cli.render import render_skipped
    from service_ambitions.inputs.entries import Rejected

    console = Console(record=True, width=120)
    render_skipped(console, [Rejected(n, f"[red]bad {n}[/red]", "") for n in range(1, 13)])
    text = console.export_text()
    assert "skipped line 1: [red]bad 1[/red]" in text  # markup shown, not applied
    assert "skipped line 11" not in text
    assert "… and 2 more skipped lines" in text
