"""Session cookies: key rotation, max age, attributes, fixation, configuration mistakes."""

from __future__ import annotations

import asyncio

import pytest
from itsdangerous import URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    ConfigurationError,
    Public,
    SessionAuthenticator,
    protect,
)
from helpers import asgi_client

OLD = "old-session-key-0123456789abcdef-0123456789"
NEW = "new-session-key-0123456789abcdef-0123456789"


def make_app(session: SessionAuthenticator) -> Starlette:
    @protect(Public)
    async def login(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        await session.login(request, response, "ann", roles=["user"], acr="mfa")
        return response

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse({"sub": user.subject, "roles": sorted(user.roles), "acr": user.acr})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/me", me)])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[session]))
    return app


async def test_rotation_newest_signs_every_key_verifies() -> None:
    store_app_old = SessionAuthenticator(secret_keys=[OLD])
    app_old = make_app(store_app_old)
    async with asgi_client(app_old) as c:
        await c.post("/login")
        old_cookie = c.cookies["authguard_session"]
    # The same store, keys rotated: the old cookie still verifies; new ones use NEW.
    rotated = SessionAuthenticator(secret_keys=[NEW, OLD], store=store_app_old.store)
    app = make_app(rotated)
    async with asgi_client(app) as c:
        r = await c.get("/me", headers={"Cookie": f"authguard_session={old_cookie}"})
        assert r.json() == {"sub": "ann", "roles": ["user"], "acr": "mfa"}
        await c.post("/login")
        new_cookie = c.cookies["authguard_session"]
    assert new_cookie != old_cookie
    URLSafeTimedSerializer(NEW, salt="authguard.session").loads(new_cookie)
    # The old key dropped: old cookies are invalid, and the answer deletes them.
    only_new = make_app(SessionAuthenticator(secret_keys=[NEW], store=rotated.store))
    async with asgi_client(only_new) as c:
        r = await c.get("/me", headers={"Cookie": f"authguard_session={old_cookie}"})
    assert r.status_code == 401 and r.json()["reason"] == "session_invalid"
    assert r.headers["set-cookie"].startswith('authguard_session=""; Path=/; Max-Age=0')


async def test_max_age_gives_session_expired() -> None:
    app = make_app(SessionAuthenticator(secret_keys=[NEW], max_age=1))
    async with asgi_client(app) as c:
        await c.post("/login")
        cookie = {"Cookie": f"authguard_session={c.cookies['authguard_session']}"}
        assert (await c.get("/me", headers=cookie)).status_code == 200
        await asyncio.sleep(2.1)  # itsdangerous timestamps have whole-second resolution
        c.cookies.clear()  # a browser drops it too; a stale copy is still sent here
        r = await c.get("/me", headers=cookie)
    assert r.status_code == 401 and r.json()["reason"] == "session_expired"
    assert "Max-Age=0" in r.headers["set-cookie"]


async def test_cookie_attributes_over_https_and_custom_name() -> None:
    session = SessionAuthenticator(secret_keys=[NEW], cookie_name="sid", path="/app",
                                   same_site="strict")
    app = make_app(session)
    async with asgi_client(app, base_url="https://testserver") as c:
        r = await c.post("/login")
        attrs = [a.strip().lower() for a in r.headers["set-cookie"].split(";")]
        assert {"httponly", "secure", "path=/app", "samesite=strict"} <= set(attrs)
        r = await c.get("/me", headers={"Cookie": "sid=forged"})
        assert r.json()["reason"] == "session_invalid"
        deleting = r.headers["set-cookie"]
        assert "Path=/app" in deleting and "Secure" in deleting


async def test_login_twice_gives_a_new_session_and_ends_the_old() -> None:
    session = SessionAuthenticator(secret_keys=[NEW])
    app = make_app(session)
    async with asgi_client(app) as c:
        await c.post("/login")
        first = c.cookies["authguard_session"]
        await c.post("/login")
        assert c.cookies["authguard_session"] != first
    async with asgi_client(app) as c:
        r = await c.get("/me", headers={"Cookie": f"authguard_session={first}"})
    assert r.json()["reason"] == "session_expired"


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"secret_keys": ["short"]}, "secret_keys"),
        ({"secret_keys": NEW}, "secret_keys"),
        ({"secret_keys": []}, "secret_keys"),
        ({"secret_keys": [NEW], "cookie_name": "a b"}, "cookie_name"),
        ({"secret_keys": [NEW], "max_age": 0}, "max_age"),
        ({"secret_keys": [NEW], "same_site": "none", "secure": False}, "same_site"),
        ({"secret_keys": [NEW], "allowed_origins": ["evil.example"]}, "allowed_origins"),
    ],
)
def test_configuration_mistakes_name_the_setting(kwargs: dict[str, object],
                                                 setting: str) -> None:
    with pytest.raises(ConfigurationError, match=setting):
        SessionAuthenticator(**kwargs)  # type: ignore[arg-type]
