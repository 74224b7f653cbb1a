"""Declaring policies in a Starlette app (included in docs/integrations/starlette.md)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    HasRoles,
    Identity,
    Permission,
    Public,
    StaticAPIKeys,
    hash_api_key,
    protect,
)

keys = StaticAPIKeys({
    hash_api_key("key-alice-0123456789"): Identity(subject="alice", scheme="ApiKey"),
    hash_api_key("key-bob-0123456789"): Identity(
        subject="bob", scheme="ApiKey", roles=frozenset({"admin"})),
})
guard = AuthGuard(
    authenticators=[APIKeyAuthenticator(store=keys)],
    rules={"/reports": HasRoles("admin")},  # routes under /reports that declare nothing
    deny_by_default=True,  # any other route without a policy: refused, and named at start-up
    login_url="/login",  # browsers refused with 401 are sent here with 303
)


@protect(Public)
async def home(request: Request) -> JSONResponse:
    return JSONResponse({"hello": "world"})


@protect(Authenticated())
async def me(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.display_name})


def owns_the_note(request: Request, identity: Identity) -> bool:
    """Ownership of the resource in the path: the path params are already known."""
    return bool(request.path_params["user"] == identity.subject)


@protect(HasRoles("admin") | Permission(owns_the_note, name="owner"), conceal=True)
async def notes(request: Request) -> JSONResponse:
    return JSONResponse({"notes": [], "owner": request.path_params["user"]})


async def panel(request: Request) -> JSONResponse:
    return JSONResponse({"admin": True})


async def monthly(request: Request) -> JSONResponse:
    return JSONResponse({"report": "monthly"})


app = Starlette(
    routes=[
        Route("/", home),
        Route("/me", me),
        Route("/users/{user}/notes", notes),
        # every route inside the mount inherits its policy
        protect(HasRoles("admin"))(Mount("/admin", routes=[Route("/panel", panel)])),
        Route("/reports/monthly", monthly),  # covered by the /reports rule
    ],
    middleware=[
        # CORSMiddleware first in the list = outermost: refusals carry CORS headers too
        Middleware(CORSMiddleware, allow_origins=["https://app.example"],
                   allow_methods=["*"], allow_headers=["*"]),
        Middleware(AuthGuardMiddleware, guard=guard),
    ],
)
