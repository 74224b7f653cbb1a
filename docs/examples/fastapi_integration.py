"""FastAPI: dependencies, scopes, the typed identity and OpenAPI (docs/integrations/fastapi.md)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Security

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    HasRoles,
    Identity,
    Public,
    StaticAPIKeys,
    hash_api_key,
    protect,
)
from authguard.fastapi import CurrentIdentity, OptionalIdentity, install, require

keys = StaticAPIKeys({
    hash_api_key("key-alice-0123456789"): Identity(
        subject="alice", scheme="ApiKey", scopes=frozenset({"reports:read"})),
    hash_api_key("key-bob-0123456789"): Identity(
        subject="bob", scheme="ApiKey", roles=frozenset({"admin"})),
})
guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=keys)])

app = FastAPI()
app.add_middleware(AuthGuardMiddleware, guard=guard)
install(app, guard)  # OpenAPI security schemes + documented refusals; public /docs

# A reusable, typed dependency: the identity, once the scope is checked.
ReportReader = Annotated[
    Identity, Security(require(Authenticated()), scopes=["reports:read"])
]


@app.get("/")
@protect(Public)
async def home() -> dict[str, str]:
    return {"hello": "world"}


@app.get("/me")
async def me(who: CurrentIdentity) -> dict[str, str]:
    return {"subject": who.subject}


@app.get("/greeting")
async def greeting(who: OptionalIdentity) -> dict[str, str]:
    return {"greeting": f"hello {who.subject if who else 'stranger'}"}


@app.get("/reports")
async def reports(who: ReportReader) -> dict[str, str]:
    return {"reader": who.subject}


admin = APIRouter(prefix="/admin", dependencies=[Depends(require(HasRoles("admin")))])


@admin.get("/stats")
async def stats() -> dict[str, int]:
    return {"users": 2}


app.include_router(admin)
