"""Limits on how hard a run presses on providers: calls in flight, request rate, and pauses.

- :class:`AdaptiveLimiter` caps the requests in flight. After a 429 it halves its limit
  (at most once per cool-down), then grows back by one for each run of successful calls,
  so the whole run slows down instead of every task hammering the provider. It plugs
  into pydantic-ai's ``ConcurrencyLimitedModel``.
- :class:`RateLimiter` keeps requests and tokens per minute under the provider's quota,
  with aiolimiter's leaky buckets.
- :class:`CircuitBreaker` pauses a provider after N consecutive failed calls: new calls
  wait a cool-down, then a single probe decides whether calls resume.

Time comes from an injected clock and sleep, so tests need no real waiting.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiolimiter import AsyncLimiter
from pydantic_ai.concurrency import AbstractConcurrencyLimiter

from service_ambitions.core.telemetry import slot_wait

__all__ = ["AdaptiveLimiter", "CircuitBreaker", "RateLimiter"]


class AdaptiveLimiter(AbstractConcurrencyLimiter):
    """A cap on requests in flight that backs off after rate limits and recovers gradually."""

    def __init__(self, maximum: int, *, cooldown_s: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.limit = maximum
        self.in_flight = 0
        self._cooldown_s = cooldown_s
        self._clock = clock
        self._last_cut = -float("inf")
        self._successes = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    async def acquire(self, source: str) -> None:
        """Wait for a slot under the current limit, first come first served."""
        if self.in_flight < self.limit and not self._waiters:
            self.in_flight += 1
            return
        granted = asyncio.get_running_loop().create_future()
        self._waiters.append(granted)
        began = time.perf_counter()
        try:
            await granted
            if (waiting := slot_wait.get()) is not None:
                waiting.seconds += time.perf_counter() - began
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self.release()  # the slot came just as we were cancelled: pass it on
            elif granted in self._waiters:
                # A release between our cancellation and this handler may already have
                # popped the cancelled future (``_wake`` skips it): then it is gone.
                self._waiters.remove(granted)
            raise

    def release(self) -> None:
        """Free a slot and hand it to the next waiter, if the limit allows."""
        self.in_flight -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self.in_flight < self.limit:
            granted = self._waiters.popleft()
            if not granted.done():
                self.in_flight += 1
                granted.set_result(None)

    def slow_down(self) -> bool:
        """Halve the limit after a rate limit, once per cool-down. True if it changed."""
        now = self._clock()
        if now - self._last_cut < self._cooldown_s or self.limit == 1:
            return False
        self._last_cut = now
        self.limit = max(1, self.limit // 2)
        self._successes = 0
        return True

    def succeeded(self) -> None:
        """Count a successful call; a full round of them at the current limit earns one more slot."""
        if self.limit >= self.maximum:
            return
        self._successes += 1
        if self._successes >= self.limit:
            self._successes = 0
            self.limit += 1
            self._wake()


class RateLimiter:
    """Requests and tokens per minute, each optional.

    Requests are spaced evenly (a bucket of one, refilled every 60/R seconds) rather than
    let through in a burst of R: providers count over sliding windows, and a burst at the
    start would meet 429s a minute later. Tokens use ten-second buckets.
    """

    def __init__(self, *, requests_per_minute: int | None, tokens_per_minute: int | None) -> None:
        self._requests = AsyncLimiter(1, 60 / requests_per_minute) if requests_per_minute else None
        self._token_capacity = max(1, (tokens_per_minute or 0) // 6)
        self._tokens = AsyncLimiter(self._token_capacity, 10) if tokens_per_minute else None

    async def wait(self, estimated_tokens: int) -> None:
        """Wait until one more request of about ``estimated_tokens`` fits both rates."""
        if self._requests is not None:
            await self._requests.acquire()
        if self._tokens is not None:
            await self._tokens.acquire(min(estimated_tokens, self._token_capacity))


@dataclass
class _Circuit:
    failures: int = 0
    open_until: float | None = None
    probing: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)


class CircuitBreaker:
    """Pauses calls to a provider that keeps failing, and lets one probe test its return.

    Args:
        threshold: consecutive failed calls that open the circuit.
        cooldown_s: how long new calls wait once it is open.
        is_failure: which exceptions say the provider is unwell; others neither count nor reset.
        on_change: told ``(provider, paused_for_s)`` on opening and ``(provider, 0)`` on closing.
    """

    def __init__(
        self,
        *,
        threshold: int,
        cooldown_s: float,
        is_failure: Callable[[BaseException], bool] = lambda exc: True,
        on_change: Callable[[str, float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._threshold = threshold
        self._cooldown_s = cooldown_s
        self._is_failure = is_failure
        self._on_change = on_change or (lambda provider, pause: None)
        self._clock = clock
        self._sleep = sleep
        self._circuits: dict[str, _Circuit] = {}

    def is_open(self, provider: str) -> bool:
        """True while calls to ``provider`` are paused."""
        circuit = self._circuits.get(provider)
        return circuit is not None and circuit.open_until is not None

    @asynccontextmanager
    async def call(self, provider: str) -> AsyncIterator[None]:
        """Wrap one call: wait while the provider is paused, then record how the call went.

        Exceptions that ``is_failure`` rejects (a bad answer, a rejected request) leave the
        count as it was: they say nothing about the provider's health.
        """
        circuit = self._circuits.setdefault(provider, _Circuit())
        probe = await self._admit(circuit)
        try:
            yield
        except asyncio.CancelledError:
            if probe:
                circuit.probing = False
                circuit.changed.set()
            raise
        except Exception as exc:
            if self._is_failure(exc):
                self._failed(provider, circuit, probe)
            elif probe:
                # The provider answered: that is all a probe needs to know.
                self._succeeded(provider, circuit, probe)
            raise
        else:
            self._succeeded(provider, circuit, probe)

    async def _admit(self, circuit: _Circuit) -> bool:
        """Wait until a call may go; True when this call is the probe."""
        while circuit.open_until is not None:
            remaining = circuit.open_until - self._clock()
            if remaining > 0:
                await self._sleep(remaining)
                continue
            if not circuit.probing:
                circuit.probing = True
                return True
            circuit.changed.clear()
            await circuit.changed.wait()
        return False

    def _failed(self, provider: str, circuit: _Circuit, probe: bool) -> None:
        circuit.failures += 1
        if probe or (circuit.open_until is None and circuit.failures >= self._threshold):
            circuit.open_until = self._clock() + self._cooldown_s
            circuit.probing = False
            circuit.changed.set()
            self._on_change(provider, self._cooldown_s)

    def _succeeded(self, provider: str, circuit: _Circuit, probe: bool) -> None:
        was_open = circuit.open_until is not None
        circuit.failures = 0
        if probe or was_open:
            circuit.open_until = None
            circuit.probing = False
            circuit.changed.set()
            self._on_change(provider, 0.0)
