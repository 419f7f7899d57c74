"""A fully cached re-run through the CLI: services per second and peak memory (prints figures).

Fills a cache with the offline model once (slow: every call goes through pydantic-ai),
then times ``service-ambitions run`` again on the same input, as a user would run it: a
new process, the real CLI, every answer from the cache.

Usage:
    uv run python benchmarks/cache.py                      # 1,000 services, fresh cache
    uv run python benchmarks/cache.py --services 200
    uv run python benchmarks/cache.py --cache-dir /tmp/sa-bench   # reuse a filled cache

Targets (2 cores): >= 500 services/s end to end; the offline fill >= 20 services/s in one
process; a cached 1-service run <= 0.5 s.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "services.jsonl"


def write_services(path: Path, count: int) -> None:
    rows = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    with path.open("w") as handle:
        for i in range(count):
            row = dict(rows[i % len(rows)])
            row["service_id"] = f"{row['service_id']}-{i:05d}"
            row["name"] = f"{row['name']} {i}"
            handle.write(json.dumps(row) + "\n")


def run_cli(source: Path, output: Path, cache_dir: Path, *extra: str) -> tuple[float, float]:
    """Seconds the command took and its peak resident memory in MiB."""
    command = [sys.executable, "-m", "service_ambitions", "run", str(source), "-o", str(output)]
    command += ["--model", "offline", "--cache-dir", str(cache_dir), "-q", *extra]
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return elapsed, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--cache-dir", type=Path)
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the fill (run --workers)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache_dir = args.cache_dir or folder / "cache"
        source = folder / "services.jsonl"
        write_services(source, args.services)
        # As an installed tool has it (`UV_COMPILE_BYTECODE=1 uv tool install`): compiled once,
        # so machines that set PYTHONDONTWRITEBYTECODE do not compile the package on every start.
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "service_ambitions")], check=True)
        wide = ("--concurrency", "16", "--max-in-flight", "16", "--workers", str(args.workers))
        fill, fill_peak = run_cli(source, folder / "fill.jsonl", cache_dir, *wide)
        print(
            f"fill:   {args.services} services in {fill:7.2f}s ({args.services / fill:6.1f} services/s, "
            f"offline model, {args.workers} worker process(es)), peak RSS {fill_peak:.0f} MiB (the largest process)"
        )
        cached, peak = run_cli(source, folder / "cached.jsonl", cache_dir)  # the default settings
        print(
            f"cached: {args.services} services in {cached:7.2f}s ({args.services / cached:6.1f} services/s), "
            f"peak RSS {peak:.0f} MiB"
        )
        one = folder / "one.jsonl"
        one.write_text(source.read_text().splitlines(keepends=True)[0])
        times = sorted(run_cli(one, folder / "one-out.jsonl", cache_dir)[0] for _ in range(7))
        print(
            f"cached 1-service run, whole process: median {times[3]:.2f}s (min {times[0]:.2f}s, max {times[-1]:.2f}s)"
        )


if __name__ == "__main__":
    main()
