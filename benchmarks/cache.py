"""A fully cached re-run through the CLI: services per second and peak memory (prints figures).

Fills a cache with the offline model once (slow: every call goes through pydantic-ai),
then times ``service-ambitions run`` again on the same input, as a user would run it: a
new process, the real CLI, every answer from the cache.

Usage:
    uv run python benchmarks/cache.py                      # 1,000 services, fresh cache
    uv run python benchmarks/cache.py --services 200
    uv run python benchmarks/cache.py --cache-dir /tmp/sa-bench   # reuse a filled cache

Target (2 cores): >= 500 services/s end to end.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "services.jsonl"


def write_services(path: Path, count: int) -> None:
    rows = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    with path.open("w") as handle:
        for i in range(count):
            row = dict(rows[i % len(rows)])
            row["service_id"] = f"{row['service_id']}-{i:05d}"
            row["name"] = f"{row['name']} {i}"
            handle.write(json.dumps(row) + "\n")


def run_cli(source: Path, output: Path, cache_dir: Path) -> float:
    command = [sys.executable, "-m", "service_ambitions", "run", str(source), "-o", str(output)]
    command += [
        "--model",
        "offline",
        "--cache-dir",
        str(cache_dir),
        "--concurrency",
        "16",
        "--max-in-flight",
        "16",
        "-q",
    ]
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=1000)
    parser.add_argument("--cache-dir", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        cache_dir = args.cache_dir or folder / "cache"
        source = folder / "services.jsonl"
        write_services(source, args.services)
        fill = run_cli(source, folder / "fill.jsonl", cache_dir)
        print(f"fill:   {args.services} services in {fill:7.2f}s ({args.services / fill:6.1f} services/s)")
        cached = run_cli(source, folder / "cached.jsonl", cache_dir)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(
            f"cached: {args.services} services in {cached:7.2f}s ({args.services / cached:6.1f} services/s), "
            f"peak RSS of a run {peak:.0f} MiB"
        )
        empty = folder / "empty.jsonl"
        empty.touch()
        startup = run_cli(empty, folder / "none.jsonl", cache_dir)
        print(f"startup alone (empty input): {startup:.2f}s")


if __name__ == "__main__":
    main()
