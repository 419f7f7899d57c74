"""The command a user gave, rebuilt from what the command line parsed: for hints that continue a job.

Only parameters given on the command line are kept (defaults, ``SA_*`` variables and the
settings file are the user's environment and still apply when the hint is pasted), each
in its long form and shell-quoted, so a printed ``continue with …`` works as pasted.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from enum import Enum
from typing import Any

import typer

__all__ = ["given_command", "resume_hint"]

_PROGRAM = "service-ambitions"


def given_command(ctx: typer.Context) -> tuple[str, ...]:
    """``service-ambitions [global options] COMMAND… ARGS…``, as given (long option names)."""
    chain: list[typer.Context] = []
    current: Any = ctx
    while current is not None:
        chain.append(current)
        current = current.parent
    words = [_PROGRAM]
    for context in reversed(chain):
        if context.parent is not None:
            words.append(context.info_name or "")
        words += _given(context)
    return tuple(words)


def _given(ctx: typer.Context) -> list[str]:
    options: list[str] = []
    arguments: list[str] = []
    for param in ctx.command.params:
        name = param.name or ""
        source = ctx.get_parameter_source(name)
        if source is None or source.name != "COMMANDLINE":
            continue
        value = ctx.params.get(name)
        if param.param_type_name == "argument":
            arguments += [_text(item) for item in (value if isinstance(value, list | tuple) else [value])]
            continue
        longest = max(param.opts, key=len)
        if getattr(param, "is_flag", False):
            secondary = getattr(param, "secondary_opts", [])
            if value or not secondary:
                options.append(longest)
            else:
                options.append(max(secondary, key=len))
            continue
        items: list[Any] = list(value or ()) if getattr(param, "multiple", False) else [value]
        for item in items:
            options += [longest, _text(item)]
    return options + arguments


def _text(value: Any) -> str:
    return value.value if isinstance(value, Enum) else str(value)


def resume_hint(command: Sequence[str]) -> str:
    """The shell command that continues ``command``: the same words with ``--resume``, quoted."""
    words = list(command)
    if "--resume" not in words:
        words.append("--resume")
    return shlex.join(words)
