"""How long ``service-ambitions --help`` takes, start to finish (prints figures).

Usage:
    uv run python benchmarks/startup.py [--runs 10]

Target: under 300 ms. Heavy libraries (pydantic-ai, diskcache, logfire) are imported by
the commands that use them, never at start-up.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    command = [sys.executable, "-m", "service_ambitions", "--help"]
    subprocess.run(command, check=True, capture_output=True)  # warm the file cache and bytecode
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append((time.perf_counter() - started) * 1000)
    print(
        f"service-ambitions --help: median {statistics.median(times):.0f} ms, "
        f"min {min(times):.0f} ms, max {max(times):.0f} ms over {args.runs} runs"
    )


if __name__ == "__main__":
    main()
