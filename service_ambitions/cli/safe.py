"""Text from input files, models, caches and run journals, made safe for the terminal.

Anything a user's file, a provider or a cache row says is data. Shown on a terminal it
must neither act as Rich markup (``svc-x[/red]`` would crash a print, ``[link=…]`` would
make a link) nor as a control sequence (ESC, BEL, CR, C1 controls and bidirectional
overrides can rewrite what the screen shows). Every string of that kind goes through
one of these functions on its way to a console.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

__all__ = ["cell", "json_safe", "markup_safe", "plain"]

_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# JSON already escapes C0 controls inside strings; these others it writes raw.
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def plain(value: object) -> str:
    """``value`` as text with every control character written as an escape (``\\x1b``)."""
    return _CONTROLS.sub(_escaped, str(value))


def markup_safe(value: object) -> str:
    """``value`` for use inside a markup string: controls escaped, markup taken literally."""
    return escape(plain(value))


def json_safe(document: str) -> str:
    """JSON text with the controls JSON leaves raw written as ``\\uXXXX`` escapes (still the same JSON)."""
    return _JSON_RAW_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", document)


def cell(value: object) -> Text:
    """``value`` as a table cell: plain text, never markup, controls escaped."""
    return Text(plain(value))
