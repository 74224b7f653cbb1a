"""Declaring policies in Starlette: endpoints, Route/Mount/Router/Host, path rules,
deny-by-default, browsers (303 to the login page), concealment, CORS."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Host, Mount, Route, Router

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    HasRoles,
    Identity,
    Permission,
    Public,
    StaticAPIKeys,
    hash_api_key,
    protect,
)
from authguard.middleware import local_path
from helpers import asgi_client

ALICE = {"X-API-Key": "k-alice"}
BOB = {"X-API-Key": "k-bob"}  # admin
ORIGIN = "http://localhost:3000"


def guard(**kw: Any) -> AuthGuard:
    keys = StaticAPIKeys({
        hash_api_key("k-alice"): Identity(subject="alice", scheme="ApiKey"),
        hash_api_key("k-bob"): Identity(subject="bob", scheme="ApiKey",
                                        roles=frozenset({"admin"})),
    })
    return AuthGuard(authenticators=[APIKeyAuthenticator(store=keys, realm="t")], **kw)


def hello_endpoint() -> Callable[[Request], Awaitable[PlainTextResponse]]:
    """A fresh endpoint function: ``protect`` marks the function object it decorates."""

    async def hello(request: Request) -> PlainTextResponse:
        who = request.user.display_name if request.user.is_authenticated else "anonymous"
        return PlainTextResponse(f"hello {who} {dict(request.path_params)}")

    return hello


async def write(request: Request) -> PlainTextResponse:
    return PlainTextResponse("written")


def owns(request: Any, identity: Identity) -> bool:
    return bool(request.path_params["user"] == identity.subject)


def make_app(g: AuthGuard, *, cors: bool = False) -> Starlette:
    admin_router = protect(HasRoles("admin"))(Router(routes=[Route("/stats", hello_endpoint())]))
    routes = [
        Route("/open", protect(Public)(hello_endpoint())),
        Route("/free", hello_endpoint()),  # no declaration: path rules, then the default
        protect(Authenticated())(Route("/route-level", hello_endpoint())),
        Route("/items", protect(Public)(hello_endpoint()), methods=["GET"]),
        Route("/items", protect(HasRoles("admin"))(write), methods=["POST"]),
        Route("/users/{user}/notes", protect(Permission(owns))(hello_endpoint())),
        Route("/hidden", protect(HasRoles("admin"), conceal=True)(hello_endpoint())),
        Route("/account", protect(Authenticated(), login_url="/login")(hello_endpoint())),
        protect(HasRoles("admin"))(Mount("/admin", routes=[
            Route("/panel", hello_endpoint()),
            Route("/public-note", protect(Public)(hello_endpoint())),  # innermost wins
            Mount("/deeper", routes=[Route("/x/{n:int}", hello_endpoint())]),
        ])),
        Mount("/ops", app=admin_router),
        protect(Authenticated())(Host("api.example.test", app=Router(routes=[
            Route("/host-only", hello_endpoint()),
        ]))),
        Route("/ruled/{rest:path}", hello_endpoint()),
        Route("/login", protect(Public)(hello_endpoint())),
    ]
    middleware = [Middleware(AuthGuardMiddleware, guard=g)]
    if cors:  # outermost: added first in the list, so refusals get CORS headers too
        middleware.insert(0, Middleware(CORSMiddleware, allow_origins=[ORIGIN],
                                        allow_methods=["*"], allow_headers=["*"]))
    return Starlette(routes=routes, middleware=middleware)


@pytest.fixture
def app() -> Starlette:
    return make_app(guard(rules={"/ruled": HasRoles("admin")}))


async def test_endpoint_and_route_declarations(app: Starlette) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/open", headers={"X-API-Key": "bad"})).status_code == 200
        assert (await c.get("/free")).text.startswith("hello anonymous")
        r = await c.get("/free", headers={"X-API-Key": "bad"})
        assert r.status_code == 401  # the default still checks offered credentials
        assert (await c.get("/route-level")).status_code == 401
        assert (await c.get("/route-level", headers=ALICE)).text.startswith("hello alice")


async def test_method_specific_routes(app: Starlette) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/items")).status_code == 200
        assert (await c.post("/items")).status_code == 401
        assert (await c.post("/items", headers=ALICE)).status_code == 403
        assert (await c.post("/items", headers=BOB)).text == "written"


async def test_permission_sees_path_params(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/users/alice/notes", headers=ALICE)
        assert r.status_code == 200
        r = await c.get("/users/bob/notes", headers=ALICE)
        assert r.status_code == 403 and r.json()["reason"] == "forbidden"


async def test_mount_router_and_host_inheritance(app: Starlette) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/admin/panel", headers=ALICE)).status_code == 403
        assert (await c.get("/admin/panel", headers=BOB)).status_code == 200
        assert (await c.get("/admin/public-note")).status_code == 200
        assert (await c.get("/admin/deeper/x/7", headers=ALICE)).status_code == 403
        r = await c.get("/admin/deeper/x/7", headers=BOB)
        assert r.text == "hello bob {'n': 7}"
        assert (await c.get("/ops/stats", headers=ALICE)).status_code == 403
        assert (await c.get("/ops/stats", headers=BOB)).status_code == 200
        r = await c.get("/host-only", headers={"Host": "api.example.test"})
        assert r.status_code == 401
        r = await c.get("/host-only", headers={"Host": "api.example.test", **ALICE})
        assert r.status_code == 200


async def test_path_rules(app: Starlette) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/ruled/a/b")).status_code == 401
        assert (await c.get("/ruled/a/b", headers=ALICE)).status_code == 403
        assert (await c.get("/ruled/a/b", headers=BOB)).status_code == 200


async def test_deny_by_default_refuses_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(guard(deny_by_default=True, rules={"/ruled": HasRoles("admin")}))
    with caplog.at_level(logging.WARNING, logger="authguard"):
        async with asgi_client(app) as c:
            assert (await c.get("/free")).status_code == 401
            r = await c.get("/free", headers=ALICE)
            assert r.status_code == 403 and r.json()["reason"] == "forbidden"
            assert (await c.get("/open")).status_code == 200  # explicit policies still apply
            assert (await c.get("/ruled/x", headers=BOB)).status_code == 200
            await c.get("/free")
    warnings = [r for r in caplog.records if "deny_by_default" in r.getMessage()]
    assert len(warnings) == 1, "warned once"
    text = warnings[0].getMessage()
    assert "GET|HEAD /free" in text
    assert "/open" not in text and "/ruled" not in text and "/route-level" not in text


async def test_concealed_403_is_404(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/hidden", headers=ALICE)
        assert r.status_code == 404
        assert "forbidden" not in r.text and "www-authenticate" not in r.headers
        # byte for byte the router's own 404: nothing tells "hidden" from "missing"
        missing = await c.get("/no-such-page", headers=ALICE)
        assert (missing.status_code, missing.content) == (404, r.content)
        assert sorted(missing.headers.items()) == sorted(r.headers.items())
        assert (await c.get("/hidden")).status_code == 401
        assert (await c.get("/hidden", headers=BOB)).status_code == 200


HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}


async def test_browser_navigation_redirects_to_login(app: Starlette) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/account?tab=keys&x=1", headers=HTML)
        assert r.status_code == 303
        location = urlsplit(r.headers["location"])
        assert location.path == "/login"
        assert parse_qs(location.query) == {"next": ["/account?tab=keys&x=1"]}
        assert r.headers["cache-control"] == "no-store"
        # API clients still get JSON
        r = await c.get("/account", headers={"Accept": "application/json"})
        assert r.status_code == 401 and r.json()["reason"] == "credentials_missing"
        # not a navigation: a POST gets the problem, not a redirect
        r = await c.post("/account", headers=HTML)
        assert r.status_code in (401, 405)
        # a 403 is not fixed by logging in: no redirect
        r = await c.get("/account", headers={**HTML, "X-API-Key": "bad"})
        assert r.status_code == 303  # bad credentials are a 401 too: log in again


@pytest.mark.parametrize("evil", ["//evil.example/account", "/\\evil.example"])
async def test_no_open_redirect(evil: str) -> None:
    g = guard(deny_by_default=True, login_url="/login")
    app = make_app(g)
    async with asgi_client(app) as c:
        r = await c.get("http://testserver" + evil, headers=HTML)
        assert r.status_code == 303
        nxt = parse_qs(urlsplit(r.headers["location"]).query)["next"][0]
        assert local_path(nxt) == nxt, nxt
        assert not nxt.startswith("//")


@pytest.mark.parametrize(("value", "ok"), [
    ("/account", True), ("/a?b=c", True), ("//evil.example", False),
    ("https://evil.example/", False), ("/\\evil.example", False), ("evil", False),
    ("/a\r\nSet-Cookie: x=1", False), (None, False), ("", False),
])
def test_local_path(value: Any, ok: bool) -> None:
    assert (local_path(value) is not None) is ok


async def test_cors_preflight_passes_and_refusals_carry_cors_headers() -> None:
    app = make_app(guard(), cors=True)
    async with asgi_client(app) as c:
        pre = await c.options("/route-level", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-api-key"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == ORIGIN
        r = await c.get("/route-level", headers={"Origin": ORIGIN})
        assert r.status_code == 401
        assert r.headers["access-control-allow-origin"] == ORIGIN
        exposed = r.headers["access-control-expose-headers"].lower()
        assert "www-authenticate" in exposed
        r = await c.get("/route-level", headers={"Origin": "http://evil.example"})
        assert r.status_code == 401
        assert "access-control-allow-origin" not in r.headers


async def test_preflight_without_cors_middleware_reaches_the_app() -> None:
    """A preflight is never refused by authguard: no authenticator runs for it."""
    app = make_app(guard(deny_by_default=True))
    async with asgi_client(app) as c:
        pre = await c.options("/route-level", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "GET",
            "X-API-Key": "bad"})
        assert pre.status_code == 405  # the router's answer, not a 401


async def test_json_endpoint_sees_identity() -> None:
    async def whoami(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.user.display_name,
                             "scopes": request.auth.scopes})

    app = Starlette(routes=[Route("/w", protect(Authenticated())(whoami))],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard())])
    async with asgi_client(app) as c:
        assert (await c.get("/w", headers=ALICE)).json() == {"user": "alice",
                                                            "scopes": ["authenticated"]}


async def test_deny_by_default_warns_at_lifespan_startup(caplog: pytest.LogCaptureFixture) -> None:
    """Under a server, the warning comes at start-up, before any request."""
    app = make_app(guard(deny_by_default=True))
    sent: list[str] = []
    queue = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

    async def receive() -> dict[str, Any]:
        return queue.pop(0)

    async def send(message: Any) -> None:
        sent.append(message["type"])

    with caplog.at_level(logging.WARNING, logger="authguard"):
        await app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}, receive, send)
    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    [record] = [r for r in caplog.records if "deny_by_default" in r.getMessage()]
    assert "/free" in record.getMessage() and "/ws" not in record.getMessage()
