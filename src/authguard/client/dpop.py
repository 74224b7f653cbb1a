"""The client side of DPoP (RFC 9449): a key that signs proofs, an httpx auth flow, and the
check of a proof for ``authguard explain``.

* :class:`DPoPKey` — the client's key pair (pyjwt and cryptography sign; nothing is
  hand-written): :attr:`~DPoPKey.jkt` is what the authorization server puts in the token's
  ``cnf.jkt``, :meth:`~DPoPKey.proof` signs one proof.
* :class:`DPoPAuth` — an ``httpx.Auth`` that sends ``Authorization: DPoP <token>`` with a
  fresh proof on every request, remembers each origin's ``DPoP-Nonce``, retries once on
  ``use_dpop_nonce`` (§8.2, §9) and raises the typed exception of any other refusal.
* :func:`check_proof` — which check of §4.3 a proof fails for a request, if any.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncGenerator, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from jwt.algorithms import get_default_algorithms

from ..authenticators.dpop_proof import (
    ProofError,
    ProofReader,
    access_token_hash,
    check_claims,
    jwk_thumbprint,
    normalize_htu,
)
from ..reasons import Reason
from .errors import error_for
from .problem import Problem

__all__ = ["DPoPAuth", "DPoPKey", "ProofCheck", "check_proof"]

_REFUSALS = frozenset({400, 401, 402, 403, 429, 502, 503})
_CURVES = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_PUBLIC_MEMBERS = ("kty", "crv", "x", "y", "n", "e")


class DPoPKey:
    """A DPoP key pair.

    Args:
        private_key: An EC (P-256/384/521), RSA (2048 bits or more) or Ed25519/Ed448
            private key from ``cryptography``.
        algorithm: The JWS ``alg``; by default ES256/384/512 for EC keys, PS256 for RSA,
            EdDSA for Edwards keys.
    """

    def __init__(self, private_key: Any, algorithm: str | None = None) -> None:
        if isinstance(private_key, ec.EllipticCurvePrivateKey):
            default = _CURVES.get(private_key.curve.name)
        elif isinstance(private_key, rsa.RSAPrivateKey):
            default = "PS256"
        elif isinstance(private_key, ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey):
            default = "EdDSA"
        else:
            default = None
        alg = algorithm or default
        if alg is None:
            raise ValueError("DPoPKey needs an EC, RSA or Edwards-curve private key")
        self.private_key = private_key
        self.algorithm = alg
        full = get_default_algorithms()[alg].to_jwk(private_key.public_key(), as_dict=True)
        self.jwk: Mapping[str, Any] = {k: full[k] for k in _PUBLIC_MEMBERS if k in full}
        self.jkt = jwk_thumbprint(self.jwk)
        """The RFC 7638 thumbprint of the public key: a bound token's ``cnf.jkt``."""

    @classmethod
    def generate(cls, algorithm: str = "ES256") -> DPoPKey:
        """A new key for ``algorithm`` (ES256, ES384, ES512 or EdDSA)."""
        curves = {"ES256": ec.SECP256R1(), "ES384": ec.SECP384R1(), "ES512": ec.SECP521R1()}
        if algorithm in curves:
            return cls(ec.generate_private_key(curves[algorithm]), algorithm)
        if algorithm == "EdDSA":
            return cls(ed25519.Ed25519PrivateKey.generate(), algorithm)
        raise ValueError(f"DPoPKey.generate: {algorithm!r} is not ES256, ES384, ES512 or EdDSA")

    def proof(self, method: str, url: str, *, access_token: str | None = None,
              nonce: str | None = None, now: float | None = None) -> str:
        """A proof for one request (RFC 9449 §4.2): ``htu`` is ``url`` without query and
        fragment; ``ath`` the hash of ``access_token``; ``nonce`` the server's."""
        claims: dict[str, Any] = {
            "jti": uuid.uuid4().hex,
            "htm": method.upper(),
            "htu": str(httpx.URL(url).copy_with(query=None, fragment=None)),
            "iat": int(time.time() if now is None else now),
        }
        if access_token is not None:
            claims["ath"] = access_token_hash(access_token)
        if nonce is not None:
            claims["nonce"] = nonce
        return jwt.encode(claims, self.private_key, algorithm=self.algorithm,
                          headers={"typ": "dpop+jwt", "jwk": dict(self.jwk)})


class DPoPAuth(httpx.Auth):
    """``Authorization: DPoP <token>`` with a proof signed by ``key`` on every request.

    A ``DPoP-Nonce`` sent by a server (on a refusal or a success) is used in the next
    proofs for its origin. A 401 ``use_dpop_nonce`` is retried once with the new nonce;
    any other refusal raises its :class:`~authguard.client.AuthError` subclass
    (:class:`~authguard.client.InvalidDPoPProof`, ``TokenExpired``…) unless
    ``raise_for_refusal`` is false.

    Args:
        token: The DPoP-bound access token.
        key: The key the token is bound to.
        raise_for_refusal: Raise the typed exception of a refusal (default) or return it.
    """

    def __init__(self, token: str, key: DPoPKey, *, raise_for_refusal: bool = True) -> None:
        self.token = token
        self.key = key
        self.raise_for_refusal = raise_for_refusal
        self.nonces: dict[str, str] = {}
        """The last ``DPoP-Nonce`` of each origin (``scheme://host:port``)."""

    def _sign(self, request: httpx.Request) -> None:
        origin = _origin(request.url)
        request.headers["Authorization"] = f"DPoP {self.token}"
        request.headers["DPoP"] = self.key.proof(request.method, str(request.url),
                                                 access_token=self.token,
                                                 nonce=self.nonces.get(origin))

    def flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        """The decisions for one request (no I/O): sign, send, retry once on a nonce."""
        self._sign(request)
        response = yield request
        if self._remember(request, response) and _wants_nonce(response):
            self._sign(request)  # a new proof: a new jti, the server's nonce
            response = yield request
            self._remember(request, response)
        if self.raise_for_refusal and response.status_code in _REFUSALS:
            error = error_for(Problem.from_response(response), response)
            if error is not None:
                raise error

    def _remember(self, request: httpx.Request, response: httpx.Response) -> bool:
        """Keep the response's ``DPoP-Nonce``; whether it brought a new one."""
        nonce = response.headers.get("dpop-nonce")
        origin = _origin(request.url)
        if not nonce or self.nonces.get(origin) == nonce:
            return False
        self.nonces[origin] = nonce
        return True

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow for ``httpx.Client``: refusals' bodies are read for the decision."""
        steps = self.flow(request)
        step = next(steps)
        while True:
            reply = yield step
            if reply.status_code in _REFUSALS:
                reply.read()
            try:
                step = steps.send(reply)
            except StopIteration:
                return

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow for ``httpx.AsyncClient``."""
        steps = self.flow(request)
        step = next(steps)
        while True:
            reply = yield step
            if reply.status_code in _REFUSALS:
                await reply.aread()
            try:
                step = steps.send(reply)
            except StopIteration:
                return


def _origin(url: httpx.URL) -> str:
    return f"{url.scheme}://{url.host}:{url.port or ''}"


def _wants_nonce(response: httpx.Response) -> bool:
    if response.status_code != 401:
        return False
    problem = Problem.from_response(response)
    dpop = problem.challenge("DPoP")
    return problem.reason == Reason.DPOP_NONCE_REQUIRED.value or (
        dpop is not None and dpop.params.get("error") == "use_dpop_nonce")


@dataclass(frozen=True, slots=True)
class ProofCheck:
    """What :func:`check_proof` found.

    Attributes:
        failed: The failed check (``typ``, ``alg``, ``jwk``, ``signature``, ``htm``, ``htu``,
            ``iat``, ``jti``, ``ath``, ``jkt``, ``nonce``, ``shape``), or ``None``.
        detail: What to change.
        header: The proof's header, decoded (``{}`` when it could not be).
        claims: The proof's claims, decoded without verification.
    """

    failed: str | None
    detail: str
    header: Mapping[str, Any]
    claims: Mapping[str, Any]


def check_proof(proof: str, *, method: str, url: str, token: str | None = None,
                nonce: str | None = None, now: float | None = None,
                max_age: float = 60.0, leeway: float = 5.0) -> ProofCheck:
    """Which check of RFC 9449 §4.3 ``proof`` fails for ``method url`` (and ``token``, and
    the server's ``nonce`` when one was sent), with authguard's default window. Replay
    cannot be seen from here."""
    header: Mapping[str, Any] = {}
    claims: Mapping[str, Any] = {}
    try:
        header = jwt.get_unverified_header(proof)
        claims = jwt.decode(proof, options={"verify_signature": False})
    except (jwt.InvalidTokenError, ValueError):
        pass
    local = time.time() if now is None else now
    try:
        read = ProofReader().read(proof)
        check_claims(read.claims, method=method.upper(), uri=normalize_htu(url) or "",
                     now=local, max_age=max_age, leeway=leeway, token=token)
        if nonce is not None and read.claims.get("nonce") != nonce:
            raise ProofError("nonce", "The proof's 'nonce' must be the server's DPoP-Nonce.")
        if token is not None:
            bound = _bound_to(token)
            if bound is not None and bound != read.thumbprint:
                raise ProofError("jkt", "The proof is signed by a key other than the one "
                                 "the token is bound to ('cnf.jkt').")
    except ProofError as exc:
        return ProofCheck(exc.check, exc.detail, header, claims)
    return ProofCheck(None, "The proof passes every check that can be made here.",
                      header, claims)


def _bound_to(token: str) -> str | None:
    try:
        cnf = jwt.decode(token, options={"verify_signature": False}).get("cnf")
    except jwt.InvalidTokenError:
        return None
    jkt = cnf.get("jkt") if isinstance(cnf, dict) else None
    return jkt if isinstance(jkt, str) else None
