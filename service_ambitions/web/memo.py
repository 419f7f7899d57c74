"""Answers worth keeping while their files stay the same: a roadmap, findings, a finished run's figures.

Checking 1,000 roadmaps takes seconds (``check`` does the same work); a page opened twice
should not. Each answer is kept under the files it was made from, by path, size and
modification time, so any change to them — a run appending, a file replaced — makes a
new one. A few answers are kept, the least recently used are dropped.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

__all__ = ["FileMemo"]

_T = TypeVar("_T")
_Key = tuple[str, tuple[tuple[str, int, int], ...]]


class FileMemo:
    """The last few answers, each kept while the files it was made from are unchanged."""

    def __init__(self, size: int = 8) -> None:
        self._size = size
        self._answers: OrderedDict[_Key, object] = OrderedDict()
        self._lock = threading.Lock()

    def peek(self, kind: str, files: Sequence[Path], of: type[_T]) -> _T | None:
        """The answer of ``kind`` for ``files`` if one of type ``of`` is kept; None otherwise (nothing is made)."""
        key = (kind, tuple(_stamp(path) for path in files))
        with self._lock:
            answer = self._answers.get(key)
        return answer if isinstance(answer, of) else None

    def put(self, kind: str, files: Sequence[Path], answer: object) -> None:
        """Keep ``answer`` as the answer of ``kind`` for ``files`` (made along with another)."""
        key = (kind, tuple(_stamp(path) for path in files))
        with self._lock:
            self._answers[key] = answer
            self._answers.move_to_end(key)
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)

    def get(self, kind: str, files: Sequence[Path], make: Callable[[], _T]) -> _T:
        """The answer of ``kind`` for ``files``: kept, or made by ``make`` (outside the lock) and kept."""
        key = (kind, tuple(_stamp(path) for path in files))
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]  # type: ignore[return-value]  # stored under this kind by make
        answer = make()
        self.put(kind, files, answer)
        return answer


def _stamp(path: Path) -> tuple[str, int, int]:
    try:
        stat = path.stat()
    except OSError:
        return (str(path), -1, -1)
    return (str(path), stat.st_size, stat.st_mtime_ns)
