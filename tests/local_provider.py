"""An OpenAI-compatible server on 127.0.0.1 for tests and benchmarks that run the real CLI in a process.

respx fakes the provider inside the test's own process; a command started as a child
process needs a real socket. This one answers chat completions with :class:`FakeOpenAI`
(answers built from the request's output schema), after a fixed latency, from a thread.
Standard library only; it listens on the loopback address and stops with its context.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx

from .fake_openai import FakeOpenAI


@contextmanager
def local_provider(*, latency_s: float = 0.05) -> Iterator[str]:
    """Serve until the context ends; yields the base URL (``http://127.0.0.1:PORT/v1``)."""
    fake = FakeOpenAI(usage=40)
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            time.sleep(latency_s)
            request = httpx.Request("POST", f"http://local{self.path}", content=body)
            with lock:
                reply = fake(request)
            payload = reply.content
            self.send_response(reply.status_code)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a client killed mid-answer
                self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            return

    class Server(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: object, client_address: object) -> None:
            return  # a client killed mid-request resets its connection: expected here, not news

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
