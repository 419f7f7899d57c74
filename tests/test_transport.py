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


class _CutBody(httpx.AsyncByteStream):
    """Half an answer, then the connection goes: what a provider cut off mid-body sends."""

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield b'{"choices": [{"index": 0, "mess'
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


async def test_an_answer_cut_off_while_its_body_streams_in_is_retried(
    respx_mock: respx.MockRouter, waits: list[float]
) -> None:
    route = respx_mock.post(URL).mock(
        side_effect=[
            httpx.Response(200, headers={"content-type": "application/json"}, stream=_CutBody()),
            httpx.Response(200, json={"whole": True}),
        ]
    )
    reasons: list[str] = []
    token = retry_observer.set(lambda wait, reason: reasons.append(reason))
    try:
        async with client(waits) as http:
            response = await http.post(URL, json={})
    finally:
        retry_observer.reset(token)
    assert response.json() == {"whole": True}
    assert route.call_count == 2
    assert reasons == ["RemoteProtocolError"]


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


@pytest.fixture
def proxied(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret@proxy.corp:3128")  # pragma: allowlist secret
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1,.internal.corp")


def test_proxies_are_read_as_httpx_reads_them(proxied: None) -> None:
    from service_ambitions.llm.transport import proxy_for

    assert proxy_for("https://api.openai.com/v1") == "http://proxy.corp:3128"  # credentials never shown
    assert proxy_for("http://127.0.0.1:8000/v1") is None  # NO_PROXY: reached directly
    assert proxy_for("https://llm.internal.corp/v1") is None
    assert proxy_for("http://api.openai.com/v1") is None  # only HTTPS_PROXY is set


async def test_the_retrying_client_routes_through_the_proxy_except_no_proxy_hosts(proxied: None) -> None:
    async with retrying_client(RetryPolicy()) as http:
        # Which transport a URL takes (httpx's own choice); each one retries.
        direct = http._transport_for_url(httpx2.URL("http://127.0.0.1:8000/v1"))
        proxied_one = http._transport_for_url(httpx2.URL("https://api.openai.com/v1"))
        assert direct is http._transport
        assert proxied_one is not direct
        assert type(proxied_one).__name__ == "AsyncHTTPX2TenacityTransport"
        pool = proxied_one.wrapped._wrapped._pool  # type: ignore[attr-defined]  # retries > whole body > proxy
        assert type(pool).__name__ == "AsyncHTTPProxy"
