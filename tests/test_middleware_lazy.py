"""The middleware's per-request work stays lazy without changing what anyone sees.

Request ids are made only when something needs one (a refusal, the app, an integration),
are unique and keep the client's safe ``X-Request-ID``; the authenticators a policy accepts
are worked out once and still honoured on every request.
"""

from __future__ import annotations

import re

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    AuthState,
    BasicAuthenticator,
    Identity,
    Reason,
    Refusal,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.passwords import PBKDF2Hasher
from helpers import asgi_client

seen: list[AuthState] = []


@protect(Authenticated())
async def quiet(request: Request) -> PlainTextResponse:
    seen.append(request.scope["authguard"])
    return PlainTextResponse("ok")


@protect(Authenticated())
async def asks(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.scope["authguard"].request_id)


@protect(Authenticated())
async def raises(request: Request) -> PlainTextResponse:
    seen.append(request.scope["authguard"])
    raise Refusal(Reason.FORBIDDEN)


@protect(Authenticated("ApiKey"))
async def key_only(request: Request) -> PlainTextResponse:
    return PlainTextResponse(request.user.display_name)


def make_app() -> Starlette:
    keys = StaticAPIKeys({hash_api_key("k1"): Identity(subject="svc", scheme="ApiKey")})
    users = StaticPasswords.from_plaintext({"alice": ("pw", [])},
                                           hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(authenticators=[BasicAuthenticator(verifier=users),
                                      APIKeyAuthenticator(store=keys)])
    app = Starlette(routes=[Route("/quiet", quiet), Route("/asks", asks),
                            Route("/raises", raises), Route("/key-only", key_only)])
    app.add_middleware(AuthGuardMiddleware, guard=guard)
    return app


async def test_allowed_request_makes_no_request_id_unless_asked() -> None:
    seen.clear()
    async with asgi_client(make_app()) as client:
        r = await client.get("/quiet", headers={"X-API-Key": "k1"})
        assert r.status_code == 200
        assert seen[0]._request_id is None  # nobody asked: none was made
        r = await client.get("/asks", headers={"X-API-Key": "k1"})
        assert re.fullmatch(r"[0-9a-f]{32}", r.text)
        r = await client.get("/asks", headers={"X-API-Key": "k1", "X-Request-ID": "req-7"})
        assert r.text == "req-7"


async def test_refusal_raised_by_the_app_carries_the_id_the_app_saw() -> None:
    seen.clear()
    async with asgi_client(make_app()) as client:
        r = await client.get("/raises", headers={"X-API-Key": "k1"})
    assert r.status_code == 403
    assert r.json()["request_id"] == r.headers["x-request-id"] == seen[0].request_id


async def test_request_ids_are_unique() -> None:
    async with asgi_client(make_app()) as client:
        ids = {(await client.get("/quiet")).json()["request_id"] for _ in range(50)}
        ids |= {(await client.get("/asks", headers={"X-API-Key": "k1"})).text
                for _ in range(50)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


async def test_scheme_restriction_holds_on_every_request() -> None:
    async with asgi_client(make_app()) as client:
        for _ in range(3):
            r = await client.get("/key-only", auth=("alice", "pw"))
            assert r.status_code == 401
            assert [c.split()[0] for c in r.headers.get_list("www-authenticate")] == ["ApiKey"]
            r = await client.get("/key-only", headers={"X-API-Key": "k1"})
            assert r.status_code == 200 and r.text == "svc"


def test_formatted_challenges_are_reused_only_for_the_same_object() -> None:
    from authguard import Challenge
    from authguard.problems import refusal_headers

    refusal = Refusal(Reason.CREDENTIALS_INVALID)
    fixed = Challenge("Basic", {"realm": "a", "charset": "UTF-8"})
    lines = set()
    for i in range(300):  # more objects than the table keeps
        dynamic = Challenge("Bearer", {"realm": "a", "error": f"e{i}"})
        headers = dict(refusal_headers(refusal, [fixed], request_id=None, secure=False))
        lines.add(headers[b"www-authenticate"])
        one = refusal_headers(refusal, [dynamic], request_id=None, secure=False)[0]
        assert one == (b"www-authenticate", f'Bearer realm="a", error="e{i}"'.encode())
    assert lines == {b'Basic realm="a", charset="UTF-8"'}
