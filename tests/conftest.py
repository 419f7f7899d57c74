"""Shared fixtures: an isolated working directory and environment, and an unreachable network."""

from __future__ import annotations

# respx patches httpx/httpcore; pydantic-ai and openai speak httpx2. Aliasing must happen
# before anything imports httpx (pydantic_ai does), hence first, and respx's own plugin
# is disabled in pyproject.toml and re-enabled here, after the alias.
import httpx2

httpx2.alias_httpx()
pytest_plugins = ["respx.plugin"]

import json  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pydantic_ai.models  # noqa: E402
import pytest  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

_PROVIDER_VARIABLES = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY", "OLLAMA_BASE_URL", "LOGFIRE_TOKEN")
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test runs in its own directory and cache, with no other SA_* or provider variables and no model calls."""
    for name in list(os.environ):
        if name.startswith("SA_") or name in _PROVIDER_VARIABLES or name.upper() in _PROXY_VARIABLES:
            monkeypatch.delenv(name)
    monkeypatch.setenv("SA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SA_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", False)
    return


@pytest.fixture
def openai_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The OpenAI provider pointed at respx's fake host (``fake_openai.BASE_URL``), with a test key.

    Model requests are allowed because respx answers them: nothing leaves the machine.
    """
    from .fake_openai import BASE_URL

    monkeypatch.setattr(pydantic_ai.models, "ALLOW_MODEL_REQUESTS", True)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789abcdefghij")  # pragma: allowlist secret
    monkeypatch.setenv("OPENAI_BASE_URL", BASE_URL)


@pytest.fixture
def services_file(tmp_path: Path) -> Path:
    """Three small, valid services."""
    path = tmp_path / "services.jsonl"
    rows = [
        {"service_id": f"svc-{i}", "name": f"Service {i}", "description": f"Handles student {topic} requests."}
        for i, topic in enumerate(("enrolment", "timetable", "library"), start=1)
    ]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment for running the CLI in a child process.

    Bytecode writing is allowed there even where the machine forbids it: otherwise every
    child compiles pydantic-ai and its dependencies from source again (seconds each).
    """
    env = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


def read_jsonl(path: Path) -> list[dict[str, object]]:
    """Every line of a JSONL file, parsed."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def run_dirs(runs: Path) -> list[Path]:
    """The run directories under a runs directory (not its hidden ``.locks``), oldest id first."""
    return sorted(path for path in runs.iterdir() if not path.name.startswith("."))


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Install entry points of the ``service_ambitions.providers`` group for one test (``name=module:attr``)."""
    from importlib.metadata import EntryPoint

    from service_ambitions.llm import plugins as plugin_module

    def install(**points: str) -> None:
        found = [EntryPoint(name, value, plugin_module.ENTRY_POINT_GROUP) for name, value in points.items()]
        monkeypatch.setattr(
            plugin_module, "entry_points", lambda group: found if group == plugin_module.ENTRY_POINT_GROUP else []
        )

    return install


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--refresh-golden",
        action="store_true",
        help="write tests/golden/ afresh from this run (see tests/test_golden.py)",
    )
