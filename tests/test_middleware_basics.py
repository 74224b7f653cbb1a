"""The decision order and rendering, in-process, on a small Starlette app."""

from __future__ import annotations

import base64

import pytest
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    HasRoles,
    Identity,
    PBKDF2Hasher,
    Public,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from helpers import asgi_client


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def app() -> Starlette:
    passwords = StaticPasswords.from_plaintext(
        {"alice": ("wonderland", ["user"]), "bob": ("builder", ["admin"])},
        hasher=PBKDF2Hasher(iterations=1000),
    )
    keys = StaticAPIKeys({hash_api_key("k-alice"): Identity(subject="alice", scheme="ApiKey")})
    guard = AuthGuard(authenticators=[
        BasicAuthenticator(verifier=passwords, realm="test"),
        APIKeyAuthenticator(store=keys, realm="test"),
    ])

    @protect(Public)
    async def public(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name,
                             "scopes": request.auth.scopes})

    @protect(HasRoles("admin"))
    async def admin(request: Request) -> PlainTextResponse:
        return PlainTextResponse("admin")

    @requires("authenticated")
    async def starlette_style(request: Request) -> PlainTextResponse:
        return PlainTextResponse(request.user.display_name)

    return Starlette(
        routes=[Route("/public", public), Route("/me", me), Route("/admin", admin),
                Route("/classic", starlette_style)],
        middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
    )


async def test_missing_credentials_gets_one_challenge_per_scheme(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/me")
    assert r.status_code == 401
    assert r.headers.get_list("www-authenticate") == [
        'Basic realm="test", charset="UTF-8"',
        'ApiKey realm="test", in=header, name=X-API-Key',
    ]
    body = r.json()
    assert body["reason"] == "credentials_missing"
    assert body["schemes"] == ["Basic", "ApiKey"]
    assert body["instance"] == "/me"


async def test_good_basic_credentials_reach_starlette_user_and_requires(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/me", headers=basic("alice", "wonderland"))
        assert r.json() == {"user": "alice", "scopes": ["authenticated"]}
        r = await c.get("/classic", headers=basic("alice", "wonderland"))
        assert r.text == "alice"


async def test_wrong_password_and_unknown_user_look_the_same(app: Starlette) -> None:
    async with asgi_client(app) as c:
        a = await c.get("/me", headers=basic("alice", "nope"))
        b = await c.get("/me", headers=basic("mallory", "nope"))
    assert a.status_code == b.status_code == 401
    strip = lambda r: {k: v for k, v in r.json().items() if k != "request_id"}  # noqa: E731
    assert strip(a) == strip(b)
    assert a.json()["reason"] == "credentials_invalid"


async def test_authenticated_but_not_allowed_is_403_without_challenge(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/admin", headers=basic("alice", "wonderland"))
    assert r.status_code == 403
    assert r.json()["reason"] == "forbidden"
    assert "www-authenticate" not in r.headers


async def test_head_answers_like_get_without_body(app: Starlette) -> None:
    async with asgi_client(app) as c:
        g = await c.get("/me")
        h = await c.head("/me")
    assert h.status_code == g.status_code == 401
    assert h.content == b""
    assert h.headers.get_list("www-authenticate") == g.headers.get_list("www-authenticate")
    assert h.headers["content-length"] == g.headers["content-length"]


async def test_public_route_runs_no_authenticator(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/public", headers={"Authorization": "Basic %%%"})
    assert r.status_code == 200


async def test_preflight_passes_untouched(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.options("/me", headers={"Origin": "http://x.test",
                                             "Access-Control-Request-Method": "GET"})
    assert r.status_code != 401
