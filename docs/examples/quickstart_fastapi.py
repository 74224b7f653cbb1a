"""Quickstart: a FastAPI app with Basic, API-key and Bearer (JWT) authentication."""

from fastapi import FastAPI, Request

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    HasRoles,
    HasScopes,
    Identity,
    JWTKey,
    Public,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.fastapi import install

# Users with hashed passwords (argon2id when authguard[argon2] is installed).
passwords = StaticPasswords.from_plaintext({
    "alice": ("wonderland", ["user"]),
    "bob": ("builder", ["user", "admin"]),
})
# API keys are stored and looked up by hash, never in plain text.
keys = StaticAPIKeys({
    hash_api_key("key-for-alice-0123456789"): Identity(subject="alice", scheme="ApiKey"),
})
# JWTs from your identity provider (here a shared secret; JWKSKeys for a real issuer).
SECRET = "quickstart-secret-0123456789abcdef-0123456789"  # noqa: S105 - read yours from settings

guard = AuthGuard(authenticators=[
    BasicAuthenticator(verifier=passwords, realm="quickstart"),
    APIKeyAuthenticator(store=keys, realm="quickstart"),
    BearerAuthenticator(key=JWTKey.hs256(SECRET), issuer="https://issuer.example",
                        audience="quickstart", realm="quickstart"),
])

app = FastAPI()
app.add_middleware(AuthGuardMiddleware, guard=guard)
install(app, guard)  # OpenAPI: security schemes, scopes and every documented refusal


@app.get("/")
@protect(Public)
async def home() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/me")
@protect(Authenticated())
async def me(request: Request) -> dict[str, str]:
    return {"subject": request.user.subject, "scheme": request.user.scheme}


@app.get("/admin")
@protect(HasRoles("admin"))
async def admin(request: Request) -> dict[str, str]:
    return {"admin": request.user.subject}


@app.get("/reports")
@protect(HasScopes("reports:read"))  # only a token carries scopes
async def reports(request: Request) -> dict[str, list[str]]:
    return {"reports": ["q1", "q2"]}
