"""The authguard example app (see README.md beside this file for its contract).

Run it with ``uvicorn app:app --app-dir examples/fastapi_app``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from starlette.middleware.cors import CORSMiddleware

sys.path.insert(0, str(Path(__file__).resolve().parent))

from settings import load

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BruteForceGuard,
    HasRoles,
    Identity,
    PBKDF2Hasher,
    Public,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)

settings = load()

# -- identities ---------------------------------------------------------------------------
# Demo passwords are hashed once at start-up; a real app keeps only the hashes.
_hasher = PBKDF2Hasher(iterations=100_000)
passwords = StaticPasswords.from_plaintext(
    {
        "alice": ("wonderland", ["user"]),
        "bob": ("builder", ["user", "admin"]),
        "carol": ("rainbow", ["user"]),
    },
    hasher=_hasher,
)
api_keys = StaticAPIKeys({
    hash_api_key("demo-key-alice-0123456789"): Identity(
        subject="alice", scheme="ApiKey", roles=frozenset({"user"})),
    hash_api_key("demo-key-bob-0123456789"): Identity(
        subject="bob", scheme="ApiKey", roles=frozenset({"user", "admin"})),
})

basic = BasicAuthenticator(verifier=passwords, realm="authguard-demo")
apikey = APIKeyAuthenticator(store=api_keys, realm="authguard-demo")

guard = AuthGuard(
    authenticators=[basic, apikey],
    brute_force=BruteForceGuard(
        per_account=settings.failure_limit, per_client=settings.failure_limit * 20, window=300
    ),
)

app = FastAPI(title="authguard example app", version="0.1.0")
app.add_middleware(AuthGuardMiddleware, guard=guard)
# Added last, so it is outermost: refusals rendered by authguard get CORS headers too.
app.add_middleware(
    CORSMiddleware,
    allow_origins=[settings.cors_origin],
    allow_methods=["*"],
    allow_headers=["*"],
    allow_credentials=True,
    expose_headers=["WWW-Authenticate", "Retry-After", "X-Request-ID", "PAYMENT-REQUIRED",
                    "PAYMENT-RESPONSE", "Payment-Receipt"],
)


def _describe(identity: Identity) -> dict[str, Any]:
    return {
        "subject": identity.subject,
        "scheme": identity.scheme,
        "scopes": sorted(identity.scopes),
        "roles": sorted(identity.roles),
    }


@app.get("/public")
@protect(Public)
async def public() -> dict[str, str]:
    """Open to everyone; no authenticator runs."""
    return {"message": "hello, world"}


@app.get("/me")
@protect(Authenticated())
async def me(request: Request) -> dict[str, Any]:
    """Who you are, by any of the configured schemes."""
    return _describe(request.user)


@app.get("/admin")
@protect(HasRoles("admin"))
async def admin(request: Request) -> dict[str, Any]:
    """Administrators only."""
    return {"admin": True, **_describe(request.user)}


# -- framework integration: OpenAPI security schemes and refusals, WS /ws ------------------
import demo_integration  # noqa: E402

demo_integration.setup(app, guard)
