"""FastAPI integration: require() dependencies, Security scopes, routers, typed identity."""

from __future__ import annotations

import base64
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends, FastAPI, Security
from starlette.requests import Request

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    HasRoles,
    HasScopes,
    Identity,
    PBKDF2Hasher,
    Permission,
    Public,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.fastapi import CurrentIdentity, OptionalIdentity, install, require
from authguard.fastapi_routes import is_included_router
from helpers import asgi_client


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


ALICE = {"X-API-Key": "k-alice"}  # scopes reports:read
BOB = {"X-API-Key": "k-bob"}  # role admin, no scopes


def make_guard(**kw: Any) -> AuthGuard:
    passwords = StaticPasswords.from_plaintext(
        {"alice": ("wonderland", ["user"]), "bob": ("builder", ["admin"])},
        hasher=PBKDF2Hasher(iterations=1000),
    )
    keys = StaticAPIKeys({
        hash_api_key("k-alice"): Identity(subject="alice", scheme="ApiKey",
                                          scopes=frozenset({"reports:read"})),
        hash_api_key("k-bob"): Identity(subject="bob", scheme="ApiKey",
                                        roles=frozenset({"admin"})),
    })
    return AuthGuard(authenticators=[
        BasicAuthenticator(verifier=passwords, realm="test"),
        APIKeyAuthenticator(store=keys, realm="test"),
    ], **kw)


calls: list[str] = []
ReportsReader = Annotated[
    Identity | None, Security(require(Authenticated()), scopes=["reports:read"])
]


def owner(request: Any, who: Identity) -> bool:
    calls.append(who.subject)
    return bool(request.path_params["user"] == who.subject)


def build(middleware: bool = True, **guard_kw: Any) -> FastAPI:
    guard = make_guard(**guard_kw)
    app = FastAPI()
    if middleware:
        app.add_middleware(AuthGuardMiddleware, guard=guard)
    install(app, guard)

    @app.get("/me")
    async def me(who: CurrentIdentity) -> dict[str, str]:
        return {"subject": who.subject}

    @app.get("/maybe")
    async def maybe(who: OptionalIdentity) -> dict[str, str | None]:
        return {"subject": who.subject if who else None}

    @app.get("/admin", dependencies=[Depends(require(HasRoles("admin")))])
    async def admin() -> dict[str, bool]:
        return {"admin": True}

    @app.get("/reports")
    async def reports(who: ReportsReader) -> dict[str, str | None]:
        return {"subject": who.subject if who else None}

    @app.get("/users/{user}/notes", dependencies=[Depends(require(Permission(owner)))])
    async def notes(user: str) -> dict[str, str]:
        return {"owner": user}

    @app.get("/secret", dependencies=[Depends(require(HasRoles("admin"), conceal=True))])
    async def secret() -> dict[str, bool]:
        return {"secret": True}

    @app.get("/open")
    @protect(Public)
    async def open_(request: Request) -> dict[str, bool]:
        return {"open": True}

    router = APIRouter(prefix="/ops", dependencies=[Depends(require(HasRoles("admin")))])

    @router.get("/status")
    async def status() -> dict[str, str]:
        return {"status": "ok"}

    app.include_router(router)

    plain = APIRouter()

    @plain.get("/included")
    async def included() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(plain, prefix="/inc",
                       dependencies=[Depends(require(HasScopes("reports:read")))])
    return app


@pytest.fixture(params=[True, False], ids=["middleware", "dependencies-only"])
def app(request: pytest.FixtureRequest) -> FastAPI:
    return build(middleware=request.param)


async def test_current_identity(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/me")
        assert r.status_code == 401
        assert r.json()["reason"] == "credentials_missing"
        assert len(r.headers.get_list("www-authenticate")) == 2
        r = await c.get("/me", headers=basic("alice", "wonderland"))
        assert r.json() == {"subject": "alice"}
        r = await c.get("/me", headers=basic("alice", "nope"))
        assert r.status_code == 401
        assert r.json()["reason"] == "credentials_invalid"


async def test_optional_identity(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/maybe")).json() == {"subject": None}
        assert (await c.get("/maybe", headers=ALICE)).json() == {"subject": "alice"}
        r = await c.get("/maybe", headers={"X-API-Key": "wrong"})
        assert r.status_code == 401  # bad credentials are never ignored
        assert r.json()["reason"] == "credentials_invalid"


async def test_roles_dependency(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/admin")).status_code == 401
        r = await c.get("/admin", headers=ALICE)
        assert r.status_code == 403
        assert r.json()["reason"] == "forbidden"
        assert (await c.get("/admin", headers=BOB)).json() == {"admin": True}


async def test_security_scopes(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/reports", headers=BOB)
        assert r.status_code == 403
        body = r.json()
        assert body["reason"] == "insufficient_scope"
        assert body["required_scopes"] == ["reports:read"]
        assert (await c.get("/reports", headers=ALICE)).json() == {"subject": "alice"}
        assert (await c.get("/reports")).status_code == 401


async def test_permission_on_path_resource(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        calls.clear()
        assert (await c.get("/users/alice/notes", headers=ALICE)).json() == {"owner": "alice"}
        r = await c.get("/users/bob/notes", headers=ALICE)
        assert r.status_code == 403
        assert r.json()["reason"] == "forbidden"
        # checked once per request: the dependency does not repeat the middleware's check
        assert calls == ["alice", "alice"]


async def test_conceal(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        r = await c.get("/secret", headers=ALICE)
        assert r.status_code == 404
        assert "reason" not in r.text
        missing = await c.get("/no-such-page", headers=ALICE)  # FastAPI's own 404
        assert (missing.status_code, missing.content) == (404, r.content)
        assert sorted(missing.headers.items()) == sorted(r.headers.items())
        assert (await c.get("/secret")).status_code == 401  # 401 is never concealed
        assert (await c.get("/secret", headers=BOB)).json() == {"secret": True}


async def test_router_dependencies(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        assert (await c.get("/ops/status", headers=ALICE)).status_code == 403
        assert (await c.get("/ops/status", headers=BOB)).json() == {"status": "ok"}
        r = await c.get("/inc/included", headers=BOB)
        assert r.status_code == 403
        assert r.json()["reason"] == "insufficient_scope"
        assert (await c.get("/inc/included", headers=ALICE)).json() == {"ok": "yes"}


async def test_public_route(app: FastAPI) -> None:
    async with asgi_client(app) as c:
        # public: no authenticator runs, so even bad credentials pass
        r = await c.get("/open", headers={"X-API-Key": "wrong"})
        assert r.json() == {"open": True}


async def test_middleware_refuses_before_the_endpoint_runs() -> None:
    """With the middleware, require() declarations are enforced before the app runs."""
    app = build(middleware=True)
    ran: list[str] = []

    @app.get("/late", dependencies=[Depends(require(HasRoles("admin")))])
    async def late() -> dict[str, str]:
        ran.append("late")
        return {}

    inner = APIRouter()

    @inner.get("/deep/{user}")
    async def deep(user: str) -> dict[str, str]:
        ran.append("deep")
        return {}

    middle = APIRouter(dependencies=[Depends(require(HasRoles("admin")))])
    middle.include_router(inner, prefix="/inner")
    app.include_router(middle, prefix="/middle",
                       dependencies=[Depends(require(Permission(owner)))])

    async with asgi_client(app) as c:
        r = await c.get("/late", headers=ALICE)
        assert r.status_code == 403
        # nested include_router: both include-level declarations apply, path params seen
        calls.clear()
        assert (await c.get("/middle/inner/deep/alice", headers=ALICE)).status_code == 403
        assert (await c.get("/middle/inner/deep/alice", headers=BOB)).status_code == 403
        assert calls == ["alice", "bob"]  # alice owns it but lacks the role; bob does not
        assert ran == []


async def test_without_install_or_middleware_is_a_configuration_error() -> None:
    app = FastAPI()

    @app.get("/x", dependencies=[Depends(require(Authenticated()))])
    async def x() -> dict[str, str]:
        return {}

    async with asgi_client(app) as c:
        with pytest.raises(Exception, match="install"):
            await c.get("/x")


async def test_mount_inside_an_included_router() -> None:
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route, Router

    async def file(request: Request) -> PlainTextResponse:
        return PlainTextResponse("file " + request.path_params["name"])

    app = build(middleware=True)
    files = protect(HasRoles("admin"))(Router(routes=[Route("/{name}", file)]))
    pkg = APIRouter()
    pkg.mount("/files", files)
    app.include_router(pkg, prefix="/pkg")
    async with asgi_client(app) as c:
        if not any(is_included_router(r) or getattr(r, "path", None) == "/pkg/files"
                   for r in app.routes):
            # FastAPI 0.115 copies only routes from an included router, not its mounts:
            # nothing there is served, to anyone
            for who in ({}, ALICE, BOB):
                assert (await c.get("/pkg/files/a.txt", headers=who)).status_code == 404
            return
        assert (await c.get("/pkg/files/a.txt")).status_code == 401
        assert (await c.get("/pkg/files/a.txt", headers=ALICE)).status_code == 403
        assert (await c.get("/pkg/files/a.txt", headers=BOB)).text == "file a.txt"


async def test_identity_on_a_public_route() -> None:
    """On a public route no authenticator runs in the middleware; the dependency asks."""
    app = build(middleware=True)

    @app.get("/open-me")
    @protect(Public)
    async def open_me(who: CurrentIdentity) -> dict[str, str]:
        return {"subject": who.subject}

    async with asgi_client(app) as c:
        r = await c.get("/open-me")
        assert r.status_code == 401
        assert r.json()["reason"] == "credentials_missing"
        assert len(r.headers.get_list("www-authenticate")) == 2
        assert (await c.get("/open-me", headers=ALICE)).json() == {"subject": "alice"}
        r = await c.get("/open-me", headers={"X-API-Key": "nope"})
        assert r.status_code == 401 and r.json()["reason"] == "credentials_invalid"


async def test_refusal_raised_by_the_endpoint_is_rendered() -> None:
    """Application code may raise a Refusal; it gets the same answer as any refusal."""
    from authguard import Reason, Refusal

    app = build(middleware=True)

    @app.get("/documents/{doc_id}")
    async def document(doc_id: int, who: CurrentIdentity) -> dict[str, int]:
        if doc_id != 1:
            raise Refusal(Reason.FORBIDDEN, "This document is not shared with you.")
        return {"doc": doc_id}

    async with asgi_client(app) as c:
        assert (await c.get("/documents/1", headers=ALICE)).json() == {"doc": 1}
        r = await c.get("/documents/2", headers={**ALICE, "X-Request-ID": "req-42"})
        assert r.status_code == 403
        body = r.json()
        assert body["reason"] == "forbidden"
        assert body["detail"] == "This document is not shared with you."
        assert body["request_id"] == "req-42" and body["instance"] == "/documents/2"


async def test_with_install_the_apps_exception_handlers_render_raised_refusals() -> None:
    """``install()`` registers handlers for Refusal and AuthUnavailable: the app renders
    what it raises (the middleware does not watch its responses), byte for byte as the
    middleware would."""
    from authguard import AuthUnavailable, Reason, Refusal
    from authguard.middleware import AuthGuardMiddleware

    app = build(middleware=True)

    @app.get("/documents/{doc_id}")
    async def document(doc_id: int, who: CurrentIdentity) -> dict[str, int]:
        if doc_id == 3:
            raise AuthUnavailable("the document store is down", retry_after=9)
        raise Refusal(Reason.FORBIDDEN, "This document is not shared with you.")

    async with asgi_client(app) as c:
        r = await c.get("/documents/2", headers={**ALICE, "X-Request-ID": "req-7"})
        down = await c.get("/documents/3", headers=ALICE)
    assert r.status_code == 403 and r.json()["reason"] == "forbidden"
    assert r.json()["request_id"] == r.headers["x-request-id"] == "req-7"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert down.status_code == 503 and down.json()["reason"] == "auth_unavailable"
    assert down.headers["retry-after"] == "9"
    engines = [m for m in _middlewares(app) if isinstance(m, AuthGuardMiddleware)]
    assert engines and all(m._app_renders for m in engines)


def _middlewares(app: Any) -> list[Any]:
    found, node = [], app.middleware_stack
    while node is not None:
        found.append(node)
        node = getattr(node, "app", None)
    return found


async def test_without_the_middleware_install_renders_an_unavailable_backend() -> None:
    from authguard import AuthUnavailable

    app = build(middleware=False)

    @app.get("/store")
    async def store() -> dict[str, int]:
        raise AuthUnavailable("the user store is down", retry_after=4)

    async with asgi_client(app) as c:
        down = await c.get("/store")
    assert down.status_code == 503 and down.json()["reason"] == "auth_unavailable"
    assert down.headers["retry-after"] == "4"


def test_require_is_typed_to_return_an_identity_when_one_is_needed() -> None:
    from typing import get_overloads

    from authguard import Authenticated, HasRoles, HasScopes, StepUp
    from authguard.fastapi import require

    strict, loose = get_overloads(require)
    hints = strict.__annotations__
    assert hints["return"] == "Callable[..., Awaitable[Identity]]"
    assert hints["requirement"] == "Authenticated | HasRoles | HasScopes | StepUp"
    assert loose.__annotations__["return"] == "Callable[..., Awaitable[Identity | None]]"
    assert all(callable(require(r)) for r in (Authenticated(), HasRoles("a"),
                                             HasScopes("s"), StepUp("mfa")))
