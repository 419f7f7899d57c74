"""Kill a real run at random moments, resume it each time, and count what a kill could break.

    uv run python benchmarks/kill_resume.py [--kills 1000] [--services 40] [--seed 1]

The CLI runs in its own process against an OpenAI-compatible server on 127.0.0.1 (the
tests' local provider: answers built from the request's schema, 50 ms each). Each round
starts ``run … --resume`` on the same output, waits a random moment (0.2 to 2.5 s) and
sends SIGKILL, SIGINT or SIGTERM at random; after each kill the output is read. At the end
one last ``--resume`` finishes the run. Reported: torn lines (a complete line that is not
whole JSON: there must be none, while a last, unterminated line is allowed after a
SIGKILL), duplicate and missing services at the end, runs left ``running``, and exit codes
other than 130 after SIGINT/SIGTERM. Target: 0 of each.
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service_ambitions.runs.journal import read_manifest  # noqa: E402
from tests.local_provider import local_provider  # noqa: E402

SIGNALS = (signal.SIGKILL, signal.SIGINT, signal.SIGTERM)


def services(path: Path, count: int) -> list[str]:
    rows = [json.loads(line) for line in (ROOT / "examples" / "services.jsonl").read_text().splitlines()]
    ids = [f"svc-{i:04d}" for i in range(count)]
    path.write_text("".join(json.dumps({**rows[i % len(rows)], "service_id": ids[i]}) + "\n" for i in range(count)))
    return ids


def _check_killed(code: int, stop: signal.Signals, stderr: bytes, out: Path, problems: Counter[str]) -> None:
    """What a killed run left: its exit code, no traceback, and only whole lines before the last newline."""
    if stop is not signal.SIGKILL and code != 130:
        problems[f"exit {code} after {stop.name}"] += 1
    if b"Traceback" in stderr:
        problems["traceback"] += 1
    lines = out.read_bytes().split(b"\n") if out.exists() else []
    for line in lines[:-1]:  # complete lines; the last piece is what follows the final newline
        try:
            json.loads(line)
        except ValueError:
            problems["torn complete line"] += 1


def _duplicates_and_missing(outputs: list[Path], ids: list[str]) -> tuple[int, int]:
    """Services written twice, and services never written, over every output."""
    duplicates = missing = 0
    for output in outputs:
        written = [json.loads(line)["service"]["service_id"] for line in output.read_text().splitlines()]
        duplicates += sum(count - 1 for count in Counter(written).values() if count > 1)
        missing += len(set(ids) - set(written))
    return duplicates, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--services", type=int, default=40)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    problems: Counter[str] = Counter()
    by_signal: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as temporary, local_provider(latency_s=0.05) as base_url:
        work = Path(temporary)
        source = work / "services.jsonl"
        ids = services(source, args.services)
        generation, out = 0, work / "out-0.jsonl"
        finished_outputs: list[Path] = []
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(work),
            "SA_CACHE_DIR": str(work / "cache"),
            "SA_RUNS_DIR": str(work / "runs"),
            "OPENAI_BASE_URL": base_url,
            "OPENAI_API_KEY": "sk-local-benchmark",  # pragma: allowlist secret
        }

        def command(output: Path) -> list[str]:
            words = [sys.executable, "-m", "service_ambitions", "run", str(source), "-o", str(output), "--resume"]
            # No cache: a resume redoes the services in flight, so every kill lands mid-work.
            return [*words, "--model", "openai:gpt-4o-mini", "-q", "--concurrency", "4", "--cache-mode", "off"]

        started = time.monotonic()
        for round_ in range(args.kills):
            stop = chance.choice(SIGNALS)
            process = subprocess.Popen(command(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(chance.uniform(0.2, 2.5))
            process.send_signal(stop)
            _, stderr = process.communicate(timeout=120)
            by_signal[stop.name] += 1
            if process.returncode == 0:
                # It finished before the signal: check it, and go on with a new output so
                # later kills still land mid-run.
                finished_outputs.append(out)
                generation += 1
                out = work / f"out-{generation}.jsonl"
                continue
            _check_killed(process.returncode, stop, stderr, out, problems)
            if (round_ + 1) % 50 == 0:
                print(f"{round_ + 1} kills, {time.monotonic() - started:.0f} s", file=sys.stderr)
        finished = subprocess.run(command(out), env=env, capture_output=True, check=False)
        if finished.returncode != 0:
            problems[f"final resume exit {finished.returncode}: {finished.stderr.decode()[-200:]}"] += 1
        duplicates, missing = _duplicates_and_missing([*finished_outputs, out], ids)
        manifests = [read_manifest(directory) for directory in (work / "runs").iterdir() if directory.is_dir()]
        running = sum(1 for manifest in manifests if manifest is not None and manifest.status == "running")
    print(f"kills: {args.kills} ({', '.join(f'{name} {n}' for name, n in sorted(by_signal.items()))})")
    print(f"torn complete lines: {problems['torn complete line']}")
    print(
        f"duplicate services: {duplicates}, missing services: {missing} "
        f"(in {len(finished_outputs) + 1} outputs of {args.services} services each)"
    )
    print(f"runs left running: {running}")
    other = {name: n for name, n in problems.items() if name != "torn complete line"}
    print(f"other problems: {other or 'none'}")


if __name__ == "__main__":
    main()
