"""The offline model: deterministic, schema-valid synthetic answers with no network and no key.

It is a pydantic-ai ``FunctionModel`` that fills the output tool's JSON Schema with text
built from the prompt: the service's name and key words, the plateau, the role, the
features and catalogue rows it was shown. Catalogue ids are only ever taken from the
table rows of the prompt (``| id | name | description |``) and feature ids from the
bullets that start with an id in backticks, the shapes ``prompting.py`` renders. The same
prompt and seed always give the same answer. Its content is placeholder text, and every
record it writes is marked ``meta.synthetic``.
"""

from __future__ import annotations

import functools
import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic_ai.messages import (
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    UserPromptPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.usage import RequestUsage

from service_ambitions.core.models import CMMI_LABELS
from service_ambitions.llm.names import OFFLINE_MODEL_NAME

__all__ = ["OFFLINE_MODEL_NAME", "offline_answer", "offline_model"]


_SERVICE = re.compile(r"^Service: (.+?)(?: \([^()]*\))?$|Features of (.+?) at plateau", re.MULTILINE)
_DESCRIPTION = re.compile(r"^Description: (.+)$", re.MULTILINE)
_PLATEAU = re.compile(r"[Pp]lateau (\d+)[:,] ([^\n(]+)")
_CATALOGUE_ROW = re.compile(r"^\| ([^|\s]+) \| ([^|]+) \| ([^|]*) \|$", re.MULTILINE)
_FEATURE_BULLET = re.compile(r"^- `([^`]+)` (.+)$", re.MULTILINE)
_WORD = re.compile(r"[A-Za-z][A-Za-z-]{4,}")
_STOPWORDS = frozenset(
    [
        "about",
        "after",
        "again",
        "their",
        "there",
        "these",
        "those",
        "which",
        "while",
        "where",
        "would",
        "could",
        "should",
        "other",
        "every",
        "under",
        "within",
        "without",
        "using",
        "through",
        "service",
        "services",
        "staff",
        "student",
        "students",
        "people",
        "online",
    ]
)

_ADJECTIVES = {
    1: ("Basic", "Standard", "Shared", "Published"),
    2: ("Self-service", "Tracked", "Unified", "Guided"),
    3: ("Personalised", "Data-informed", "Assisted", "Piloted"),
    4: ("Proactive", "Automated", "Joined-up", "Real-time"),
    5: ("Predictive", "Co-designed", "Partner-led", "Adaptive"),
}
_NOUNS = (
    "request form",
    "status tracker",
    "dashboard",
    "notifications",
    "assistant",
    "workspace",
    "workflow",
    "insights",
    "booking",
    "checklist",
    "planner",
    "hub",
)
_VALUES = (
    "see at a glance where they stand with",
    "get a reply the same day about",
    "book and change appointments for",
    "are told before a deadline about",
    "find the right person first time for",
    "give feedback in two clicks on",
    "keep one record, shared with consent, of",
    "use an accessible self-service route for",
    "get advice matched to their situation on",
    "track every step, without chasing, of",
)
_OUTCOMES = (
    "re-key nothing between systems",
    "answer fewer chasing calls",
    "see the queue and who owns each case",
    "spot problems early from weekly figures",
    "spend their time on the cases that need judgement",
    "follow one documented procedure",
    "close cases faster with fewer hand-offs",
    "know which data they may use, and why",
)
_EVIDENCE = {
    1: "depends on a few people who know how, and results vary",
    2: "is planned and tracked by the service team, though each team works its own way",
    3: "follows one documented way shared across departments, with clear owners",
    4: "is measured against targets each term, so problems show early",
    5: "is improved from its measures and customer feedback, with changes tested first",
}
_CHANGES = {
    1: "runs mainly on email, forms and the knowledge of experienced staff",
    2: "offers its common transactions online with clear status for every request",
    3: "pilots personalised, data-informed support with selected groups",
    4: "anticipates needs and automates routine decisions across departments",
    5: "is co-designed with customers and partners and improves continuously",
}


def offline_model() -> FunctionModel:
    """A fresh offline model; the seed comes from the run's model settings."""
    return FunctionModel(_answer_now, model_name=OFFLINE_MODEL_NAME)


async def _answer_now(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    # Async, so pydantic-ai runs it on the event loop: a sync function would go to a worker
    # thread for each call, which costs more than writing the answer.
    return offline_answer(messages, info)


def offline_answer(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
    """The offline model's answer to ``messages`` (what it returns, as a plain function for tests)."""
    prompt = _last_prompt(messages)
    seed = (info.model_settings or {}).get("seed") or 0
    # The instructions count too: another prompt set gives other (still synthetic) answers,
    # so `eval` on the offline model shows two prompt sets apart.
    rng = random.Random(hashlib.sha256(f"{seed}\0{info.instructions or ''}\0{prompt}".encode()).hexdigest())  # nosec B311  # synthetic answers seeded to be reproducible, not a secret
    facts = _Facts.read(prompt, info.instructions or "")
    if not info.output_tools:
        return ModelResponse(parts=[TextPart(_sentence(facts, rng, facts.plateau_level))])
    tool = info.output_tools[0]
    writer = _Writer(tool.parameters_json_schema, facts, rng)
    call = ToolCallPart(tool.name, writer.object_for(tool.parameters_json_schema))
    return ModelResponse(parts=[call], usage=_usage(messages, info, call))


def _usage(messages: Sequence[ModelMessage], info: AgentInfo, call: ToolCallPart) -> RequestUsage:
    """Tokens as a provider would report them, estimated at four characters a token.

    Reported with the answer, as a provider does: otherwise pydantic-ai tokenises the whole
    conversation again for every call, which costs more than writing the answer.
    """
    sent = sum(len(str(part.content)) for message in messages for part in message.parts if hasattr(part, "content"))
    sent += len(info.instructions or "") + sum(len(str(tool.parameters_json_schema)) for tool in info.output_tools)
    return RequestUsage(input_tokens=max(1, sent // 4), output_tokens=max(1, len(call.args_as_json_str()) // 4))


def _last_prompt(messages: Sequence[ModelMessage]) -> str:
    for message in reversed(messages):
        if isinstance(message, ModelRequest):
            for part in message.parts:
                if isinstance(part, UserPromptPart) and isinstance(part.content, str):
                    return part.content
    return ""


@dataclass
class _Facts:
    """What the offline model understood of the prompt."""

    service_name: str
    keywords: list[str]
    plateau_level: int
    plateau_name: str
    catalogue: list[tuple[str, str, frozenset[str]]] = field(default_factory=list)
    """(id, text, words) of every catalogue row shown."""
    features: list[tuple[str, str]] = field(default_factory=list)
    """(feature id, text) of every feature bullet shown."""

    @classmethod
    def read(cls, prompt: str, instructions: str = "") -> _Facts:
        """What a request says: service, plateau and features from its prompt.

        Catalogue rows come from the prompt and from the instructions, where a stage's
        shared part puts them.
        """
        service = _SERVICE.search(prompt)
        description = _DESCRIPTION.search(prompt)
        plateau = _PLATEAU.search(prompt)
        name = next((group.strip() for group in service.groups() if group), "") if service else ""
        name = name or "The service"
        words = _words(f"{name} {description.group(1) if description else ''}")
        return cls(
            service_name=name,
            keywords=words or _words(prompt[-400:]) or ["service"],
            plateau_level=min(int(plateau.group(1)), 5) if plateau else 1,
            plateau_name=plateau.group(2).strip() if plateau else "current",
            catalogue=[
                (m.group(1), m.group(2), _word_set(m.group(2), m.group(3)))
                for text in (instructions, prompt)
                for m in _CATALOGUE_ROW.finditer(text)
                if m.group(1) not in {"id", "---"}
            ],
            features=[(m.group(1), m.group(2)) for m in _FEATURE_BULLET.finditer(prompt)],
        )


@functools.lru_cache(maxsize=16384)
def _word_set(name: str, description: str) -> frozenset[str]:
    """A catalogue row's words: every mapping call of a catalogue shows the same rows again."""
    return frozenset(_words(f"{name} {description}"))


def _words(text: str) -> list[str]:
    seen: dict[str, None] = {}
    for word in _WORD.findall(text):
        lowered = word.lower()
        if lowered not in _STOPWORDS and len(lowered) <= 24:  # an id is not a word to write with
            seen.setdefault(lowered)
    return list(seen)


def _sentence(facts: _Facts, rng: random.Random, level: int) -> str:
    return (
        f"At the {facts.plateau_name} plateau, {facts.service_name} {_CHANGES[max(1, min(level, 5))]}, "
        f"with particular attention to {rng.choice(facts.keywords)}."
    )


@dataclass
class _Context:
    """Where in the output the writer is: which role, plateau and feature the value is for."""

    role: str = "customers"
    level: int = 1
    plateau_name: str = ""
    feature: tuple[str, str] | None = None
    item: tuple[str, str, frozenset[str]] | None = None
    taken_names: set[str] = field(default_factory=set)

    def about(
        self, feature: tuple[str, str] | None = None, item: tuple[str, str, frozenset[str]] | None = None
    ) -> _Context:
        """This context for one feature or item (``dataclasses.replace`` cost more than writing the value)."""
        return _Context(
            self.role, self.level, self.plateau_name, feature or self.feature, item or self.item, self.taken_names
        )


class _Writer:
    """Fills a JSON Schema with plausible values, guided by property names and the prompt."""

    def __init__(self, root: dict[str, Any], facts: _Facts, rng: random.Random) -> None:
        self._defs: dict[str, Any] = root.get("$defs", {})
        self._facts = facts
        self._rng = rng

    def object_for(self, schema: dict[str, Any]) -> dict[str, Any]:
        context = _Context(level=self._facts.plateau_level, plateau_name=self._facts.plateau_name)
        value = self._value(schema, "", context)
        return value if isinstance(value, dict) else {}

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            schema = self._defs[schema["$ref"].rsplit("/", 1)[-1]]
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [self._resolve(option) for option in schema[key]]
                return next((o for o in options if o.get("type") != "null"), options[0])
        return schema

    def _value(self, raw: dict[str, Any], name: str, context: _Context) -> Any:
        schema = self._resolve(raw)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self._rng.choice(schema["enum"])
        kind = schema.get("type")
        description = raw.get("description") or schema.get("description", "")
        if kind == "object":
            return self._object(schema, context)
        if kind == "array":
            return self._array(schema, name, description, context)
        if kind in ("integer", "number", "boolean", "null"):
            return self._scalar(kind, schema, name, context)
        return self._string(name, description, context)

    def _scalar(self, kind: str, schema: dict[str, Any], name: str, context: _Context) -> Any:
        if kind == "integer":
            return self._integer(schema, name, context)
        if kind == "number":
            return round(self._rng.uniform(schema.get("minimum", 0.0), schema.get("maximum", 1.0)), 2)
        return self._rng.random() < 0.3 if kind == "boolean" else None

    def _object(self, schema: dict[str, Any], context: _Context) -> dict[str, Any]:
        properties: dict[str, Any] = schema.get("properties", {})
        result = {name: self._value(sub, name, context) for name, sub in properties.items()}
        score = result.get("score")
        if isinstance(score, dict) and isinstance(result.get("name"), str):
            level = score.get("level")
            if isinstance(level, int) and level in CMMI_LABELS and "justification" in score:
                # Evidence for the level, in the rubric's terms, about this feature (names are unique).
                score["justification"] = f"The {result['name'].lower()} {_EVIDENCE[level]}."
        return result

    def _array(self, schema: dict[str, Any], name: str, description: str, context: _Context) -> list[Any]:
        items = self._resolve(schema.get("items", {}))
        properties = items.get("properties", {})
        low = schema.get("minItems", 0)
        high = schema.get("maxItems", max(low, 3))
        if "feature_id" in properties:
            return [self._value(items, "", context.about(feature=feature)) for feature in self._facts.features]
        if "item" in properties:
            chosen = self._relevant_items(context, low, high)
            return [self._value(items, "", context.about(item=item)) for item in chosen]
        role = _role_from(description) or context.role
        count = min(max(low, min(high, low + 1)), high)
        child = _Context(role, context.level, context.plateau_name, taken_names=set())
        return [self._value(items, name, child) for _ in range(count)]

    def _relevant_items(self, context: _Context, low: int, high: int) -> list[tuple[str, str, frozenset[str]]]:
        if not self._facts.catalogue:
            return []
        # Not through _word_set's cache: a feature's words are asked once, and kept they would
        # grow the cache with every service of a long run.
        topic = frozenset(_words(context.feature[1] if context.feature else " ".join(self._facts.keywords)))
        ranked = sorted(
            self._facts.catalogue,
            key=lambda row: (-len(topic & row[2]), self._rng.random()),
        )
        return ranked[: min(max(low, self._rng.choice((1, 2))), high)]

    def _integer(self, schema: dict[str, Any], name: str, context: _Context) -> int:
        low, high = int(schema.get("minimum", 1)), int(schema.get("maximum", 5))
        if name == "level":
            # A feature's own maturity: it rises with the plateaus but is not the plateau's number.
            base = 1 + (context.level - 1) * 0.75
            return max(low, min(high, round(base + self._rng.choice((-1, 0, 0, 1)))))
        return self._rng.randint(low, high)

    def _string(self, name: str, description: str, context: _Context) -> str:
        facts, rng = self._facts, self._rng
        if name == "feature_id" and context.feature:
            return context.feature[0]
        if name == "item" and context.item:
            return context.item[0]
        plateau = _PLATEAU.search(description)
        if plateau:
            level = int(plateau.group(1))
            return _paragraph(facts, rng, level, plateau.group(2).strip())
        if name == "name":
            return self._feature_name(context)
        if name == "description":
            keyword = rng.choice(facts.keywords)
            return f"{context.role} {rng.choice(_VALUES)} {keyword}; staff {rng.choice(_OUTCOMES)}."
        if context.item:
            return f"relies on {context.item[1].split(' ', 3)[0].lower()} data for {facts.service_name}"
        return f"{facts.service_name}: {rng.choice(facts.keywords)}"

    def _feature_name(self, context: _Context) -> str:
        adjectives = _ADJECTIVES[max(1, min(context.level, 5))]
        for _ in range(20):
            candidate = (
                f"{self._rng.choice(adjectives)} {self._rng.choice(self._facts.keywords)} {self._rng.choice(_NOUNS)}"
            )
            if candidate not in context.taken_names:
                break
        context.taken_names.add(candidate)
        return candidate


def _role_from(description: str) -> str | None:
    """Schema descriptions of per-role lists read 'Features for <role name> ...'."""
    match = re.match(r"Features for ([^.(]+)", description)
    return match.group(1).strip() if match else None


def _paragraph(facts: _Facts, rng: random.Random, level: int, plateau_name: str) -> str:
    first, second = rng.sample(facts.keywords, 2) if len(facts.keywords) > 1 else (facts.keywords[0],) * 2
    return (
        f"{facts.service_name} {_CHANGES[max(1, min(level, 5))]}. "
        f"Customers notice the difference most in {first} and {second}. "
        f"This is synthetic text from the offline model, for trying the tool."
    )
