"""Retries at the HTTP level, with pydantic-ai's tenacity transport.

Rate limits (429), conflicts and timeouts (408, 409), server errors (5xx), dropped
connections and answers cut off while their body was read are retried. When the server
says how long to wait (``retry-after-ms`` or ``Retry-After``), the transport waits exactly
that long — and when that is longer than the longest wait allowed, it gives up instead of
retrying early. Otherwise it backs off
exponentially with jitter. The provider SDK's own retries are turned off (``max_retries =
0`` on its client, ``resolve.py``), so the two never multiply.

Each scheduled retry is reported to the call that is waiting, through
:data:`retry_observer`, which the gateway sets for the duration of a call.

Below the retries, every attempt goes through a :class:`~.pacing.HeaderPacer` when one is
given: it waits before a request the provider's announced limits have no room for, and
reads the rate-limit headers of every answer, retried ones included.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import httpx2
from httpx2._utils import URLPattern, get_environment_proxies
from pydantic_ai._http import DEFAULT_HTTP_LIMITS
from pydantic_ai.models import get_user_agent
from pydantic_ai.retries import AsyncHTTPX2TenacityTransport, RetryConfig, wait_retry_after
from tenacity import RetryCallState, retry_if_exception_type, stop_after_attempt, stop_any, wait_random_exponential
from tenacity.stop import stop_base

from service_ambitions.llm.pacing import HeaderPacer

__all__ = ["RetryObserver", "RetryPolicy", "environment_proxies", "proxy_for", "retry_observer", "retrying_client"]

RetryObserver = Callable[[float, str], None]
"""Told the wait in seconds and the reason, before each retry's sleep."""

retry_observer: ContextVar[RetryObserver | None] = ContextVar("retry_observer", default=None)

_RETRYABLE_STATUS = frozenset({408, 409, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one HTTP request."""

    attempts: int = 5
    """Attempts in all, the first included."""
    max_wait: float = 60.0
    """Longest single wait, in seconds; a server that asks for longer is not retried."""
    request_timeout: float = 120.0
    """Seconds one attempt may take."""


def _raise_if_retryable(response: httpx2.Response) -> None:
    if response.status_code in _RETRYABLE_STATUS or response.status_code >= 500:
        response.raise_for_status()


# The server's own wait, or -1 when it named none (pydantic-ai parses both headers and dates).
_server_wait = wait_retry_after(fallback_strategy=lambda state: -1.0, max_wait=math.inf)


class _ServerAsksTooLong(stop_base):
    """Stop when the server asks for a longer wait than allowed: retrying earlier is no use."""

    def __init__(self, max_wait: float) -> None:
        self.max_wait = max_wait

    def __call__(self, retry_state: RetryCallState) -> bool:
        return _server_wait(retry_state) > self.max_wait


def _reason(state: RetryCallState) -> str:
    exc = state.outcome.exception() if state.outcome else None
    if isinstance(exc, httpx2.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__ if exc else "unknown"


class _WholeBodyTransport(httpx2.AsyncBaseTransport):
    """Each attempt reads the whole answer before it counts as answered.

    Without it the retries cover a request only until the headers arrive: a connection cut
    while the body streams in failed the call when the SDK read it, after the retry loop.
    Reading it here makes a cut answer a transport error inside the loop, retried like a
    dropped connection. Answers are small JSON documents, never streamed, so nothing is lost.
    """

    def __init__(self, wrapped: httpx2.AsyncBaseTransport) -> None:
        self._wrapped = wrapped

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._wrapped.handle_async_request(request)
        try:
            await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response

    async def aclose(self) -> None:
        await self._wrapped.aclose()


class _PacedTransport(httpx2.AsyncBaseTransport):
    """Each attempt waits for the pacer first, and the pacer reads each answer's headers."""

    def __init__(self, wrapped: httpx2.AsyncBaseTransport, pacer: HeaderPacer) -> None:
        self._wrapped = wrapped
        self._pacer = pacer

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        host = request.url.netloc.decode("ascii")
        try:
            body = request.content
        except httpx2.RequestNotRead:
            body = b""  # a streamed upload: its size is unknown, its tokens are not estimated
        await self._pacer.before(host, body)
        response = await self._wrapped.handle_async_request(request)
        self._pacer.after(host, response.status_code, response.headers)
        return response

    async def aclose(self) -> None:
        await self._wrapped.aclose()


def retrying_client(
    policy: RetryPolicy,
    *,
    pacer: HeaderPacer | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> httpx2.AsyncClient:
    """An HTTP client for a provider, retrying (and pacing) as the module docstring says.

    Args:
        policy: attempts, longest wait and per-attempt timeout.
        pacer: paces every attempt by the providers' rate-limit headers; None sends at once.
        sleep: how to wait; tests pass one that records the waits instead.
    """
    backoff = wait_random_exponential(multiplier=0.5, max=policy.max_wait)

    def wait(state: RetryCallState) -> float:
        asked = _server_wait(state)
        return asked if asked >= 0 else float(backoff(state))

    def report(state: RetryCallState) -> None:
        observer = retry_observer.get()
        if observer is not None and state.next_action is not None:
            observer(state.next_action.sleep, _reason(state))

    def retrying(wrapped: httpx2.AsyncBaseTransport) -> httpx2.AsyncBaseTransport:
        wrapped = _WholeBodyTransport(wrapped)
        if pacer is not None:
            wrapped = _PacedTransport(wrapped, pacer)
        return AsyncHTTPX2TenacityTransport(
            wrapped=wrapped,
            config=RetryConfig(
                retry=retry_if_exception_type((httpx2.HTTPStatusError, httpx2.TransportError)),
                wait=wait,
                stop=stop_any(stop_after_attempt(policy.attempts), _ServerAsksTooLong(policy.max_wait)),
                before_sleep=report,
                sleep=sleep,
                reraise=True,
            ),
            validate_response=_raise_if_retryable,
        )

    # httpx stops reading proxy variables when given a transport, so the proxies it would
    # use are mounted here, each behind the same retries; NO_PROXY hosts (mounted None)
    # fall back to the direct transport.
    mounts: dict[str, httpx2.AsyncBaseTransport | None] = {
        pattern: None if proxy is None else retrying(httpx2.AsyncHTTPTransport(proxy=proxy, limits=DEFAULT_HTTP_LIMITS))
        for pattern, proxy in environment_proxies().items()
    }
    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(policy.request_timeout),
        transport=retrying(httpx2.AsyncHTTPTransport(limits=DEFAULT_HTTP_LIMITS)),
        mounts=mounts,
        headers={"User-Agent": get_user_agent()},
    )


def environment_proxies() -> dict[str, str | None]:
    """The proxies httpx reads from HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY, by URL pattern.

    None marks a NO_PROXY pattern: those hosts are reached directly. This is httpx's own
    reading of the variables (with its NO_PROXY rules), not a second implementation.
    """
    return get_environment_proxies()


def proxy_for(url: str) -> str | None:
    """The proxy a request to ``url`` goes through, credentials hidden; None when it goes direct."""
    target = httpx2.URL(url)
    # Most specific pattern first, as httpx orders its mounts.
    patterns = sorted(((URLPattern(p), proxy) for p, proxy in environment_proxies().items()), key=lambda m: m[0])
    for pattern, proxy in patterns:
        if pattern.matches(target):
            return None if proxy is None else _without_credentials(proxy)
    return None


def _without_credentials(proxy: str) -> str:
    parsed = httpx2.URL(proxy)
    return str(parsed.copy_with(username=None, password=None)) if parsed.userinfo else proxy
