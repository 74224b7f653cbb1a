"""Every refusal is logged on the ``authguard`` logger with its fields; never a credential."""

from __future__ import annotations

import base64
import logging

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    PBKDF2Hasher,
    StaticPasswords,
    protect,
)
from helpers import asgi_client

SECRET = "correct-horse-battery-staple"


@pytest.fixture
def app() -> Starlette:
    users = StaticPasswords.from_plaintext({"alice": (SECRET, [])},
                                           hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(authenticators=[BasicAuthenticator(verifier=users)])

    @protect(Authenticated())
    async def me(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/me", me)],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard)])


async def test_refusal_is_logged_with_fields_and_no_secret(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = base64.b64encode(f"alice:{SECRET}-typo".encode()).decode()
    with caplog.at_level(logging.INFO, logger="authguard"):
        async with asgi_client(app) as c:
            r = await c.get("/me", headers={"Authorization": f"Basic {wrong}",
                                            "X-Request-ID": "req-123"})
    assert r.status_code == 401
    records = [rec for rec in caplog.records if rec.name == "authguard"]
    assert len(records) == 1
    fields = records[0].authguard  # type: ignore[attr-defined]
    assert {k: fields[k] for k in ("reason", "status", "route", "scheme", "client",
                                   "request_id", "event")} == {
        "reason": "credentials_invalid", "status": 401, "route": "/me", "scheme": "Basic",
        "client": "127.0.0.1", "request_id": "req-123", "event": "refused"}
    text = caplog.text + repr(records[0].__dict__)
    assert SECRET not in text
    assert wrong not in text


async def test_allowed_requests_are_not_logged(
    app: Starlette, caplog: pytest.LogCaptureFixture
) -> None:
    good = base64.b64encode(f"alice:{SECRET}".encode()).decode()
    with caplog.at_level(logging.DEBUG, logger="authguard"):
        async with asgi_client(app) as c:
            r = await c.get("/me", headers={"Authorization": f"Basic {good}"})
    assert r.status_code == 200
    assert not [rec for rec in caplog.records if rec.name == "authguard"]


async def test_unsafe_request_ids_are_replaced(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/me", headers={"X-Request-ID": 'evil"\\id' + "x" * 200})
    assert r.json()["request_id"] != 'evil"\\id' + "x" * 200
    assert len(r.json()["request_id"]) == 32
