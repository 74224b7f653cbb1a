"""Several issuers behind one ``Bearer`` scheme.

A guard has one authenticator per scheme. :class:`BearerIssuers` is that one authenticator
when tokens come from several authorization servers: it reads the ``iss`` claim of a JWT
*without trusting it* — only to pick the one :class:`~authguard.BearerAuthenticator`
configured for that issuer — and that authenticator then verifies everything (signature
with that issuer's keys, ``iss`` exactly, its own audience rule, times). A JWT from an
issuer nobody here trusts is refused as invalid; a token that is not a JWT goes to the
``opaque`` authenticator (e.g. RFC 7662 introspection) when one is given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from jwt.utils import base64url_decode
from starlette.requests import HTTPConnection

from ..authenticators.base import Authenticator
from ..authenticators.bearer import BearerAuthenticator
from ..challenges import Challenge
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..reasons import Reason

__all__ = ["BearerIssuers"]

_SCHEME = "Bearer"
#: The reason for a token issued for another resource or by an issuer not trusted here:
#: the table's dedicated one where it has it, else ``credentials_invalid``.
WRONG_AUDIENCE = Reason.TOKEN_WRONG_AUDIENCE


class BearerIssuers:
    """One ``Bearer`` authenticator for tokens of several issuers.

    Args:
        authenticators: One :class:`~authguard.BearerAuthenticator` per issuer, each with
            its ``issuer`` set (and its own ``audience``). The first one's challenge is sent.
        opaque: Decides on tokens that are not JWTs (an introspection authenticator).
    """

    def __init__(self, authenticators: Sequence[BearerAuthenticator], *,
                 opaque: Authenticator | None = None) -> None:
        if not authenticators:
            raise ConfigurationError("authenticators: at least one is needed")
        by_issuer: dict[str, BearerAuthenticator] = {}
        for a in authenticators:
            if not a.issuer:
                raise ConfigurationError(
                    "authenticators: each needs its issuer set, to be told apart")
            for issuer in a.issuer:
                if issuer in by_issuer:
                    raise ConfigurationError(f"authenticators: issuer {issuer!r} twice")
                by_issuer[issuer] = a
        if opaque is not None and opaque.scheme.lower() != "bearer":
            raise ConfigurationError("opaque: must be a Bearer authenticator")
        self.authenticators = tuple(authenticators)
        self.opaque = opaque
        self._by_issuer = by_issuer
        self._first = authenticators[0]

    @property
    def scheme(self) -> str:
        """``Bearer``."""
        return _SCHEME

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether a Bearer token is present."""
        return self._first.has_credentials(conn)

    def account(self, conn: HTTPConnection) -> str | None:
        """Tokens claim no account before verification."""
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """The first authenticator's challenge (with its ``resource_metadata``)."""
        return self._first.challenge(reason, params)

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Pick the authenticator by the token's (unverified) ``iss``; it decides."""
        token = self._first.token(conn)
        if token is None:
            return None
        issuer = _unverified_issuer(token)
        if issuer is None:
            if self.opaque is not None and token.count(b".") != 2:
                return await self.opaque.authenticate(conn)
            return await self._first.authenticate(conn)  # its own answer for a bad JWT
        chosen = self._by_issuer.get(issuer)
        if chosen is None:
            raise Refusal(WRONG_AUDIENCE,
                          "The token's issuer ('iss') is not one this resource trusts.",
                          scheme=_SCHEME)
        return await chosen.authenticate(conn)


def _unverified_issuer(token: bytes) -> str | None:
    """The ``iss`` of a JWS compact token, unverified (only to choose a verifier)."""
    parts = token.split(b".")
    if len(parts) != 3 or len(parts[1]) > 16_384:
        return None
    try:
        payload = json.loads(base64url_decode(parts[1]))
    except (ValueError, RecursionError):
        return None
    issuer = payload.get("iss") if isinstance(payload, dict) else None
    return issuer if isinstance(issuer, str) else None
