"""Pacing by rate-limit headers: learned limits, even spacing, the trailing window, waits the provider asks for."""

from __future__ import annotations

import httpx
import pytest
import respx

from service_ambitions.core.events import Event, LimitsLearned, LimitWaited
from service_ambitions.llm.pacing import HeaderPacer, PaceEvents, pace_observer, parse_duration
from service_ambitions.llm.transport import RetryPolicy, retrying_client


class Clock:
    """Time that moves only when the pacer sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1s", 1.0), ("6m0s", 360.0), ("20ms", 0.02), ("1m30.5s", 90.5), ("0.25", 0.25), ("soon", None)],
)
def test_reset_durations_in_the_shapes_providers_send(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


async def test_nothing_waits_until_a_limit_is_announced_then_requests_are_spaced_evenly() -> None:
    clock = Clock()
    pacer = HeaderPacer(margin_s=0, clock=clock, sleep=clock.sleep)
    for _ in range(5):
        assert await pacer.before("api:443", b"{}") == 0  # nothing known: no waiting
    learned: list[Event] = []
    pace_observer.set(PaceEvents(learned.append))
    pacer.after("api:443", 200, {"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "55"})
    assert learned == [LimitsLearned(provider="api:443", requests_per_minute=60)]

    started = clock.now
    for _ in range(10):
        await pacer.before("api:443", b"{}")
    # One a second (60 a minute), the first at once.
    assert clock.now - started == pytest.approx(9.0)
    assert await pacer.before("other:443", b"{}") == 0  # limits are per host


async def test_the_trailing_window_counts_the_requests_sent_before_the_limit_was_known() -> None:
    clock = Clock()
    pacer = HeaderPacer(margin_s=1.0, clock=clock, sleep=clock.sleep)
    first = clock.now
    for _ in range(4):
        await pacer.before("api:443", b"{}")  # a burst, before any answer
    pacer.after("api:443", 200, {"x-ratelimit-limit-requests": "4"})
    await pacer.before("api:443", b"{}")
    # The window already holds 4: the fifth waits until the first has left it (plus the margin).
    assert clock.now == pytest.approx(first + 60 + 1.0)


async def test_retry_after_and_an_exhausted_budget_hold_every_request_back() -> None:
    clock = Clock()
    pacer = HeaderPacer(margin_s=0, clock=clock, sleep=clock.sleep)
    pacer.after("api:443", 429, {"retry-after": "7"})
    assert await pacer.before("api:443", b"{}") == pytest.approx(7.0)
    pacer.after("api:443", 200, {"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "2.5s"})
    assert await pacer.before("api:443", b"{}") == pytest.approx(2.5)
    pacer.after("api:443", 429, {"retry-after-ms": "1500", "retry-after": "2"})  # the precise one wins
    assert await pacer.before("api:443", b"{}") == pytest.approx(1.5)


async def test_a_token_limit_holds_requests_whose_estimate_does_not_fit() -> None:
    clock = Clock()
    pacer = HeaderPacer(margin_s=0, clock=clock, sleep=clock.sleep)
    pacer.after("api:443", 200, {"anthropic-ratelimit-tokens-limit": "3000"})
    body = b'{"messages": "' + b"x" * 3986 + b'", "max_tokens": 1000}'  # about 1,000 + 1,000 tokens
    assert await pacer.before("api:443", body) == 0
    waited = await pacer.before("api:443", body)  # 4,000 would not fit in 3,000
    assert waited == pytest.approx(60.0)


async def test_the_client_paces_every_attempt_and_reads_the_headers_of_each_answer(
    respx_mock: respx.MockRouter,
) -> None:
    clock = Clock()
    pacer = HeaderPacer(margin_s=0, clock=clock, sleep=clock.sleep)
    respx_mock.post("https://api.test/v1/chat").mock(
        side_effect=[
            httpx.Response(429, headers={"retry-after": "3", "x-ratelimit-limit-requests": "120"}),
            httpx.Response(200, json={"ok": True}, headers={"x-ratelimit-limit-requests": "120"}),
        ]
    )
    waits: list[float] = []

    async def record(seconds: float) -> None:
        waits.append(seconds)

    learned: list[Event] = []
    pace_observer.set(PaceEvents(learned.append))
    client = retrying_client(RetryPolicy(attempts=3), pacer=pacer, sleep=record)
    async with client:
        response = await client.post("https://api.test/v1/chat", content=b"{}")
    assert response.status_code == 200
    assert waits == [3.0]  # the transport's own retry honoured Retry-After...
    assert clock.slept == [pytest.approx(3.0)]  # ...and so did the pacer, for the retried attempt
    # Learned from the 429's headers already (the host as the request names it), once.
    assert [e for e in learned if isinstance(e, LimitsLearned)] == [
        LimitsLearned(provider="api.test", requests_per_minute=120)
    ]


async def test_what_the_pacer_learns_and_waits_becomes_events_of_the_call() -> None:
    clock = Clock()
    pacer = HeaderPacer(margin_s=0, clock=clock, sleep=clock.sleep)
    events: list[Event] = []
    pace_observer.set(PaceEvents(events.append))
    pacer.after("api", 200, {"x-ratelimit-limit-requests": "60"})
    pacer.after("api", 200, {"x-ratelimit-limit-requests": "60"})  # nothing new: no second event
    await pacer.before("api", b"{}")
    await pacer.before("api", b"{}")
    assert events == [
        LimitsLearned(provider="api", requests_per_minute=60, tokens_per_minute=None),
        LimitWaited(provider="api", wait_s=1.0),
    ]


def test_one_pacer_paces_one_run_after_another_on_new_event_loops() -> None:
    import asyncio

    from service_ambitions.llm.pacing import HeaderPacer

    pacer = HeaderPacer()  # the real clock: requests 1 ms apart, so the later ones wait in line
    pacer.after("h", 200, {"x-ratelimit-limit-requests": "60000"})

    async def three_at_once() -> float:
        waits = await asyncio.gather(*(pacer.before("h", b"{}") for _ in range(3)))
        return sum(waits)

    assert asyncio.run(three_at_once()) > 0
    assert asyncio.run(three_at_once()) > 0  # a new loop: the line is not the old loop's lock
