"""The brute-force guard in the middleware, over the in-memory and the Redis attempt store:
429 with Retry-After, the same answer for an account that exists and one that does not, a
correct password refused during lockout; with Redis down, 503 (or open when configured)."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BruteForceGuard,
    PBKDF2Hasher,
    StaticPasswords,
    protect,
)
from authguard.stores import AttemptStore, MemoryAttemptStore
from authguard.stores.redis import from_url
from helpers import asgi_client
from redis_server import RedisServer, redis_server, shared_redis

__all__ = ["redis_server", "shared_redis"]  # fixtures

pytestmark = pytest.mark.redis

LIMIT = 3
PASSWORDS = StaticPasswords.from_plaintext(
    {"alice": ("wonderland", ["user"]), "bob": ("builder", ["user"])},
    hasher=PBKDF2Hasher(iterations=1000),
)


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_app(store: AttemptStore, *, fail_open: bool = False,
             clock: Callable[[], float] = time.time) -> Starlette:
    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    guard = AuthGuard(
        # no remembered verifications: every request reaches the guard and the verifier
        authenticators=[BasicAuthenticator(verifier=PASSWORDS, realm="t", cache_ttl=0)],
        brute_force=BruteForceGuard(per_account=LIMIT, per_client=100, window=300,
                                    store=store, fail_open=fail_open),
        clock=clock,
    )
    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(AuthGuardMiddleware, guard=guard)
    return app


@pytest.fixture(params=["memory", "redis"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[AttemptStore]:
    if request.param == "memory":
        yield MemoryAttemptStore()
        return
    server: RedisServer = request.getfixturevalue("shared_redis")
    rs = from_url(server.url, prefix=f"bf-{uuid.uuid4().hex}:")
    try:
        yield rs.attempts
    finally:
        await rs.aclose()


def comparable(r: httpx.Response) -> dict[str, Any]:
    """What a client can see of a refusal, minus the per-request id and Retry-After's value."""
    body = {k: v for k, v in r.json().items() if k not in ("request_id", "retry_after")}
    headers = {k: v for k, v in r.headers.items()
               if k not in ("x-request-id", "retry-after", "content-length", "date")}
    return {"status": r.status_code, "body": body, "headers": headers}


async def test_lockout_is_429_with_retry_after_even_for_the_right_password(
        store: AttemptStore) -> None:
    async with asgi_client(make_app(store)) as c:
        assert (await c.get("/me", headers=basic("alice", "wonderland"))).status_code == 200
        for _ in range(LIMIT):
            r = await c.get("/me", headers=basic("alice", "wrong"))
            assert r.status_code == 401 and r.json()["reason"] == "credentials_invalid"
        r = await c.get("/me", headers=basic("alice", "wonderland"))
        assert r.status_code == 429
        assert r.json()["reason"] == "too_many_attempts"
        wait = int(r.headers["retry-after"])
        assert 1 <= wait <= 300 and r.json()["retry_after"] == wait
        # account names fold case: "ALICE" is the same account
        assert (await c.get("/me", headers=basic("ALICE", "wonderland"))).status_code == 429
        # another account from the same client is not locked
        assert (await c.get("/me", headers=basic("bob", "builder"))).status_code == 200


async def test_the_same_answer_for_an_account_that_does_not_exist(
        store: AttemptStore) -> None:
    async with asgi_client(make_app(store)) as c:
        wrong = []
        for user in ("alice", "mallory"):
            for _ in range(LIMIT):
                r = await c.get("/me", headers=basic(user, "wrong"))
                wrong.append(comparable(r))
        assert all(w == wrong[0] for w in wrong)  # 401s alike too
        existing = await c.get("/me", headers=basic("alice", "wrong"))
        missing = await c.get("/me", headers=basic("mallory", "wrong"))
        assert existing.status_code == missing.status_code == 429
        assert comparable(existing) == comparable(missing)
        assert existing.headers["retry-after"].isdigit()
        assert missing.headers["retry-after"].isdigit()


async def test_the_window_slides(store: AttemptStore) -> None:
    now = [time.time()]
    app = make_app(store, clock=lambda: now[0])
    async with asgi_client(app) as c:
        for _ in range(LIMIT):
            await c.get("/me", headers=basic("bob", "nope"))
        assert (await c.get("/me", headers=basic("bob", "builder"))).status_code == 429
        now[0] += 301
        assert (await c.get("/me", headers=basic("bob", "builder"))).status_code == 200


async def test_redis_down_is_503_then_recovers(redis_server: RedisServer) -> None:
    rs = from_url(redis_server.url, prefix="bf:", timeout=0.5, retry_after=9)
    try:
        async with asgi_client(make_app(rs.attempts)) as c:
            assert (await c.get("/me", headers=basic("alice", "wonderland"))).status_code == 200
            redis_server.stop()
            for headers in (basic("alice", "wonderland"), basic("alice", "wrong")):
                r = await c.get("/me", headers=headers)
                assert r.status_code == 503
                assert r.json()["reason"] == "auth_unavailable"
                assert r.headers["retry-after"] == "9"
            # no credentials: nothing needs the store, the usual 401
            assert (await c.get("/me")).status_code == 401
            redis_server.start()
            assert (await c.get("/me", headers=basic("alice", "wonderland"))).status_code == 200
    finally:
        await rs.aclose()


async def test_fail_open_lets_credentials_be_checked_without_a_guard(
        redis_server: RedisServer) -> None:
    rs = from_url(redis_server.url, prefix="bf:", timeout=0.5)
    try:
        async with asgi_client(make_app(rs.attempts, fail_open=True)) as c:
            redis_server.stop()
            for _ in range(LIMIT + 2):  # past the limit: nothing is counted
                r = await c.get("/me", headers=basic("alice", "wrong"))
                assert r.status_code == 401
            assert (await c.get("/me", headers=basic("alice", "wonderland"))).status_code == 200
    finally:
        await rs.aclose()
