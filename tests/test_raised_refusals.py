"""A refusal raised by the app before its response starts is rendered by authguard, for
HTTP and WebSocket, whether Starlette's exception layer catches it (the middleware added
with ``middleware=[...]``: its handlers are registered there) or the middleware itself does
(a middleware on a ``Mount``, where no exception layer sits inside)."""

from __future__ import annotations

import json

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.websockets import WebSocket

import rawasgi
from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    AuthUnavailable,
    Identity,
    Reason,
    Refusal,
    StaticAPIKeys,
    hash_api_key,
    protect,
)

KEY = [(b"x-api-key", b"key-1")]


def guard() -> AuthGuard:
    ident = Identity(subject="svc", scheme="ApiKey")
    return AuthGuard(authenticators=[APIKeyAuthenticator(
        store=StaticAPIKeys({hash_api_key("key-1"): ident}))])


@protect(Authenticated())
async def forbidden(request: Request) -> PlainTextResponse:
    raise Refusal(Reason.FORBIDDEN, "Not this one.")


@protect(Authenticated())
async def down(request: Request) -> PlainTextResponse:
    raise AuthUnavailable("the store is down", retry_after=3)


@protect(Authenticated())
async def socket(ws: WebSocket) -> None:
    raise Refusal(Reason.FORBIDDEN, "Not this socket.")


def routes() -> list[Route | WebSocketRoute]:
    return [Route("/forbidden", forbidden), Route("/down", down),
            WebSocketRoute("/ws", socket)]


def whole_app() -> Starlette:
    return Starlette(routes=routes(), middleware=[Middleware(AuthGuardMiddleware,
                                                             guard=guard())])


def mounted_app() -> Starlette:
    return Starlette(routes=[Mount("/api", routes=routes(), middleware=[
        Middleware(AuthGuardMiddleware, guard=guard())])])


@pytest.mark.parametrize(("make", "prefix"), [(whole_app, ""), (mounted_app, "/api")])
async def test_raised_refusals_are_problems(make: object, prefix: str) -> None:
    app = make()  # type: ignore[operator]
    answer = await rawasgi.http(app, "GET", prefix + "/forbidden", KEY)
    data = json.loads(answer.body)
    assert (answer.status, data["reason"], data["detail"]) == (403, "forbidden",
                                                                "Not this one.")
    assert answer.header(b"content-type") == [b"application/problem+json"]
    answer = await rawasgi.http(app, "GET", prefix + "/down", KEY)
    data = json.loads(answer.body)
    assert (answer.status, data["reason"]) == (503, "auth_unavailable")
    assert answer.header(b"retry-after") == [b"3"]
    assert "store is down" not in answer.body.decode()
    answer = await rawasgi.websocket(app, prefix + "/ws", KEY)
    data = json.loads(answer.body)
    assert (answer.status, data["reason"], data["detail"]) == (403, "forbidden",
                                                                "Not this socket.")
    assert not answer.accepted


async def test_the_exception_layer_renders_them_when_it_sits_inside() -> None:
    app = whole_app()
    await rawasgi.http(app, "GET", "/forbidden", KEY)
    layer = app.middleware_stack
    while not isinstance(layer, AuthGuardMiddleware):
        layer = layer.app  # type: ignore[union-attr]
    # registered with Starlette's exception layer: no response is watched
    assert layer._app_renders
    handlers = layer.app._exception_handlers  # type: ignore[attr-defined]
    assert Refusal in handlers and AuthUnavailable in handlers


async def test_an_apps_own_handler_is_kept() -> None:
    async def mine(request: Request, exc: Exception) -> PlainTextResponse:
        return PlainTextResponse("mine", 418)

    app = Starlette(routes=routes(), exception_handlers={Refusal: mine},
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard())])
    answer = await rawasgi.http(app, "GET", "/forbidden", KEY)
    assert (answer.status, answer.body) == (418, b"mine")


@protect(Authenticated())
async def late_socket(ws: WebSocket) -> None:
    await ws.accept()
    await ws.send_text("hi")
    raise Refusal(Reason.FORBIDDEN)


async def test_a_refusal_after_accept_is_not_answered_as_a_refusal() -> None:
    app = Starlette(routes=[WebSocketRoute("/late", late_socket)],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard())])
    with pytest.raises(Refusal):  # raised on, as before the socket was accepted it is not
        await rawasgi.websocket(app, "/late", KEY)
