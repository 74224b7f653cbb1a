"""A scripted mix of good and bad clients against the running example app, for the
observability demo (``docs/observability.md``).

``python examples/fastapi_app/demo_traffic.py http://127.0.0.1:8000 --seconds 60``

Over the run: good clients all along (Bearer, Basic, API key), a few requests without
credentials, a client whose issuer's clock is 90 s ahead (from 25 % to 55 % of the run),
a deployment minting tokens without an audience (40 % to 70 %), and a credential-stuffing
run against the login (65 % to 90 %).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import httpx
import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))

from settings import load

SETTINGS = load()


def token(**claims: object) -> str:
    """A demo Bearer token; ``claims`` override (``None`` removes one)."""
    now = int(time.time())
    payload: dict[str, object] = {"sub": "alice", "iss": SETTINGS.jwt_issuer,
                                  "aud": SETTINGS.jwt_audience, "iat": now, "nbf": now,
                                  "exp": now + 300, "scope": "reports:read"}
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None},
                      SETTINGS.jwt_secret, algorithm="HS256")


def run(base: str, seconds: float, rate: float) -> None:
    """Send the mix for ``seconds`` at about ``rate`` requests per second."""
    rng = random.Random(7)  # noqa: S311 - a reproducible mix, not security
    start = time.monotonic()
    with httpx.Client(base_url=base, timeout=10) as c:
        while (t := (time.monotonic() - start) / seconds) < 1:
            roll = rng.random()
            if roll < 0.35:
                c.get("/me", headers={"Authorization": f"Bearer {token()}"})
            elif roll < 0.5:
                c.get("/me", auth=("bob", "builder"))
            elif roll < 0.6:
                c.get("/me", headers={"X-API-Key": "demo-key-alice-0123456789"})
            elif roll < 0.68:
                c.get("/reports")  # no credentials
            elif roll < 0.72:
                c.get("/admin", auth=("alice", "wonderland"))  # forbidden
            elif 0.25 <= t < 0.55 and roll < 0.84:
                ahead = int(time.time()) + 90
                c.get("/me", headers={"Authorization": "Bearer " + token(
                    iat=ahead, nbf=ahead, azp="mobile-app")})
            elif 0.4 <= t < 0.7 and roll < 0.92:
                c.get("/reports", headers={"Authorization": "Bearer " + token(
                    aud=None, azp="reports-exporter")})
            elif 0.65 <= t < 0.9:
                user = rng.choice(["alice", "bob", "carol", "dave", "erin"])
                c.get("/me", auth=(user, f"guess-{rng.randrange(10**6)}"))
            time.sleep(1 / rate)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", nargs="?", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=25)
    options = parser.parse_args()
    run(options.base, options.seconds, options.rate)
