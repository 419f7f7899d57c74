"""Retries at the HTTP level, with pydantic-ai's tenacity transport.

Rate limits (429), conflicts and timeouts (408, 409), server errors (5xx) and dropped
connections are retried. When the server says how long to wait (``retry-after-ms`` or
``Retry-After``), the transport waits exactly that long — and when that is longer than
the longest wait allowed, it gives up instead of retrying early. Otherwise it backs off
exponentially with jitter. The provider SDK's own retries are turned off (``max_retries:
0`` in the model settings), so the two never multiply.

Each scheduled retry is reported to the call that is waiting, through
:data:`retry_observer`, which the gateway sets for the duration of a call.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass

import httpx2
from pydantic_ai._http import DEFAULT_HTTP_LIMITS
from pydantic_ai.models import create_async_httpx2_client
from pydantic_ai.retries import AsyncHTTPX2TenacityTransport, RetryConfig, wait_retry_after
from tenacity import RetryCallState, retry_if_exception_type, stop_after_attempt, stop_any, wait_random_exponential
from tenacity.stop import stop_base

__all__ = ["RetryObserver", "RetryPolicy", "retry_observer", "retrying_client"]

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


def retrying_client(
    policy: RetryPolicy, *, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
) -> httpx2.AsyncClient:
    """An HTTP client for a provider, retrying as the module docstring says.

    Args:
        policy: attempts, longest wait and per-attempt timeout.
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

    transport = AsyncHTTPX2TenacityTransport(
        wrapped=_proxied_transport(),
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
    return create_async_httpx2_client(timeout=policy.request_timeout, transport=transport)


def _proxied_transport() -> httpx2.AsyncHTTPTransport | None:
    """A transport through the proxy the environment names, if any.

    httpx reads HTTPS_PROXY and ALL_PROXY itself only when it builds its own transport;
    the retrying transport replaces that, so the proxy is passed on here.
    """
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        if proxy := os.environ.get(name):
            return httpx2.AsyncHTTPTransport(proxy=proxy, limits=DEFAULT_HTTP_LIMITS)
    return None
