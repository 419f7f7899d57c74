"""HTTP retries: what is retried, how long it waits, and when it gives up."""

from __future__ import annotations

import httpx
import httpx2
import pytest
import respx

from service_ambitions.llm.transport import RetryPolicy, retry_observer, retrying_client

URL = "https://llm.test/v1/chat/completions"


@pytest.fixture
def waits() -> list[float]:
    return []


def client(waits: list[float], **policy: float) -> httpx2.AsyncClient:
    async def record(seconds: float) -> None:
        waits.append(seconds)

    return retrying_client(RetryPolicy(**policy), sleep=record)  # type: ignore[arg-type]


async def test_retry_after_is_honoured_exactly(respx_mock: respx.MockRouter, waits: list[float]) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[
            httpx.Response(429, headers={"Retry-After": "7"}),
            httpx.Response(429, headers={"retry-after-ms": "1500"}),
            httpx.Response(200, json={"ok": True}),
        ]
    )
    async with client(waits) as http:
        response = await http.post(URL, json={})
    assert response.status_code == 200
    assert route.call_count == 3
    assert waits == [7.0, 1.5]


async def test_server_errors_and_dropped_connections_back_off_with_jitter(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[
            httpx.Response(503),
            httpx.ConnectError("connection reset"),
            httpx.Response(500),
            httpx.Response(408),
            httpx.Response(200, json={}),
        ]
    )
    reasons: list[str] = []
    token = retry_observer.set(lambda wait, reason: reasons.append(reason))
    try:
        async with client(waits, max_wait=10) as http:
            assert (await http.post(URL, json={})).status_code == 200
    finally:
        retry_observer.reset(token)
    assert route.call_count == 5
    assert reasons == ["HTTP 503", "ConnectError", "HTTP 500", "HTTP 408"]
    assert all(0 <= wait <= 10 for wait in waits)


async def test_client_errors_are_not_retried(respx_mock: respx.MockRouter, waits: list[float]) -> None:
    route = respx_mock.post(URL).mock(return_value=httpx.Response(400, json={"error": "bad"}))
    async with client(waits) as http:
        assert (await http.post(URL, json={})).status_code == 400
    assert route.call_count == 1
    assert waits == []


async def test_never_retries_earlier_than_the_server_asked(respx_mock: respx.MockRouter, waits: list[float]) -> None:
    route = respx_mock.post(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "3600"}))
    async with client(waits, max_wait=60) as http:
        with pytest.raises(httpx2.HTTPStatusError):
            await http.post(URL, json={})
    assert route.call_count == 1
    assert waits == []


async def test_gives_up_after_the_attempts(respx_mock: respx.MockRouter, waits: list[float]) -> None:
    route = respx_mock.post(URL).mock(return_value=httpx.Response(502))
    async with client(waits, attempts=3) as http:
        with pytest.raises(httpx2.HTTPStatusError):
            await http.post(URL, json={})
    assert route.call_count == 3
    assert len(waits) == 2
