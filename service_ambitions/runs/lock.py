"""One writer per output: an exclusive lock held for a run's whole life."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock; outputs are not locked there
    fcntl = None  # type: ignore[assignment]

from service_ambitions.core.errors import OutputError
from service_ambitions.runs.journal import journal_error

__all__ = ["lock_holder", "output_lock"]


@contextmanager
def output_lock(output: Path, runs_dir: Path) -> Iterator[None]:
    """Hold the one-writer lock of ``output`` while the block runs.

    The lock is an advisory ``flock`` on a file under ``runs_dir/.locks`` named by the
    output's real path, so two runs on one output (under any spelling of its path) never
    write it at once. The kernel releases it when its process ends, however it ends, so a
    killed run's lock is simply taken over. Standard output (``-``) is not locked; neither
    is anything on a platform without ``flock``.

    Raises:
        OutputError: another live run holds the lock.
    """
    if str(output) == "-" or fcntl is None:
        yield
        return
    locks = runs_dir / ".locks"
    try:
        # The runs directory holds every run's settings and events: owner-only, like its runs.
        runs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        locks.mkdir(mode=0o700, exist_ok=True)
        descriptor = os.open(_lock_file(output, runs_dir), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise journal_error(locks, exc) from exc
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 64, 0).decode(errors="replace").strip() or "another process"
            raise OutputError(
                f"{output} is being written by a run that is still going (process {holder})",
                hint="wait for it to finish or stop it; two runs never write one output",
            ) from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def _lock_file(output: Path, runs_dir: Path) -> Path:
    name = hashlib.sha256(str(output.resolve()).encode()).hexdigest()[:32]
    return runs_dir / ".locks" / f"{name}.lock"


def lock_holder(output: Path, runs_dir: Path) -> int | None:
    """The process holding ``output``'s lock now (a run writing it), or None when no process does.

    Asked without waiting: a free lock is taken and let go at once. Only a live holder
    keeps the lock, so the number answered is a running process, not a stale one.
    """
    if fcntl is None:
        return None
    try:
        descriptor = os.open(_lock_file(output, runs_dir), os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            text = os.pread(descriptor, 64, 0).decode(errors="replace").strip()
            return int(text) if text.isdigit() else None
        return None  # nobody holds it
    finally:
        os.close(descriptor)  # releases what was taken
