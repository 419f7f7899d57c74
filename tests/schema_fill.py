"""A fake provider that answers with *any* instance of the JSON Schema it is sent.

Providers with constrained decoding (strict structured outputs) guarantee schema-valid
answers and nothing more: levels, enum values, list lengths, optional fields, union
branches and strings are whatever the schema allows. This filler picks each of them at
random (seeded), so a test can show that every schema-valid answer is a valid answer.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from typing import Any

import httpx

from .fake_openai import completion


def fill(schema: dict[str, Any], rng: random.Random, root: dict[str, Any] | None = None) -> Any:  # noqa: C901
    """A random instance of ``schema`` (the subset pydantic and pydantic-ai emit)."""
    root = root or schema
    if "$ref" in schema:
        name = schema["$ref"].split("/")[-1]
        return fill(root if schema["$ref"] == "#" else root["$defs"][name], rng, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return fill(rng.choice(schema[key]), rng, root)
    if "allOf" in schema:
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            merged.update(part)
        return fill(merged, rng, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return rng.choice(schema["enum"])
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = rng.choice(kind)
    if kind == "object":
        required = set(schema.get("required", []))
        return {
            name: fill(sub, rng, root)
            for name, sub in schema.get("properties", {}).items()
            if name in required or rng.random() < 0.5
        }
    if kind == "array":
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", low + 3)
        return [fill(schema.get("items", {}), rng, root) for _ in range(rng.randint(low, high))]
    if kind == "integer":
        return rng.randint(schema.get("minimum", -5), schema.get("maximum", 50))
    if kind == "number":
        return rng.uniform(schema.get("minimum", -5.0), schema.get("maximum", 50.0))
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    low = schema.get("minLength", 0)
    high = schema.get("maxLength", max(low, 12))
    return "".join(rng.choice(string.ascii_letters + " -[]<>{}") for _ in range(rng.randint(low, min(high, 40))))


@dataclass
class SchemaFiller:
    """A chat-completions endpoint (respx side effect) answering random schema instances.

    Every answer's usage is remembered, so tests can compare a report with what the
    provider billed.
    """

    seed: int = 0
    usage: tuple[int, int] = (1_000, 200)
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    """The usage block of every 200 response sent."""

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.requests.append(body)
        tool = body["tools"][0]["function"]
        arguments = fill(tool["parameters"], self._rng)
        usage = (self.usage[0] + len(self.requests), self.usage[1] + self._rng.randint(0, 50))
        answer = completion(tool["name"], arguments, body["model"], usage=usage)
        self.answers.append(answer["usage"])
        return httpx.Response(200, json=answer)
