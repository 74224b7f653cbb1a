# ruff: noqa: S101 - pytest tests assert
"""Testing a protected FastAPI app with pytest (docs/testing.md): these tests run in the
project's suite."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI

from authguard import (
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    HasRoles,
    HasScopes,
    JWTKey,
    SessionAuthenticator,
    protect,
)
from authguard.fastapi import CurrentIdentity, current_identity
from authguard.testing import TokenFactory, bearer_headers, force_identity, log_in, make_identity

# --8<-- [start:app]
bearer = BearerAuthenticator(
    key=JWTKey.hs256("an-hs256-secret-of-at-least-32-bytes-0123"),
    issuer="https://auth.example.test",
    audience="my-api",
)
session = SessionAuthenticator(secret_keys=["a-session-key-of-at-least-32-bytes-0123"])

app = FastAPI()
app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer, session]))


@app.get("/me")
async def me(who: CurrentIdentity) -> dict[str, str]:
    return {"subject": who.subject}


@app.get("/admin")
@protect(HasRoles("admin"))
async def admin(who: CurrentIdentity) -> dict[str, str]:
    return {"admin": who.subject}


@app.get("/reports")
@protect(HasScopes("reports:read"))
async def reports() -> dict[str, list[str]]:
    return {"reports": ["q1", "q2"]}
# --8<-- [end:app]


# --8<-- [start:client]
@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
# --8<-- [end:client]


# --8<-- [start:force]
async def test_an_admin_gets_in(client: httpx.AsyncClient) -> None:
    with force_identity(app, make_identity("bob", roles=["admin"])):
        response = await client.get("/admin")
    assert response.json() == {"admin": "bob"}


async def test_a_user_without_the_role_is_refused(client: httpx.AsyncClient) -> None:
    with force_identity(app, make_identity("alice")):
        response = await client.get("/admin")
    assert response.status_code == 403
    assert response.json()["reason"] == "forbidden"
# --8<-- [end:force]


# --8<-- [start:overrides]
async def test_with_dependency_overrides(client: httpx.AsyncClient) -> None:
    app.dependency_overrides[current_identity] = lambda: make_identity("alice")
    try:
        response = await client.get("/me")
    finally:
        app.dependency_overrides.clear()
    assert response.json() == {"subject": "alice"}
# --8<-- [end:overrides]


# --8<-- [start:tokens]
tokens = TokenFactory(bearer)


async def test_a_token_with_the_scope_reads_reports(client: httpx.AsyncClient) -> None:
    token = tokens.token("alice", scopes=["reports:read"])
    response = await client.get("/reports", headers=bearer_headers(token))
    assert response.status_code == 200


async def test_an_expired_token_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/me", headers=bearer_headers(tokens.expired("alice")))
    assert response.status_code == 401
    assert response.json()["reason"] == "token_expired"
# --8<-- [end:tokens]


# --8<-- [start:session]
async def test_a_signed_in_browser(client: httpx.AsyncClient) -> None:
    await log_in(client, session, "carol", roles=["admin"])
    response = await client.get("/admin")
    assert response.json() == {"admin": "carol"}
# --8<-- [end:session]
