"""Security bugs found in authguard, each pinned by the test that would have caught it.

Each test names what went wrong; see SECURITY.md for the threat model.
"""

from __future__ import annotations

import base64

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Host, Route

import rawasgi
from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    NetworkPolicy,
    PBKDF2Hasher,
    Public,
    StaticPasswords,
    protect,
)

users = StaticPasswords.from_plaintext({"alice": ("advisory-password-1", [])},
                                       hasher=PBKDF2Hasher(iterations=1000))
basic = BasicAuthenticator(verifier=users)


@protect(Authenticated())
async def secret(request: Request) -> PlainTextResponse:
    return PlainTextResponse("secret")


@protect(Public)
async def open_page(request: Request) -> PlainTextResponse:
    return PlainTextResponse("open")


async def test_host_routes_do_not_share_a_cached_policy() -> None:
    """The policy cache was keyed by method and path only: after a request to a public
    route on one host, the same path on another host was served without authentication."""
    app = Starlette(
        routes=[Host("admin.example", app=Starlette(routes=[Route("/x", secret)])),
                Host("www.example", app=Starlette(routes=[Route("/x", open_page)]))],
        middleware=[Middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[basic]))],
    )
    for host in (b"www.example", b"admin.example", b"ADMIN.example", b"admin.example:80",
                 b"www.example:8000", b"admin.example"):
        answer = await rawasgi.http(app, "GET", "/x", [(b"host", host)])
        if answer.status == 200:
            assert answer.body == b"open", host
            assert host.startswith(b"www."), host
        else:
            assert answer.status in (401, 404), (host, answer.status)
    # Starlette matches hosts case-sensitively: "ADMIN.example" routes nowhere (404) and
    # must not make "admin.example" look public afterwards.
    first = await rawasgi.http(app, "GET", "/x", [(b"host", b"ADMIN.example")])
    assert first.status in (401, 404)
    again = await rawasgi.http(app, "GET", "/x", [(b"host", b"admin.example")])
    assert again.status == 401


async def test_a_client_cannot_pick_its_address_with_the_header_the_proxy_ignores() -> None:
    """Forwarded and X-Forwarded-For were both read, Forwarded first: behind a proxy that
    sets X-Forwarded-For, a client sending its own Forwarded header chose its address."""
    guard = AuthGuard(authenticators=[basic], network=NetworkPolicy(
        allow=["10.0.0.0/8"], trusted_proxies=["192.0.2.1"], use_forwarded=True))
    app = Starlette(routes=[Route("/x", secret)],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
    good = b"Basic " + base64.b64encode(b"alice:advisory-password-1")
    answer = await rawasgi.http(app, "GET", "/x", [
        (b"authorization", good), (b"forwarded", b"for=10.1.2.3"),
        (b"x-forwarded-for", b"203.0.113.9")], client=("192.0.2.1", 4000))
    assert answer.status == 403


async def test_a_refusal_raised_on_a_public_route_is_rendered_not_a_500() -> None:
    """Public routes passed straight to the app, so a Refusal raised there became a 500."""
    from authguard import Reason, Refusal

    @protect(Public)
    async def pay(request: Request) -> PlainTextResponse:
        raise Refusal(Reason.PAYMENT_REQUIRED)

    app = Starlette(routes=[Route("/pay", pay)],
                    middleware=[Middleware(AuthGuardMiddleware,
                                           guard=AuthGuard(authenticators=[basic]))])
    answer = await rawasgi.http(app, "GET", "/pay")
    rawasgi.check_answer(answer)
    assert answer.status == 402
