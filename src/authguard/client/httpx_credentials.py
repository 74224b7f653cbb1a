"""httpx auth for fixed credentials: HTTP Basic (RFC 7617) and an API key header.

Retry rules, the same as :class:`~authguard.client.BearerAuth`'s where they apply:

* 429 ``too_many_attempts`` and 503 ``auth_unavailable``: wait ``Retry-After`` seconds and
  retry, at most ``max_retries`` times and only for waits up to ``max_wait``;
* 401 is never retried: a wrong password or key does not become right, and each retry
  would count as one more failed attempt for the server's brute-force guard.

With ``raise_errors=True`` the final refusal raises its typed
:class:`~authguard.client.AuthError` subclass (``InvalidCredentials``, ``Forbidden``…)
instead of being returned.
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Generator

import httpx

from .errors import error_for
from .problem import Problem

__all__ = ["APIKeyAuth", "BasicAuth"]

_WAITED_ON = frozenset({429, 503})
_REFUSALS = frozenset({400, 401, 402, 403, 429, 502, 503})


class _FixedCredentials(httpx.Auth):
    """Sets one header on every request; waits on 429/503; may raise typed refusals."""

    def __init__(self, *, max_retries: int, max_wait: float, raise_errors: bool,
                 sleep: Callable[[float], object],
                 async_sleep: Callable[[float], Awaitable[object]]) -> None:
        if max_retries < 0 or max_wait < 0:
            raise ValueError("max_retries and max_wait must not be negative")
        self.max_retries = max_retries
        self.max_wait = max_wait
        self.raise_errors = raise_errors
        self._sleep = sleep
        self._async_sleep = async_sleep

    def _apply(self, request: httpx.Request) -> None:
        raise NotImplementedError

    def _wait_for(self, response: httpx.Response, retries: int) -> float | None:
        if response.status_code not in _WAITED_ON or retries >= self.max_retries:
            return None
        wait = Problem.from_response(response).retry_after
        return wait if wait is not None and wait <= self.max_wait else None

    def _check(self, response: httpx.Response) -> None:
        if self.raise_errors and response.status_code in _REFUSALS:
            error = error_for(Problem.from_response(response), response)
            if error is not None:
                raise error

    def sync_auth_flow(self, request: httpx.Request
                       ) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for ``httpx.Client``."""
        self._apply(request)
        retries = 0
        while True:
            response = yield request
            if response.status_code in _REFUSALS:
                response.read()
            wait = self._wait_for(response, retries)
            if wait is None:
                self._check(response)
                return
            retries += 1
            self._sleep(wait)

    async def async_auth_flow(self, request: httpx.Request
                              ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow for ``httpx.AsyncClient``."""
        self._apply(request)
        retries = 0
        while True:
            response = yield request
            if response.status_code in _REFUSALS:
                await response.aread()
            wait = self._wait_for(response, retries)
            if wait is None:
                self._check(response)
                return
            retries += 1
            await self._async_sleep(wait)


class BasicAuth(_FixedCredentials):
    """``Authorization: Basic`` (RFC 7617, UTF-8 user name and password).

    Args:
        username: The user name (no ``:``, RFC 7617 §2).
        password: The password.
        max_retries: Most retries after 429/503 for one request.
        max_wait: Longest ``Retry-After`` (seconds) waited for.
        raise_errors: Raise the typed error of a final refusal instead of returning it.
        sleep: ``time.sleep`` replacement (sync clients), e.g. for tests.
        async_sleep: ``asyncio.sleep`` replacement (async clients).
    """

    def __init__(self, username: str, password: str, *, max_retries: int = 2,
                 max_wait: float = 30.0, raise_errors: bool = False,
                 sleep: Callable[[float], object] = time.sleep,
                 async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if ":" in username:
            raise ValueError("a Basic user name cannot contain ':' (RFC 7617 §2)")
        super().__init__(max_retries=max_retries, max_wait=max_wait,
                         raise_errors=raise_errors, sleep=sleep, async_sleep=async_sleep)
        # RFC 7617 §2.1: base64 of "user-id:password" in UTF-8
        pair = f"{username}:{password}".encode()
        self._header = "Basic " + base64.b64encode(pair).decode("ascii")

    def _apply(self, request: httpx.Request) -> None:
        request.headers["Authorization"] = self._header


class APIKeyAuth(_FixedCredentials):
    """An API key in a request header (``X-API-Key`` by default).

    Args:
        key: The API key.
        header: The header that carries it (the server's ``APIKeyAuthenticator.header``).
        max_retries, max_wait, raise_errors, sleep, async_sleep: as :class:`BasicAuth`.
    """

    def __init__(self, key: str, *, header: str = "X-API-Key", max_retries: int = 2,
                 max_wait: float = 30.0, raise_errors: bool = False,
                 sleep: Callable[[float], object] = time.sleep,
                 async_sleep: Callable[[float], Awaitable[object]] = asyncio.sleep) -> None:
        if not key:
            raise ValueError("APIKeyAuth needs a key")
        super().__init__(max_retries=max_retries, max_wait=max_wait,
                         raise_errors=raise_errors, sleep=sleep, async_sleep=async_sleep)
        self.header = header
        self._key = key

    def _apply(self, request: httpx.Request) -> None:
        request.headers[self.header] = self._key
