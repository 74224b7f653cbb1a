"""Settings of the example app, from environment variables with documented defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Settings:
    """The demo's settings (see the app's README for each variable)."""

    jwt_secret: str
    jwt_issuer: str
    jwt_audience: str
    session_secret: str
    cors_origin: str
    redis_url: str | None
    failure_limit: int
    trusted_proxies: tuple[str, ...] = ()
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    require_https: bool = False
    dpop_nonce: bool = False
    dpop_nonce_secret: str = "demo-dpop-nonce-secret-0123456789abcdef"


def load() -> Settings:
    """Read the settings from the environment."""
    env = os.environ.get
    return Settings(
        jwt_secret=env("AUTHGUARD_DEMO_JWT_SECRET", "demo-jwt-secret-0123456789abcdef-0123456789"),
        jwt_issuer=env("AUTHGUARD_DEMO_JWT_ISSUER", "https://auth.example.test"),
        jwt_audience=env("AUTHGUARD_DEMO_JWT_AUDIENCE", "authguard-demo"),
        session_secret=env(
            "AUTHGUARD_DEMO_SESSION_SECRET", "demo-session-secret-0123456789abcdef-0123"
        ),
        cors_origin=env("AUTHGUARD_DEMO_CORS_ORIGIN", "http://localhost:3000"),
        redis_url=env("AUTHGUARD_REDIS_URL") or None,
        failure_limit=int(env("AUTHGUARD_DEMO_FAILURE_LIMIT", "10")),
        trusted_proxies=tuple(p.strip() for p in env("AUTHGUARD_DEMO_TRUSTED_PROXIES", "")
                              .split(",") if p.strip()),
        forwarded_header=("forwarded" if env("AUTHGUARD_DEMO_FORWARDED_HEADER", "").lower()
                          == "forwarded" else "x-forwarded-for"),
        require_https=env("AUTHGUARD_DEMO_REQUIRE_HTTPS", "") == "1",
        dpop_nonce=env("AUTHGUARD_DEMO_DPOP_NONCE", "") == "1",
        dpop_nonce_secret=env("AUTHGUARD_DEMO_DPOP_NONCE_SECRET",
                              "demo-dpop-nonce-secret-0123456789abcdef"),
    )
