"""Resident memory of a long run through the whole CLI, as a user runs it (cache on): does it stay flat?

Runs ``service-ambitions run`` on N services with the offline model and a small reference
(one plateau, one role, one 15-item catalogue: 3 calls a service, so 10,000 services take
minutes, not an hour), the cache and the run journal on as by default, and samples the
process's resident memory against the services written so far.

Usage:
    uv run python benchmarks/memory.py                     # 10,000 services
    uv run python benchmarks/memory.py --services 3000

Target (2 cores): at most 1 MiB more per 1,000 services, so 100,000 services fit where
10,000 do.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "services.jsonl"


def write_inputs(folder: Path, count: int) -> tuple[Path, Path]:
    """The services file and a settings file naming the small reference."""
    (folder / "plateaus.json").write_text(
        json.dumps([{"id": "now", "name": "Now", "description": "The service as it is."}])
    )
    (folder / "roles.json").write_text(json.dumps([{"role_id": "learners", "name": "Learners"}]))
    items = [{"id": f"APP-{i:02d}", "name": f"Application {i}", "description": "Does things."} for i in range(15)]
    (folder / "apps.json").write_text(json.dumps(items))
    config = folder / "app.yaml"
    config.write_text(
        "model: offline\nfeatures_per_role: {min: 1, max: 1}\n"
        f"reference:\n  plateaus: {folder / 'plateaus.json'}\n  roles: {folder / 'roles.json'}\n"
        f"  catalogues: [{folder / 'apps.json'}]\n"
        f"cache_dir: {folder / 'cache'}\nruns_dir: {folder / 'runs'}\n"
    )
    rows = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    services = folder / "services.jsonl"
    with services.open("w") as handle:
        for i in range(count):
            row = dict(rows[i % len(rows)])
            row["service_id"] = f"{row['service_id']}-{i:06d}"
            row["name"] = f"{row['name']} {i}"
            handle.write(json.dumps(row) + "\n")
    return services, config


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def lines(path: Path) -> int:
    try:
        with path.open("rb") as handle:
            return sum(1 for _ in handle)
    except OSError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--every", type=int, default=1000, help="print the memory every N services")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        services, config = write_inputs(folder, args.services)
        output = folder / "out.jsonl"
        command = [sys.executable, "-m", "service_ambitions", "--config", str(config), "run", str(services)]
        command += ["-o", str(output), "-q"]
        started = time.perf_counter()
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        samples: list[tuple[int, float]] = []
        mark = args.every
        while child.poll() is None:
            time.sleep(0.5)
            memory, done = rss_mib(child.pid), lines(output)
            if memory is None:
                continue
            samples.append((done, memory))
            while done >= mark:
                print(f"{mark:>7,} services: {memory:6.1f} MiB", flush=True)
                mark += args.every
        elapsed = time.perf_counter() - started
        if child.returncode:
            raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
        peak = max(memory for _, memory in samples)
        # The slope over the second half, once start-up and the first services' caches have settled.
        half = [(done, memory) for done, memory in samples if done >= args.services // 2]
        slope = (half[-1][1] - half[0][1]) / max(1, half[-1][0] - half[0][0]) * 1000 if len(half) > 1 else 0.0
        print(
            f"{args.services:,} services in {elapsed:.1f} s ({args.services / elapsed:.1f}/s); "
            f"peak {peak:.1f} MiB; {slope:+.2f} MiB per 1,000 services over the second half"
        )


if __name__ == "__main__":
    main()
