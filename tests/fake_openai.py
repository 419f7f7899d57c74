"""A fake OpenAI chat-completions endpoint for respx: real wire format, answers built from the request.

It reads the output tool's JSON Schema from the request body and answers with arguments
that satisfy it: descriptions per plateau, features per role, and mappings that use the
catalogue ids in the prompt (plus, if asked, one id that does not exist).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import httpx

BASE_URL = "https://llm.test/v1"
COMPLETIONS = f"{BASE_URL}/chat/completions"

_ROW = re.compile(r"^\| ([^|\s]+) \| ", re.MULTILINE)
_FEATURE = re.compile(r"^- `([^`]+)` ", re.MULTILINE)


@dataclass
class FakeOpenAI:
    """Answers chat-completions requests and remembers them."""

    invent_id: str | None = None
    usage: tuple[int, int] | int = (100, 20)
    """Prompt and completion tokens reported for every answer; a bare int is the completion
    tokens, with prompt tokens counted like a tokenizer would (about 4 characters each)."""
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[httpx.Headers] = field(default_factory=list)
    prefix_cache: bool = False
    """Report cached prompt tokens as OpenAI's automatic prompt caching does: the longest
    leading run (tools, then messages) an earlier request began with too, from 1,024
    tokens in steps of 128 (with ``usage`` an int, so prompt tokens are counted)."""
    cached_tokens: list[int] = field(default_factory=list)
    """The cached tokens reported for each answer, in order."""
    _seen: list[str] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        self.headers.append(request.headers)
        tool = body["tools"][0]["function"]
        prompt = next(m["content"] for m in body["messages"] if m["role"] == "user")
        # A stage's shared instructions (the system message) hold the catalogue table.
        every = "\n".join(str(m["content"]) for m in body["messages"] if m["role"] in ("system", "user"))
        arguments = self._arguments(tool["parameters"], prompt, every)
        usage = self.usage
        if isinstance(usage, int):
            usage = (len(json.dumps(body["messages"]) + json.dumps(body["tools"])) // 4, usage)
        reply = completion(tool["name"], arguments, body["model"], usage=usage)
        if self.prefix_cache:
            text = json.dumps(body["tools"]) + json.dumps(body["messages"])
            cached = _cached_tokens(text, self._seen)
            self._seen.append(text)
            self.cached_tokens.append(cached)
            reply["usage"]["prompt_tokens_details"] = {"cached_tokens": cached}
        return httpx.Response(200, json=reply)

    def _arguments(self, schema: dict[str, Any], prompt: str, every: str) -> dict[str, Any]:
        properties: dict[str, Any] = schema["properties"]
        if "mappings" in properties:
            return {"mappings": [self._mapping(feature_id, every) for feature_id in _FEATURE.findall(prompt)]}
        first = next(iter(properties.values()))
        if first.get("type") == "integer":  # the judge's scores: each 1-5, and a comment
            return {
                name: 4 if sub.get("type") == "integer" else "Name the owner of each feature."
                for name, sub in properties.items()
            }
        if first.get("type") == "array":
            return {role: [_feature(role, n) for n in range(first.get("minItems", 1))] for role in properties}
        return {plateau: f"The service at the {plateau} plateau." for plateau in properties}

    def _mapping(self, feature_id: str, prompt: str) -> dict[str, Any]:
        ids = [row for row in _ROW.findall(prompt) if row not in {"id", "---"}]
        items = [{"item": ids[0]}] + ([{"item": self.invent_id}] if self.invent_id else [])
        if "APP-" in ids[0]:
            for item in items:
                item["facets"] = {"contribution": "core", "integration_notes": "reads the student record"}
        return {"feature_id": feature_id, "items": items}


def _feature(role: str, n: int) -> dict[str, Any]:
    return {
        "name": f"{role} feature {n}",
        "description": f"Lets {role} do thing {n}.",
        "score": {"level": 2, "justification": "Works the same way every time."},
    }


def _cached_tokens(text: str, earlier: list[str]) -> int:
    shared = max((len(_common_prefix(text, other)) for other in earlier), default=0) // 4
    return 0 if shared < 1024 else 1024 + (shared - 1024) // 128 * 128


def _common_prefix(a: str, b: str) -> str:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return a[:n]


def completion(
    tool_name: str, arguments: dict[str, Any], model: str = "gpt-4o-mini", usage: tuple[int, int] = (100, 20)
) -> dict[str, Any]:
    """An OpenAI chat.completion body whose only choice calls ``tool_name``."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": tool_name, "arguments": json.dumps(arguments)},
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }
