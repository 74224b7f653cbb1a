"""DPoP proofs for tests, made with pyjwt and cryptography: a valid one by default, and any
one respect changed by a keyword (so a test can differ from a valid proof in exactly one)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from authguard.authenticators.dpop_proof import access_token_hash, jwk_thumbprint
from tokens import mint

_UNSET: Any = object()
_SHARED: ClientKey | None = None


@dataclass
class ClientKey:
    """An ES256 key pair, its public JWK and RFC 7638 thumbprint."""

    private: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def shared(cls) -> ClientKey:
        """One key for the whole run (property tests make many proofs)."""
        global _SHARED
        if _SHARED is None:
            _SHARED = cls()
        return _SHARED

    @property
    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        return data

    @property
    def jkt(self) -> str:
        return jwk_thumbprint(self.jwk)


def bound_token(key: ClientKey, sub: str = "alice", **claims: Any) -> str:
    """A token of the example app bound to ``key`` (``cnf.jkt``)."""
    return mint(sub, cnf={"jkt": key.jkt}, **claims)


def proof(key: ClientKey, method: str, url: str, token: str | None = None, *,
          nonce: str | None = None, typ: str = "dpop+jwt", alg: str = "ES256",
          jwk: Any = _UNSET, iat: Any = _UNSET, jti: Any = _UNSET, htm: Any = _UNSET,
          htu: Any = _UNSET, ath: Any = _UNSET, signer: ClientKey | None = None,
          extra_header: dict[str, Any] | None = None) -> str:
    """A proof for ``method url`` (and ``token``); each keyword changes one respect."""
    claims: dict[str, Any] = {
        "jti": uuid.uuid4().hex if jti is _UNSET else jti,
        "htm": method if htm is _UNSET else htm,
        "htu": url if htu is _UNSET else htu,
        "iat": int(time.time()) if iat is _UNSET else iat,
    }
    if token is not None or ath is not _UNSET:
        claims["ath"] = access_token_hash(token or "") if ath is _UNSET else ath
    if nonce is not None:
        claims["nonce"] = nonce
    claims = {k: v for k, v in claims.items() if v is not None}
    header: dict[str, Any] = {"typ": typ, "jwk": key.jwk if jwk is _UNSET else jwk}
    header.update(extra_header or {})
    header = {k: v for k, v in header.items() if v is not None}
    secret: Any = b"a-shared-secret-is-no-proof-of-anything" if alg.startswith("HS") else None
    return jwt.encode(claims, secret or (signer or key).private, algorithm=alg,
                      headers=header)


def dpop_headers(token: str, proof_value: str) -> dict[str, str]:
    """``Authorization: DPoP <token>`` and ``DPoP: <proof>``."""
    return {"Authorization": f"DPoP {token}", "DPoP": proof_value}
