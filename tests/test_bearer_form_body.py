"""RFC 6750 §2.2: the access token in a form body, only when enabled, the body intact."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import jwt
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import rawasgi
from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    ConfigurationError,
    JWTKey,
    protect,
)
from form_body_app import AUD, SECRET
from helpers import asgi_client, uvicorn_server

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def token(sub: str = "ann") -> str:
    now = int(time.time())
    return jwt.encode({"sub": sub, "aud": AUD, "iat": now, "exp": now + 60}, SECRET, "HS256")


def make_app(**options: Any) -> Starlette:
    bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUD, **options)

    @protect(Authenticated())
    async def submit(request: Request) -> JSONResponse:
        body = await request.body()  # the app still reads the whole body
        form = dict(parse_qsl(body.decode()))
        return JSONResponse({"sub": request.user.subject, "note": form.get("note"),
                             "size": len(body)})

    app = Starlette(routes=[Route("/submit", submit, methods=["GET", "POST", "PUT"])])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer]))
    return app


async def test_a_form_token_is_used_only_when_enabled_and_the_body_reaches_the_app() -> None:
    body = f"note=hello&access_token={token()}"
    async with asgi_client(make_app(allow_form_body=True)) as c:
        r = await c.post("/submit", content=body, headers=FORM)
        assert r.json() == {"sub": "ann", "note": "hello", "size": len(body)}
        r = await c.put("/submit", content=body, headers=FORM)
        assert r.status_code == 200
    async with asgi_client(make_app()) as c:  # off by default
        r = await c.post("/submit", content=body, headers=FORM)
        assert r.status_code == 401 and r.json()["reason"] == "credentials_missing"


async def test_a_token_in_the_form_and_the_header_is_invalid_request() -> None:
    async with asgi_client(make_app(allow_form_body=True)) as c:
        r = await c.post("/submit", content=f"access_token={token()}", headers={
            **FORM, "Authorization": f"Bearer {token()}"})
        assert r.status_code == 400 and r.json()["reason"] == "invalid_request"
        r = await c.post("/submit", content=f"access_token={token()}&access_token=x",
                         headers=FORM)
        assert r.status_code == 400 and r.json()["reason"] == "invalid_request"


@pytest.mark.parametrize("content_type", ["multipart/form-data; boundary=x", "text/plain",
                                          "application/json"])
async def test_only_urlencoded_forms_are_read(content_type: str) -> None:
    async with asgi_client(make_app(allow_form_body=True)) as c:
        r = await c.post("/submit", content=f"access_token={token()}",
                         headers={"Content-Type": content_type})
        assert r.status_code == 401


async def test_a_get_body_is_never_read_for_a_token() -> None:
    answer = await rawasgi.http(make_app(allow_form_body=True), "GET", "/submit",
                                [(b"content-type", b"application/x-www-form-urlencoded")],
                                body=f"access_token={token()}".encode())
    assert answer.status == 401


async def test_a_body_over_the_limit_is_not_searched_but_reaches_the_app_whole() -> None:
    padding = "x" * 2000
    body = f"access_token={token()}&note={padding}"
    async with asgi_client(make_app(allow_form_body=True, max_form_bytes=1024)) as c:
        r = await c.post("/submit", content=body, headers=FORM)
        assert r.status_code == 401  # not searched
        r = await c.post("/submit", content=f"note={padding}", headers={
            **FORM, "Authorization": f"Bearer {token()}"})
        assert r.json()["size"] == len(f"note={padding}")  # read in part, replayed whole


def test_max_form_bytes_is_checked() -> None:
    with pytest.raises(ConfigurationError, match="max_form_bytes"):
        BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUD, max_form_bytes=10)


async def test_a_body_in_many_chunks_is_read_and_replayed_in_order() -> None:
    body = f"note=chunked&access_token={token()}".encode()

    async def chunks() -> Any:
        for i in range(0, len(body), 7):
            yield body[i:i + 7]

    async with asgi_client(make_app(allow_form_body=True)) as c:
        r = await c.post("/submit", content=chunks(), headers=FORM)
        assert r.json() == {"sub": "ann", "note": "chunked", "size": len(body)}


@pytest.mark.e2e
def test_form_body_tokens_under_uvicorn() -> None:
    import httpx

    body = f"note={'y' * 3000}&access_token={token()}"
    with uvicorn_server("form_body_app:app", app_dir=Path(__file__).parent) as base, \
            httpx.Client(base_url=base) as c:
        def chunks() -> Any:  # sent in pieces: the body arrives in several messages
            for i in range(0, len(body), 500):
                yield body[i:i + 500].encode()

        r = c.post("/submit", content=chunks(), headers=FORM)
        assert r.status_code == 200, r.text
        assert r.json() == {"sub": "ann", "size": len(body)}
        r = c.post("/submit", content=body + "&x=" + "z" * 5000, headers=FORM)
        assert r.status_code == 401  # over max_form_bytes: not searched
        r = c.post("/submit", content=f"access_token={token()}",
                   headers={**FORM, "Authorization": f"Bearer {token()}"})
        assert r.status_code == 400 and r.json()["reason"] == "invalid_request"


async def test_a_route_that_does_not_accept_bearer_never_has_its_body_read() -> None:
    from authguard.formbody import FORM_TOKENS

    bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUD, allow_form_body=True)
    seen: list[bool] = []

    @protect(Authenticated("ApiKey"))
    async def keys_only(request: Request) -> JSONResponse:
        seen.append(FORM_TOKENS in request.scope)
        return JSONResponse({})

    from authguard.authenticators.apikey import APIKeyAuthenticator, StaticAPIKeys, hash_api_key
    from authguard.identity import Identity
    keys = StaticAPIKeys({hash_api_key("form-test-key-0123456789"):
                          Identity(subject="ann", scheme="ApiKey")})
    app = Starlette(routes=[Route("/keys", keys_only, methods=["POST"])])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(
        authenticators=[bearer, APIKeyAuthenticator(store=keys)]))
    async with asgi_client(app) as c:
        r = await c.post("/keys", content=f"access_token={token()}", headers={
            **FORM, "X-API-Key": "form-test-key-0123456789"})
        assert r.status_code == 200
    assert seen == [False]
