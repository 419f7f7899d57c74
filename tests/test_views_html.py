"""view: one self-contained HTML roadmap, escaped throughout; and, when Chromium is there, opened in it."""

from __future__ import annotations

import base64
import gzip
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from service_ambitions.cli.app import app

from .conftest import EXAMPLES
from .test_views_diff import _feature, _record, _write

runner = CliRunner()
HOSTILE = "<script>alert('x')</script>{{ 7*7 }}{% if 1 %}x{% endif %}"


def _packed_records(page: str) -> list[dict[str, object]]:
    blob = re.search(r'<script id="records" type="application/octet-stream">([^<]*)</script>', page)
    assert blob is not None
    records: list[dict[str, object]] = json.loads(gzip.decompress(base64.b64decode(blob.group(1))))
    return records


def test_the_page_is_self_contained_and_escapes_every_string(tmp_path: Path) -> None:
    record = _record("svc-<b>", HOSTILE, [_feature("f1", HOSTILE, 4, ["APP-1"])])
    record["service"]["parent_id"] = "</td><td>"
    source = _write(tmp_path / "evolutions.jsonl", [record], extra="not json\n")
    (tmp_path / "evolutions.quarantine.jsonl").write_text('{"kind": "service", "line": 3}\n{"kind": "input"}\n')

    result = runner.invoke(app, ["view", str(source)])
    assert result.exit_code == 0, result.output
    assert "1 unreadable lines skipped" in " ".join(result.stderr.split())
    page = (tmp_path / "evolutions.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page  # escaped wherever it is shown
    assert (
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;{{ 7*7 }}{% if 1 %}x{% endif %}" in page
    )  # text, not template
    assert "&lt;/script&gt;49" not in page  # {{ 7*7 }} was not evaluated (the page's own time may hold "49")
    assert "&lt;/td&gt;&lt;td&gt;" in page
    assert not re.search(r"(src|href)=\"https?://", page)  # no CDN, nothing fetched
    assert 'class="lvl l4" data-v="4.0">4.0<' in page  # the heat-map cell, with its number
    assert "<b>1</b>services quarantined" in page
    (packed,) = _packed_records(page)
    assert packed["service"]["name"] == HOSTILE  # type: ignore[index]  # the details travel as data
    assert "innerHTML" not in page  # the script builds nodes, never HTML strings


def test_compare_adds_the_changes_and_the_examples_say_they_are_synthetic(tmp_path: Path) -> None:
    out = tmp_path / "evolutions.jsonl"
    base = ["run", str(EXAMPLES / "services.jsonl"), "--model", "offline", "--max-services", "3"]
    assert runner.invoke(app, [*base, "-o", str(out)]).exit_code == 0
    assert runner.invoke(app, [*base, "-o", str(tmp_path / "old.jsonl"), "--seed", "9"]).exit_code == 0
    target = tmp_path / "site" / "roadmap.html"
    result = runner.invoke(app, ["view", str(out), "-o", str(target), "--compare", str(tmp_path / "old.jsonl")])
    assert result.exit_code == 0, result.output
    page = target.read_text(encoding="utf-8")
    assert 'id="synthetic-banner"' in page
    assert 'id="changes"' in page
    assert "3 services in both runs: 3 changed" in page
    assert 'id="coverage"' in page
    assert len(_packed_records(page)) == 3
    refused = runner.invoke(app, ["view", str(out), "-o", str(out)])
    assert refused.exit_code != 0


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
def test_the_roadmap_opens_in_a_real_browser_without_console_errors(tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the browser test did not run")
    out = tmp_path / "evolutions.jsonl"
    args = ["run", str(EXAMPLES / "services.jsonl"), "-o", str(out), "--model", "offline", "--max-services", "2"]
    assert runner.invoke(app, args).exit_code == 0
    page = tmp_path / "roadmap.html"
    assert runner.invoke(app, ["view", str(out), "-o", str(page)]).exit_code == 0
    flags = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000"]
    url = f"{page.as_uri()}#service-1"  # opens the second service's roadmap on load
    done = subprocess.run(
        [*flags, "--enable-logging=stderr", "--v=0", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "CONSOLE" not in done.stderr, [line for line in done.stderr.splitlines() if "CONSOLE" in line]
    dom = done.stdout
    assert dom.count('class="lvl l') >= 2 * 5  # the heat-map cells
    assert 'id="service-title"' in dom  # the service's roadmap was drawn by the page's script
    assert dom.count('data-feature="') == 45  # its feature table, every feature
    shot = tmp_path / "roadmap.png"
    subprocess.run(
        [*flags, "--hide-scrollbars", "--window-size=1280,1000", f"--screenshot={shot}", page.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    assert shot.stat().st_size > 10_000


def test_the_page_shows_each_services_quality_findings_and_a_quality_column(tmp_path: Path) -> None:
    vendor = _feature("f1", "Salesforce <b>portal</b>", 1, ["APP-1"])
    source = _write(tmp_path / "evolutions.jsonl", [_record("svc-a", "A", [vendor])])
    result = runner.invoke(app, ["view", str(source)], env={"SA_QUALITY__VENDORS": '["Salesforce"]'})
    assert result.exit_code == 0, result.output
    page = (tmp_path / "evolutions.html").read_text(encoding="utf-8")
    assert 'title="quality score: 100 is clean (service-ambitions check)">quality</th>' in page
    assert "services without a quality finding" in page
    (packed,) = _packed_records(page)
    quality = packed["quality"]
    assert isinstance(quality, dict)
    assert quality["score"] < 100
    assert any(f["rule"] == "vendor-name" and "Salesforce" in f["why"] for f in quality["findings"])
    assert "<b>portal</b>" not in page  # the finding's text travels as data, escaped where shown


def test_the_page_carries_catalogue_item_names_for_the_ids_it_shows(tmp_path: Path) -> None:
    source = _write(tmp_path / "evolutions.jsonl", [_record("svc-a", "A", [_feature("f1", "F", 2, ["APP-SIS"])])])
    result = runner.invoke(app, ["view", str(source)])
    assert result.exit_code == 0, result.output
    page = (tmp_path / "evolutions.html").read_text(encoding="utf-8")
    blob = re.search(r'<script id="item-names" type="application/octet-stream">([^<]*)</script>', page)
    assert blob is not None
    names = json.loads(gzip.decompress(base64.b64decode(blob.group(1))))
    assert names["applications"]["APP-SIS"] == "Student information system"
    assert "v !== null" in page  # facets the model left empty are not shown
