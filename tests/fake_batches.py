"""A fake OpenAI Files + Batches API for respx: the real wire format, lines answered by the Responses API.

``POST /files`` (multipart JSONL), ``POST /batches``, ``GET /batches/{id}`` (in progress
for ``checks_before_done`` retrieves, then ended), ``GET /files/{id}/content`` (input,
output and error files as OpenAI writes them), ``DELETE /files/{id}`` and ``POST
/batches/{id}/cancel``. Each line is answered with a random instance of its output tool's
schema (``schema_fill``): valid, rarely friendly. Chosen lines expire (the batch then ends
``expired`` and the line has a ``batch_expired`` error) or fail with a 500 line, the first
time they are sent only, so a resubmitted line gets its answer.
"""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .fake_openai import BASE_URL
from .schema_fill import fill

__all__ = ["BASE_URL", "FakeBatches"]

_LINE = re.compile(rb'^(\{"custom_id".*\})\r?$', re.MULTILINE)


@dataclass
class FakeBatches:
    """The provider's side: files, batches, and every request line it received."""

    seed: int = 0
    checks_before_done: int = 1
    """Retrieves of a batch that answer ``in_progress`` before it ends."""
    expire: int = 0
    """How many lines (the first ones sent) expire unrun."""
    fail: int = 0
    """How many lines (after the expired ones) are answered with a 500."""
    cancel: bool = False
    """When set, the first batch is cancelled (from the provider's console, say) before it runs its lines."""
    reject: str | None = None
    """When set, the first batch fails validation with this message (its requests run not)."""
    usage: tuple[int, int] = (1_000, 200)
    files: dict[str, bytes] = field(default_factory=dict)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: Counter[str] = field(default_factory=Counter)
    """How many times each line (by custom id) reached the provider."""
    answers: list[dict[str, int]] = field(default_factory=list)
    """The usage block of every line answered with a 200."""
    endpoints: Counter[str] = field(default_factory=Counter)
    live: int = 0
    """Requests that did not go through a batch (there should be none)."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._checks: Counter[str] = Counter()
        self._bad_left = {"expire": self.expire, "fail": self.fail}

    def save(self, path: Path) -> None:
        """Keep the provider's state in a file, for a provider that outlives a process."""
        state = {
            "files": {key: value.decode() for key, value in self.files.items()},
            "batches": self.batches,
            "sent": dict(self.sent),
            "answers": self.answers,
            "endpoints": dict(self.endpoints),
            "live": self.live,
            "checks_before_done": self.checks_before_done,
        }
        path.write_text(json.dumps(state), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> FakeBatches:
        """The provider as :meth:`save` left it."""
        state = json.loads(path.read_text(encoding="utf-8"))
        fake = cls(checks_before_done=state["checks_before_done"])
        fake.files = {key: value.encode() for key, value in state["files"].items()}
        fake.batches, fake.answers, fake.live = state["batches"], state["answers"], state["live"]
        fake.sent, fake.endpoints = Counter(state["sent"]), Counter(state["endpoints"])
        return fake

    def mount(self, router: Any) -> None:
        """Route every request to the fake API's host here."""
        router.route(host=httpx.URL(BASE_URL).host).mock(side_effect=self)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.removeprefix("/v1")
        parts = path.strip("/").split("/")
        method = request.method
        if parts[0] == "files" and method == "POST":
            return self._upload(request)
        if parts[0] == "files" and len(parts) == 3 and parts[2] == "content":
            self.endpoints["files.content"] += 1
            return httpx.Response(200, content=self.files[parts[1]])
        if parts[0] == "files" and method == "DELETE":
            self.endpoints["files.delete"] += 1
            self.files.pop(parts[1], None)
            return httpx.Response(200, json={"id": parts[1], "object": "file", "deleted": True})
        if parts[0] == "batches" and method == "POST" and len(parts) == 1:
            return self._create(json.loads(request.content))
        if parts[0] == "batches" and len(parts) == 3 and parts[2] == "cancel":
            self.endpoints["batches.cancel"] += 1
            batch = self.batches[parts[1]]
            batch["status"] = "cancelled"
            return httpx.Response(200, json=batch)
        if parts[0] == "batches" and method == "GET" and len(parts) == 2:
            return self._retrieve(parts[1])
        self.live += 1
        return httpx.Response(404, json={"error": {"message": f"no {method} {path} here", "type": "invalid_request"}})

    def _upload(self, request: httpx.Request) -> httpx.Response:
        self.endpoints["files.create"] += 1
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = b"\n".join(_LINE.findall(request.content))
        return httpx.Response(200, json=_file(file_id, len(self.files[file_id]), "batch"))

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        self.endpoints["batches.create"] += 1
        assert body["endpoint"] == "/v1/responses", body
        batch_id = f"batch_{len(self.batches) + 1}"
        lines = [json.loads(line) for line in self.files[body["input_file_id"]].splitlines()]
        for line in lines:
            self.sent[line["custom_id"]] += 1
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": "/v1/responses",
            "input_file_id": body["input_file_id"],
            "completion_window": "24h",
            "status": "validating",
            "created_at": 1_795_000_000,
            "request_counts": {"total": len(lines), "completed": 0, "failed": 0},
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
        }
        return httpx.Response(200, json=self.batches[batch_id])

    def _retrieve(self, batch_id: str) -> httpx.Response:
        self.endpoints["batches.retrieve"] += 1
        batch = self.batches.get(batch_id)
        if batch is None:
            return httpx.Response(404, json={"error": {"message": "No such batch", "type": "invalid_request_error"}})
        if batch["status"] in ("validating", "in_progress"):
            self._checks[batch_id] += 1
            if self._checks[batch_id] > self.checks_before_done:
                self._finish(batch)
            else:
                batch["status"] = "in_progress"
        return httpx.Response(200, json=batch)

    def _cancel_all(self, batch: dict[str, Any]) -> None:
        """The batch was cancelled: every request ends unexecuted."""
        self.cancel = False
        errors = []
        for raw in self.files[batch["input_file_id"]].splitlines():
            custom_id = json.loads(raw)["custom_id"]
            error = {"code": "batch_cancelled", "message": "This request was not executed: the batch was cancelled."}
            errors.append({"id": f"r-{custom_id}", "custom_id": custom_id, "response": None, "error": error})
        batch.update(status="cancelled", error_file_id=f"file-{batch['id']}-error")
        self.files[batch["error_file_id"]] = b"\n".join(json.dumps(row).encode() for row in errors)
        batch["request_counts"] = {"total": len(errors), "completed": 0, "failed": len(errors)}

    def _finish(self, batch: dict[str, Any]) -> None:
        if self.reject is not None:
            error = {"code": "invalid_request", "message": self.reject, "line": 1}
            batch.update(status="failed", errors={"object": "list", "data": [error]})
            self.reject = None
            return
        if self.cancel:
            self._cancel_all(batch)
            return
        outputs, errors, expired = [], [], False
        for line in (json.loads(raw) for raw in self.files[batch["input_file_id"]].splitlines()):
            custom_id = line["custom_id"]
            if self._bad_left["expire"]:
                self._bad_left["expire"] -= 1
                expired = True
                error = {"code": "batch_expired", "message": "This request could not be executed before expiry."}
                errors.append({"id": f"r-{custom_id}", "custom_id": custom_id, "response": None, "error": error})
            elif self._bad_left["fail"]:
                self._bad_left["fail"] -= 1
                body = {"error": {"message": "The server had an error", "type": "server_error"}}
                response = {"status_code": 500, "request_id": "req-x", "body": body}
                errors.append({"id": f"r-{custom_id}", "custom_id": custom_id, "response": response, "error": None})
            else:
                response = {"status_code": 200, "request_id": "req-ok", "body": self._answer(line["body"])}
                outputs.append({"id": f"r-{custom_id}", "custom_id": custom_id, "response": response, "error": None})
        batch["status"] = "expired" if expired else "completed"
        batch["request_counts"] = {
            "total": len(outputs) + len(errors),
            "completed": len(outputs),
            "failed": len(errors),
        }
        for kind, rows in (("output", outputs), ("error", errors)):
            if rows:
                file_id = f"file-{batch['id']}-{kind}"
                self.files[file_id] = b"\n".join(json.dumps(row).encode() for row in rows)
                batch[f"{kind}_file_id"] = file_id

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        tool = body["tools"][0]
        arguments = fill(tool["parameters"], self._rng)
        usage = {"input_tokens": self.usage[0] + len(self.answers), "output_tokens": self.usage[1]}
        self.answers.append({"prompt_tokens": usage["input_tokens"], "completion_tokens": usage["output_tokens"]})
        return {
            "id": f"resp_{len(self.answers)}",
            "object": "response",
            "created_at": 1_795_000_001,
            "model": body["model"],
            "status": "completed",
            "output": [
                {
                    "type": "function_call",
                    "id": f"fc_{len(self.answers)}",
                    "call_id": f"call_{len(self.answers)}",
                    "name": tool["name"],
                    "arguments": json.dumps(arguments),
                    "status": "completed",
                }
            ],
            "parallel_tool_calls": False,
            "tool_choice": "required",
            "tools": body["tools"],
            "usage": {
                **usage,
                "total_tokens": sum(usage.values()),
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }


def _file(file_id: str, size: int, purpose: str) -> dict[str, Any]:
    return {
        "id": file_id,
        "object": "file",
        "bytes": size,
        "created_at": 1_795_000_000,
        "filename": "batch.jsonl",
        "purpose": purpose,
        "status": "processed",
    }
