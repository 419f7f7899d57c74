"""Throughput against a server that enforces R requests per minute (prints figures).

Starts a local OpenAI-compatible server in another process (127.0.0.1 only) that answers
chat-completions requests and replies 429 with Retry-After to any request beyond R in a
sliding 60-second window. Every answer carries OpenAI's ``x-ratelimit-*`` headers (limit,
remaining, reset). Then runs services through ``generate`` and reports the sustained
throughput against R and the share of requests answered 429.

Usage:
    uv run python benchmarks/rate_limit.py                 # R = 1200/min, announced in the settings
    uv run python benchmarks/rate_limit.py --unannounced   # no limit configured: paced by the headers
    uv run python benchmarks/rate_limit.py --rpm 600 --services 20
    uv run python benchmarks/rate_limit.py --rpm 0 --services 40   # no limit: client CPU per call over HTTP

Targets: throughput >= 90 % of R, <= 1 % of requests answered 429, announced or not.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import math
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def serve(port: int, rpm: int, counts: dict[str, int], latency: float = 0.0) -> None:
    sys.path.insert(0, str(ROOT))
    import httpx2

    from tests.fake_openai import FakeOpenAI

    fake = FakeOpenAI()
    window: collections.deque[float] = collections.deque()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as providers do: no new connection per request

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            if latency:
                time.sleep(latency)
            now = time.monotonic()
            with lock:
                while window and now - window[0] >= 60:
                    window.popleft()
                limited = bool(rpm) and len(window) >= rpm
                if not limited:
                    window.append(now)
                counts["limited" if limited else "answered"] += 1
                remaining = max(0, rpm - len(window)) if rpm else 10**6
                reset = 60 - (now - window[0]) if window else 0.0
            if limited:
                wait = math.ceil(60 - (now - window[0]))
                data = json.dumps({"error": {"message": "rate limit"}}).encode()
                self.send_response(429)
                self.send_header("retry-after", str(wait))
            else:
                request = httpx2.Request("POST", "http://x" + self.path, content=body)
                data = fake(request).content
                self.send_response(200)
            if rpm:
                self.send_header("x-ratelimit-limit-requests", str(rpm))
                self.send_header("x-ratelimit-remaining-requests", str(remaining))
                self.send_header("x-ratelimit-reset-requests", f"{reset:.3f}s")
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()


async def run(
    port: int, rpm: int, services: int, announced: bool, follow: bool, in_flight: int = 16
) -> tuple[float, float]:
    os.environ["OPENAI_BASE_URL"] = f"http://127.0.0.1:{port}/v1"
    os.environ["OPENAI_API_KEY"] = "sk-local-benchmark"  # pragma: allowlist secret
    from service_ambitions.config.settings import Settings
    from service_ambitions.jobs.run import generate
    from service_ambitions.jobs.setup import prepare

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        source = folder / "services.jsonl"
        rows = [json.loads(line) for line in (ROOT / "examples" / "services.jsonl").read_text().splitlines()]
        source.write_text("".join(json.dumps({**rows[i % 8], "service_id": f"s{i}"}) + "\n" for i in range(services)))
        settings = Settings(
            model="openai:gpt-4o-mini",
            concurrency=in_flight,
            max_in_flight=in_flight,
            cache_mode="off",
            runs_dir=folder / "runs",
            limits={"requests_per_minute": rpm, "follow_rate_headers": follow}
            if announced and rpm
            else {"follow_rate_headers": follow},
        )
        prepared = prepare(settings)
        started, cpu = time.perf_counter(), time.process_time()
        await generate(prepared, source, folder / "out.jsonl", folder / "q.jsonl")
        return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rpm", type=int, default=1200)
    parser.add_argument("--services", type=int, default=43)
    parser.add_argument("--port", type=int, default=8791)
    parser.add_argument("--unannounced", action="store_true", help="configure no limit: the run learns it")
    parser.add_argument("--ignore-headers", action="store_true", help="limits.follow_rate_headers off (the baseline)")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds the server takes to answer")
    parser.add_argument("--in-flight", type=int, default=16, help="max_in_flight and concurrency")
    args = parser.parse_args()
    manager = multiprocessing.Manager()
    counts = manager.dict({"answered": 0, "limited": 0})
    server = multiprocessing.Process(target=serve, args=(args.port, args.rpm, counts, args.latency), daemon=True)
    server.start()
    time.sleep(1.5)
    try:
        elapsed, cpu = asyncio.run(
            run(args.port, args.rpm, args.services, not args.unannounced, not args.ignore_headers, args.in_flight)
        )
    finally:
        server.terminate()
    answered, limited = counts["answered"], counts["limited"]
    per_minute = answered / elapsed * 60
    calls = answered + limited
    print(f"client CPU per call over HTTP: {cpu / max(1, calls) * 1000:.2f} ms ({answered} calls, {elapsed:.1f} s)")
    if args.latency and not args.rpm:
        critical = 7  # descriptions, four plateaus' features in turn, the last mapping; with one more to spare
        ideal = max(calls * args.latency / args.in_flight, critical * args.latency)
        print(f"wall/ideal at {args.in_flight} in flight, {args.latency * 1000:.0f} ms latency: {elapsed / ideal:.2f}")
    if not args.rpm:
        return
    print(
        f"R={args.rpm}/min ({'unannounced' if args.unannounced else 'configured'}"
        f"{', headers ignored' if args.ignore_headers else ''})  calls={answered}  elapsed={elapsed:.1f}s  "
        f"throughput={per_minute:.0f}/min "
        f"({per_minute / args.rpm * 100:.1f}% of R)  429s={limited} "
        f"({limited / max(1, answered + limited) * 100:.2f}% of requests)"
    )


if __name__ == "__main__":
    main()
