"""Bearer tokens (RFC 6750) carrying JWTs, verified with pyjwt.

Where a token may come from: the ``Authorization: Bearer`` header; a websocket
subprotocol ``bearer.<token>`` (browsers cannot set headers on a websocket); opt-in, the
``access_token`` query parameter. A token sent by more than one method → 400
``invalid_request``.

What is checked, in order: size (before any parsing), shape, header (``alg`` on the key's
allow-list; ``kid`` only a dictionary key — ``jku``/``x5u``/``jwk`` are never followed),
signature, then ``iss``, ``aud``, required claims, ``exp``/``nbf``/``iat`` with leeway, then
revocation by ``jti`` and by subject. A bounded cache of verified tokens (keyed by a hash
of the token, never served past ``exp``, revocation checked on every use) makes a repeated
token cost next to nothing.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import jwt
from jwt.utils import base64url_decode
from starlette.requests import HTTPConnection

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError, Refusal
from ..formbody import FORM_TOKENS
from ..identity import Identity
from ..reasons import Reason
from ..stores.base import RevocationStore
from .keys import JWTKey, KeySource, StaticKeys

if TYPE_CHECKING:
    from ..oauth.metadata import ProtectedResource

__all__ = ["BearerAuthenticator"]

_SCHEME = "Bearer"
_SUBPROTOCOL_PREFIX = "bearer."
_DESCRIPTIONS = {
    Reason.CREDENTIALS_MALFORMED: "The access token is malformed",
    Reason.CREDENTIALS_INVALID: "The access token is invalid",
    Reason.TOKEN_EXPIRED: "The access token expired",
    Reason.TOKEN_NOT_YET_VALID: "The access token is not valid yet",
    Reason.CREDENTIALS_REVOKED: "The access token was revoked",
    Reason.INVALID_REQUEST: "The access token was sent by more than one method",
}
_JWT_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."


@dataclass(slots=True)
class _Verified:
    identity: Identity
    expires: float | None
    not_before: float | None


class BearerAuthenticator:
    """Bearer JWTs.

    Args:
        key: One verification key (``JWTKey.hs256(secret)``, ``JWTKey.from_pem(...)``).
        keys: A key source instead (``StaticKeys([...])`` for rotation, ``JWKSKeys(url)``).
        audience: Accepted ``aud`` value(s) — required: a token for another service must
            not work here.
        issuer: Accepted ``iss`` value(s).
        leeway: Seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        required_claims: Claims that must be present (``exp`` and ``sub`` by default).
        roles_claim: Claim holding the roles (a list, or a space-separated string).
        revocations: Where revoked ``jti`` values and per-subject "not before" times live.
        realm: Named in the challenge.
        allow_query: Accept the ``access_token`` query parameter (RFC 6750 §2.3; it leaks
            into logs — opt-in).
        allow_form_body: Accept ``access_token`` in an ``application/x-www-form-urlencoded``
            body of a POST, PUT or PATCH (RFC 6750 §2.2; opt-in). The middleware then reads
            such bodies, up to ``max_form_bytes``, before the app (which still receives the
            whole body); a longer body is passed on unread for a token.
        max_form_bytes: The most of a form body read for a token.
        allow_subprotocol: Accept ``bearer.<token>`` as a websocket subprotocol.
        max_token_bytes: Larger tokens are refused before any decoding.
        cache_size: Verified tokens remembered (0 disables the cache).
        clock: Current time, in seconds.
        resource: This API as an OAuth protected resource (RFC 9728): every challenge then
            carries ``resource_metadata`` (and, on a 401, its ``challenge_scopes``).
    """

    def __init__(
        self,
        *,
        key: JWTKey | None = None,
        keys: KeySource | None = None,
        audience: str | Sequence[str],
        issuer: str | Sequence[str] | None = None,
        leeway: float = 0.0,
        required_claims: Sequence[str] = ("exp", "sub"),
        roles_claim: str = "roles",
        revocations: RevocationStore | None = None,
        realm: str = "authguard",
        allow_query: bool = False,
        allow_form_body: bool = False,
        max_form_bytes: int = 16_384,
        allow_subprotocol: bool = True,
        max_token_bytes: int = 8192,
        cache_size: int = 10_000,
        clock: Callable[[], float] | None = None,
        resource: ProtectedResource | None = None,
    ) -> None:
        if (key is None) == (keys is None):
            raise ConfigurationError("key/keys: give exactly one of them")
        if not audience:
            raise ConfigurationError(
                "audience: a JWT authenticator needs an audience, or tokens minted for "
                "another service would be accepted here")
        if leeway < 0 or leeway > 300:
            raise ConfigurationError("leeway: must be between 0 and 300 seconds")
        if max_form_bytes < 256:
            raise ConfigurationError("max_form_bytes: must be at least 256")
        if max_token_bytes < 64:
            raise ConfigurationError("max_token_bytes: must be at least 64")
        checked_setting(realm, "realm")
        self.keys: KeySource = keys if keys is not None else StaticKeys([key])  # type: ignore[list-item]
        self.audience = [audience] if isinstance(audience, str) else list(audience)
        self.issuer = None if issuer is None else (
            [issuer] if isinstance(issuer, str) else list(issuer))
        self.leeway = float(leeway)
        self.required_claims = list(required_claims)
        self.roles_claim = roles_claim
        self.revocations = revocations
        self.realm = realm
        self.allow_query = allow_query
        self.reads_form_body = allow_form_body
        self.max_form_bytes = max_form_bytes
        self.allow_subprotocol = allow_subprotocol
        self.max_token_bytes = max_token_bytes
        self.cache_size = cache_size
        self._clock = clock
        self._cache: dict[bytes, _Verified] = {}
        self._jwt = jwt.PyJWT(options={
            "verify_signature": True, "verify_exp": False, "verify_nbf": False,
            "verify_iat": False, "verify_aud": True, "verify_iss": self.issuer is not None,
            "require": self.required_claims,
        })
        self.resource = resource
        self._resource_params, self._scope_params = _resource_params(resource)
        self._plain = Challenge(_SCHEME, {"realm": realm, **self._resource_params,
                                          **self._scope_params})
        # Challenges of refusals without extra parameters, one per reason: made and
        # formatted once, not on every refusal.
        self._by_reason: dict[Reason, Challenge] = {}

    # -- the protocol ----------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``Bearer``."""
        return _SCHEME

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether a Bearer token is present in any place this authenticator looks."""
        for name, value in conn.scope["headers"]:
            if name == b"authorization" and (
                value[:7].lower() == b"bearer " or value.lower() == b"bearer"
            ):
                return True
        if self.allow_subprotocol and conn.scope["type"] == "websocket":
            if any(p.startswith(_SUBPROTOCOL_PREFIX) for p in conn.scope.get("subprotocols", ())):
                return True
        if self.allow_query and b"access_token=" in conn.scope.get("query_string", b""):
            return True
        return bool(self.reads_form_body and conn.scope.get(FORM_TOKENS))

    def account(self, conn: HTTPConnection) -> str | None:
        """Tokens claim no account before verification."""
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """``Bearer realm="…"``, with ``error`` (and ``error_description``, ``scope``,
        ``acr_values``, ``max_age``) per RFC 6750 §3 / RFC 9470 when refusing a token."""
        if reason is None or reason.spec.bearer_error is None:
            if params and self.resource is not None and reason is None:
                # e.g. the route's own ``scope`` on a 401 without a token (RFC 9728 §5.1)
                return Challenge(_SCHEME, {**self._plain.params, **params, "realm": self.realm})
            return self._plain
        if not params:
            known = self._by_reason.get(reason)
            if known is None:
                known = self._by_reason[reason] = self._challenge_for(reason, None)
            return known
        return self._challenge_for(reason, params)

    def _challenge_for(self, reason: Reason, params: dict[str, str] | None) -> Challenge:
        out = {"realm": self.realm, "error": reason.spec.bearer_error or ""}
        description = _DESCRIPTIONS.get(reason)
        if description is not None:
            out["error_description"] = description
        for name, value in (params or {}).items():
            if name.lower() not in ("realm", "error"):
                out[name] = value
        if self.resource is not None:  # RFC 9728 §5.1: on 401 and 403 alike
            if reason.spec.status == 401 and "scope" not in out:
                out.update(self._scope_params)
            out.update(self._resource_params)
        return Challenge(_SCHEME, out)

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Verify the token; ``None`` when none was sent."""
        token = self._token(conn)
        if token is None:
            return None
        now = self._now()
        digest = sha256(token).digest() if self.cache_size else b""
        hit = self._cache.get(digest) if self.cache_size else None
        if hit is not None and self._still_valid(hit, now):
            # The same bytes passed the shape check and verified before.
            identity = hit.identity
        else:
            if hit is not None:
                del self._cache[digest]
            _check_shape(token)
            verified = await self._verify(token, now)
            identity = verified.identity
            if self.cache_size:
                if len(self._cache) >= self.cache_size:
                    self._cache.pop(next(iter(self._cache)))
                self._cache[digest] = verified
        if self.revocations is not None:  # on every use, cached or not
            await self._check_revocation(identity)
        return identity

    # -- extraction ----------------------------------------------------------------------

    def _token(self, conn: HTTPConnection) -> bytes | None:
        found: list[bytes] = []
        for name, value in conn.scope["headers"]:
            if name != b"authorization":
                continue
            scheme, _, rest = value.partition(b" ")
            if scheme.lower() != b"bearer":
                continue
            found.append(rest)
        if self.allow_subprotocol and conn.scope["type"] == "websocket":
            for p in conn.scope.get("subprotocols", ()):
                if p.startswith(_SUBPROTOCOL_PREFIX):
                    found.append(p[len(_SUBPROTOCOL_PREFIX):].encode("latin-1", "replace"))
        if self.allow_query:
            qs = conn.scope.get("query_string", b"")
            if b"access_token=" in qs:
                for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True):
                    if k == "access_token":
                        found.append(v.encode("latin-1", "replace"))
        if self.reads_form_body:
            found.extend(conn.scope.get(FORM_TOKENS, ()))
        if not found:
            return None
        if len(found) > 1:
            raise Refusal(Reason.INVALID_REQUEST, "Send the access token by exactly one method, "
                          "once.", scheme=_SCHEME)
        token = found[0].strip(b" \t")
        if len(token) > self.max_token_bytes:
            raise Refusal(Reason.CREDENTIALS_MALFORMED,
                          f"The access token is longer than {self.max_token_bytes} bytes.",
                          scheme=_SCHEME)
        if not token:
            _check_shape(token)
        return token

    # -- verification ----------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    def _still_valid(self, hit: _Verified, now: float) -> bool:
        if hit.expires is not None and now >= hit.expires + self.leeway:
            return False
        return not (hit.not_before is not None and now + self.leeway < hit.not_before)

    async def _verify(self, token: bytes, now: float) -> _Verified:
        try:
            header = _unverified_header(token)
        except jwt.InvalidTokenError:
            raise _malformed() from None
        alg = header.get("alg")
        kid = header.get("kid")
        if not isinstance(alg, str) or (kid is not None and not isinstance(kid, str)):
            raise _malformed()
        if kid is not None and len(kid) > 256:
            raise _invalid()
        candidates = await self.keys.keys_for(kid, alg) if alg.lower() != "none" else []
        if not candidates:
            raise _invalid()
        payload: dict[str, Any] | None = None
        for candidate in candidates[:4]:
            try:
                payload = self._jwt.decode(
                    token, candidate.key, algorithms=[candidate.algorithm],
                    audience=self.audience, issuer=self.issuer,
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.DecodeError:
                raise _malformed() from None
            except jwt.InvalidTokenError:
                raise _invalid() from None
            except (ValueError, TypeError):
                raise _invalid() from None
        if payload is None:
            raise _invalid()
        return self._check_times(payload, now)

    def _check_times(self, payload: dict[str, Any], now: float) -> _Verified:
        exp = _numeric(payload, "exp")
        nbf = _numeric(payload, "nbf")
        iat = _numeric(payload, "iat")
        if exp is not None and now >= exp + self.leeway:
            raise Refusal(Reason.TOKEN_EXPIRED, scheme=_SCHEME)
        for claim, when in (("nbf", nbf), ("iat", iat)):
            if when is not None and now + self.leeway < when:
                skew = math.ceil(when - now)
                raise Refusal(
                    Reason.TOKEN_NOT_YET_VALID,
                    f"The token's '{claim}' is {skew} s ahead of this server's clock (see the "
                    "Date header); the clocks of the issuer and this server disagree.",
                    scheme=_SCHEME, extensions={"clock_skew_seconds": skew},
                )
        return _Verified(self._identity(payload, iat), exp, nbf)

    def _identity(self, payload: Mapping[str, Any], iat: float | None) -> Identity:
        sub = payload.get("sub")
        if sub is None or not isinstance(sub, str | int) or isinstance(sub, bool) or sub == "":
            raise _invalid()  # no subject, or an empty one: nobody to be
        auth_time = _numeric(payload, "auth_time")
        acr = payload.get("acr")
        jti = payload.get("jti")
        return Identity(
            subject=str(sub),
            scheme=_SCHEME,
            scopes=_words(payload.get("scope")) | _words(payload.get("scp")),
            roles=_words(payload.get(self.roles_claim)),
            claims=dict(payload),
            auth_time=auth_time,
            acr=acr if isinstance(acr, str) else None,
            issued_at=iat,
            credential_id=jti if isinstance(jti, str) else None,
        )

    async def _check_revocation(self, identity: Identity) -> None:
        store = self.revocations
        if store is None:
            return
        if identity.credential_id is not None and await store.is_revoked(identity.credential_id):
            raise Refusal(Reason.CREDENTIALS_REVOKED, scheme=_SCHEME)
        not_before = await store.subject_not_before(identity.subject)
        if not_before is not None and (
            identity.issued_at is None or identity.issued_at < not_before
        ):
            raise Refusal(Reason.CREDENTIALS_REVOKED,
                          "Credentials issued before the account's last security change "
                          "were revoked.", scheme=_SCHEME)


def _resource_params(resource: ProtectedResource | None
                     ) -> tuple[dict[str, str], dict[str, str]]:
    """The ``resource_metadata`` and the 401 ``scope`` parameters of a protected resource."""
    if resource is None:
        return {}, {}
    scopes = " ".join(resource.challenge_scopes)
    return resource.challenge_params(), ({"scope": scopes} if scopes else {})


def _check_shape(token: bytes) -> None:
    """Three base64url parts, or 401 ``credentials_malformed`` (before any decoding)."""
    # translate() deletes every base64url character and the dots: nothing may be left
    if not token or token.count(b".") != 2 or token.translate(None, _JWT_ALPHABET):
        raise Refusal(Reason.CREDENTIALS_MALFORMED,
                      "The access token is not a JWT (three base64url parts).",
                      scheme=_SCHEME)


# The last character of a canonical base64url segment whose length is 2 or 3 modulo 4:
# its unused low bits (4 or 2) are zero.
_LAST_OF = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}


def _canonical_segment(segment: bytes) -> bool:
    """Whether a segment of base64url characters (no padding) decodes, canonically (as
    pyjwt requires: re-encoding gives the same text)."""
    rest = len(segment) % 4
    if rest == 0:
        return True
    return rest != 1 and segment[-1] in _LAST_OF[rest]


# Decoded headers by their exact segment: one issuer's tokens share a header, so a new
# token's header is decoded once, not on each first sight. Bounded; short segments only.
_HEADERS: dict[bytes, dict[str, Any]] = {}
_HEADERS_MAX = 256
_HEADER_KEY_MAX = 512


def _unverified_header(token: bytes) -> dict[str, Any]:
    """``jwt.get_unverified_header(token)`` for a token that passed :func:`_check_shape`.

    pyjwt checks every segment's characters one by one, and ``decode`` checks them all
    again; the shape check already proved them base64url (no padding, two dots). What
    remains is checked here: each segment decodes canonically (a length and a last
    character), the header is a JSON object. Anything unusual (``b64``, ``crit``, a
    ``kid`` that is not a string, any failure) goes to pyjwt itself, for its exact
    answer. The returned header may be shared with other tokens: read it, never change it.
    """
    head, payload, signature = token.split(b".")
    if _canonical_segment(head) and _canonical_segment(payload) and _canonical_segment(
            signature):
        known = _HEADERS.get(head)
        if known is not None:
            return known
        try:
            header = json.loads(base64url_decode(head))
        except (ValueError, RecursionError):
            header = None
        if (isinstance(header, dict) and "b64" not in header and "crit" not in header
                and isinstance(header.get("kid", ""), str)):
            if len(head) <= _HEADER_KEY_MAX:
                if len(_HEADERS) >= _HEADERS_MAX:
                    _HEADERS.clear()
                _HEADERS[head] = header
            return header
    slow: dict[str, Any] = jwt.get_unverified_header(token)
    return slow


def _malformed() -> Refusal:
    return Refusal(Reason.CREDENTIALS_MALFORMED, "The access token is not a well-formed JWT.",
                   scheme=_SCHEME)


def _invalid() -> Refusal:
    return Refusal(Reason.CREDENTIALS_INVALID, scheme=_SCHEME)


def _numeric(payload: Mapping[str, Any], claim: str) -> float | None:
    value = payload.get(claim)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Refusal(Reason.CREDENTIALS_INVALID, f"The token's '{claim}' is not a number.",
                      scheme=_SCHEME)
    return float(value)


_NO_WORDS: frozenset[str] = frozenset()


def _words(value: Any) -> frozenset[str]:
    """The words of a claim (a space-separated string or a list of strings); anything
    else has none."""
    if value is None:
        return _NO_WORDS
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return _NO_WORDS
