"""Jobs in their own process: what the web face starts, stops and continues.

A run started from a page is an ordinary run: it is the CLI's own ``run`` (or ``map``),
started as a child process in the workspace, so it takes the same output lock, writes the
same journal, honours the same budget and is seen by ``runs list``, ``report`` and
``--resume`` like any other. A process of its own also means a run outlives a page, a
crash in one run cannot take the server down, and stopping it is the signal the CLI
already handles (SIGTERM: the journal says ``terminated``, ``--resume`` continues).

Everything a page can set is a field of :class:`JobForm`; it becomes ``--flag=value``
words (never a shell line), and its files are names inside the workspace
(:func:`workspace_file`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess  # nosec B404  # the tool's own CLI, as a list of words, never a shell
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from service_ambitions.config.cache_mode import CacheMode
from service_ambitions.config.settings import Overrides
from service_ambitions.core.errors import EXIT_INTERRUPTED, ConfigError, InputError

if TYPE_CHECKING:
    from service_ambitions.runs.journal import Manifest

__all__ = ["JobForm", "JobLauncher", "Launched", "continuing", "stop_run", "workspace_file"]

_Word = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\s-]\S*$")]
"""A model name or catalogue: one word that cannot be read as a flag."""


def workspace_file(workspace: Path, name: str) -> Path:
    """``name`` as a path inside ``workspace``; refused when it would lead outside it.

    No absolute paths, no ``..``, no leading ``-``, and nothing whose real path (after
    symbolic links) leaves the workspace.

    Raises:
        InputError: the name leads outside the workspace, or is not a file name.
    """
    root = workspace.resolve()
    candidate = Path(name)
    if not name or name.startswith("-") or candidate.is_absolute() or ".." in candidate.parts or "\x00" in name:
        raise InputError(f"{name!r} is not a file in the workspace", hint="give a name relative to the workspace")
    resolved = (root / candidate).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise InputError(f"{name!r} leads outside the workspace", hint="only files inside the workspace are served")
    return resolved


class JobForm(BaseModel):
    """A run or a map as a page asks for it: the settings a CLI user has, by the CLI's names."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    command: Literal["run", "map"] = "run"
    input: str = Field(min_length=1, max_length=500)
    """The services JSONL (``run``) or evolutions JSONL (``map``), relative to the workspace."""
    output: str = Field(min_length=1, max_length=500)
    """Where the evolutions go, relative to the workspace (an earlier file there is kept as ``.prev``)."""
    model: _Word | None = None
    descriptions_model: _Word | None = None
    features_model: _Word | None = None
    mapping_model: _Word | None = None
    seed: int | None = None
    concurrency: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_in_flight: Annotated[int, Field(ge=1, le=10_000)] | None = None
    max_services: Annotated[int, Field(ge=1)] | None = None
    max_cost: Annotated[Decimal, Field(ge=0, max_digits=12)] | None = None
    warn_cost: Annotated[str, StringConstraints(pattern=r"^\d+(\.\d+)?%?$")] | None = None
    batch: bool = False
    cache_mode: CacheMode | None = None
    strict: bool | None = None
    """Fail a service whose mapping names catalogue items that do not exist (None: the settings say)."""
    allow_unknown_prices: bool = False
    """With a budget: run models without a known price (their calls count as $0)."""
    workers: Annotated[int, Field(ge=1, le=64)] | None = None
    """``run`` only: processes that run the services."""
    catalogues: list[_Word] | None = None
    """``map`` only: the catalogues to map again (default: every one)."""

    def overrides(self) -> Overrides:
        """The form's settings as the CLI's flags would give them (for a dry run in this process)."""
        from service_ambitions.config.settings import BatchOverrides

        stages = {"descriptions": self.descriptions_model, "features": self.features_model}
        stages["mapping"] = self.mapping_model
        chosen = {stage: name for stage, name in stages.items() if name}
        return Overrides(
            model=self.model,
            models=chosen or None,
            seed=self.seed,
            concurrency=self.concurrency,
            max_in_flight=self.max_in_flight,
            max_cost=self.max_cost,
            warn_cost=self.warn_cost,
            cache_mode=self.cache_mode,
            strict=self.strict,
            allow_unknown_prices=self.allow_unknown_prices or None,
            workers=self.workers,
            batch=BatchOverrides(enabled=True) if self.batch else None,
        )

    def words(self, workspace: Path) -> list[str]:
        """The command's words after the program name, each flag as ``--name=value``.

        Raises:
            InputError: the input or output is not a file inside the workspace.
        """
        source = workspace_file(workspace, self.input)
        target = workspace_file(workspace, self.output)
        if not source.is_file():
            raise InputError(f"{self.input} is not a file in the workspace", hint="upload it, or pick one listed")
        root = workspace.resolve()
        words = [self.command, f"./{source.relative_to(root)}", f"--output=./{target.relative_to(root)}"]
        switches = {"batch", "strict", "allow_unknown_prices"}
        values = self.model_dump(
            mode="json", exclude={"command", "input", "output", "catalogues", *switches}, exclude_none=True
        )
        if self.command == "map":
            values = {key: value for key, value in values.items() if key not in _RUN_ONLY}
        words += [f"--{key.replace('_', '-')}={value}" for key, value in values.items()]
        words += [f"--catalogue={name}" for name in self.catalogues or () if self.command == "map"]
        if self.strict is not None:
            words.append("--strict" if self.strict else "--no-strict")
        words += ["--allow-unknown-prices"] if self.allow_unknown_prices and self.command == "run" else []
        return [*words, "--batch"] if self.batch else words


_RUN_ONLY = frozenset({"descriptions_model", "features_model", "mapping_model", "max_services", "workers"})


class Launched(BaseModel):
    """A job started: its run's id and its process."""

    run_id: str
    pid: int


@dataclass
class _Child:
    process: subprocess.Popen[bytes]
    said: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    run_id: str | None = None
    known: threading.Event = field(default_factory=threading.Event)


class JobLauncher:
    """Starts jobs as child processes in a workspace, and stops the ones it started.

    ``program`` is how the tool is started (default: this Python running the package), so
    tests can point it elsewhere. The children get the server's environment (provider keys
    included) and nothing from the request but the form's words.
    """

    def __init__(self, workspace: Path, *, config: Path | None = None, program: list[str] | None = None) -> None:
        self.workspace = workspace.resolve()
        self._config = config
        self._program = program or [sys.executable, "-m", "service_ambitions"]
        self._children: dict[str, _Child] = {}
        self._lock = threading.Lock()
        self.stopped: list[str] = []
        """Runs :meth:`stop_all` stopped (to be continued with ``--resume``)."""

    def start(self, form: JobForm, *, wait_s: float = 60.0) -> Launched:
        """Start ``form``'s job; return once its run has an id (it is journaled from then on).

        Raises:
            InputError: a file of the form is outside the workspace or missing.
            ConfigError: the job ended before its run began (a bad setting, a missing key…), with what it said.
        """
        return self._spawn(form.words(self.workspace), wait_s)

    def resume(self, command_line: list[str], run_id: str, *, wait_s: float = 60.0) -> Launched:
        """Continue run ``run_id`` with the words that started it (from its manifest) and ``--resume``.

        Raises:
            ConfigError: the run was not started by ``run`` or ``map``.
            ConfigError: the continuation ended before it began (the input changed, say).
        """
        words = continuing(command_line, run_id)
        if words is None:
            raise ConfigError(f"run {run_id} cannot be continued from here", hint="continue it with the CLI")
        return self._spawn(words, wait_s)

    def cancel(self, run_id: str) -> bool:
        """Stop run ``run_id`` as SIGTERM stops the CLI (journaled as terminated); False if not ours or ended."""
        with self._lock:
            child = self._children.get(run_id)
        if child is None or child.process.poll() is not None:
            return False
        child.process.send_signal(signal.SIGTERM)
        return True

    def running(self) -> set[str]:
        """The runs this launcher started whose process is still running."""
        with self._lock:
            return {run_id for run_id, child in self._children.items() if child.process.poll() is None}

    def stop_all(self, *, wait_s: float = 10.0) -> list[str]:
        """Stop every job still running (the server is stopping) and wait for them to record it; their run ids."""
        with self._lock:
            children = {run_id: c for run_id, c in self._children.items() if c.process.poll() is None}
        for child in children.values():
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + wait_s
        for child in children.values():
            try:
                child.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
        # A run that ended on its own just before the signal is not one this stopped.
        stopped = [run_id for run_id, child in children.items() if child.process.returncode in (EXIT_INTERRUPTED, -9)]
        self.stopped += stopped
        return stopped

    def _spawn(self, words: list[str], wait_s: float) -> Launched:
        head = [*self._program, *(["--config", str(self._config)] if self._config else [])]
        process = subprocess.Popen(  # nosec B603  # our own program and the form's checked words
            [*head, *words, "--json-logs"],
            cwd=self.workspace,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C at the server's terminal is the server's to pass on
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
        )
        child = _Child(process)
        threading.Thread(target=self._listen, args=(child,), name=f"job-{process.pid}", daemon=True).start()
        deadline = time.monotonic() + wait_s
        while not child.known.wait(0.05):
            if process.poll() is not None or time.monotonic() > deadline:
                child.known.wait(1.0)  # what it said before it ended is still being read
                break
        if child.run_id is None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
            said = [line for line in child.said if line.strip()]
            message = next((line for line in said if line.startswith("error")), said[-1] if said else "no output")
            hint = next((line.removeprefix("hint:").strip() for line in said if line.startswith("hint")), None)
            raise ConfigError(f"the job did not start: {message.removeprefix('error:').strip()}", hint=hint)
        with self._lock:
            self._children[child.run_id] = child
        return Launched(run_id=child.run_id, pid=process.pid)

    @staticmethod
    def _listen(child: _Child) -> None:
        """Read the child's event lines until it ends: the first names its run; the rest are drained."""
        assert child.process.stderr is not None  # nosec B101  # Popen was given stderr=PIPE
        for raw in child.process.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if child.run_id is None:
                child.run_id = _run_id_of(line)
                if child.run_id is not None:
                    child.known.set()
                    continue
            if not line.startswith("{"):
                child.said.append(line)
        child.process.stderr.close()
        child.process.wait()
        child.known.set()


_ONE_SHOT = frozenset({"--dry-run", "--json"})


def continuing(command_line: Sequence[str], run_id: str) -> list[str] | None:
    """The words that continue run ``run_id``: those that started it, less any earlier resume, and ``--resume``.

    ``command_line`` is the manifest's (the program's name first, then global options, the
    command, its arguments). None when it was no ``run`` or ``map``, or only planned one.
    """
    words: list[str] = []
    skip = False
    for word in command_line[1:]:
        if skip or word in {"--resume", "--force"} or word.startswith("--run-id="):
            skip = False
            continue
        skip = word == "--run-id"  # its value is the next word
        if not skip:
            words.append(word)
    command = next((word for word in words if word in {"run", "map"}), None)
    if command is None or any(word in _ONE_SHOT for word in words):
        return None
    return [*words, "--resume", f"--run-id={run_id}"]


def stop_run(manifest: Manifest, runs_dir: Path) -> bool:
    """Stop a run started elsewhere on this machine (the CLI, CI, another server) as SIGTERM stops it.

    Only the process that holds the run's output lock *and* is the one its manifest names
    is signalled — never a number that might by now be some other process. False when the
    run is not running here, or that process is not this user's to stop.
    """
    import socket

    from service_ambitions.runs.journal import RunStatus
    from service_ambitions.runs.lock import lock_holder

    if manifest.status is not RunStatus.RUNNING or manifest.host != socket.gethostname() or manifest.pid is None:
        return False
    if lock_holder(Path(manifest.output_path), runs_dir) != manifest.pid:
        return False
    try:
        os.kill(manifest.pid, signal.SIGTERM)
    except OSError:  # gone this instant, or another user's
        return False
    return True


def _run_id_of(line: str) -> str | None:
    if not line.startswith("{"):
        return None
    try:
        found = json.loads(line).get("run_id")
    except (ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None
