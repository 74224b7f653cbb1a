"""Opaque Bearer tokens checked by OAuth 2.0 Token Introspection (RFC 7662).

:class:`IntrospectionAuthenticator` posts the token to the authorization server's
introspection endpoint (§2.1), authenticating itself as a client with
``client_secret_basic`` or ``client_secret_post`` (RFC 6749 §2.3.1), and reads the answer
(§2.2):

* ``active: false`` → 401 ``credentials_invalid`` (``token_expired`` when the answer's
  ``exp`` has passed); an inactive answer is remembered only ``inactive_ttl`` seconds;
* ``active: true`` → the audience (``aud`` must name this resource, RFC 8707), the issuer
  (when configured) and ``exp``/``nbf`` are checked like a JWT's; the identity carries the
  answer as its claims (``cnf`` included, for sender-constrained tokens), its ``scope`` as
  scopes. The answer is remembered until the token's ``exp``, never longer than
  ``max_cache_ttl``, in a bounded cache keyed by a hash of the token;
* the endpoint down, slow, or answering anything but a JSON object with a boolean
  ``active`` → 503 ``auth_unavailable`` with ``Retry-After`` (never a 401: the token may
  be good).

Needs ``httpx`` (the ``client`` extra).
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any, Literal
from urllib.parse import quote_plus

import httpx
from starlette.requests import HTTPConnection

from ..authenticators.bearer import BearerAuthenticator
from ..challenges import Challenge, checked_setting
from ..errors import AuthUnavailable, ConfigurationError, Refusal
from ..identity import Identity
from ..reasons import Reason
from .answers import active_identity, number
from .metadata import ProtectedResource, checked_url

__all__ = ["IntrospectionAuthenticator"]

log = logging.getLogger("authguard")
_SCHEME = "Bearer"
# RFC 6750 §2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
_B64TOKEN = re.compile(rb"[A-Za-z0-9\-._~+/]+=*")


@dataclass(slots=True)
class _Entry:
    identity: Identity | None  # None: the token was inactive
    until: float
    expires: float | None


class IntrospectionAuthenticator:
    """Bearer tokens checked at an RFC 7662 introspection endpoint.

    Args:
        endpoint: The introspection endpoint (``https``; ``http`` only on loopback).
        client_id: This resource's client id at the authorization server.
        client_secret: Its secret (never logged, never sent anywhere but the endpoint).
        client_auth: ``client_secret_basic`` (HTTP Basic, RFC 6749 §2.3.1) or
            ``client_secret_post`` (form members).
        audience: Accepted ``aud`` value(s); defaults to ``resource.resource``. A token
            whose answer names another audience is refused.
        issuer: Accepted ``iss`` value(s), checked when the answer carries ``iss``.
        resource: This API as a protected resource: its challenges carry
            ``resource_metadata``, and it gives the default audience.
        timeout: Seconds allowed for one introspection request.
        max_cache_ttl: Longest time an active answer is reused (never past ``exp``).
        inactive_ttl: Time an inactive answer is reused (short: a token may become active
            only by being a new token, but a typo'd one should not hammer the endpoint).
        cache_size: Answers remembered (0 disables the cache).
        retry_after: Sent with the 503 when the endpoint cannot answer.
        leeway: Seconds of clock skew tolerated for ``exp``/``nbf``.
        roles_claim: The member holding roles.
        realm: Named in the challenge.
        max_token_bytes: Longer tokens are refused before any request.
        http_client: An ``httpx.AsyncClient`` to use (by default one is made on first use).
        clock: Current time, in seconds.
    """

    def __init__(
        self,
        *,
        endpoint: str,
        client_id: str,
        client_secret: str,
        client_auth: Literal["client_secret_basic", "client_secret_post"] = (
            "client_secret_basic"),
        audience: str | Sequence[str] | None = None,
        issuer: str | Sequence[str] | None = None,
        resource: ProtectedResource | None = None,
        timeout: float = 3.0,
        max_cache_ttl: float = 300.0,
        inactive_ttl: float = 5.0,
        cache_size: int = 10_000,
        retry_after: int = 5,
        leeway: float = 0.0,
        roles_claim: str = "roles",
        realm: str = "authguard",
        max_token_bytes: int = 8192,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        checked_url(endpoint, "endpoint", query_allowed=True)
        if not client_id:
            raise ConfigurationError("client_id: needed to authenticate at the endpoint")
        if not client_secret:
            raise ConfigurationError("client_secret: needed to authenticate at the endpoint")
        if client_auth not in ("client_secret_basic", "client_secret_post"):
            raise ConfigurationError("client_auth: client_secret_basic or client_secret_post")
        if audience is None and resource is not None:
            audience = resource.resource
        if not audience:
            raise ConfigurationError(
                "audience: needed (or a resource), or tokens for another service would be "
                "accepted here")
        if not 0 < timeout <= 60:
            raise ConfigurationError("timeout: between 0 and 60 seconds")
        if max_cache_ttl < 0 or inactive_ttl < 0 or inactive_ttl > 60:
            raise ConfigurationError(
                "max_cache_ttl/inactive_ttl: not negative; inactive_ttl at most 60 seconds")
        if cache_size < 0:
            raise ConfigurationError("cache_size: not negative")
        if not 0 <= leeway <= 300:
            raise ConfigurationError("leeway: between 0 and 300 seconds")
        checked_setting(realm, "realm")
        self.endpoint = endpoint
        self.client_id = client_id
        self._client_secret = client_secret
        self.client_auth = client_auth
        self.audience = frozenset([audience] if isinstance(audience, str) else audience)
        self.issuer = None if issuer is None else frozenset(
            [issuer] if isinstance(issuer, str) else issuer)
        self.resource = resource
        self.timeout = timeout
        self.max_cache_ttl = max_cache_ttl
        self.inactive_ttl = inactive_ttl
        self.cache_size = cache_size
        self.retry_after = retry_after
        self.leeway = leeway
        self.roles_claim = roles_claim
        self.realm = realm
        self.max_token_bytes = max_token_bytes
        self._http = http_client
        self._clock = clock
        self._cache: OrderedDict[bytes, _Entry] = OrderedDict()
        # One request to the endpoint per token at a time: concurrent requests with the
        # same unknown token wait for its answer instead of each asking.
        self._pending: dict[bytes, asyncio.Future[_Entry]] = {}
        # The challenge and header handling are the Bearer authenticator's own.
        self._bearer = BearerAuthenticator(
            key=None, keys=_NoKeys(), audience=list(self.audience), realm=realm,
            resource=resource, max_token_bytes=max(64, max_token_bytes))

    # -- the protocol ----------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``Bearer``."""
        return _SCHEME

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether a Bearer token is present."""
        return self._bearer.has_credentials(conn)

    def account(self, conn: HTTPConnection) -> str | None:
        """Tokens claim no account before introspection."""
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """``Bearer realm="…"`` (RFC 6750 §3), with ``resource_metadata`` when configured."""
        return self._bearer.challenge(reason, params)

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Introspect the token (or reuse a remembered answer); ``None`` when none was sent."""
        token = self._bearer.token(conn)
        if token is None:
            return None
        if not _B64TOKEN.fullmatch(token):
            raise Refusal(Reason.CREDENTIALS_MALFORMED,
                          "The access token has characters a Bearer token cannot have.",
                          scheme=_SCHEME)
        now = self._clock()
        key = sha256(token).digest()
        entry = self._cache.get(key) if self.cache_size else None
        if entry is None or now >= entry.until:
            entry = await self._answer(key, token, now)
            if self.cache_size and entry.until > now:
                self._cache.pop(key, None)
                if len(self._cache) >= self.cache_size:
                    self._cache.popitem(last=False)
                self._cache[key] = entry
        if entry.identity is None:
            raise Refusal(Reason.CREDENTIALS_INVALID, scheme=_SCHEME)
        if entry.expires is not None and now >= entry.expires + self.leeway:
            raise Refusal(Reason.TOKEN_EXPIRED, scheme=_SCHEME)
        return entry.identity

    # -- introspection ---------------------------------------------------------------------

    async def _post(self, token: bytes) -> httpx.Response:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.timeout, follow_redirects=False)
        form = {"token": token.decode("ascii"), "token_type_hint": "access_token"}
        headers = {"Accept": "application/json"}
        if self.client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            basic = (quote_plus(self.client_id), quote_plus(self._client_secret))
            return await self._http.post(self.endpoint, data=form, headers=headers,
                                         auth=basic, timeout=self.timeout)
        form["client_id"] = self.client_id
        form["client_secret"] = self._client_secret
        return await self._http.post(self.endpoint, data=form, headers=headers,
                                     timeout=self.timeout)

    async def _answer(self, key: bytes, token: bytes, now: float) -> _Entry:
        pending = self._pending.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._introspect(token, now))
            self._pending[key] = pending
            pending.add_done_callback(lambda done: _settle(self._pending, key, done))
        return await asyncio.shield(pending)

    async def _introspect(self, token: bytes, now: float) -> _Entry:
        try:
            response = await self._post(token)
        except httpx.HTTPError as exc:
            raise self._unavailable(f"unreachable ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise self._unavailable(f"answered HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise self._unavailable("answered something other than an RFC 7662 JSON object")
        exp = number(answer, "exp")
        if not answer["active"]:
            if exp is not None and now >= exp + self.leeway:
                raise Refusal(Reason.TOKEN_EXPIRED, scheme=_SCHEME)
            return _Entry(None, now + self.inactive_ttl, None)
        identity = active_identity(answer, now, audience=self.audience, issuer=self.issuer,
                                   leeway=self.leeway, roles_claim=self.roles_claim)
        until = now + self.max_cache_ttl
        if exp is not None:
            until = min(until, exp)
        return _Entry(identity, until, exp)

    def _unavailable(self, why: str) -> AuthUnavailable:
        return AuthUnavailable(f"introspection endpoint {self.endpoint} {why}",
                               retry_after=self.retry_after)

    async def aclose(self) -> None:
        """Close the HTTP client this authenticator made."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None


class _NoKeys:
    """No keys: the inner Bearer authenticator only extracts tokens and builds challenges."""

    async def keys_for(self, kid: str | None, algorithm: str) -> Sequence[Any]:
        return []


def _settle(pending: dict[bytes, asyncio.Future[_Entry]], key: bytes,
            done: asyncio.Future[_Entry]) -> None:
    """Forget a finished request; its error is read here if every waiter left."""
    pending.pop(key, None)
    if not done.cancelled():
        done.exception()
