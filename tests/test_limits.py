"""Limits: the adaptive cap on requests in flight and the circuit breaker, on a fake clock."""

from __future__ import annotations

import asyncio

import pytest

from service_ambitions.llm.limits import AdaptiveLimiter, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)


async def settle() -> None:
    for _ in range(20):
        await asyncio.sleep(0)


async def test_limiter_caps_in_flight_and_hands_slots_on_in_order() -> None:
    limiter = AdaptiveLimiter(2)
    order: list[int] = []

    async def worker(n: int, gate: asyncio.Event) -> None:
        await limiter.acquire("test")
        order.append(n)
        await gate.wait()
        limiter.release()

    gate = asyncio.Event()
    tasks = [asyncio.create_task(worker(n, gate)) for n in range(5)]
    await settle()
    assert (limiter.in_flight, order) == (2, [0, 1])
    gate.set()
    await asyncio.gather(*tasks)
    assert order == [0, 1, 2, 3, 4]
    assert limiter.in_flight == 0


async def test_limiter_halves_after_rate_limits_and_recovers_gradually() -> None:
    clock = Clock()
    limiter = AdaptiveLimiter(8, cooldown_s=10, clock=clock)
    assert limiter.slow_down() is True
    assert limiter.limit == 4
    assert limiter.slow_down() is False  # within the cool-down: one cut per burst of 429s
    clock.now = 11
    assert limiter.slow_down() is True
    assert limiter.limit == 2
    for _ in range(2):
        limiter.succeeded()
    assert limiter.limit == 3  # a full round of successes at the current limit earns one slot
    for _ in range(3 + 4 + 5 + 6 + 7):
        limiter.succeeded()
    assert limiter.limit == 8  # never above the configured maximum
    limiter.succeeded()
    assert limiter.limit == 8


async def test_a_cancelled_waiter_gives_its_place_up() -> None:
    limiter = AdaptiveLimiter(1)
    await limiter.acquire("first")
    waiting = asyncio.create_task(limiter.acquire("second"))
    await settle()
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    limiter.release()
    assert limiter.in_flight == 0
    await limiter.acquire("third")
    assert limiter.in_flight == 1


async def test_a_waiter_cancelled_while_a_release_pops_it_leaves_the_limiter_whole() -> None:
    # Ctrl-C under load: the release runs between the waiter's cancellation and its handler,
    # and pops the cancelled future first (this raised "ValueError: <Future cancelled> is not
    # in deque").
    limiter = AdaptiveLimiter(1)
    await limiter.acquire("first")
    waiting = [asyncio.create_task(limiter.acquire(f"w{i}")) for i in range(3)]
    await settle()
    waiting[0].cancel()
    waiting[1].cancel()
    limiter.release()  # pops both cancelled futures, grants the third
    for task in waiting[:2]:
        with pytest.raises(asyncio.CancelledError):
            await task
    await waiting[2]
    assert limiter.in_flight == 1
    limiter.release()
    assert limiter.in_flight == 0
    await limiter.acquire("again")
    assert limiter.in_flight == 1


class Unwell(Exception):
    pass


class Rejected(Exception):
    pass


async def fail(breaker: CircuitBreaker, error: Exception | None = None) -> None:
    error = error or Unwell()
    with pytest.raises(type(error)):
        async with breaker.call("p"):
            raise error


async def test_breaker_pauses_after_consecutive_failures_then_one_probe_decides() -> None:
    clock = Clock()
    changes: list[tuple[str, float]] = []
    breaker = CircuitBreaker(
        threshold=3,
        cooldown_s=30,
        is_failure=lambda exc: isinstance(exc, Unwell),
        on_change=lambda provider, pause: changes.append((provider, pause)),
        clock=clock,
        sleep=clock.sleep,
    )
    await fail(breaker)
    await fail(breaker, Rejected())  # says nothing about health: neither counts nor resets
    await fail(breaker)
    assert not breaker.is_open("p")
    await fail(breaker)
    assert breaker.is_open("p")
    assert changes == [("p", 30)]

    await fail(breaker)  # the probe, after the cool-down, fails: paused again
    assert clock.sleeps == [30]
    assert changes == [("p", 30), ("p", 30)]

    async with breaker.call("p"):  # next probe succeeds
        pass
    assert clock.sleeps == [30, 30]
    assert not breaker.is_open("p")
    assert changes[-1] == ("p", 0.0)
    async with breaker.call("p"):  # and calls flow without waiting
        pass
    assert clock.sleeps == [30, 30]


async def test_only_one_probe_goes_while_others_wait() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=1, cooldown_s=5, clock=clock, sleep=clock.sleep)
    await fail(breaker)
    probe_started = asyncio.Event()
    release_probe = asyncio.Event()
    entered: list[str] = []

    async def call(name: str) -> None:
        async with breaker.call("p"):
            entered.append(name)
            if name == "probe":
                probe_started.set()
                await release_probe.wait()

    probe = asyncio.create_task(call("probe"))
    await probe_started.wait()
    others = [asyncio.create_task(call(f"other-{n}")) for n in range(3)]
    await settle()
    assert entered == ["probe"]
    release_probe.set()
    await asyncio.gather(probe, *others)
    assert sorted(entered[1:]) == ["other-0", "other-1", "other-2"]
