"""A protected route is never served to someone who does not meet its policy, wherever the
middleware sits: on a mount, in a sub-app, under a protected mount; with routes added
while the app runs; for preflight-shaped OPTIONS requests; and without the middleware at
all (the endpoint refuses, and the route audit says that nothing enforces the policy).
Each case in its Starlette and FastAPI forms."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from starlette.applications import Starlette
from starlette.endpoints import HTTPEndpoint
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Host, Mount, Route, Router
from starlette.types import Receive, Scope, Send

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    HasRoles,
    Identity,
    StaticAPIKeys,
    hash_api_key,
    protect,
)
from authguard.audit import audit
from authguard.fastapi import install, require
from helpers import asgi_client

ADMIN = Identity(subject="ada", scheme="ApiKey", roles=frozenset({"admin"}))
USER = Identity(subject="bob", scheme="ApiKey")
KEY = {"X-API-Key": "k-admin"}
USER_KEY = {"X-API-Key": "k-user"}
RAN: list[str] = []  # endpoints that ran


def _guard(*others: Identity) -> AuthGuard:
    keys = {hash_api_key("k-admin"): ADMIN}
    keys.update({hash_api_key("k-user"): who for who in others})
    return AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys(keys))])


@pytest.fixture(autouse=True)
def _forget() -> None:
    RAN.clear()


def _endpoint(name: str) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> JSONResponse:
        RAN.append(name)
        return JSONResponse({"ran": name})
    endpoint.__name__ = name
    return endpoint


async def _secret_app(scope: Scope, receive: Receive, send: Send) -> None:
    """A method-agnostic mounted ASGI app."""
    RAN.append("secret_app")
    await PlainTextResponse("secret")(scope, receive, send)


def _fastapi_sub(*, middleware: bool) -> FastAPI:
    sub = FastAPI()

    @sub.get("/x")
    @protect(HasRoles("admin"))
    async def x() -> dict[str, str]:
        RAN.append("x")
        return {"ran": "x"}

    if middleware:
        sub.add_middleware(AuthGuardMiddleware, guard=_guard())
    return sub


# -- middleware on a mount --------------------------------------------------------------

def _mount_with_middleware() -> Starlette:
    return Starlette(routes=[Mount("/api", routes=[
        protect(HasRoles("admin"))(Route("/x", _endpoint("x")))],
        middleware=[Middleware(AuthGuardMiddleware, guard=_guard())])])


def _mounted_middleware_app() -> Starlette:
    sub = Starlette(routes=[protect(HasRoles("admin"))(Route("/x", _endpoint("x")))])
    app = Starlette()
    app.mount("/api", AuthGuardMiddleware(sub, _guard()))
    return app


def _fastapi_mounted_sub_app() -> FastAPI:
    app = FastAPI()
    app.mount("/api", _fastapi_sub(middleware=True))
    return app


def _protected_mount_middleware_inside() -> Starlette:
    return Starlette(routes=[protect(HasRoles("admin"))(Mount("/api", routes=[
        Route("/x", _endpoint("x"))],
        middleware=[Middleware(AuthGuardMiddleware, guard=_guard())]))])


def _fastapi_protected_mount_middleware_inside() -> FastAPI:
    sub = FastAPI()

    @sub.get("/x")
    async def x() -> dict[str, str]:
        RAN.append("x")
        return {"ran": "x"}

    sub.add_middleware(AuthGuardMiddleware, guard=_guard())
    app = FastAPI()
    app.mount("/api", sub)
    protect(HasRoles("admin"))(app.routes[-1])
    return app


@pytest.mark.parametrize("make", [
    _mount_with_middleware, _mounted_middleware_app, _fastapi_mounted_sub_app,
    _protected_mount_middleware_inside, _fastapi_protected_mount_middleware_inside,
])
async def test_middleware_on_a_mount_enforces_the_routes_it_wraps(make: Callable[[], Any]
                                                                  ) -> None:
    async with asgi_client(make()) as client:
        anonymous = await client.get("/api/x")
        allowed = await client.get("/api/x", headers=KEY)
    assert anonymous.status_code == 401
    assert anonymous.json()["reason"] == "credentials_missing"
    assert allowed.status_code == 200
    assert RAN == ["x"]


# -- routes added while the app runs ----------------------------------------------------

async def test_a_route_added_later_is_not_served_with_a_remembered_default() -> None:
    app = Starlette(middleware=[Middleware(AuthGuardMiddleware, guard=_guard())])
    async with asgi_client(app) as client:
        assert (await client.get("/late")).status_code == 404
        app.add_route("/late", protect(HasRoles("admin"))(_endpoint("late")))
        assert (await client.get("/late")).status_code == 401
        assert (await client.get("/late", headers=KEY)).status_code == 200
    assert RAN == ["late"]


async def test_a_fastapi_route_added_later_is_not_served_with_a_remembered_default() -> None:
    app = FastAPI()
    app.add_middleware(AuthGuardMiddleware, guard=_guard())
    async with asgi_client(app) as client:
        assert (await client.get("/late")).status_code == 404

        @app.get("/late")
        @protect(HasRoles("admin"))
        async def late() -> dict[str, str]:
            RAN.append("late")
            return {}

        assert (await client.get("/late")).status_code == 401
        assert (await client.get("/late", headers=KEY)).status_code == 200
    assert RAN == ["late"]


async def test_a_mounted_router_that_grows_is_not_served_with_a_remembered_answer() -> None:
    inner = Mount("/api", routes=[])
    app = Starlette(routes=[inner],
                    middleware=[Middleware(AuthGuardMiddleware, guard=_guard())])
    async with asgi_client(app) as client:
        assert (await client.get("/api/late")).status_code == 404
        inner.routes.append(protect(HasRoles("admin"))(Route("/late", _endpoint("late"))))
        assert (await client.get("/api/late")).status_code == 401
    assert RAN == []


# -- preflight-shaped OPTIONS -----------------------------------------------------------

PREFLIGHT = {"Origin": "https://a.example", "Access-Control-Request-Method": "GET"}


def _starlette_options(*cors: Middleware) -> Starlette:
    return Starlette(
        routes=[protect(HasRoles("admin"))(Route("/x", _endpoint("x"),
                                                 methods=["GET", "OPTIONS"])),
                protect(HasRoles("admin"))(Mount("/files", app=_secret_app))],
        middleware=[Middleware(AuthGuardMiddleware, guard=_guard()), *cors])


def _fastapi_options() -> FastAPI:
    app = FastAPI()

    @app.options("/x")
    @protect(HasRoles("admin"))
    async def x() -> dict[str, str]:
        RAN.append("x")
        return {}

    app.mount("/files", _secret_app)
    protect(HasRoles("admin"))(app.routes[-1])
    app.add_middleware(AuthGuardMiddleware, guard=_guard())
    return app


@pytest.mark.parametrize("make", [_starlette_options, _fastapi_options])
@pytest.mark.parametrize("path", ["/x", "/files/anything"])
async def test_a_preflight_shaped_request_does_not_run_a_protected_handler(
        make: Callable[[], Any], path: str) -> None:
    async with asgi_client(make()) as client:
        response = await client.options(path, headers=PREFLIGHT)
    assert response.status_code == 401
    assert RAN == []


async def test_a_preflight_answered_by_a_cors_layer_inside_passes() -> None:
    cors = Middleware(CORSMiddleware, allow_origins=["https://a.example"],
                      allow_methods=["GET"])
    async with asgi_client(_starlette_options(cors)) as client:
        response = await client.options("/x", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://a.example"
    assert RAN == []


async def test_a_preflight_for_a_method_the_route_does_not_serve_passes() -> None:
    app = Starlette(routes=[protect(HasRoles("admin"))(Route("/x", _endpoint("x")))],
                    middleware=[Middleware(AuthGuardMiddleware, guard=_guard())])
    async with asgi_client(app) as client:
        response = await client.options("/x", headers=PREFLIGHT)
    assert response.status_code == 405  # the router answers; no handler ran
    assert RAN == []


# -- @protect without the middleware ----------------------------------------------------

def _starlette_without_middleware() -> Starlette:
    return Starlette(routes=[Route("/x", protect(HasRoles("admin"))(_endpoint("x"))),
                             protect(HasRoles("admin"))(Route("/y", _endpoint("y")))])


def _fastapi_without_middleware() -> FastAPI:
    app = _fastapi_sub(middleware=False)

    @app.get("/y")
    @protect(HasRoles("admin"))
    def y() -> dict[str, str]:  # a sync endpoint (run in a thread)
        RAN.append("y")
        return {}

    return app


def _fastapi_install_only() -> FastAPI:
    app = _fastapi_without_middleware()
    install(app, _guard())
    return app


@pytest.mark.parametrize("make", [_starlette_without_middleware, _fastapi_without_middleware,
                                  _fastapi_install_only])
async def test_a_protected_endpoint_without_the_middleware_refuses(
        make: Callable[[], Any], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="authguard"):
        async with asgi_client(make()) as client:
            for path in ("/x", "/y"):
                response = await client.get(path, headers=KEY)
                assert response.status_code == 403, path
    assert RAN == []
    assert "AuthGuardMiddleware" in caplog.text


async def test_a_decision_under_a_weaker_policy_does_not_cover_a_protected_endpoint(
        caplog: pytest.LogCaptureFixture) -> None:
    # require(Authenticated()) decided the request; the endpoint also wants a role the
    # identity does not have, which that decision did not check
    app = FastAPI()

    @app.get("/z", dependencies=[Depends(require(Authenticated()))])
    @protect(HasRoles("root"))
    async def z() -> dict[str, str]:
        RAN.append("z")
        return {}

    install(app, _guard())
    with caplog.at_level(logging.ERROR, logger="authguard"):
        async with asgi_client(app) as client:
            assert (await client.get("/z", headers=KEY)).status_code == 403
    assert RAN == []
    assert "AuthGuardMiddleware" in caplog.text


async def test_the_middleware_still_serves_protected_endpoints() -> None:
    app = _fastapi_without_middleware()
    app.add_middleware(AuthGuardMiddleware, guard=_guard())
    install(app, _guard())
    async with asgi_client(app) as client:
        assert (await client.get("/x")).status_code == 401
        assert (await client.get("/x", headers=KEY)).status_code == 200
        assert (await client.get("/y", headers=KEY)).status_code == 200
    assert RAN == ["x", "y"]


@pytest.mark.parametrize("make", [_starlette_without_middleware, _fastapi_install_only])
def test_the_audit_says_when_nothing_enforces_a_policy(make: Callable[[], Any]) -> None:
    app = make()
    rows = {r["path"]: r for r in audit(app, _guard())}
    assert rows["/x"]["enforced"] is False
    assert rows["/y"]["enforced"] is False


def test_the_audit_says_when_the_middleware_enforces_a_policy() -> None:
    app = _fastapi_without_middleware()
    app.add_middleware(AuthGuardMiddleware, guard=_guard())
    rows = {r["path"]: r for r in audit(app, _guard())}
    assert rows["/x"]["enforced"] is True


def test_audit_strict_fails_on_a_policy_nothing_enforces(
        tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    from authguard.audit import run

    (tmp_path / "unenforced_app.py").write_text(
        "from starlette.applications import Starlette\n"
        "from starlette.responses import PlainTextResponse\n"
        "from starlette.routing import Route\n"
        "from authguard import (APIKeyAuthenticator, AuthGuard, HasRoles, StaticAPIKeys,\n"
        "                       protect)\n"
        "guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))])\n"
        "@protect(HasRoles('admin'))\n"
        "async def admin(request):\n"
        "    return PlainTextResponse('secret')\n"
        "app = Starlette(routes=[Route('/admin', admin)])\n", encoding="utf-8")
    args = argparse.Namespace(app="unenforced_app:app", app_dir=str(tmp_path),
                              guard="guard", json=False, strict=True)
    assert run(args) == 1
    assert "policy NOT ENFORCED" in capsys.readouterr().err


# -- a policy on a Mount, a Host, a Router or a class-based endpoint, without the middleware

class _AdminEndpoint(HTTPEndpoint):
    async def get(self, request: Request) -> JSONResponse:
        RAN.append("endpoint_class")
        return JSONResponse({"ran": "endpoint_class"})

    def post(self, request: Request) -> JSONResponse:  # a sync handler (run in a thread)
        RAN.append("endpoint_class_post")
        return JSONResponse({"ran": "endpoint_class_post"})


def _protected_containers() -> list[BaseRoute]:
    admin = HasRoles("admin")
    return [
        protect(admin)(Mount("/mount", routes=[Route("/x", _endpoint("mount_x"))])),
        protect(admin)(Mount("/app", app=_secret_app)),
        Mount("/router", app=protect(admin)(Router(routes=[
            Route("/x", _endpoint("router_x"))]))),
        Mount("/host", routes=[protect(admin)(Host("{sub}.example", app=Router(routes=[
            Route("/x", _endpoint("host_x"))])))]),
        Mount("/starlette-app", app=protect(admin)(Starlette(routes=[
            Route("/x", _endpoint("starlette_app_x"))]))),
        Route("/endpoint", protect(admin)(_AdminEndpoint)),
        Route("/sub-endpoint", type("Sub", (_AdminEndpoint,), {})),
    ]


CONTAINER_PATHS = ["/mount/x", "/app/anything", "/router/x", "/host/x", "/starlette-app/x",
                   "/endpoint", "/sub-endpoint"]


def _starlette_containers() -> Starlette:
    return Starlette(routes=_protected_containers())


def _fastapi_containers() -> FastAPI:
    app = FastAPI()
    sub = FastAPI()

    @sub.get("/x")
    async def x() -> dict[str, str]:
        RAN.append("fastapi_sub_x")
        return {}

    app.mount("/fastapi-sub", sub)
    protect(HasRoles("admin"))(app.routes[-1])
    app.mount("/fastapi-app", _secret_app)
    protect(HasRoles("admin"))(app.routes[-1])
    protected_sub = FastAPI()

    @protected_sub.get("/x")
    async def protected_x() -> dict[str, str]:
        RAN.append("fastapi_protected_sub_x")
        return {}

    app.mount("/fastapi-protected-sub", protect(HasRoles("admin"))(protected_sub))
    for route in _protected_containers():
        app.router.routes.append(route)
    install(app, _guard())
    return app


FASTAPI_PATHS = ["/fastapi-sub/x", "/fastapi-app/x", "/fastapi-protected-sub/x"]
CASES = [*((_starlette_containers, p) for p in CONTAINER_PATHS),
         *((_fastapi_containers, p) for p in [*CONTAINER_PATHS, *FASTAPI_PATHS])]


@pytest.mark.parametrize(("make", "path"), CASES)
async def test_a_protected_container_without_the_middleware_refuses(
        make: Callable[[], Any], path: str, caplog: pytest.LogCaptureFixture) -> None:
    host = {"Host": "a.example"} if path.startswith("/host") else {}
    with caplog.at_level(logging.ERROR, logger="authguard"):
        async with asgi_client(make()) as client:
            assert (await client.get(path, headers={**KEY, **host})).status_code == 403
            if path == "/endpoint":  # its sync handler too
                assert (await client.post(path, headers=KEY)).status_code == 403
    assert RAN == []
    assert "add AuthGuardMiddleware" in caplog.text


@pytest.mark.parametrize(("make", "path"), CASES)
async def test_the_middleware_still_serves_protected_containers(
        make: Callable[[], Any], path: str) -> None:
    app = make()
    app.add_middleware(AuthGuardMiddleware, guard=_guard(USER))
    host = {"Host": "a.example"} if path.startswith("/host") else {}
    async with asgi_client(app) as client:
        assert (await client.get(path, headers=host)).status_code == 401
        assert (await client.get(path, headers={**USER_KEY, **host})).status_code == 403
        assert (await client.get(path, headers={**KEY, **host})).status_code == 200
        if path == "/endpoint":
            assert (await client.post(path, headers=KEY)).status_code == 200
    assert len(RAN) == (2 if path == "/endpoint" else 1)


def test_a_protected_mount_keeps_its_routes_for_the_audit_and_url_building() -> None:
    app = _starlette_containers()
    assert app.url_path_for("router_x") == "/router/x"
    assert app.url_path_for("mount_x") == "/mount/x"
    rows = {r["path"]: r for r in audit(app, _guard())}
    assert rows["/mount/x"]["enforced"] is False
    assert "admin" in rows["/router/x"]["policy"]


def _protected_container(kind: str, routes: list[BaseRoute]) -> BaseRoute:
    admin = HasRoles("admin")
    if kind == "mount":
        return protect(admin)(Mount("/m", routes=routes))
    if kind == "router":
        return Mount("/m", app=protect(admin)(Router(routes=routes)))
    if kind == "host":
        return Mount("/m", routes=[protect(admin)(Host("a.example", app=Router(routes)))])
    return Mount("/m", app=protect(admin)(Starlette(routes=routes)))


CONTAINERS = ["mount", "router", "host", "app"]
HOST = {"Host": "a.example"}


@pytest.mark.parametrize("kind", CONTAINERS)
async def test_a_public_route_inside_a_protected_container_is_served_without_the_middleware(
        kind: str) -> None:
    app = Starlette(routes=[_protected_container(kind, [
        protect(None)(Route("/open", _endpoint("open"))),
        Route("/closed", _endpoint("closed"))])])
    async with asgi_client(app) as client:
        assert (await client.get("/m/open", headers=HOST)).status_code == 200
        assert (await client.get("/m/closed", headers={**KEY, **HOST})).status_code == 403
    assert RAN == ["open"]


@pytest.mark.parametrize("kind", CONTAINERS)
async def test_an_inner_policy_wins_over_its_container_with_the_middleware(kind: str) -> None:
    app = Starlette(
        routes=[_protected_container(kind, [
            protect(Authenticated())(Route("/signed-in", _endpoint("signed_in"))),
            protect(None)(Route("/open", _endpoint("open"))),
            Route("/closed", _endpoint("closed"))])],
        middleware=[Middleware(AuthGuardMiddleware, guard=_guard(USER))])
    async with asgi_client(app) as client:
        assert (await client.get("/m/open", headers=HOST)).status_code == 200
        assert (await client.get("/m/signed-in", headers=HOST)).status_code == 401
        assert (await client.get("/m/signed-in", headers={**USER_KEY, **HOST})
                ).status_code == 200
        assert (await client.get("/m/closed", headers={**USER_KEY, **HOST})
                ).status_code == 403
        assert (await client.get("/m/closed", headers={**KEY, **HOST})).status_code == 200
    assert RAN == ["open", "signed_in", "closed"]


def _fastapi_router_with_a_protected_dependency(*, middleware: bool) -> FastAPI:
    @protect(HasRoles("admin"))
    async def admin_only() -> None:
        RAN.append("dependency")

    router = APIRouter()

    @router.get("/x")
    async def x() -> dict[str, str]:
        RAN.append("x")
        return {}

    app = FastAPI()
    app.include_router(router, prefix="/r", dependencies=[Depends(admin_only)])
    if middleware:
        app.add_middleware(AuthGuardMiddleware, guard=_guard())
    return app


async def test_a_router_included_with_a_protected_dependency_is_enforced() -> None:
    async with asgi_client(_fastapi_router_with_a_protected_dependency(middleware=False)
                           ) as client:
        assert (await client.get("/r/x", headers=KEY)).status_code == 403
    assert RAN == []
    async with asgi_client(_fastapi_router_with_a_protected_dependency(middleware=True)
                           ) as client:
        assert (await client.get("/r/x")).status_code == 401
        assert (await client.get("/r/x", headers=KEY)).status_code == 200
    assert RAN == ["dependency", "x"]
