"""One DPoP proof checked as RFC 9449 §4.3 says, apart from replay and the token binding.

A proof is a JWS whose header carries ``typ: dpop+jwt``, an asymmetric ``alg`` and the
client's public key (``jwk``), and whose claims name this request (``htm``, ``htu``), its
time (``iat``), a unique id (``jti``), the hash of the access token (``ath``) and, when the
server asks for one, its ``nonce``. Signatures are verified by pyjwt (``jwt.PyJWK``); the
RFC 7638 thumbprint of the key comes from joserfc. Nothing here does I/O: the replay store
and the token verifier are the authenticator's business (:mod:`.dpop`).

Every failure raises :class:`ProofError` naming the check (``typ``, ``alg``, ``jwk``,
``signature``, ``htm``, ``htu``, ``iat``, ``ath``, ``nonce``…), so that a refusal and
``authguard explain`` can both say which one failed.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import sha256
from typing import Any
from urllib.parse import unquote, urlsplit

import jwt
from jwt.algorithms import OKPAlgorithm
from jwt.utils import base64url_decode, base64url_encode

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_ALGORITHMS",
    "DPOP_TYP",
    "Proof",
    "ProofError",
    "ProofReader",
    "access_token_hash",
    "check_claims",
    "jwk_thumbprint",
    "normalize_htu",
]

DPOP_TYP = "dpop+jwt"
"""The ``typ`` header of a DPoP proof (RFC 9449 §4.2)."""

# RFC 9449 §4.3 check 5: an asymmetric algorithm. Each with the key type (and curve) it
# must be used with, so that a key of one kind is never verified as another.
_KEY_OF: Mapping[str, tuple[str, frozenset[str] | None]] = {
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "RS256": ("RSA", None), "RS384": ("RSA", None), "RS512": ("RSA", None),
    "PS256": ("RSA", None), "PS384": ("RSA", None), "PS512": ("RSA", None),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
    "Ed25519": ("OKP", frozenset({"Ed25519"})),  # RFC 9864
}
DEFAULT_ALGORITHMS: tuple[str, ...] = ("ES256", "ES384", "ES512", "PS256", "PS384", "PS512",
                                       "RS256", "EdDSA", "Ed25519")
"""Algorithms accepted by default, advertised in the challenge's ``algs``."""

# RFC 9449 §4.3 check 7: the header's key must be public. Members of private JWKs
# (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): any of them present → refused.
_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_B64URL = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
_HEADERS_MAX = 1024  # distinct proof headers remembered (one per client key, usually)


class ProofError(Exception):
    """A proof failed one check of RFC 9449 §4.3.

    Attributes:
        check: The name of the check (``typ``, ``alg``, ``jwk``, ``signature``, ``htm``,
            ``htu``, ``iat``, ``jti``, ``ath``, ``nonce``, ``jkt``, ``shape``).
        detail: A sentence a person can act on; never echoes the proof's values.
    """

    def __init__(self, check: str, detail: str) -> None:
        super().__init__(f"{check}: {detail}")
        self.check = check
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof whose header and signature passed (claims not yet checked).

    Attributes:
        header: The protected header (``typ``, ``alg``, ``jwk``).
        claims: The payload.
        thumbprint: The RFC 7638 SHA-256 thumbprint of the proof's key, base64url.
    """

    header: Mapping[str, Any]
    claims: Mapping[str, Any]
    thumbprint: str


@dataclass(frozen=True, slots=True)
class _Key:
    header: Mapping[str, Any]
    key: jwt.PyJWK
    thumbprint: str


def jwk_thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK (what a token's ``cnf.jkt`` holds).

    Raises:
        ValueError: the JWK cannot be read as a key.
    """
    from joserfc.jwk import JWKRegistry  # the ``dpop`` extra

    try:
        return str(JWKRegistry.import_key(dict(jwk)).thumbprint())
    except Exception as exc:  # joserfc raises several types for a bad key
        raise ValueError("not a usable JWK") from exc


def access_token_hash(token: str) -> str:
    """``ath``: the base64url SHA-256 of the access token's ASCII (RFC 9449 §4.2)."""
    return base64url_encode(sha256(token.encode("ascii")).digest()).decode("ascii")


def normalize_htu(uri: str) -> str | None:
    """``uri`` without query and fragment, scheme and host lower-cased, the default port
    dropped and the path percent-decoded (RFC 9449 §4.3 check 9, RFC 3986 §6.2.2 and §6.2.3);
    ``None`` when it is not an absolute http(s) URI."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in ("http", "https") or not host:
        return None
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{unquote(parts.path) or '/'}"


class ProofReader:
    """Reads and verifies proofs: shape, header, key and signature (RFC 9449 §4.3 checks
    2 to 7). Decoded headers and their keys are remembered by the header's exact text (a
    client's proofs share one), so a known key costs one signature check per proof.

    Args:
        algorithms: The accepted ``alg`` values: asymmetric ones only.
        max_bytes: Longer proofs are refused before any decoding.

    Raises:
        ConfigurationError: an algorithm is symmetric, ``none`` or unknown.
    """

    def __init__(self, algorithms: Sequence[str] = DEFAULT_ALGORITHMS, *,
                 max_bytes: int = 8192) -> None:
        if isinstance(algorithms, str) or not algorithms:
            raise ConfigurationError("algorithms: give a list of asymmetric JWS algorithms")
        for alg in algorithms:
            if alg not in _KEY_OF:
                raise ConfigurationError(
                    f"algorithms: {alg!r} is not an asymmetric JWS algorithm that DPoP "
                    f"accepts (one of {', '.join(_KEY_OF)})")
        if max_bytes < 256:
            raise ConfigurationError("max_proof_bytes: must be at least 256")
        try:
            import joserfc.jwk  # noqa: F401 - the RFC 7638 thumbprints
        except ImportError:
            raise ConfigurationError("DPoP needs joserfc: install 'authguard[dpop]'") from None
        self.algorithms = tuple(algorithms)
        self.max_bytes = max_bytes
        self._keys: dict[str, _Key] = {}
        # The claims are DPoP's, checked by check_claims: only the JWS is pyjwt's here.
        self._jws = jwt.PyJWS(options={"verify_signature": True,
                                       "enforce_minimum_key_length": True})
        # RFC 9864's fully-specified "Ed25519" (what panva's dpop signs with) is pyjwt's
        # EdDSA restricted to that curve (the key check above enforces the curve).
        self._jws.register_algorithm("Ed25519", OKPAlgorithm())

    def read(self, proof: str) -> Proof:
        """Verify ``proof``'s shape, header and signature.

        Raises:
            ProofError: a check failed.
        """
        if len(proof) > self.max_bytes:
            raise ProofError("shape", f"The DPoP proof is longer than {self.max_bytes} bytes.")
        parts = proof.split(".")
        if len(parts) != 3 or not all(p and _B64URL.issuperset(p.encode("latin-1"))
                                      for p in parts):
            raise ProofError("shape", "The DPoP proof is not a compact JWS (three base64url "
                             "parts).")
        known = self._keys.get(parts[0])
        if known is None:
            known = self._key(parts[0])
        try:
            decoded = self._jws.decode_complete(proof, known.key.key,
                                                algorithms=[known.header["alg"]])
            claims = json.loads(decoded["payload"])
        except jwt.InvalidSignatureError:
            raise ProofError("signature", "The DPoP proof's signature does not verify with "
                             "the key in its 'jwk' header.") from None
        except (jwt.InvalidKeyError, jwt.PyJWKError):
            raise ProofError("jwk", "The DPoP proof's key is too weak for its algorithm."
                             ) from None
        except (jwt.InvalidTokenError, ValueError, TypeError, RecursionError):
            claims = None
        if not isinstance(claims, dict):
            raise ProofError("shape", "The DPoP proof's payload is not a JSON object.")
        return Proof(known.header, claims, known.thumbprint)

    def _key(self, segment: str) -> _Key:
        try:
            header = json.loads(base64url_decode(segment))
        except (ValueError, RecursionError):
            header = None
        if not isinstance(header, dict):
            raise ProofError("shape", "The DPoP proof's header is not a JSON object.")
        if header.get("typ") != DPOP_TYP:
            raise ProofError("typ", f"The DPoP proof's 'typ' header must be '{DPOP_TYP}'.")
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self.algorithms:
            raise ProofError("alg", "The DPoP proof's 'alg' is not one this server accepts "
                             "(see 'algs' in WWW-Authenticate).")
        if "crit" in header or "b64" in header:
            raise ProofError("shape", "The DPoP proof's header has members this server does "
                             "not support ('crit', 'b64').")
        jwk = header.get("jwk")
        if not isinstance(jwk, dict):
            raise ProofError("jwk", "The DPoP proof has no 'jwk' header holding its key.")
        if _PRIVATE_MEMBERS.intersection(jwk):
            raise ProofError("jwk", "The DPoP proof's 'jwk' holds private or symmetric key "
                             "material: send the public key only.")
        kty, curves = _KEY_OF[alg]
        if jwk.get("kty") != kty or (curves is not None and jwk.get("crv") not in curves):
            raise ProofError("jwk", f"The DPoP proof's key does not fit its algorithm {alg} "
                             f"(kty {kty}" + (f", crv {'/'.join(sorted(curves))}"
                                              if curves else "") + ").")
        try:
            key = jwt.PyJWK(jwk, algorithm="EdDSA" if alg == "Ed25519" else alg)
            thumbprint = jwk_thumbprint(jwk)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError):
            # pyjwt's messages quote the key: not repeated here
            raise ProofError("jwk", "The DPoP proof's 'jwk' is not a usable public key."
                             ) from None
        known = _Key(header, key, thumbprint)
        if len(segment) <= 2048:
            if len(self._keys) >= _HEADERS_MAX:
                self._keys.pop(next(iter(self._keys)))
            self._keys[segment] = known
        return known


def check_claims(claims: Mapping[str, Any], *, method: str, uri: str, now: float,
                 max_age: float, leeway: float, token: str | None) -> None:
    """RFC 9449 §4.3 checks 8, 9, 11 and 12 (``htm``, ``htu``, ``iat``, ``ath``) and the
    presence of ``jti`` (check 3).

    ``uri`` is this request's URI as the client sees it (normalized by
    :func:`normalize_htu`); ``token`` the access token sent with the proof.

    Raises:
        ProofError: a check failed.
    """
    jti = claims.get("jti")
    if not isinstance(jti, str) or not jti or len(jti) > 512:
        raise ProofError("jti", "The DPoP proof needs a 'jti' claim: a unique string.")
    if claims.get("htm") != method:
        raise ProofError("htm", f"The DPoP proof's 'htm' must be this request's method "
                         f"({method}).")
    htu = claims.get("htu")
    if not isinstance(htu, str) or normalize_htu(htu) != uri:
        raise ProofError("htu", f"The DPoP proof's 'htu' must be this request's URI without "
                         f"query and fragment ({uri}).")
    iat = claims.get("iat")
    if isinstance(iat, bool) or not isinstance(iat, int | float) or not math.isfinite(iat):
        raise ProofError("iat", "The DPoP proof needs an 'iat' claim: a number of seconds.")
    if iat > now + leeway:
        raise ProofError("iat", f"The DPoP proof's 'iat' is {math.ceil(iat - now)} s ahead "
                         "of this server's clock (see the Date header).")
    if iat < now - max_age - leeway:
        raise ProofError("iat", f"The DPoP proof is older than {max_age:g} s: sign a new "
                         "one for each request.")
    if token is not None:
        ath = claims.get("ath")
        if not isinstance(ath, str) or not hmac.compare_digest(
                ath.encode("ascii", "replace"), access_token_hash(token).encode("ascii")):
            raise ProofError("ath", "The DPoP proof's 'ath' must be the base64url SHA-256 "
                             "hash of the access token sent with it.")
