"""JWT checks on top of pyjwt: claim types, the token type, and pyjwt's errors as reasons.

pyjwt verifies the signature and the registered claims (``exp``, ``nbf``, ``iat`` with
leeway, ``iss``, ``aud``, required claims) and raises one exception type per failed check.
This module adds only what pyjwt does not do:

* claim *types*, checked right after the signature and before pyjwt reads the claims: a
  NumericDate (``exp``, ``nbf``, ``iat``, and OpenID Connect's ``auth_time``) is a finite
  JSON number that fits a float (RFC 7519 §2, §4.1.4-6) — not a string, a boolean, a list,
  NaN, or a 400-digit integer; ``iss`` is a string and ``aud`` a string or a list of strings
  (RFC 7519 §4.1.1, §4.1.3);
* the ``typ`` header: only access tokens are accepted (RFC 8725 §3.11, RFC 9068 §2.1);
* :func:`check_shape` and :func:`key_header`: the cheap look before pyjwt (three
  base64url parts; the ``alg`` and ``kid`` that choose the key);
* :func:`refusal_for`: each pyjwt error as a :class:`~authguard.Refusal` with its reason,
  and for a token that is not valid yet the clock skew in seconds.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import jwt
from jwt.utils import base64url_decode

from ..errors import ConfigurationError, Refusal
from ..reasons import Reason

log = logging.getLogger("authguard")

__all__ = [
    "ACCESS_TOKEN_TYPES",
    "NUMERIC_DATE_CLAIMS",
    "ClaimTypeError",
    "TypedClaimsJWT",
    "accepted_audiences",
    "accepted_token_types",
    "check_claim_types",
    "check_shape",
    "check_token_type",
    "key_header",
    "malformed",
    "numeric_date",
    "refusal_for",
]

_JWT_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."

NUMERIC_DATE_CLAIMS = ("exp", "nbf", "iat", "auth_time")
"""Claims whose value must be a NumericDate when present."""

ACCESS_TOKEN_TYPES = ("at+jwt", "JWT")
"""``typ`` values accepted by default: RFC 9068 access tokens, and plain JWTs (what most
issuers and pyjwt write)."""


class ClaimTypeError(jwt.InvalidTokenError):
    """A registered claim has a value of the wrong JSON type."""

    def __init__(self, claim: str, expected: str) -> None:
        super().__init__(f"The token's '{claim}' is not {expected}.")
        self.claim = claim


def numeric_date(payload: Mapping[str, Any], claim: str) -> float | None:
    """The claim as seconds since the epoch; ``None`` when absent.

    Raises :class:`ClaimTypeError` for anything but a finite JSON number (a JSON ``null``
    included) or a number too large for a float.
    """
    if claim not in payload:
        return None
    value = payload[claim]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ClaimTypeError(claim, "a number (NumericDate)")
    try:
        seconds = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ClaimTypeError(claim, "a number (NumericDate) in range") from None
    if not math.isfinite(seconds):
        raise ClaimTypeError(claim, "a finite number (NumericDate)")
    return seconds


def check_claim_types(payload: Mapping[str, Any]) -> None:
    """Raise :class:`ClaimTypeError` when a registered claim has the wrong type."""
    for claim in NUMERIC_DATE_CLAIMS:
        numeric_date(payload, claim)
    if "iss" in payload and not isinstance(payload["iss"], str):
        raise ClaimTypeError("iss", "a string")
    aud = payload.get("aud", "")
    if not isinstance(aud, str) and not (
            isinstance(aud, list) and all(isinstance(a, str) for a in aud)):
        raise ClaimTypeError("aud", "a string or a list of strings")


class TypedClaimsJWT(jwt.PyJWT):
    """pyjwt's decoder, with claim types checked once the signature has verified.

    ``_decode_payload`` is pyjwt's documented hook for subclasses ("intended to be
    overridden … to decode the payload in a different way"); pyjwt calls it after the
    signature check and before its own claim checks, so those only ever see claims of the
    right type.
    """

    def _decode_payload(self, decoded: dict[str, Any]) -> dict[str, Any]:
        payload = super()._decode_payload(decoded)
        check_claim_types(payload)
        return payload


def accepted_audiences(audience: str | Sequence[str] | None,
                       accept_any: bool) -> list[str] | None:
    """The accepted audiences; ``None`` when any is accepted (and said so explicitly)."""
    if accept_any:
        if audience:
            raise ConfigurationError("accept_any_audience: give it or 'audience', not both")
        log.warning("authguard: BearerAuthenticator(accept_any_audience=True) accepts tokens "
                    "issued for ANY audience: a token your issuer minted for another API "
                    "works here too. Set 'audience' to this API's identifier instead.")
        return None
    values = [audience] if isinstance(audience, str) else list(audience or ())
    if not values or not all(isinstance(v, str) and v for v in values):
        raise ConfigurationError(
            "audience: a JWT authenticator needs an audience (this API's identifier, e.g. "
            "its resource URI), or tokens minted for another service would be accepted here; "
            "to accept any audience anyway, say so with accept_any_audience=True")
    return values


def _normal_type(value: str) -> str:
    """A ``typ`` value compared as RFC 7515 §4.1.9 says: case-insensitively, with the
    ``application/`` prefix optional."""
    value = value.lower()
    return value.removeprefix("application/")


def accepted_token_types(types: Sequence[str]) -> frozenset[str]:
    """The accepted ``typ`` values, normalised; :class:`ConfigurationError` when unusable."""
    if isinstance(types, str) or not types:
        raise ConfigurationError("token_types: give a non-empty list of 'typ' values, e.g. "
                                 "['at+jwt']")
    for value in types:
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise ConfigurationError(f"token_types: {value!r} is not a 'typ' value")
    return frozenset(_normal_type(t) for t in types)


def check_token_type(header: Mapping[str, Any], accepted: frozenset[str], *,
                     required: bool, scheme: str) -> None:
    """Refuse a token whose ``typ`` says it is not an access token (RFC 8725 §3.11: a
    refresh token, an ID token, a DPoP proof or a logout token signed by the same issuer
    must not pass as one)."""
    typ = header.get("typ")
    if typ is None:
        if required:
            raise Refusal(Reason.CREDENTIALS_INVALID,
                          "The token has no 'typ' header; this API accepts only explicitly "
                          "typed access tokens (" + ", ".join(sorted(accepted)) + ").",
                          scheme=scheme)
        return
    if not isinstance(typ, str) or _normal_type(typ) not in accepted:
        raise Refusal(Reason.CREDENTIALS_INVALID,
                      "The token's 'typ' header says it is not an access token this API "
                      "accepts (" + ", ".join(sorted(accepted)) + ").", scheme=scheme)


_WRONG_AUDIENCE = {
    "aud": "The access token was issued for another API: its 'aud' claim does not name this "
           "one. Get a token for this API (with OAuth, name it in the 'resource' parameter of "
           "the authorization and token requests, RFC 8707).",
    "iss": "The access token comes from an issuer this API does not trust: its 'iss' claim "
           "does not match. Get a token from the authorization server this API names.",
}
_NO_CLAIM = {
    "aud": "The access token names no audience ('aud'); this API accepts only tokens issued "
           "for it. Get a token for this API (with OAuth, name it in the 'resource' "
           "parameter, RFC 8707).",
    "iss": "The access token names no issuer ('iss'); this API accepts only tokens from the "
           "authorization server it trusts.",
}


def refusal_for(error: jwt.PyJWTError, token: bytes, *, leeway: float,
                scheme: str) -> Refusal:
    """The refusal for a pyjwt error raised while decoding ``token``.

    Only called once the signature has verified for errors about claims (pyjwt checks the
    signature first), so their details may name the claim. A signature that does not
    verify is handled by the caller (another key may fit).
    """
    if isinstance(error, jwt.ExpiredSignatureError):
        return Refusal(Reason.TOKEN_EXPIRED, scheme=scheme)
    if isinstance(error, jwt.ImmatureSignatureError):
        return _not_yet_valid(token, leeway, scheme)
    if isinstance(error, jwt.InvalidAudienceError):
        return Refusal(Reason.TOKEN_WRONG_AUDIENCE, _WRONG_AUDIENCE["aud"], scheme=scheme)
    if isinstance(error, jwt.InvalidIssuerError):
        return Refusal(Reason.TOKEN_WRONG_AUDIENCE, _WRONG_AUDIENCE["iss"], scheme=scheme)
    if isinstance(error, jwt.MissingRequiredClaimError):
        if error.claim in _NO_CLAIM:
            return Refusal(Reason.TOKEN_WRONG_AUDIENCE, _NO_CLAIM[error.claim], scheme=scheme)
        return Refusal(Reason.CREDENTIALS_INVALID,
                       f"The token lacks the claim '{error.claim}', which this API requires.",
                       scheme=scheme)
    if isinstance(error, ClaimTypeError):
        return Refusal(Reason.CREDENTIALS_INVALID, str(error), scheme=scheme)
    if isinstance(error, jwt.DecodeError):
        return malformed(scheme)
    return Refusal(Reason.CREDENTIALS_INVALID, scheme=scheme)


def key_header(token: bytes, scheme: str) -> Mapping[str, Any]:
    """The ``alg`` and ``kid`` of a token that passed :func:`check_shape`, read only to
    choose the keys (RFC 7515 §4.1.1, §4.1.4). pyjwt then decodes the header again and
    checks all of it (canonical base64url, ``crit``, ``b64``) with the signature, so a
    header that gets past this look but not past pyjwt is still refused.

    ``jwt.get_unverified_header`` would check every character of all three segments once
    more — a sixth of the cost of verifying an HS256 token — to read two members.
    """
    try:
        header = json.loads(base64url_decode(token[:token.index(b".")]))
    except (ValueError, RecursionError):
        raise malformed(scheme) from None
    if not isinstance(header, dict) or not isinstance(header.get("kid", ""), str):
        raise malformed(scheme)
    return header


def check_shape(token: bytes, scheme: str) -> None:
    """Three base64url parts, or 401 ``credentials_malformed`` (before any decoding)."""
    # translate() deletes every base64url character and the dots: nothing may be left
    if not token or token.count(b".") != 2 or token.translate(None, _JWT_ALPHABET):
        raise Refusal(Reason.CREDENTIALS_MALFORMED,
                      "The access token is not a JWT (three base64url parts).",
                      scheme=scheme)


def malformed(scheme: str) -> Refusal:
    """401 ``credentials_malformed``: not a well-formed JWT."""
    return Refusal(Reason.CREDENTIALS_MALFORMED, "The access token is not a well-formed JWT.",
                   scheme=scheme)


def _not_yet_valid(token: bytes, leeway: float, scheme: str) -> Refusal:
    """``nbf`` or ``iat`` lies ahead: say which, and by how many seconds (the one figure
    pyjwt does not give). The signature has verified, so the claims may be read."""
    payload = jwt.decode(token, options={"verify_signature": False})
    now = time.time()
    for claim in ("nbf", "iat"):
        when = numeric_date(payload, claim)
        if when is not None and when > now + leeway:
            skew = math.ceil(when - now)
            return Refusal(
                Reason.TOKEN_NOT_YET_VALID,
                f"The token's '{claim}' is {skew} s ahead of this server's clock (see the "
                "Date header); the clocks of the issuer and this server disagree.",
                scheme=scheme, extensions={"clock_skew_seconds": skew},
            )
    return Refusal(Reason.TOKEN_NOT_YET_VALID, scheme=scheme)
