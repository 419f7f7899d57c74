"""The HTML roadmap of a big portfolio: file size, time to write it, time to open it in Chromium (prints figures).

Writes N services with the offline model (or takes an evolutions file), runs
``service-ambitions view`` on them, and opens the page in headless Chromium twice — a blank
page and the roadmap with its last service drawn — so the difference is what the roadmap
itself costs to open.

Usage:
    uv run python benchmarks/view.py --services 1000
    uv run python benchmarks/view.py --evolutions evolutions.jsonl

Budget: < 15 MB and < 3 s to open at 1,000 services.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cache import write_services  # this folder's cache.py: the same services the cache benchmark uses

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service_ambitions", *args], check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def open_seconds(browser: str, url: str) -> float:
    started = time.perf_counter()
    subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom", url],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--evolutions", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        evolutions = args.evolutions
        if evolutions is None:
            source = folder / "services.jsonl"
            write_services(source, args.services)
            evolutions = folder / "evolutions.jsonl"
            cache = ["--cache-dir", str(folder / "cache"), "--concurrency", "16", "--max-in-flight", "16", "-q"]
            cli("run", str(source), "-o", str(evolutions), "--model", "offline", *cache)
        page = folder / "roadmap.html"
        written = cli("view", str(evolutions), "-o", str(page))
        services = sum(1 for line in evolutions.read_text().splitlines() if line.strip())
        print(f"{services} services: roadmap {page.stat().st_size / 2**20:.1f} MiB, written in {written:.1f} s")
        browser = shutil.which("chromium") or shutil.which("google-chrome")
        if browser is None:
            print("Chromium not found: opening time not measured")
            return
        blank = folder / "blank.html"
        blank.write_text("<!doctype html><title>blank</title>")
        pairs = [
            (open_seconds(browser, blank.as_uri()), open_seconds(browser, f"{page.as_uri()}#service-{services - 1}"))
            for _ in range(3)
        ]
        extra = statistics.median(roadmap - empty for empty, roadmap in pairs)
        print(f"opening it and drawing the last service: {extra:.2f} s more than a blank page (median of 3)")


if __name__ == "__main__":
    main()
