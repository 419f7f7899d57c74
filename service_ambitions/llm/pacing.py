"""Pacing requests by the rate-limit headers providers send, before they answer 429.

Providers announce their limits on every answer: OpenAI and compatible servers with
``x-ratelimit-limit-requests`` / ``-remaining-requests`` / ``-reset-requests`` (and the
same for tokens), Anthropic with ``anthropic-ratelimit-requests-limit`` / ``-remaining`` /
``-reset``; a 429 says how long to wait in ``retry-after``. A run that configured no limit
learns it from the first answer and from then on, per host:

- spaces requests evenly, one every window ÷ limit (providers count over a sliding
  minute or refill continuously; a burst meets 429s a minute later);
- never has more requests (or estimated tokens) in its own trailing window than the limit,
  counting the requests sent before the limit was known, plus a margin for the time a
  request takes to reach the provider;
- waits out a ``retry-after``, or the reset time once the provider says nothing remains.

The pacer sits in the HTTP client (a request hook waits, a response hook reads), so every
request is paced — output retries included — and nothing above the transport changes.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from service_ambitions.core.events import EventSink, LimitsLearned, LimitWaited

__all__ = ["HeaderPacer", "PaceEvents", "PaceObserver", "pace_observer", "parse_duration"]


class PaceObserver(Protocol):
    """Told what the pacer learns and how long it holds requests back (the gateway turns it into events)."""

    def learned(self, host: str, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        """A host announced new limits."""

    def waited(self, host: str, seconds: float) -> None:
        """A request to ``host`` waited for room under its limits."""


pace_observer: ContextVar[PaceObserver | None] = ContextVar("pace_observer", default=None)
"""Set by the gateway for the duration of a call, as ``transport.retry_observer`` is."""


@dataclass(frozen=True)
class PaceEvents:
    """A :class:`PaceObserver` that tells the run what the pacer learns and waits, as events."""

    emit: EventSink

    def learned(self, host: str, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        """A host announced new limits: ``limits_learned``."""
        self.emit(
            LimitsLearned(provider=host, requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute)
        )

    def waited(self, host: str, seconds: float) -> None:
        """A request waited for room: ``limit_waited``."""
        self.emit(LimitWaited(provider=host, wait_s=round(seconds, 3)))


WINDOW_S = 60.0
"""Providers state requests and tokens per minute."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_MAX_TOKENS = re.compile(rb'"max_(?:completion_|output_)?tokens"\s*:\s*(\d+)')


def parse_duration(text: str) -> float | None:
    """Seconds in a reset header: ``1s``, ``6m0s``, ``20ms``, ``0.5``, or an RFC 3339 time (Anthropic)."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if parts and "".join(number + unit for number, unit in parts) == text:
        scale = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
        return sum(float(number) * scale[unit] for number, unit in parts)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(0.0, moment.timestamp() - time.time())


def _number(headers: Mapping[str, str], *names: str) -> int | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            try:
                return int(float(value))
            except ValueError:
                return None
    return None


def _seconds(headers: Mapping[str, str], *names: str) -> float | None:
    for name in names:
        value = headers.get(name)
        if value is not None:
            return parse_duration(value)
    return None


@dataclass
class _Host:
    """What one host announced, and what this run sent it in the trailing window."""

    request_limit: int | None = None
    token_limit: int | None = None
    blocked_until: float = 0.0
    next_at: float = 0.0
    sent: deque[tuple[float, int]] = field(default_factory=deque)
    """(time, estimated tokens) of each request sent in the trailing window."""
    tokens_sent: int = 0
    turns: dict[asyncio.AbstractEventLoop, asyncio.Lock] = field(default_factory=dict)
    """Requests wait their turn here: only the first in line sleeps until the host has room, so
    waiting costs one timer, not a wake-up of every waiting request at every free slot. One
    lock per event loop: a client (and its pacer) may serve one run after another."""

    def turn(self) -> asyncio.Lock:
        """The lock of the running event loop."""
        loop = asyncio.get_running_loop()
        lock = self.turns.get(loop)
        if lock is None:
            self.turns.clear()  # a loop that is done holds nobody in line
            lock = self.turns[loop] = asyncio.Lock()
        return lock


class HeaderPacer:
    """Paces requests to each host by what its rate-limit headers announced."""

    def __init__(
        self,
        *,
        margin_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._margin_s = margin_s
        self._clock = clock
        self._sleep = sleep
        self._hosts: dict[str, _Host] = {}

    async def before(self, host: str, body: bytes) -> float:
        """Wait until a request to ``host`` fits what it announced; returns the seconds waited."""
        pace = self._hosts.setdefault(host, _Host())
        tokens = _estimated_tokens(body)
        waited = 0.0
        turn = pace.turn()
        if self._delay(pace, tokens) > 0 or turn.locked():
            started = self._clock()
            async with turn:
                while (delay := self._delay(pace, tokens)) > 0:
                    await self._sleep(delay)
                self._sent(pace, tokens)
            waited = self._clock() - started
        else:
            self._sent(pace, tokens)
        if waited and (observer := pace_observer.get()) is not None:
            observer.waited(host, waited)
        return waited

    def _sent(self, pace: _Host, tokens: int) -> None:
        now = self._clock()
        pace.sent.append((now, tokens))
        pace.tokens_sent += tokens
        if pace.request_limit:
            pace.next_at = max(now, pace.next_at) + WINDOW_S / pace.request_limit

    def after(self, host: str, status: int, headers: Mapping[str, str]) -> None:
        """Learn from an answer's headers (any status)."""
        pace = self._hosts.setdefault(host, _Host())
        now = self._clock()
        request_limit = _number(headers, "x-ratelimit-limit-requests", "anthropic-ratelimit-requests-limit")
        token_limit = _number(headers, "x-ratelimit-limit-tokens", "anthropic-ratelimit-tokens-limit")
        known = (pace.request_limit, pace.token_limit)
        if request_limit:
            pace.request_limit = request_limit
        if token_limit:
            pace.token_limit = token_limit
        if (pace.request_limit, pace.token_limit) != known and (observer := pace_observer.get()) is not None:
            observer.learned(host, pace.request_limit, pace.token_limit)
        for kind in ("requests", "tokens"):
            remaining = _number(headers, f"x-ratelimit-remaining-{kind}", f"anthropic-ratelimit-{kind}-remaining")
            reset = _seconds(headers, f"x-ratelimit-reset-{kind}", f"anthropic-ratelimit-{kind}-reset")
            if remaining == 0 and reset:
                pace.blocked_until = max(pace.blocked_until, now + reset)
        if status == 429:
            wait = _seconds(headers, "retry-after-ms")
            wait = wait / 1000 if wait is not None else _seconds(headers, "retry-after")
            if wait:
                pace.blocked_until = max(pace.blocked_until, now + wait)

    def _delay(self, pace: _Host, tokens: int) -> float:
        """Seconds until one more request of ``tokens`` may go; 0 when it may go now."""
        now = self._clock()
        horizon = WINDOW_S + self._margin_s
        while pace.sent and pace.sent[0][0] <= now - horizon:
            pace.tokens_sent -= pace.sent.popleft()[1]
        delay = pace.blocked_until - now
        if pace.request_limit:
            delay = max(delay, pace.next_at - now)
            if len(pace.sent) >= pace.request_limit:
                delay = max(delay, pace.sent[0][0] + horizon - now)
        if pace.token_limit and pace.sent and pace.tokens_sent + tokens > pace.token_limit:
            # Wait until enough of the window's tokens have left it.
            excess, freed = pace.tokens_sent + tokens - pace.token_limit, 0
            for sent_at, count in pace.sent:
                freed += count
                if freed >= excess:
                    delay = max(delay, sent_at + horizon - now)
                    break
        return delay


def _estimated_tokens(body: bytes) -> int:
    """What a request counts against a token limit: its text (about four bytes a token) and its longest answer."""
    found = _MAX_TOKENS.search(body)
    return len(body) // 4 + (int(found.group(1)) if found else 0)
