"""The web face at a portfolio's size: each page and API answer, first and second time (prints figures).

Writes N services, runs them with the offline model through the CLI (as a run started from
a page is), then serves the folder with the app in this process (Starlette's test client:
no network, no browser) and times what a user opens: the run page, its live figures and
report, the roadmap and the findings of the output, the workspace, and the run's AG-UI
stream read to its end. The second time is what answers kept while their files are
unchanged save.

Usage:
    uv run python benchmarks/web.py --services 1000

Budget at 1,000 services: each page ≤ 1.5 s the second time; the live figures and the AG-UI
stream (no answer kept: a running run changes) ≤ 2 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cache import write_services  # this folder's cache.py: the same services the cache benchmark uses

TOKEN = "benchmark-token-0123456789"  # pragma: allowlist secret


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--findings-first", action="store_true", help="open the findings before the roadmap")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        os.environ["SA_RUNS_DIR"] = str(folder / "runs")
        os.environ["SA_CACHE_DIR"] = str(folder / "cache")
        write_services(folder / "services.jsonl", args.services)
        started = time.perf_counter()
        command = [sys.executable, "-m", "service_ambitions", "run", "services.jsonl", "-o", "evolutions.jsonl"]
        subprocess.run(
            [*command, "--model", "offline", "--concurrency", "16", "--max-in-flight", "16", "-q"],
            cwd=folder,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{args.services} services run in {time.perf_counter() - started:.1f} s")
        time_pages(folder, findings_first=args.findings_first)


def time_pages(folder: Path, *, findings_first: bool) -> None:
    from starlette.testclient import TestClient

    from service_ambitions.config.settings import load_settings
    from service_ambitions.core.tuning import tune_gc
    from service_ambitions.web.app import create_app
    from service_ambitions.web.state import WebState

    os.chdir(folder)
    tune_gc()  # as serve does
    client = TestClient(create_app(WebState(load_settings(None), TOKEN, workspace=folder)))
    client.headers["Authorization"] = f"Bearer {TOKEN}"
    (run,) = client.get("/api/runs").json()
    run_id = run["run_id"]
    paths = {
        "run page": f"/runs/{run_id}",
        "report page": f"/runs/{run_id}/report",
        "roadmap": "/api/outputs/roadmap?file=evolutions.jsonl",
        "findings page": "/findings?file=evolutions.jsonl",
        "workspace page": "/",
        "live figures": f"/api/runs/{run_id}/live",
        "AG-UI stream": f"/api/runs/{run_id}/agui",
    }
    if findings_first:
        paths = {"findings page": paths.pop("findings page"), **paths}
    for name, path in paths.items():
        times = []
        for _ in range(3):
            begun = time.perf_counter()
            answer = client.get(path)
            times.append(time.perf_counter() - begun)
            answer.raise_for_status()
        kept = statistics.median(times[1:])
        print(f"{name:15} first {times[0]:5.2f} s, then {kept:5.2f} s ({len(answer.content) / 2**10:,.0f} KiB)")


if __name__ == "__main__":
    main()
