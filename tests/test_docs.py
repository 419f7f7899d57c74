"""The troubleshooting page lists every error message the code can raise."""

from __future__ import annotations

import ast
from pathlib import Path

import service_ambitions.core.errors

ROOT = Path(__file__).resolve().parent.parent
ERRORS = set(service_ambitions.core.errors.__all__)


def raised_messages() -> list[tuple[str, str]]:
    """(where, longest fixed fragment) of the message of every domain error the package creates."""
    found = []
    for path in sorted((ROOT / "service_ambitions").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            call = node
            name = call.func.id if isinstance(call.func, ast.Name) else None
            if isinstance(call.func, ast.IfExp):  # (ProviderRefused if refused else ProviderError)(...)
                name = "ProviderError"
            if name not in ERRORS or not call.args:
                continue
            message = call.args[0]
            parts = [message.value] if isinstance(message, ast.Constant) else []
            if isinstance(message, ast.JoinedStr):
                parts = [v.value for v in message.values if isinstance(v, ast.Constant)]
            fragments = [p.strip(" :;,.(") for p in parts if isinstance(p, str)]
            longest = max(fragments, key=len, default="")
            if len(longest) >= 8:
                found.append((f"{path.relative_to(ROOT)}:{node.lineno}", longest))
    return found


def test_every_raised_message_is_in_the_troubleshooting_page() -> None:
    page = " ".join((ROOT / "docs" / "troubleshooting.md").read_text().split())
    messages = raised_messages()
    assert len(messages) > 30  # the scan found them
    missing = [(where, text) for where, text in messages if " ".join(text.split()) not in page]
    assert missing == []
