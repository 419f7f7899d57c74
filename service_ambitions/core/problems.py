"""Validation errors as one readable line: each distinct problem once.

Pydantic reports a problem once per list item and once per branch of a union, so a
service whose 24 jobs each give ``role`` in a shape not accepted would be described by
72 errors. Users need one sentence per problem: list positions become ``[*]``, the
branches of a union become "expected A or B, got C", and a repeated problem says how
many times it occurred.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

__all__ = ["describe_errors", "value_kind"]

# Union branches appear in an error's location as type tags, not field names.
_SCALAR_TAGS = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false", "none": "null"}
_GENERIC_TAG = re.compile(r"^(list|dict|tuple|set|literal|function-\w+|union|nullable|json-or-python|lax-or-strict)\[")


def describe_errors(exc: ValidationError, *, limit: int = 5) -> str:
    """``where: what`` for each distinct problem, ``;``-separated, at most ``limit`` of them."""
    counts: dict[str, int] = {}
    for line in _lines("", [(tuple(e["loc"]), e) for e in exc.errors(include_url=False)]):
        counts[line] = counts.get(line, 0) + 1
    lines = [line + (f" ({count} times)" if count > 1 else "") for line, count in counts.items()]
    more = f"; and {len(lines) - limit} more problems" if len(lines) > limit else ""
    return "; ".join(lines[:limit]) + more


def _lines(prefix: str, errors: list[tuple[tuple[int | str, ...], ErrorDetails]]) -> list[str]:
    """One line per error, in order; a union's branch errors become one line per location.

    When the value's own kind matches a branch (an object tried as a model), the
    problems inside that branch are what the user needs to see, not the union.
    """
    lines: list[str] = []
    # One union per concrete place (list positions kept), so each item's problem counts once.
    unions: dict[tuple[int | str, ...], tuple[str, list[tuple[str, tuple[int | str, ...], ErrorDetails]]]] = {}
    for loc, error in errors:
        where, branch, rest = _split(prefix, loc)
        if branch is None:
            lines.append(f"{where or 'record'}: {error['msg']}")
            continue
        place = loc[: len(loc) - len(rest) - 1]
        if place not in unions:
            lines.append(f"\0{len(unions)}")  # placeholder, keeps the order
            unions[place] = (where, [])
        unions[place][1].append((branch, rest, error))
    places = list(unions.values())
    out: list[str] = []
    for line in lines:
        if not line.startswith("\0"):
            out.append(line)
            continue
        where, branches = places[int(line[1:])]
        got = next((value_kind(e["input"]) for _, rest, e in branches if not rest), None)
        inner = [(rest, e) for branch, rest, e in branches if rest and _branch_name(branch) == got]
        if inner:
            out += _lines(where, inner)
            continue
        expected = list(dict.fromkeys(_branch_name(branch) for branch, _, _ in branches))
        out.append(f"{where or 'record'}: expected {' or '.join(expected)}" + (f", got {got}" if got else ""))
    return out


def value_kind(value: Any) -> str:
    """What a JSON value is, in words: 'a list', 'text', 'an object'…."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _split(prefix: str, loc: tuple[int | str, ...]) -> tuple[str, str | None, tuple[int | str, ...]]:
    """The location as ``a[*].b`` up to the first union branch tag, the tag, and what follows it."""
    where = prefix
    for index, part in enumerate(loc):
        if isinstance(part, int):
            where += "[*]"
        elif _is_tag(part):
            return where, part, loc[index + 1 :]
        else:
            where += f".{part}" if where else part
    return where, None, ()


def _is_tag(part: str) -> bool:
    return part in _SCALAR_TAGS or bool(_GENERIC_TAG.match(part)) or part[:1].isupper()


def _branch_name(tag: str) -> str:
    if tag in _SCALAR_TAGS:
        return _SCALAR_TAGS[tag]
    if tag.startswith("list["):
        return "a list"
    if tag.startswith("dict[") or tag[:1].isupper():
        return "an object"
    if tag.startswith("literal["):
        return "one of " + tag[len("literal[") : -1]
    return tag
