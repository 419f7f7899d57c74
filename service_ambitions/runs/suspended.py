"""Calls waiting on provider batches: what a run leaves for the run that collects them.

In batch mode a call's request goes into a provider batch, and the call waits — for
minutes or a day. Each time a call's request is submitted (or checked again), the
conversation that ends in its *suspended* response (which names the batch and the
request's id in it) is appended here and forced to disk before the run goes on, so a
``kill -9`` one moment later loses no submitted request: the run that resumes reads the
conversation back and checks the same batch instead of submitting again. A line without
messages says the call got its answer (which is in the cache from then on).

Each line is written (``write``) before the call waits, so a killed process loses none;
it is forced to disk (``fsync``) at most every 0.2 s, and when the run ends, so a power
cut loses at most that much.

The file is ``suspended.jsonl`` in the run's directory: one JSON line per change, the
last line of a call's key winning; a torn last line (a crash mid-write) is skipped.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import IO

from pydantic import BaseModel, ValidationError

from service_ambitions.core.errors import OutputError
from service_ambitions.core.secrets import scrub

__all__ = ["SUSPENDED_FILE", "SuspendedCall", "SuspendedStore"]

SUSPENDED_FILE = "suspended.jsonl"
_SYNC_EVERY_S = 0.2


class SuspendedCall(BaseModel):
    """One call's state in a batch: its conversation so far, or (``messages`` None) collected."""

    key: str
    """The call's cache key: the same call in a later run has the same one."""
    stage: str | None = None
    batch_id: str | None = None
    messages: str | None = None
    """The call's messages as pydantic-ai's JSON, ending in the suspended response."""
    failures: int = 0
    """Answers of this call that failed validation before (each was sent back)."""


class SuspendedStore:
    """The run's ``suspended.jsonl``: read once when opened, appended to as calls wait and finish."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / SUSPENDED_FILE
        self._waiting: dict[str, SuspendedCall] = dict(_read(self.path))
        self._handle: IO[str] | None = None
        self._synced = 0.0

    def waiting(self, key: str) -> SuspendedCall | None:
        """The call of ``key`` if an earlier run left it waiting on a batch."""
        return self._waiting.get(key)

    def __len__(self) -> int:
        return len(self._waiting)

    def wait(self, key: str, stage: str, batch_id: str | None, messages: bytes, failures: int) -> None:
        """Record that the call of ``key`` waits on a batch: written before this returns.

        Raises:
            OutputError: the line cannot be written (a full disk): the request was
                submitted, and a run that cannot say so must not go on pretending.
        """
        call = SuspendedCall(key=key, stage=stage, batch_id=batch_id, messages=messages.decode(), failures=failures)
        self._waiting[key] = call
        self._write(call, durable=True)

    def collected(self, key: str) -> None:
        """Record that the call of ``key`` has its answer; no fsync: losing it costs one cache lookup."""
        if self._waiting.pop(key, None) is not None:
            self._write(SuspendedCall(key=key), durable=False)

    def __enter__(self) -> SuspendedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Flush what was written to disk and close the file."""
        if self._handle is not None:
            with contextlib.suppress(OSError):
                self._handle.flush()
                os.fsync(self._handle.fileno())
                self._handle.close()
            self._handle = None

    def _write(self, call: SuspendedCall, *, durable: bool) -> None:
        line = scrub(call.model_dump_json(exclude_defaults=True)) + "\n"
        try:
            if self._handle is None:
                descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                self._handle = os.fdopen(descriptor, "a", encoding="utf-8")
            self._handle.write(line)
            self._handle.flush()
            if durable and (now := time.monotonic()) - self._synced >= _SYNC_EVERY_S:
                os.fsync(self._handle.fileno())
                self._synced = now
        except OSError as exc:
            raise OutputError(
                f"cannot record a submitted batch request in {self.path}: {exc.strerror or exc}",
                hint="free some space and resume the run: requests recorded so far are collected, not sent again",
            ) from exc


def _read(path: Path) -> list[tuple[str, SuspendedCall]]:
    """The calls still waiting, from every line of ``path`` (later lines win)."""
    waiting: dict[str, SuspendedCall] = {}
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                try:
                    call = SuspendedCall.model_validate_json(line)
                except ValidationError:
                    continue  # a torn last line: that submission is not recorded
                if call.messages is None:
                    waiting.pop(call.key, None)
                else:
                    waiting[call.key] = call
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise OutputError(f"cannot read the waiting batch requests in {path}: {exc.strerror or exc}") from exc
    return list(waiting.items())
