"""Helpers for testing an app that authguard protects.

* :func:`force_identity` — every request to the app is made by this identity (Django REST
  framework's ``force_authenticate``); the routes' requirements still apply. It is
  FastAPI's ``app.dependency_overrides[current_identity]``, which works too.
* :class:`TokenFactory` — tokens that a configured :class:`~authguard.BearerAuthenticator`
  accepts, or refuses for one stated reason (expired, not yet valid, wrong audience).
* :func:`log_in` / :func:`session_cookie` — a signed-in session without the login form.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from http.cookies import SimpleCookie
from typing import Any, Protocol

import jwt
from starlette.requests import HTTPConnection
from starlette.responses import Response

from .authenticators.bearer import BearerAuthenticator
from .authenticators.keys import StaticKeys
from .authenticators.session import SessionAuthenticator
from .errors import ConfigurationError, Refusal
from .identity import Identity
from .reasons import Reason

__all__ = ["TokenFactory", "bearer_headers", "force_identity", "log_in", "make_identity",
           "session_cookie"]


class _HasOverrides(Protocol):
    dependency_overrides: dict[Any, Any]


def make_identity(subject: str = "alice", *, scheme: str = "Bearer",
                  scopes: Iterable[str] = (), roles: Iterable[str] = (),
                  **fields: Any) -> Identity:
    """An :class:`~authguard.Identity` from plain lists (``fields``: ``acr``, ``claims``…)."""
    return Identity(subject=subject, scheme=scheme, scopes=frozenset(scopes),
                    roles=frozenset(roles), **fields)


@contextmanager
def force_identity(app: _HasOverrides, identity: Identity | None) -> Iterator[Identity | None]:
    """Within the block, every request to ``app`` (a FastAPI app) is made by ``identity``.

    Authentication is skipped; the routes' requirements still apply (a forced identity
    without the role ``admin`` gets 403 on an admin route). ``None`` forces an anonymous
    caller. The app's earlier overrides are put back on leaving.
    """
    from .fastapi import current_identity, optional_identity

    saved = {d: app.dependency_overrides.get(d) for d in (current_identity, optional_identity)}

    def forced() -> Identity | None:
        return identity

    def forced_current() -> Identity:
        if identity is None:  # what current_identity answers an anonymous caller
            raise Refusal(Reason.CREDENTIALS_MISSING)
        return identity

    app.dependency_overrides[current_identity] = forced_current
    app.dependency_overrides[optional_identity] = forced
    try:
        yield identity
    finally:
        for dependency, before in saved.items():
            if before is None:
                app.dependency_overrides.pop(dependency, None)
            else:
                app.dependency_overrides[dependency] = before


def bearer_headers(token: str) -> dict[str, str]:
    """``{"Authorization": "Bearer <token>"}``."""
    return {"Authorization": f"Bearer {token}"}


class TokenFactory:
    """Mints JWTs for a configured Bearer authenticator (its issuer, audience and roles
    claim).

    With an HMAC key (``JWTKey.hs256(secret)``) the authenticator's own key signs. With
    public keys (PEM, JWKS) give the matching private key: ``signing_key`` (PEM) and
    ``algorithm``.
    """

    def __init__(self, bearer: BearerAuthenticator, *, signing_key: str | bytes | None = None,
                 algorithm: str | None = None, kid: str | None = None,
                 clock: Any = None) -> None:
        self.bearer = bearer
        self._clock = clock
        if signing_key is not None:
            if algorithm is None:
                raise ConfigurationError("algorithm: name the algorithm of signing_key")
            self._key: Any = signing_key
            self._algorithm = algorithm
            self._kid = kid
            return
        keys = bearer.keys
        hmac = [k for k in keys.keys if k.algorithm.startswith("HS")] if isinstance(
            keys, StaticKeys) else []
        if not hmac:
            raise ConfigurationError(
                "signing_key: this Bearer authenticator holds only public keys (or a JWKS "
                "URL); pass the matching private key in PEM and its algorithm")
        self._key = hmac[0].key.key
        self._algorithm = hmac[0].algorithm
        self._kid = kid if kid is not None else hmac[0].kid

    def _now(self) -> int:
        import time

        return int(self._clock() if self._clock is not None else time.time())

    def token(self, subject: str = "alice", *, scopes: Iterable[str] = (),
              roles: Iterable[str] = (), lifetime: int = 300,
              claims: Mapping[str, Any] | None = None) -> str:
        """A token the authenticator accepts; ``claims`` add or replace claims (a value
        of ``None`` removes one)."""
        now = self._now()
        bearer = self.bearer
        payload: dict[str, Any] = {
            "sub": subject, "iat": now, "nbf": now, "exp": now + lifetime,
            "jti": uuid.uuid4().hex,
        }
        if bearer.audience:  # None: the authenticator accepts any audience
            payload["aud"] = bearer.audience[0]
        if bearer.issuer:
            payload["iss"] = bearer.issuer[0]
        scopes = list(scopes)
        if scopes:
            payload["scope"] = " ".join(scopes)
        roles = list(roles)
        if roles:
            payload[bearer.roles_claim] = roles
        payload.update(claims or {})
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {"kid": self._kid} if self._kid else None
        return jwt.encode(payload, self._key, algorithm=self._algorithm, headers=headers)

    def expired(self, subject: str = "alice", **kwargs: Any) -> str:
        """A token that expired an hour ago (401 ``token_expired``)."""
        now = self._now()
        claims = {"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600,
                  **kwargs.pop("claims", {})}
        return self.token(subject, claims=claims, **kwargs)

    def not_yet_valid(self, subject: str = "alice", **kwargs: Any) -> str:
        """A token valid only from an hour on (401 ``token_not_yet_valid``)."""
        now = self._now()
        claims = {"nbf": now + 3600, "exp": now + 7200, **kwargs.pop("claims", {})}
        return self.token(subject, claims=claims, **kwargs)

    def wrong_audience(self, subject: str = "alice", *,
                       audience: str = "https://another-api.example", **kwargs: Any) -> str:
        """A token issued for another API (``aud``): refused with 401."""
        claims = {"aud": audience, **kwargs.pop("claims", {})}
        return self.token(subject, claims=claims, **kwargs)


def _blank_connection(https: bool) -> HTTPConnection:
    return HTTPConnection({
        "type": "http", "method": "POST", "path": "/", "raw_path": b"/", "query_string": b"",
        "root_path": "", "headers": [], "scheme": "https" if https else "http",
        "server": ("testserver", 443 if https else 80), "http_version": "1.1",
    })


async def session_cookie(session: SessionAuthenticator, subject: str = "alice", *,
                         roles: Iterable[str] = (), scopes: Iterable[str] = (),
                         acr: str | None = None, https: bool = False) -> tuple[str, str]:
    """Start a session in ``session``'s store, as its login would: ``(cookie name, value)``."""
    response = Response()
    await session.login(_blank_connection(https), response, subject, roles=list(roles),
                        scopes=list(scopes), acr=acr)
    jar: SimpleCookie = SimpleCookie()
    for value in response.headers.getlist("set-cookie"):
        jar.load(value)
    return session.cookie_name, jar[session.cookie_name].value


class _HasCookies(Protocol):
    @property
    def cookies(self) -> Any: ...


async def log_in(client: _HasCookies, session: SessionAuthenticator, subject: str = "alice",
                 *, roles: Iterable[str] = (), scopes: Iterable[str] = (),
                 acr: str | None = None, https: bool = False) -> None:
    """Sign ``client`` (``httpx.AsyncClient``, ``httpx.Client``, ``TestClient``) in as
    ``subject`` without the login form: a session is started and its cookie set on the
    client. From a synchronous test: ``anyio.run(lambda: log_in(client, session))``."""
    name, value = await session_cookie(session, subject, roles=roles, scopes=scopes, acr=acr,
                                       https=https)
    client.cookies.set(name, value)
