"""The web face in a real browser: serve on the offline model; upload, validate, dry-run, start, watch, roadmap.

Headless Chromium (Debian's ``chromium``) driven by Playwright. The server is the real
``service-ambitions serve`` in its own process, and the run it starts is the CLI's own.
Screenshots go to the test's folder, and to ``$WEB_SCREENSHOTS`` when set (the docs' images).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import subprocess_env

pytest.importorskip("starlette")
playwright = pytest.importorskip("playwright.sync_api")
expect = playwright.expect

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
TOKEN = "browser-test-token"  # pragma: allowlist secret


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """``serve`` over an empty workspace, on a free port; its base URL."""
    workspace = tmp_path / "workspace"
    workspace.mkdir()
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "service_ambitions", "serve", str(workspace), "--port", str(port), "--token", TOKEN],
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            if process.poll() is not None:
                pytest.fail(process.stderr.read().decode() if process.stderr else "serve ended")
            time.sleep(0.1)
    try:
        yield base
    finally:
        process.terminate()
        process.wait(30)
        if process.stderr is not None:
            process.stderr.close()


def _api(base: str, path: str) -> object:
    request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # nosec B310  # our own server
        return json.loads(response.read())


def _shot(page: object, tmp_path: Path, name: str) -> None:
    target = tmp_path / f"{name}.png"
    page.screenshot(path=str(target), full_page=True)  # type: ignore[attr-defined]
    if folder := os.environ.get("WEB_SCREENSHOTS"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(folder) / target.name)


@pytest.mark.slow
def test_a_whole_run_from_the_browser(server: str, tmp_path: Path) -> None:
    browser_path = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser_path is None:
        pytest.skip("Chromium is not installed (Debian: apt-get install chromium); the browser test did not run")
    problems: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=browser_path, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "response",
            lambda answer: problems.append(f"{answer.status} {answer.url}") if answer.status >= 400 else None,
        )

        page.goto(f"{server}/?token={TOKEN}")
        assert "token" not in page.url  # the token went into a cookie
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"

        page.set_input_files("#upload input[type=file]", str(EXAMPLES / "services.jsonl"))
        page.click("#upload button[type=submit]")
        page.wait_for_selector("text=services.jsonl: 8 services.")
        assert page.locator("tr[data-kind=services] code").inner_text() == "services.jsonl"

        expect(page.locator("fieldset[data-for=map]")).to_be_hidden()
        page.select_option("#job select[name=command]", "map")
        expect(page.locator("fieldset[data-for=map]")).to_be_visible()
        expect(page.locator("#job input[name=max_services]")).to_be_hidden()
        page.select_option("#job select[name=command]", "run")
        page.select_option("#job select[name=input]", "services.jsonl")
        page.fill("#job input[name=output]", "services.jsonl")
        expect(page.locator("#output-note")).to_have_text(
            "services.jsonl exists: a new run keeps it as services.jsonl.prev"
        )
        page.fill("#job input[name=output]", "evolutions.jsonl")
        expect(page.locator("#output-note")).to_have_text("")
        page.fill("#job input[name=model]", "offline")
        page.click("#job [data-action=validate]")
        page.wait_for_selector("text=All checks passed.")
        page.click("#job [data-action=plan]")
        page.wait_for_selector("#job-result table")
        assert "8 services" in page.locator("#job-result").inner_text()
        _shot(page, tmp_path, "web-workspace")

        page.click("#job button[type=submit]")
        page.wait_for_url(f"{server}/runs/*")
        expect(page.locator("#status")).to_have_text("completed", timeout=60_000)
        expect(page.locator("[data-f=done]")).to_have_text("8")
        expect(page.locator("[data-f=services_total]")).to_have_text("8")
        run_id = page.locator("#run").get_attribute("data-run-id")
        _shot(page, tmp_path, "web-run")

        report = _api(server, f"/api/runs/{run_id}/report")
        assert isinstance(report, dict)
        shown_calls = page.locator("[data-f=calls]").inner_text().replace(",", "")
        assert int(shown_calls) == report["totals"]["calls"] == 168

        page.click("#roadmap-link")
        expect(page.locator("h1").first).to_contain_text("evolutions")
        assert page.locator(".lvl").count() >= 8 * 5  # the heat-map: every service by plateau
        _shot(page, tmp_path, "web-roadmap")

        page.goto(f"{server}/runs/{run_id}/report")
        assert "168" in page.locator("table").first.inner_text()
        page.goto(f"{server}/runs")
        assert page.locator(f"a[href='/runs/{run_id}']").count() == 1
        browser.close()
    assert problems == []
