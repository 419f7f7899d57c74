"""Where this installation came from: what an install hint must name to add a package to it."""

from __future__ import annotations

import json
import shlex
from importlib.metadata import PackageNotFoundError, distribution
from urllib.parse import unquote, urlparse

__all__ = ["install_source"]


def install_source() -> str:
    """What ``uv tool install`` (or ``pipx install``) was given: the checkout's path, or the package name.

    There is no package index entry for this tool yet, so a hint that names
    ``service-ambitions`` would fail; an installation from a clone records its folder in
    ``direct_url.json`` (PEP 610), and that is what the hint must repeat.
    """
    try:
        recorded = distribution("service-ambitions").read_text("direct_url.json")
    except PackageNotFoundError:
        return "service-ambitions"
    if recorded:
        try:
            url = str(json.loads(recorded).get("url", ""))
        except (ValueError, AttributeError):
            url = ""
        parsed = urlparse(url)
        if parsed.scheme == "file" and parsed.path:
            return shlex.quote(unquote(parsed.path))
        if url:
            return shlex.quote(url)
    return "service-ambitions"
