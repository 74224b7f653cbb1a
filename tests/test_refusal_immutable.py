"""``Refusal`` is immutable: one refusal may be raised for many requests (a constant of an
authenticator), so naming the scheme, or any change, makes a copy."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    Challenge,
    Identity,
    Reason,
    Refusal,
    protect,
)
from helpers import asgi_client

REJECTED = Refusal(Reason.CREDENTIALS_INVALID)  # shared by every request, names no scheme


class Ticket:
    scheme = "Ticket"

    def has_credentials(self, conn: HTTPConnection) -> bool:
        return "x-ticket" in conn.headers

    def account(self, conn: HTTPConnection) -> str | None:
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        return Challenge("Ticket", {"realm": "t"})

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        raise REJECTED


async def test_a_shared_refusal_is_not_changed_by_the_requests_it_answers() -> None:
    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[protect(Authenticated())(Route("/r", ok))],
                    middleware=[Middleware(AuthGuardMiddleware,
                                           guard=AuthGuard(authenticators=[Ticket()]))])
    async with asgi_client(app) as client:
        response = await client.get("/r", headers={"X-Ticket": "bad"})
    assert (response.status_code, response.json()["reason"]) == (401, "credentials_invalid")
    assert response.headers["www-authenticate"] == 'Ticket realm="t"'
    assert REJECTED.scheme is None


def test_fields_are_read_only_and_copies_vary_them() -> None:
    refusal = Refusal(Reason.CREDENTIALS_INVALID, headers={"Retry-After": "3"})
    with pytest.raises(AttributeError, match="read-only"):
        refusal.scheme = "Basic"  # type: ignore[misc]
    with pytest.raises(TypeError):
        refusal.headers["Retry-After"] = "9"  # type: ignore[index]
    named = refusal.with_scheme("Basic")
    assert (named.scheme, refusal.scheme) == ("Basic", None)
    assert named.with_scheme("Bearer") is named  # a named scheme stays
    assert dict(named.headers) == {"Retry-After": "3"}
    changed = refusal.replace(detail="Try again.")
    assert (changed.detail, changed.reason, refusal.detail) == (
        "Try again.", Reason.CREDENTIALS_INVALID, None)
