"""The brute-force guard in the middleware, over the in-memory and the Redis attempt store.

A client that keeps guessing one account's password is refused (429 with Retry-After) for
that account, even with the right password, while every other client still gets in; an
account guessed at from many clients is throttled (growing delays, or the app's challenge
hook), never locked; failures count per scheme; the same answer for an account that exists
and one that does not; with Redis down, 503 (or open when configured)."""

from __future__ import annotations

import base64
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BruteForceGuard,
    ConfigurationError,
    Identity,
    NetworkPolicy,
    PBKDF2Hasher,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.stores import AttemptStore, MemoryAttemptStore
from authguard.stores.redis import from_url
from helpers import asgi_client, check_refusal
from redis_server import RedisServer, redis_server, shared_redis

__all__ = ["redis_server", "shared_redis"]  # fixtures

pytestmark = pytest.mark.redis

LIMIT = 3
PASSWORDS = StaticPasswords.from_plaintext(
    {"alice": ("wonderland", ["user"]), "bob": ("builder", ["user"])},
    hasher=PBKDF2Hasher(iterations=1000),
)

KEYS = StaticAPIKeys({hash_api_key("key-of-alice-0123456789"): Identity(
    subject="alice", scheme="ApiKey")})


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def make_app(store: AttemptStore, *, fail_open: bool = False,
             clock: Callable[[], float] = time.time, **limits: Any) -> Starlette:
    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    guard = AuthGuard(
        # no remembered verifications: every request reaches the guard and the verifier
        authenticators=[BasicAuthenticator(verifier=PASSWORDS, realm="t", cache_ttl=0),
                        APIKeyAuthenticator(store=KEYS, realm="t")],
        brute_force=BruteForceGuard(**{"per_pair": LIMIT, "per_client": 100, "window": 300,
                                       "store": store, "fail_open": fail_open, **limits}),
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


def at(app: Starlette, address: str) -> httpx.AsyncClient:
    """A client of ``app`` connecting from ``address``."""
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://testserver", event_hooks={"response": [_check]})


async def _check(r: httpx.Response) -> None:
    await r.aread()
    check_refusal(r)


def comparable(r: httpx.Response) -> dict[str, Any]:
    """What a client can see of a refusal, minus the per-request id and Retry-After's value."""
    body = {k: v for k, v in r.json().items() if k not in ("request_id", "retry_after")}
    headers = {k: v for k, v in r.headers.items()
               if k not in ("x-request-id", "retry-after", "content-length", "date")}
    return {"status": r.status_code, "body": body, "headers": headers}


async def test_a_guessing_client_is_refused_for_that_account_only(
        store: AttemptStore) -> None:
    app = make_app(store)
    async with at(app, "10.0.0.1") as guesser, at(app, "10.0.0.2") as owner:
        assert (await guesser.get("/me", headers=basic("alice", "wonderland"))
                ).status_code == 200
        for _ in range(LIMIT):
            r = await guesser.get("/me", headers=basic("alice", "wrong"))
            assert r.status_code == 401 and r.json()["reason"] == "credentials_invalid"
        for user in ("alice", "ALICE"):  # account names fold case: the same account
            r = await guesser.get("/me", headers=basic(user, "wonderland"))
            assert r.status_code == 429 and r.json()["reason"] == "too_many_attempts"
            wait = int(r.headers["retry-after"])
            assert 1 <= wait <= 300 and r.json()["retry_after"] == wait
        # the guesser's other accounts, and every other client, are untouched
        assert (await guesser.get("/me", headers=basic("bob", "builder"))).status_code == 200
        assert (await owner.get("/me", headers=basic("alice", "wonderland"))).status_code == 200
        assert (await owner.get("/me", headers=basic("alice", "typo"))).status_code == 401


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


async def test_an_account_guessed_at_from_many_clients_is_throttled_not_locked(
        store: AttemptStore) -> None:
    now = [time.time()]
    app = make_app(store, clock=lambda: now[0], per_pair=20, per_account=4,
                   base_delay=2, max_delay=30)
    clients = [at(app, f"10.1.0.{i}") for i in range(1, 6)]
    first = clients[0]
    # below the account-wide limit, a client that failed may try again at once
    assert (await first.get("/me", headers=basic("bob", "x"))).status_code == 401
    assert (await first.get("/me", headers=basic("bob", "x"))).status_code == 401
    for c in clients[1:3]:
        assert (await c.get("/me", headers=basic("bob", "x"))).status_code == 401
    # 4 failures on bob: each client that failed now waits base_delay after its last one
    r = await first.get("/me", headers=basic("bob", "builder"))
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    now[0] += 2
    assert (await first.get("/me", headers=basic("bob", "x"))).status_code == 401
    # 5 failures: the delay doubles, and keeps doubling up to max_delay
    r = await first.get("/me", headers=basic("bob", "x"))
    assert r.status_code == 429 and r.headers["retry-after"] == "4"
    waits = []
    for c in clients[1:3]:
        now[0] += 60
        assert (await c.get("/me", headers=basic("bob", "x"))).status_code == 401
        waits.append(int((await c.get("/me", headers=basic("bob", "x"))).headers["retry-after"]))
    assert waits == [8, 16]
    for _ in range(3):
        now[0] += 31
        assert (await first.get("/me", headers=basic("bob", "x"))).status_code == 401
    assert (await first.get("/me", headers=basic("bob", "x"))).headers["retry-after"] == "30"
    # a client that has not failed on bob is never refused because of the others: the
    # right password gets in, a wrong one is answered (and then it waits too)
    owner = clients[4]
    assert (await owner.get("/me", headers=basic("bob", "builder"))).status_code == 200
    assert (await owner.get("/me", headers=basic("bob", "typo"))).status_code == 401
    assert (await owner.get("/me", headers=basic("bob", "builder"))).status_code == 429
    # other accounts are not throttled at all
    assert (await first.get("/me", headers=basic("alice", "x"))).status_code == 401
    assert (await first.get("/me", headers=basic("alice", "x"))).status_code == 401
    for c in clients:
        await c.aclose()


async def test_a_solved_challenge_lets_a_throttled_client_try_now(store: AttemptStore) -> None:
    asked: list[str] = []

    async def solved(conn: HTTPConnection, account: str) -> bool:
        asked.append(account)
        return conn.headers.get("x-captcha") == "solved"

    app = make_app(store, per_account=1, base_delay=60, max_delay=60,
                   challenge_solved=solved)
    async with at(app, "10.2.0.1") as c, at(app, "10.2.0.2") as clean:
        assert (await c.get("/me", headers=basic("bob", "x"))).status_code == 401
        assert asked == []  # not throttled yet: the hook is not asked
        assert (await c.get("/me", headers=basic("bob", "builder"))).status_code == 429
        r = await c.get("/me", headers={**basic("bob", "builder"), "X-Captcha": "solved"})
        assert r.status_code == 200
        assert (await clean.get("/me", headers=basic("bob", "builder"))).status_code == 200
        assert asked == ["bob", "bob"]  # only about requests that would have waited


async def test_getting_in_forgets_the_clients_failures_on_that_account(
        store: AttemptStore) -> None:
    app = make_app(store, per_account=3, base_delay=60, max_delay=60)
    async with at(app, "10.3.0.1") as owner, at(app, "10.3.0.2") as other:
        assert (await owner.get("/me", headers=basic("bob", "typo"))).status_code == 401
        assert (await owner.get("/me", headers=basic("bob", "builder"))).status_code == 200
        for _ in range(2):
            assert (await other.get("/me", headers=basic("bob", "x"))).status_code == 401
        # bob is throttled (3 failures); the owner's typo was forgotten when it got in, so
        # it is a client that has not been failing
        assert (await other.get("/me", headers=basic("bob", "x"))).status_code == 429
        assert (await owner.get("/me", headers=basic("bob", "builder"))).status_code == 200


async def test_failures_count_per_scheme(store: AttemptStore) -> None:
    app = make_app(store, per_client=5)
    async with at(app, "10.4.0.1") as c:
        for i in range(5):
            r = await c.get("/me", headers={"X-API-Key": f"wrong-key-{i}-0123456789"})
            assert r.status_code == 401
        r = await c.get("/me", headers={"X-API-Key": "key-of-alice-0123456789"})
        assert r.status_code == 429 and r.json()["reason"] == "too_many_attempts"
        # the same client's password is not a guess of the same kind
        assert (await c.get("/me", headers=basic("alice", "wonderland"))).status_code == 200
    async with at(app, "10.4.0.2") as c:
        r = await c.get("/me", headers={"X-API-Key": "key-of-alice-0123456789"})
        assert r.status_code == 200


async def test_a_locked_client_survives_100_000_other_keys() -> None:
    store = MemoryAttemptStore()  # the default bound: 100 000 keys
    app = make_app(store)
    async with at(app, "10.5.0.1") as guesser:
        for _ in range(LIMIT):
            await guesser.get("/me", headers=basic("alice", "wrong"))
        assert (await guesser.get("/me", headers=basic("alice", "wonderland"))
                ).status_code == 429
        now = time.time()
        for i in range(100_000):  # a flood of single failures from other clients
            await store.add_failures({f"c:basic:10.9.{i}": 100}, now, 300)
        assert len(store) == 100_000
        r = await guesser.get("/me", headers=basic("alice", "wonderland"))
        assert r.status_code == 429


async def test_a_request_through_an_untrusted_proxy_is_warned_about_once(
        caplog: pytest.LogCaptureFixture) -> None:
    app = make_app(MemoryAttemptStore())
    forwarded = {**basic("alice", "wonderland"), "X-Forwarded-For": "203.0.113.7"}
    with caplog.at_level(logging.WARNING, logger="authguard"):
        async with at(app, "10.6.0.1") as c:
            assert (await c.get("/me", headers=basic("alice", "wonderland"))
                    ).status_code == 200
            assert not caplog.records  # no forwarding headers: nothing to say
            for _ in range(3):
                assert (await c.get("/me", headers=forwarded)).status_code == 200
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert "10.6.0.1" in warnings[0] and "trusted_proxies" in warnings[0]
    assert "shares one" in warnings[0]


async def test_no_warning_when_the_proxy_is_trusted(caplog: pytest.LogCaptureFixture) -> None:
    guard = AuthGuard(
        authenticators=[BasicAuthenticator(verifier=PASSWORDS, realm="t", cache_ttl=0)],
        brute_force=BruteForceGuard(),
        network=NetworkPolicy(trusted_proxies=["10.6.0.1"], use_forwarded=True),
    )
    app = Starlette(routes=[Route("/me", protect(Authenticated())(_me))])
    app.add_middleware(AuthGuardMiddleware, guard=guard)
    with caplog.at_level(logging.WARNING, logger="authguard"):
        async with at(app, "10.6.0.1") as c:
            r = await c.get("/me", headers={**basic("alice", "wonderland"),
                                            "X-Forwarded-For": "203.0.113.7"})
            assert r.status_code == 200
    assert not caplog.records


async def _me(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.subject})


def test_settings_are_checked() -> None:
    for bad in ({"per_pair": 0}, {"per_client": 0}, {"per_account": 0}, {"window": 0},
                {"base_delay": 0}, {"base_delay": 5, "max_delay": 1}):
        name = next(iter(bad)) if "max_delay" not in bad else "max_delay"
        with pytest.raises(ConfigurationError, match=name):
            BruteForceGuard(**bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="max_keys"):
        MemoryAttemptStore(max_keys=0)


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


async def test_long_account_names_are_counted_by_their_digest() -> None:
    store = MemoryAttemptStore()
    app = make_app(store)
    name = "é" * 1000  # 2000 bytes, within the credentials limit
    async with at(app, "10.7.0.1") as c:
        for _ in range(LIMIT):
            assert (await c.get("/me", headers=basic(name, "x"))).status_code == 401
        r = await c.get("/me", headers=basic(name.upper(), "x"))  # folds to the same
        assert r.status_code == 429
        assert (await c.get("/me", headers=basic(name + "é", "x"))).status_code == 401
    keys = list(store._open) + list(store._locked)
    assert keys and all(len(k) < 120 for k in keys), keys
