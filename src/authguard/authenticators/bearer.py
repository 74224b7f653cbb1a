"""Bearer tokens (RFC 6750) carrying JWTs, verified with pyjwt.

Where a token may come from: the ``Authorization: Bearer`` header; a websocket
subprotocol ``bearer.<token>`` (browsers cannot set headers on a websocket); opt-in, the
``access_token`` query parameter or form body. A token sent by more than one method → 400
``invalid_request``.

What is checked, in order (:meth:`BearerAuthenticator.verify_token`): size and shape before
any parsing; the header (``alg`` picks the keys, ``kid`` is only a dictionary key —
``jku``/``x5u``/``jwk`` are never followed); then pyjwt verifies the signature, the claim
types (:mod:`~authguard.authenticators.jwt_checks`), ``exp``/``nbf``/``iat`` with leeway,
``iss``, ``aud`` and the required claims; then the ``typ`` header (RFC 8725 §3.11), the
subject, and revocation by ``jti`` and by subject. A bounded cache of verified tokens
(keyed by a hash of the token, never served past ``exp``, revocation checked on every use)
makes a repeated token cost next to nothing.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import TYPE_CHECKING, Any

import jwt
from starlette.requests import HTTPConnection

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..reasons import Reason
from ..stores.base import RevocationStore
from .base import CacheStats
from .bearer_token import TokenPlaces, bearer_token, has_bearer_token
from .dpop import refuse_bound_bearer
from .jwt_checks import (
    ACCESS_TOKEN_TYPES,
    TypedClaimsJWT,
    accepted_audiences,
    accepted_token_types,
    check_shape,
    check_token_type,
    key_header,
    malformed,
    numeric_date,
    refusal_for,
)
from .keys import JWTKey, KeySource, StaticKeys

if TYPE_CHECKING:
    from ..oauth.metadata import ProtectedResource

__all__ = ["BearerAuthenticator"]

_SCHEME = "Bearer"
_DESCRIPTIONS = {
    Reason.CREDENTIALS_MALFORMED: "The access token is malformed",
    Reason.CREDENTIALS_INVALID: "The access token is invalid",
    Reason.TOKEN_WRONG_AUDIENCE: "The access token is for another audience or issuer",
    Reason.TOKEN_EXPIRED: "The access token expired",
    Reason.TOKEN_NOT_YET_VALID: "The access token is not valid yet",
    Reason.CREDENTIALS_REVOKED: "The access token was revoked",
    Reason.INVALID_REQUEST: "The access token was sent by more than one method",
}
_MAX_KID = 256
_MAX_KEYS_TRIED = 4


@dataclass(frozen=True, slots=True)
class _Verified:
    identity: Identity
    valid_until: float  # exp + leeway; infinity for a token without exp


class BearerAuthenticator:
    """Bearer JWTs.

    Args:
        key: One verification key (``JWTKey.hs256(secret)``, ``JWTKey.from_pem(...)``).
        keys: A key source instead (``StaticKeys([...])`` for rotation, ``JWKSKeys(url)``).
        audience: Accepted ``aud`` value(s): a token must name at least one (RFC 7519
            §4.1.3; with OAuth, this API's resource URI, RFC 8707). Required, so that a
            token minted for another API is refused here (``token_wrong_audience``).
        accept_any_audience: Accept tokens whatever their ``aud`` says, instead of giving
            ``audience``. Any token your issuer signs for any API then works here; logged
            as a warning at start-up.
        issuer: Accepted ``iss`` value(s); a token from another issuer is refused with
            ``token_wrong_audience``. Give it whenever the keys are shared by several
            issuers (multi-tenant authorization servers).
        leeway: Seconds of clock skew tolerated for ``exp``, ``nbf`` and ``iat``.
        required_claims: Claims that must be present (``exp`` and ``sub`` by default).
        token_types: Accepted ``typ`` header values (case-insensitive, ``application/``
            optional, RFC 7515 §4.1.9). The default takes RFC 9068 access tokens
            (``at+jwt``) and plain ``JWT``; other types (``refresh+jwt``, ``dpop+jwt``,
            ``logout+jwt``…) are refused (RFC 8725 §3.11).
        require_token_type: Refuse tokens without a ``typ`` header (with
            ``token_types=["at+jwt"]``: RFC 9068 strictly).
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
        cache_size: Verified tokens remembered (0 disables the cache); the oldest is
            dropped when full.
        clock: Deprecated. pyjwt checks ``exp``/``nbf``/``iat`` against the system clock;
            this clock only decides when a cached token is dropped. In tests, move the
            system clock instead (e.g. with ``time-machine``).
        resource: This API as an OAuth protected resource (RFC 9728): every challenge then
            carries ``resource_metadata`` (and, on a 401, its ``challenge_scopes``).
    """

    def __init__(
        self,
        *,
        key: JWTKey | None = None,
        keys: KeySource | None = None,
        audience: str | Sequence[str] | None = None,
        accept_any_audience: bool = False,
        issuer: str | Sequence[str] | None = None,
        leeway: float = 0.0,
        required_claims: Sequence[str] = ("exp", "sub"),
        token_types: Sequence[str] = ACCESS_TOKEN_TYPES,
        require_token_type: bool = False,
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
        self.audience = accepted_audiences(audience, accept_any_audience)
        if leeway < 0 or leeway > 300:
            raise ConfigurationError("leeway: must be between 0 and 300 seconds")
        if max_form_bytes < 256:
            raise ConfigurationError("max_form_bytes: must be at least 256")
        if max_token_bytes < 64:
            raise ConfigurationError("max_token_bytes: must be at least 64")
        if cache_size < 0:
            raise ConfigurationError("cache_size: must be 0 (no cache) or more")
        checked_setting(realm, "realm")
        if clock is not None:
            warnings.warn("BearerAuthenticator(clock=...) is deprecated: pyjwt checks the "
                          "token's times against the system clock; move that clock in tests",
                          DeprecationWarning, stacklevel=2)
        self.keys: KeySource = keys if keys is not None else StaticKeys([key])  # type: ignore[list-item]
        self.accept_any_audience = accept_any_audience
        self.issuer = None if issuer is None else (
            [issuer] if isinstance(issuer, str) else list(issuer))
        if self.issuer is not None and not (
                self.issuer and all(isinstance(i, str) and i for i in self.issuer)):
            raise ConfigurationError("issuer: give the issuer's identifier (its exact 'iss' "
                                     "value), or leave it out")
        self.leeway = float(leeway)
        self.required_claims = list(required_claims)
        self.token_types = accepted_token_types(token_types)
        self.require_token_type = require_token_type
        self.roles_claim = roles_claim
        self.revocations = revocations
        self.realm = realm
        self.allow_query = allow_query
        self.reads_form_body = allow_form_body
        self.max_form_bytes = max_form_bytes
        self.allow_subprotocol = allow_subprotocol
        self._places = TokenPlaces(query=allow_query, subprotocol=allow_subprotocol,
                                   form_body=allow_form_body)
        self.max_token_bytes = max_token_bytes
        self.cache_size = cache_size
        self._clock = clock or time.time
        self._cache: OrderedDict[bytes, _Verified] = OrderedDict()
        self._hits = self._misses = 0
        self._jwt = TypedClaimsJWT(options={
            "verify_signature": True, "verify_exp": True, "verify_nbf": True,
            "verify_iat": True, "verify_aud": self.audience is not None,
            "verify_iss": self.issuer is not None, "require": self.required_claims,
        })
        self.resource = resource
        self._resource_params, self._scope_params = _resource_params(resource)
        self._plain = Challenge(_SCHEME, {"realm": realm, **self._resource_params,
                                          **self._scope_params})
        # The challenge of each refusal reason without extra parameters, made once.
        self._by_reason = {reason: self._challenge_for(reason, None)
                           for reason in Reason if reason.spec.bearer_error is not None}

    # -- the protocol ----------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``Bearer``."""
        return _SCHEME

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether a Bearer token is present in any place this authenticator looks."""
        return has_bearer_token(conn, self._places)

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
            return self._by_reason[reason]
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

    def cache_stats(self) -> CacheStats:
        """The verified-token cache: its size, and its hits and misses so far."""
        return CacheStats(len(self._cache), self._hits, self._misses)

    def token(self, conn: HTTPConnection) -> bytes | None:
        """The request's Bearer token, from the places this authenticator reads (the
        ``Authorization`` header, and as configured a subprotocol, the query or the form
        body); ``None`` when there is none. Raises a 400 Refusal for a token sent twice."""
        return bearer_token(conn, self._places)

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """The token of the request (see :meth:`verify_token`); ``None`` when none was sent."""
        token = bearer_token(conn, self._places)
        if token is None:
            return None
        identity = await self.verify_token(token)
        refuse_bound_bearer(identity)  # RFC 9449 §7.2: a DPoP-bound token needs its proof
        return identity

    # -- validation ----------------------------------------------------------------------

    async def verify_token(self, token: str | bytes) -> Identity:
        """Validate one access token (a JWT) and return who it speaks for.

        Everything this authenticator checks is checked here, whatever carried the token
        (header, subprotocol, query, form — or another scheme's authenticator reusing this
        one, e.g. for a sender-constrained token): size, shape, key, signature, claim types,
        times, issuer, audience, required claims, ``typ``, subject, and revocation (on every
        use, cached or not).

        Returns:
            The :class:`~authguard.Identity`; the verified claims are its ``claims``
            (``identity.claims["cnf"]`` for a confirmation claim, for instance).

        Raises:
            Refusal: The token is malformed, invalid, expired, not valid yet, for another
                audience or issuer, or revoked (each with its reason).
            AuthUnavailable: The keys or the revocation store cannot be reached right now.
        """
        raw = token.encode("latin-1", "replace") if isinstance(token, str) else token
        if len(raw) > self.max_token_bytes:
            raise Refusal(Reason.CREDENTIALS_MALFORMED,
                          f"The access token is longer than {self.max_token_bytes} bytes.",
                          scheme=_SCHEME)
        digest = sha256(raw).digest() if self.cache_size else b""
        hit = self._cache.get(digest) if self.cache_size else None
        if hit is not None and self._clock() < hit.valid_until:
            # The same bytes passed every check before, and have not expired since.
            identity = hit.identity
            self._hits += 1
        else:
            self._misses += 1
            if hit is not None:
                del self._cache[digest]
            verified = await self._verify(raw)
            identity = verified.identity
            if self.cache_size:
                if len(self._cache) >= self.cache_size:
                    self._cache.popitem(last=False)  # the oldest: O(1)
                self._cache[digest] = verified
        if self.revocations is not None:
            await self._check_revocation(identity)
        return identity

    async def _verify(self, token: bytes) -> _Verified:
        check_shape(token, _SCHEME)
        header = key_header(token, _SCHEME)
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str):
            raise malformed(_SCHEME)
        if kid is not None and len(kid) > _MAX_KID:
            raise _invalid()
        candidates = await self.keys.keys_for(kid, alg) if alg.lower() != "none" else []
        for candidate in candidates[:_MAX_KEYS_TRIED]:
            try:
                decoded = self._jwt.decode_complete(
                    token, candidate.key, algorithms=[candidate.algorithm],
                    audience=self.audience, issuer=self.issuer, leeway=self.leeway)
            except (jwt.InvalidSignatureError, jwt.InvalidAlgorithmError):
                continue  # another key may fit (rotation without kid)
            except jwt.PyJWTError as error:
                raise refusal_for(error, token, leeway=self.leeway, scheme=_SCHEME) from None
            except (ValueError, TypeError):
                raise _invalid() from None
            check_token_type(decoded["header"], self.token_types,
                             required=self.require_token_type, scheme=_SCHEME)
            payload: dict[str, Any] = decoded["payload"]
            exp = numeric_date(payload, "exp")
            valid_until = float("inf") if exp is None else exp + self.leeway
            return _Verified(self._identity(payload), valid_until)
        raise _invalid()

    def _identity(self, payload: Mapping[str, Any]) -> Identity:
        sub = payload.get("sub")
        if not isinstance(sub, str) or not sub:
            raise _invalid()  # no subject, or an empty one: nobody to be
        acr = payload.get("acr")
        jti = payload.get("jti")
        return Identity(
            subject=sub,
            scheme=_SCHEME,
            scopes=_words(payload.get("scope")) | _words(payload.get("scp")),
            roles=_words(payload.get(self.roles_claim)),
            claims=payload,
            auth_time=numeric_date(payload, "auth_time"),
            acr=acr if isinstance(acr, str) else None,
            issued_at=numeric_date(payload, "iat"),
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



def _invalid() -> Refusal:
    return Refusal(Reason.CREDENTIALS_INVALID, scheme=_SCHEME)


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
