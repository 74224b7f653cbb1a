"""DPoP (RFC 9449): access tokens bound to a key, sent with a proof of possession.

``Authorization: DPoP <token>`` plus one ``DPoP`` header holding a proof JWT signed by the
client's key. The token is verified by a token verifier the authenticator is given (a
:class:`~authguard.BearerAuthenticator`, or any object with ``verify_token``, such as an
introspection client); the proof is checked per §4.3 (:mod:`.dpop_proof`), the token's
``cnf.jkt`` must be the proof key's RFC 7638 thumbprint (§6.1), the proof's ``jti`` is
used once (§11.1, in a :class:`~authguard.stores.NonceStore`: in memory, or Redis for
replicas), and with :class:`~.dpop_nonce.DPoPNonces` the proof must carry a server nonce
(§9).

Refusals (§7.1): a token without a proof → ``dpop_proof_missing``; a proof failing a
check → ``invalid_dpop_proof``; a proof seen before → ``dpop_proof_replayed``; a missing or
stale nonce → ``use_dpop_nonce`` with a fresh ``DPoP-Nonce`` header. The challenge is
``DPoP algs="…"`` with ``error`` and ``error_description`` where one applies. A token bound
to a key sent as a Bearer token is refused by :func:`refuse_bound_bearer` (§7.2).
"""

from __future__ import annotations

import dataclasses
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from starlette.requests import HTTPConnection

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..reasons import Reason
from ..stores.base import NonceStore
from ..stores.memory import MemoryNonceStore
from .dpop_nonce import DPoPNonces
from .dpop_proof import DEFAULT_ALGORITHMS, ProofError, ProofReader, check_claims, normalize_htu

if TYPE_CHECKING:
    from ..oauth.metadata import ProtectedResource

__all__ = ["DPoPAuthenticator", "TokenVerifier", "refuse_bound_bearer"]

_SCHEME = "DPoP"
_TOKEN68 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/=")
# The error code of the DPoP challenge (RFC 9449 §7.1; RFC 6750 §3.1 codes apply too).
_ERRORS: Mapping[Reason, str] = {
    Reason.DPOP_PROOF_MISSING: "invalid_dpop_proof",
    Reason.DPOP_PROOF_INVALID: "invalid_dpop_proof",
    Reason.DPOP_PROOF_REPLAYED: "invalid_dpop_proof",
    Reason.DPOP_NONCE_REQUIRED: "use_dpop_nonce",
}
_DESCRIPTIONS: Mapping[Reason, str] = {
    Reason.DPOP_PROOF_MISSING: "A DPoP proof is required",
    Reason.DPOP_PROOF_INVALID: "The DPoP proof is invalid",
    Reason.DPOP_PROOF_REPLAYED: "The DPoP proof was used before",
    Reason.DPOP_NONCE_REQUIRED: "Use the nonce in the DPoP-Nonce header",
    Reason.CREDENTIALS_MALFORMED: "The access token is malformed",
    Reason.CREDENTIALS_INVALID: "The access token is invalid",
    Reason.TOKEN_EXPIRED: "The access token expired",
    Reason.TOKEN_NOT_YET_VALID: "The access token is not valid yet",
    Reason.CREDENTIALS_REVOKED: "The access token was revoked",
}


@runtime_checkable
class TokenVerifier(Protocol):
    """What verifies the access token: :class:`~authguard.BearerAuthenticator`, or an
    introspection client. The identity's ``claims`` must carry the token's ``cnf``."""

    async def verify_token(self, token: str) -> Identity:
        """The token's identity, or raise a :class:`~authguard.Refusal`."""
        ...


def refuse_bound_bearer(identity: Identity) -> None:
    """Refuse a token bound to a key (``cnf.jkt``) that came as a Bearer token: without its
    proof it proves nothing (RFC 9449 §7.2). Called by the Bearer authenticator.

    Raises:
        Refusal: ``dpop_proof_missing``, with the Bearer ``invalid_token`` challenge and a
            plain ``DPoP`` challenge.
    """
    cnf = identity.claims.get("cnf")
    if isinstance(cnf, Mapping) and "jkt" in cnf:
        raise Refusal(
            Reason.DPOP_PROOF_MISSING,
            "The access token is bound to a key (DPoP): send it as 'Authorization: DPoP "
            "<token>' with a DPoP proof, never as a Bearer token.",
            scheme="Bearer",
            challenge_params={"error_description": "The access token is DPoP-bound"},
            challenges=[_PLAIN_DEFAULT],
        )


_PLAIN_DEFAULT = Challenge(_SCHEME, {"algs": " ".join(DEFAULT_ALGORITHMS)})


class DPoPAuthenticator:
    """DPoP-bound access tokens with their proofs (scheme ``DPoP``).

    Args:
        tokens: Verifies the access token: a :class:`~authguard.BearerAuthenticator`
            (JWTs, JWKS, audience) or any :class:`TokenVerifier`.
        algorithms: Accepted proof algorithms (asymmetric only), advertised in ``algs``.
        replays: Where used proof ids (``jti``) are remembered: a
            :class:`~authguard.stores.MemoryNonceStore` by default (one process); a Redis
            store on replicas, so that a proof used on one is refused by the others.
        nonces: Require server nonces (:class:`DPoPNonces`); ``None`` requires none.
        origin: The external origin clients use (``https://api.example.com``) when a
            proxy stands in front, for the ``htu`` check; ``None`` takes the request's
            own scheme and ``Host``.
        max_age: Seconds a proof is accepted after its ``iat``.
        leeway: Seconds of clock skew tolerated around ``iat``.
        realm: Named in the challenge.
        max_token_bytes: Longer tokens are refused before any decoding.
        max_proof_bytes: Longer proofs are refused before any decoding.
        clock: Current time, in seconds.
        resource: This API as an OAuth protected resource (RFC 9728): every DPoP challenge
            then carries ``resource_metadata``, as the Bearer challenges do (give both
            authenticators the same :class:`~authguard.ProtectedResource`).
    """

    def __init__(
        self,
        *,
        tokens: TokenVerifier,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        replays: NonceStore | None = None,
        nonces: DPoPNonces | None = None,
        origin: str | None = None,
        max_age: float = 60.0,
        leeway: float = 5.0,
        realm: str = "authguard",
        max_token_bytes: int = 8192,
        max_proof_bytes: int = 8192,
        clock: Callable[[], float] | None = None,
        resource: ProtectedResource | None = None,
    ) -> None:
        if not isinstance(tokens, TokenVerifier):
            raise ConfigurationError("tokens: needs an async verify_token(token) method "
                                     "(a BearerAuthenticator, or an introspection client)")
        if not 1 <= max_age <= 3600:
            raise ConfigurationError("max_age: must be between 1 and 3600 seconds")
        if not 0 <= leeway <= 300:
            raise ConfigurationError("leeway: must be between 0 and 300 seconds")
        if max_token_bytes < 64:
            raise ConfigurationError("max_token_bytes: must be at least 64")
        self._origin: str | None = None
        if origin is not None:
            normal = normalize_htu(origin)
            if normal is None or normal.rstrip("/") + "/" != normal or origin.count("/") > 3:
                raise ConfigurationError(
                    f"origin: {origin!r} is not an http(s) origin like https://api.example.com")
            self._origin = normal.rstrip("/")
        checked_setting(realm, "realm")
        self.tokens = tokens
        self.reader = ProofReader(algorithms, max_bytes=max_proof_bytes)
        self.algorithms = self.reader.algorithms
        self.replays: NonceStore = replays if replays is not None else MemoryNonceStore()
        self.nonces = nonces
        self.max_age = float(max_age)
        self.leeway = float(leeway)
        self.realm = realm
        self.max_token_bytes = max_token_bytes
        self._clock = clock or time.time
        self.resource = resource
        self._params = {"realm": realm, "algs": " ".join(self.algorithms),
                        **(resource.challenge_params() if resource is not None else {})}
        self._plain = Challenge(_SCHEME, self._params)
        self._by_reason: dict[Reason, Challenge] = {}

    def metadata(self, *, required: bool = False) -> dict[str, Any]:
        """The RFC 9728 §2 members for this resource: the proof algorithms, and whether
        only DPoP-bound tokens are accepted (``required``)."""
        return {"dpop_signing_alg_values_supported": list(self.algorithms),
                "dpop_bound_access_tokens_required": required}

    # -- the protocol ----------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``DPoP``."""
        return _SCHEME

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether an ``Authorization: DPoP …`` header is present."""
        return any(name == b"authorization" and _is_dpop(value)
                   for name, value in conn.scope["headers"])

    def account(self, conn: HTTPConnection) -> str | None:
        """Tokens claim no account before verification."""
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """``DPoP realm="…", algs="…"`` (RFC 9449 §7.1), with ``error`` and
        ``error_description`` (and ``scope``, …) when refusing."""
        if reason is None:
            return self._plain
        error = _ERRORS.get(reason) or reason.spec.bearer_error
        if error is None:
            return self._plain
        if not params:
            known = self._by_reason.get(reason)
            if known is None:
                known = self._by_reason[reason] = self._challenge_for(error, reason, None)
            return known
        return self._challenge_for(error, reason, params)

    def _challenge_for(self, error: str, reason: Reason,
                       params: dict[str, str] | None) -> Challenge:
        out = {**self._params, "error": error}
        description = _DESCRIPTIONS.get(reason)
        if description is not None:
            out["error_description"] = description
        for name, value in (params or {}).items():
            if name.lower() not in ("realm", "algs", "error", "resource_metadata"):
                out[name] = value
        return Challenge(_SCHEME, out)

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Check the proof, the token and their binding (see the module docstring)."""
        token = self._token(conn)
        if token is None:
            return None
        proofs = [v for n, v in conn.scope["headers"] if n == b"dpop"]
        if not proofs:
            raise Refusal(Reason.DPOP_PROOF_MISSING, "The DPoP-bound access token came "
                          "without a 'DPoP' header holding a proof.", scheme=_SCHEME)
        try:
            if len(proofs) > 1:  # §4.3 check 1
                raise ProofError("shape", "Send exactly one 'DPoP' header.")
            proof = self.reader.read(proofs[0].decode("latin-1"))
            now = self._clock()
            method = conn.scope.get("method", "GET")  # a websocket handshake is a GET
            check_claims(proof.claims, method=method, uri=self._uri(conn), now=now,
                         max_age=self.max_age, leeway=self.leeway, token=token)
        except ProofError as exc:
            raise _invalid(exc) from None
        if self.nonces is not None and not self.nonces.check(proof.claims.get("nonce")):
            raise Refusal(  # §9: missing, stale or not ours
                Reason.DPOP_NONCE_REQUIRED,
                "This server requires a nonce in DPoP proofs: sign a new proof with the "
                "value of the DPoP-Nonce header as its 'nonce' claim.",
                scheme=_SCHEME, headers={"DPoP-Nonce": self.nonces.issue()},
                extensions={"dpop_check": "nonce"})
        try:
            identity = await self.tokens.verify_token(token)
        except Refusal as exc:  # the token came with the DPoP scheme
            raise exc.replace(scheme=_SCHEME) from None
        cnf = identity.claims.get("cnf")
        jkt = cnf.get("jkt") if isinstance(cnf, Mapping) else None
        if not isinstance(jkt, str):
            raise Refusal(Reason.CREDENTIALS_INVALID, "The access token is not bound to a "
                          "key (no 'cnf.jkt'): it is a Bearer token.", scheme=_SCHEME)
        if not hmac.compare_digest(jkt.encode("ascii", "replace"),  # §6.1, §7.1
                                   proof.thumbprint.encode("ascii")):
            raise _invalid(ProofError("jkt", "The DPoP proof is signed by a key other than "
                                      "the one the access token is bound to ('cnf.jkt')."))
        jti = str(proof.claims["jti"])
        # Scoped by key: a client can only collide with itself. Remembered for as long as
        # the proof's iat is accepted.
        key = "dpop:" + sha256(f"{proof.thumbprint}:{jti}".encode()).hexdigest()
        if not await self.replays.consume(key, self.max_age + 2 * self.leeway):
            raise Refusal(Reason.DPOP_PROOF_REPLAYED, scheme=_SCHEME,
                          extensions={"dpop_check": "jti"})
        return dataclasses.replace(identity, scheme=_SCHEME)

    # -- the request -----------------------------------------------------------------------

    def _token(self, conn: HTTPConnection) -> str | None:
        found: list[bytes] = [v for n, v in conn.scope["headers"] if n == b"authorization"]
        mine = [v for v in found if _is_dpop(v)]
        if not mine:
            return None
        if len(found) > 1:
            raise Refusal(Reason.INVALID_REQUEST, "Send one Authorization header.",
                          scheme=_SCHEME)
        token: bytes = mine[0][5:].strip(b" \t")
        if len(token) > self.max_token_bytes:
            raise Refusal(Reason.CREDENTIALS_MALFORMED, f"The access token is longer than "
                          f"{self.max_token_bytes} bytes.", scheme=_SCHEME)
        if not token or not _TOKEN68.issuperset(token):
            raise Refusal(Reason.CREDENTIALS_MALFORMED, "The DPoP access token is not a "
                          "token68 value (RFC 9449 §7.1).", scheme=_SCHEME)
        return token.decode("ascii")

    def _uri(self, conn: HTTPConnection) -> str:
        """This request's URI as the client addressed it, normalized like ``htu``."""
        scope = conn.scope
        root, path = str(scope.get("root_path", "")), str(scope["path"])
        path = path if root and path.startswith(root) else root + path
        if self._origin is not None:
            return self._origin + (path or "/")
        scheme = {"ws": "http", "wss": "https"}.get(scope.get("scheme", "http"),
                                                    scope.get("scheme", "http"))
        host = conn.headers.get("host")
        if not host:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        base = normalize_htu(f"{scheme}://{host}/")
        if base is None:  # a Host that is not a host: no proof can match it
            return ""
        return base.rstrip("/") + (path or "/")


def _is_dpop(value: bytes) -> bool:
    """``DPoP <token>`` (or a bare ``DPoP``: then a malformed one)."""
    return value[:5].lower() == b"dpop " or value.lower() == b"dpop"


def _invalid(exc: ProofError) -> Refusal:
    extensions: dict[str, Any] = {"dpop_check": exc.check}
    return Refusal(Reason.DPOP_PROOF_INVALID, exc.detail, scheme=_SCHEME,
                   extensions=extensions)
