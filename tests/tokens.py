"""Minting the example app's Bearer tokens (HS256, demo secret, iss/aud from its settings)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt
from settings import load

SETTINGS = load()


def mint(sub: str = "alice", *, scope: str = "", lifetime: int = 300, secret: str | None = None,
         algorithm: str = "HS256", headers: dict[str, Any] | None = None,
         **claims: Any) -> str:
    """A token for the example app; ``claims`` override or add (``None`` removes one)."""
    now = int(time.time())
    payload: dict[str, Any] = {
        "sub": sub, "iss": SETTINGS.jwt_issuer, "aud": SETTINGS.jwt_audience,
        "iat": now, "nbf": now, "exp": now + lifetime, "scope": scope,
        "jti": uuid.uuid4().hex,
    }
    payload.update(claims)
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, secret or SETTINGS.jwt_secret, algorithm=algorithm,
                      headers=headers)


def bearer(token: str) -> dict[str, str]:
    """The Authorization header for ``token``."""
    return {"Authorization": f"Bearer {token}"}
