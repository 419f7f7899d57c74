"""Keeping secrets out of everything the tool writes or prints.

Keys live in the environment and are never stored by this tool, but a provider can echo
one back (some do in a 401 body), and that text then travels in an error message into
events, the manifest, the quarantine file and the terminal. :func:`scrub` replaces the
values of the environment's secret variables and the common shapes of keys and tokens
before any of that happens.
"""

from __future__ import annotations

import os
import re

__all__ = ["REDACTED", "holds_secret", "scrub"]

REDACTED = "[redacted]"

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.IGNORECASE)
_SHAPES = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:sk|pk|rk)-[A-Za-z0-9_\-]{20,}"  # OpenAI-style and similar keys
    r"|(?<=Bearer )[A-Za-z0-9._~+/\-]{8,}=*"  # bearer tokens
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google API keys
    r"|(?<=://)[^/\s:@]+:[^/\s@]+(?=@)",  # credentials in URLs (user:password@host)
)
_MIN_SECRET_LENGTH = 8
"""Shorter values are not treated as secrets: replacing them would mangle ordinary text."""


def holds_secret(name: str) -> bool:
    """Whether an environment variable's name says it holds a secret (a key, token, password…)."""
    return _SECRET_NAME.search(name) is not None


_secret_names: dict[bytes, bool] = {}
"""Whether a variable's name says it holds a secret, decided once per name (every event line is scrubbed)."""


def _secret_values() -> list[str]:
    """The values of the environment's secret-named variables, read afresh (variables change in tests)."""
    # The raw bytes mapping: going through os.environ decodes every name and value on each
    # line written, which cost more than the rest of writing an event.
    raw: dict[bytes, bytes] | None = getattr(os.environ, "_data", None)
    if raw is None:  # pragma: no cover - CPython keeps os.environ's data in _data
        return [v for n, v in os.environ.items() if holds_secret(n) and len(v) >= _MIN_SECRET_LENGTH]
    values = []
    for name, value in raw.items():
        secret = _secret_names.get(name)
        if secret is None:
            secret = _secret_names[name] = holds_secret(os.fsdecode(name))
        if secret and len(value) >= _MIN_SECRET_LENGTH:
            values.append(os.fsdecode(value))
    return values


def scrub(text: str) -> str:
    """``text`` with secret values from the environment and key-shaped strings replaced."""
    for value in _secret_values():
        if value in text:
            text = text.replace(value, REDACTED)
    return _SHAPES.sub(REDACTED, text)
