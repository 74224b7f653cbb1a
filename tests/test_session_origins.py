"""Cookie sessions and other sites: malformed Origin/Referer values and websockets."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import rawasgi
from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    Public,
    SessionAuthenticator,
    protect,
)
from helpers import asgi_client

KEY = "origin-test-session-key-0123456789abcdef"


def make_app() -> Starlette:
    session = SessionAuthenticator(secret_keys=[KEY], allowed_origins=["https://app.example"])

    @protect(Public)
    async def login(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        await session.login(request, response, "ann")
        return response

    @protect(Authenticated())
    async def change(request: Request) -> JSONResponse:
        return JSONResponse({"changed": True})

    @protect(Authenticated())
    async def socket(ws: WebSocket) -> None:
        await ws.accept()
        await ws.send_text(ws.user.subject)
        await ws.close()

    app = Starlette(routes=[Route("/login", login, methods=["POST"]),
                            Route("/change", change, methods=["POST"]),
                            WebSocketRoute("/ws", socket)])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[session]))
    return app


async def cookie_of(app: Starlette) -> bytes:
    async with asgi_client(app) as c:
        await c.post("/login")
        return f"authguard_session={c.cookies['authguard_session']}".encode()


@pytest.mark.parametrize("header", [
    (b"origin", b"http://[::1"), (b"origin", b"http://["), (b"referer", b"http://[bad/x"),
    (b"referer", b"http://x]:99/"), (b"origin", b"\xff\xfe"),
])
async def test_a_malformed_origin_is_origin_rejected_never_500(
        header: tuple[bytes, bytes]) -> None:
    app = make_app()
    cookie = await cookie_of(app)
    answer = await rawasgi.http(app, "POST", "/change", [(b"cookie", cookie), header])
    assert answer.status == 403, answer.body
    assert b'"reason":"origin_rejected"' in answer.body


async def test_a_cookie_opens_a_websocket_only_from_an_allowed_origin() -> None:
    app = make_app()
    cookie = await cookie_of(app)
    for origin in (b"http://evil.example", b"http://[", b"null"):
        refused = await rawasgi.websocket(app, "/ws", [(b"cookie", cookie),
                                                       (b"origin", origin)])
        assert refused.status == 403 and not refused.accepted, origin
        assert b"origin_rejected" in refused.body
    for headers in ([(b"origin", b"https://app.example")],
                    [(b"origin", b"http://testserver"), (b"host", b"testserver")],
                    []):  # no Origin at all: not a browser
        opened = await rawasgi.websocket(app, "/ws", [(b"cookie", cookie), *headers])
        assert opened.accepted, headers
