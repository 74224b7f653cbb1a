"""httpx integration: raise typed refusals, and a Bearer ``httpx.Auth`` that refreshes.

* :func:`raise_for_auth` / :func:`araise_for_auth` raise the exception of
  :mod:`authguard.client.errors` for a refusal; use them directly or as response event
  hooks (``event_hooks={"response": [raise_for_auth]}``).
* :class:`BearerAuth` sends ``Authorization: Bearer <token>``. On a 401 whose Bearer
  challenge says ``error="invalid_token"`` (or whose reason is ``token_expired``) it calls
  the refresh callback once and retries; on 429 and 503 it waits ``Retry-After`` seconds and
  retries, a bounded number of times, and only for waits up to a bound.

As in ``httpx.Auth``, the decisions live in one generator that does no I/O
(:meth:`BearerAuth.flow`); the sync and async flows only perform what it asks for —
send a request, call the refresh callback, sleep.
"""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from dataclasses import dataclass

import httpx

from ..reasons import Reason
from .errors import error_for
from .problem import Problem

__all__ = ["BearerAuth", "araise_for_auth", "raise_for_auth"]

# The statuses of authguard's refusals; 502 is payment_provider_error. A 429, 502 or 503
# raises only with a reason or a challenge (see error_class): most are not about auth.
_REFUSALS = frozenset({400, 401, 402, 403, 429, 502, 503})
# The answers BearerAuth acts on; only their bodies are read (a 200 may stay a stream).
_ACTED_ON = frozenset({401, 429, 503})


def raise_for_auth(response: httpx.Response) -> None:
    """Raise the :class:`~authguard.client.AuthError` subclass for a refusal, else return.

    Reads the body of a streamed response first. Usable as a sync response event hook; in an
    ``httpx.AsyncClient`` use :func:`araise_for_auth`.

    Raises:
        AuthError: a subclass picked by the ``reason`` (else by the status) of the refusal.
    """
    if response.status_code not in _REFUSALS:
        return
    try:
        response.read()
    except RuntimeError as exc:  # an async stream, not read yet
        raise TypeError("raise_for_auth cannot read an async response body; "
                        "use araise_for_auth in an httpx.AsyncClient") from exc
    error = error_for(Problem.from_response(response), response)
    if error is not None:
        raise error


async def araise_for_auth(response: httpx.Response) -> None:
    """The async form of :func:`raise_for_auth` (an ``httpx.AsyncClient`` event hook)."""
    if response.status_code in _REFUSALS:
        await response.aread()
    raise_for_auth(response)


@dataclass(frozen=True, slots=True)
class _Refresh:
    failed_token: str | None


@dataclass(frozen=True, slots=True)
class _Sleep:
    seconds: float


_Step = httpx.Request | _Refresh | _Sleep
TokenSource = Callable[[], str] | Callable[[], Awaitable[str]]


class BearerAuth(httpx.Auth):
    """``Authorization: Bearer`` with one refresh on an expired token and bounded waits.

    Args:
        token: The current access token (``None``: ask ``refresh`` before the first request).
        refresh: Called with no arguments to get a new token; a plain function, or an
            ``async def`` for an ``httpx.AsyncClient``. Called at most once per request, and
            not at all when another request already replaced the token that failed (or, for
            ``token=None``, already fetched the first one).
        max_retries: Most retries after 429/503 for one request.
        max_wait: Longest ``Retry-After`` (seconds) that is waited for; a longer one returns
            the response at once.
        sleep: ``time.sleep`` replacement (sync clients), e.g. for tests.
        async_sleep: ``asyncio.sleep`` replacement (async clients).
    """

    requires_request_body = True

    def __init__(
        self,
        token: str | None = None,
        *,
        refresh: TokenSource | None = None,
        max_retries: int = 2,
        max_wait: float = 30.0,
        sleep: Callable[[float], object] = time.sleep,
        async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        if token is None and refresh is None:
            raise ValueError("BearerAuth needs a token or a refresh callback")
        if max_retries < 0 or max_wait < 0:
            raise ValueError("max_retries and max_wait must not be negative")
        self.token = token
        self.refresh = refresh
        self.max_retries = max_retries
        self.max_wait = max_wait
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._lock = threading.Lock()
        self._async_lock = asyncio.Lock()

    # -- the decisions (no I/O) -----------------------------------------------------------

    def _should_refresh(self, response: httpx.Response) -> bool:
        if response.status_code != 401 or self.refresh is None:
            return False
        problem = Problem.from_response(response)
        return (problem.bearer_error == "invalid_token"
                or problem.reason == Reason.TOKEN_EXPIRED.value)

    def _wait_for(self, response: httpx.Response) -> float | None:
        if response.status_code not in (429, 503):
            return None
        wait = Problem.from_response(response).retry_after
        if wait is None or wait > self.max_wait:
            return None
        return wait

    def flow(self, request: httpx.Request) -> Generator[_Step, httpx.Response | None, None]:
        """The decisions for one request: yields requests to send and actions to perform."""
        refreshed = self.token is None  # at most one call of refresh per request
        if refreshed:
            yield _Refresh(None)
        retries = 0
        while True:
            sent_token = self.token
            request.headers["Authorization"] = f"Bearer {sent_token}"
            response = yield request
            assert response is not None  # noqa: S101 - the drivers always send a response
            if not refreshed and self._should_refresh(response):
                refreshed = True
                yield _Refresh(sent_token)
                continue
            wait = self._wait_for(response)
            if wait is not None and retries < self.max_retries:
                retries += 1
                yield _Sleep(wait)
                continue
            return

    def _replace_needed(self, failed: str | None) -> bool:
        # Another request may have refreshed already: then just retry with the new token.
        # A first token (failed is None) is fetched once, by the first request that asks.
        return self.token is None if failed is None else failed == self.token

    # -- the drivers ------------------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for ``httpx.Client``: calls ``refresh`` and ``sleep`` synchronously."""
        steps = self.flow(request)
        step = next(steps)
        while True:
            reply: httpx.Response | None = None
            if isinstance(step, httpx.Request):
                reply = yield step
                if reply.status_code in _ACTED_ON:
                    reply.read()  # flow() reads these refusals; other bodies stay unread
            elif isinstance(step, _Refresh):
                with self._lock:
                    if self._replace_needed(step.failed_token):
                        token = self._call_refresh()
                        if inspect.isawaitable(token):
                            close = getattr(token, "close", None)
                            if close is not None:
                                close()  # never awaited: closed, so no warning either
                            raise TypeError("an async refresh callback needs httpx.AsyncClient")
                        self.token = token
            else:
                self._sleep(step.seconds)
            try:
                step = steps.send(reply)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow for ``httpx.AsyncClient``: awaits ``refresh`` and ``async_sleep``."""
        steps = self.flow(request)
        step = next(steps)
        while True:
            reply: httpx.Response | None = None
            if isinstance(step, httpx.Request):
                reply = yield step
                if reply.status_code in _ACTED_ON:
                    await reply.aread()
            elif isinstance(step, _Refresh):
                async with self._async_lock:
                    if self._replace_needed(step.failed_token):
                        token = self._call_refresh()
                        if inspect.isawaitable(token):
                            token = await token
                        self.token = token
            else:
                await self._async_sleep(step.seconds)
            try:
                step = steps.send(reply)
            except StopIteration:
                return

    def _call_refresh(self) -> str | Awaitable[str]:
        assert self.refresh is not None  # noqa: S101 - flow() asks only when it is set
        token = self.refresh()
        if not inspect.isawaitable(token) and not isinstance(token, str):
            raise TypeError("the refresh callback must return the new token as a str")
        return token
