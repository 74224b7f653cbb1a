"""Quickstart: a Starlette app with Basic and API-key authentication."""

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    HasRoles,
    Identity,
    Public,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)

# Users with hashed passwords (argon2id when authguard[argon2] is installed).
passwords = StaticPasswords.from_plaintext({
    "alice": ("wonderland", ["user"]),
    "bob": ("builder", ["user", "admin"]),
})
# API keys are stored and looked up by hash, never in plain text.
keys = StaticAPIKeys({
    hash_api_key("key-for-alice-0123456789"): Identity(subject="alice", scheme="ApiKey"),
})

guard = AuthGuard(authenticators=[
    BasicAuthenticator(verifier=passwords, realm="quickstart"),
    APIKeyAuthenticator(store=keys, realm="quickstart"),
])


@protect(Public)
async def home(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


@protect(Authenticated())
async def me(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.display_name})


@protect(HasRoles("admin"))
async def admin(request: Request) -> JSONResponse:
    return JSONResponse({"admin": request.user.display_name})


app = Starlette(
    routes=[Route("/", home), Route("/me", me), Route("/admin", admin)],
    middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
)
