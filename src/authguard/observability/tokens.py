"""What an event may say about the JWT a refused request carried.

The token did not pass, so it is read without verifying it (RFC 7519 §7.2 steps 1-8,
no signature): its values may be forged, and are escaped and bounded like any request
data. Only the issuer, ``kid``, audience, client id and the clock skew its times show
are kept — never the token, never a hash of it. Whether the audience and the ``kid`` are
ones this server accepts is worked out from the guard's Bearer authenticators, so that
the detector can tell a token for another API or a key it does not know from a bad one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jwt.utils import base64url_decode
from starlette.types import Scope

from ..reasons import Reason
from .safety import optional_text

__all__ = ["TokenFacts", "claim_text", "token_facts"]

# Longest Authorization value decoded for an event.
_MAX_TOKEN = 8192
_TOKEN_SCHEMES = (b"bearer ", b"dpop ")


@dataclass(frozen=True, slots=True)
class TokenFacts:
    """What an event may say about a JWT: never the token, never a hash of it.

    Attributes:
        issuer: ``iss``.
        kid: The header's ``kid``.
        audience: ``aud`` (several joined by spaces).
        client_id: ``azp`` or ``client_id``: the OAuth client the token was minted for.
        skew_seconds: For a token not yet valid, how far ``nbf``/``iat`` lie in the
            server's future; for an expired one, how long ago ``exp`` passed.
        audience_accepted: Whether ``aud`` names an audience this server accepts
            (``False`` also when the token has none); ``None`` when no authenticator says.
        kid_known: Whether a key with this ``kid`` is configured (or cached from the
            JWKS); ``None`` when the token has no ``kid`` or the keys cannot tell.
    """

    issuer: str | None = None
    kid: str | None = None
    audience: str | None = None
    client_id: str | None = None
    skew_seconds: float | None = None
    audience_accepted: bool | None = None
    kid_known: bool | None = None


def token_facts(scope: Scope, reason: Reason | None, now: float,
                authenticators: Iterable[Any] = ()) -> TokenFacts:
    """What the request's Bearer/DPoP JWT says (empty facts when there is none)."""
    token: bytes | None = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            if len(value) <= _MAX_TOKEN and value[:7].lower().startswith(_TOKEN_SCHEMES):
                token = value.split(b" ", 1)[1].strip()
            break
    if not token or token.count(b".") != 2:
        return TokenFacts()
    # Two JSON objects read once each (pyjwt's base64url), as the Bearer authenticator reads
    # the header to choose its keys: pyjwt's unverified decode would check every character
    # of all three segments twice more, for values that are only reported, never trusted.
    head, body, _ = token.split(b".")
    try:
        header = json.loads(base64url_decode(head))
        claims = json.loads(base64url_decode(body))
    except (ValueError, RecursionError):
        return TokenFacts()
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return TokenFacts()
    raw_aud = claims.get("aud")
    auds = ([str(a) for a in raw_aud[:8]] if isinstance(raw_aud, list)
            else [raw_aud] if isinstance(raw_aud, str) else [])
    kid = header.get("kid")
    accepted, known = _accepts(authenticators, auds, kid if isinstance(kid, str) else None)
    return TokenFacts(
        issuer=claim_text(claims.get("iss")),
        kid=claim_text(kid),
        audience=optional_text(" ".join(auds), 128) if auds else None,
        client_id=claim_text(claims.get("azp") or claims.get("client_id")),
        skew_seconds=_skew(claims, reason, now),
        audience_accepted=accepted,
        kid_known=known,
    )


def claim_text(value: object) -> str | None:
    """A claim's value fit for an event: escaped and bounded, or ``None``."""
    if value is None or isinstance(value, dict | list):
        return None
    return optional_text(value, 128)


def _accepts(authenticators: Iterable[Any], auds: list[str],
             kid: str | None) -> tuple[bool | None, bool | None]:
    accepted: bool | None = None
    known: bool | None = None
    for a in authenticators:
        audience = getattr(a, "audience", None)
        if isinstance(audience, list) and audience:
            accepted = bool(accepted) or any(x in audience for x in auds)
        kids = _kids(getattr(a, "keys", None))
        if kid is not None and kids is not None:
            known = bool(known) or kid in kids
    return accepted, known


def _kids(source: Any) -> set[str] | None:
    """The ``kid`` of every key ``source`` holds now (without fetching anything), or
    ``None`` when it cannot tell (a key without ``kid`` matches any)."""
    keys = getattr(source, "keys", None)  # StaticKeys
    if not isinstance(keys, tuple):
        cache = getattr(source, "_cache", None)  # JWKSKeys: what it fetched last
        if cache is None or not isinstance(getattr(cache, "keys", None), dict):
            return None
        if getattr(cache, "anonymous", None):
            return None
        return set(cache.keys)
    kids = {k.kid for k in keys}
    return None if None in kids else {k for k in kids if k is not None}


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _skew(claims: Mapping[str, Any], reason: Reason | None, now: float) -> float | None:
    if reason is Reason.TOKEN_NOT_YET_VALID:
        ahead = [t for t in (_number(claims.get("nbf")), _number(claims.get("iat")))
                 if t is not None]
        return round(max(ahead) - now, 3) if ahead else None
    if reason is Reason.TOKEN_EXPIRED:
        exp = _number(claims.get("exp"))
        return round(now - exp, 3) if exp is not None else None
    return None
