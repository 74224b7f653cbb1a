"""Reading an active RFC 7662 introspection answer (§2.2) the way a JWT's claims are read:
times with leeway, the audience (RFC 8707), the issuer, then the identity."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import Refusal
from ..identity import Identity
from ..reasons import Reason
from .issuers import WRONG_AUDIENCE

__all__ = ["active_identity", "number"]

_SCHEME = "Bearer"


def number(answer: Mapping[str, Any], name: str) -> float | None:
    """A numeric member (``exp``, ``nbf``, ``iat``); anything else counts as absent."""
    value = answer.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(
            value):
        return None
    return float(value)


def _words(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def active_identity(answer: Mapping[str, Any], now: float, *, audience: frozenset[str],
                    issuer: frozenset[str] | None, leeway: float,
                    roles_claim: str) -> Identity:
    """The identity of an ``active: true`` answer, or the refusal its members call for.

    The subject is ``sub``, else ``username``, else ``client_id`` (a client's own token);
    the claims are the whole answer (``cnf`` included, for sender-constrained tokens).
    """
    exp = number(answer, "exp")
    if exp is not None and now >= exp + leeway:
        raise Refusal(Reason.TOKEN_EXPIRED, scheme=_SCHEME)
    nbf = number(answer, "nbf")
    if nbf is not None and now + leeway < nbf:
        raise Refusal(Reason.TOKEN_NOT_YET_VALID, scheme=_SCHEME)
    aud = answer.get("aud")
    auds = {aud} if isinstance(aud, str) else (
        {a for a in aud if isinstance(a, str)} if isinstance(aud, list) else set())
    if not auds & audience:
        raise Refusal(WRONG_AUDIENCE, "The token was issued for another resource ('aud'); "
                      "get one for this resource (RFC 8707).", scheme=_SCHEME)
    iss = answer.get("iss")
    if issuer is not None and iss is not None and iss not in issuer:
        raise Refusal(WRONG_AUDIENCE, "The token's issuer ('iss') is not one this resource "
                      "trusts.", scheme=_SCHEME)
    subject = next((v for v in (answer.get("sub"), answer.get("username"),
                                answer.get("client_id")) if isinstance(v, str) and v), None)
    if subject is None:
        raise Refusal(Reason.CREDENTIALS_INVALID, scheme=_SCHEME)
    jti = answer.get("jti")
    return Identity(
        subject=subject,
        scheme=_SCHEME,
        scopes=_words(answer.get("scope")),
        roles=_words(answer.get(roles_claim)),
        claims=dict(answer),
        issued_at=number(answer, "iat"),
        credential_id=jti if isinstance(jti, str) else None,
    )
