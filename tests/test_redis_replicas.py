"""Two replicas of the example app under uvicorn sharing one real redis-server: failed
attempts add up, revocations and logouts reach the other replica, and a Redis that stops or
freezes mid-run gives 503 auth_unavailable with Retry-After (never a 500, never a hang),
then 200s again once it is back, without restarting the app."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from authguard.challenges import parse_www_authenticate
from helpers import http_client, need, uvicorn_server
from redis_server import RedisServer
from tokens import bearer, mint

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

LIMIT = 4
ADMIN = ("bob", "builder")


@dataclass
class Replicas:
    redis: RedisServer
    a: str
    b: str


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[Replicas]:
    need("redis-server", "the replicas share a real Redis")
    redis = RedisServer(tmp_path)
    redis.start()
    env = {"AUTHGUARD_REDIS_URL": redis.url, "AUTHGUARD_DEMO_FAILURE_LIMIT": str(LIMIT)}
    try:
        with contextlib.ExitStack() as stack:
            a = stack.enter_context(uvicorn_server("app:app", env=env))
            b = stack.enter_context(uvicorn_server("app:app", env=env))
            yield Replicas(redis, a, b)
    finally:
        redis.stop()


def comparable(r: httpx.Response) -> dict[str, Any]:
    body = {k: v for k, v in r.json().items() if k not in ("request_id", "retry_after")}
    headers = {k: v for k, v in r.headers.items()
               if k not in ("x-request-id", "retry-after", "content-length", "date")}
    return {"status": r.status_code, "body": body, "headers": headers}


def test_the_example_app_keeps_its_stores_in_redis(replicas: Replicas) -> None:
    with http_client(replicas.a) as a:
        assert a.get("/me", auth=("alice", "nope")).status_code == 401
    import redis

    client = redis.Redis.from_url(replicas.redis.url)
    try:
        keys = client.keys("*")
        assert keys and all(k.startswith(b"authguard-demo:fail:") for k in keys)
    finally:
        client.close()


def test_failed_attempts_on_two_replicas_add_up(replicas: Replicas) -> None:
    with http_client(replicas.a) as a, http_client(replicas.b) as b:
        for i in range(LIMIT):
            for user in ("alice", "mallory"):  # an account that exists, and one that does not
                r = (a if i % 2 else b).get("/me", auth=(user, "wrong"))
                assert r.status_code == 401
        # each replica saw only half of the failures; together they reach the limit
        for c in (a, b):
            r = c.get("/me", auth=("alice", "wonderland"))  # the right password: refused
            assert r.status_code == 429 and r.json()["reason"] == "too_many_attempts"
            assert int(r.headers["retry-after"]) >= 1
            unknown = c.get("/me", auth=("mallory", "wonderland"))
            assert comparable(unknown) == comparable(r)
        r = b.post("/login", json={"username": "alice", "password": "wonderland"})
        assert r.status_code == 429 and "set-cookie" not in r.headers
        assert a.get("/me", auth=("carol", "rainbow")).status_code == 200


def test_a_token_revoked_through_one_replica_is_refused_by_the_other(
        replicas: Replicas) -> None:
    token, other = mint("alice", jti="replica-token-1"), mint("alice", jti="replica-token-2")
    with http_client(replicas.a) as a, http_client(replicas.b) as b:
        assert b.get("/me", headers=bearer(token)).status_code == 200
        assert a.post("/admin/revoke", json={"jti": "replica-token-1"},
                      auth=ADMIN).status_code == 200
        r = b.get("/me", headers=bearer(token))
        assert r.status_code == 401 and r.json()["reason"] == "credentials_revoked"
        assert b.get("/me", headers=bearer(other)).status_code == 200
        assert b.post("/admin/revoke", json={"subject": "alice"}, auth=ADMIN).status_code == 200
        r = a.get("/me", headers=bearer(other))
        assert r.status_code == 401 and r.json()["reason"] == "credentials_revoked"


def test_a_logout_on_one_replica_ends_the_session_on_the_other(replicas: Replicas) -> None:
    with http_client(replicas.a) as a:
        r = a.post("/login", json={"username": "alice", "password": "wonderland"})
        assert r.status_code == 200
        cookie = a.cookies["authguard_session"]
        with http_client(replicas.b, cookies={"authguard_session": cookie}) as b:
            r = b.get("/me")
            assert r.status_code == 200 and r.json()["scheme"] == "Cookie"
            assert a.post("/logout").status_code == 200
            r = b.get("/me")
            assert r.status_code == 401 and r.json()["reason"] == "session_expired"
            assert 'authguard_session=""' in r.headers["set-cookie"]


def _login(base: str) -> str:
    with http_client(base) as c:
        r = c.post("/login", json={"username": "carol", "password": "rainbow"})
        assert r.status_code == 200
        return c.cookies["authguard_session"]


def _needing_the_store(replicas: Replicas, cookie: str, token: str) -> list[httpx.Response]:
    """One request per credential kind on each replica; every one needs Redis."""
    out = []
    for base in (replicas.a, replicas.b):
        with http_client(base) as c:
            out.append(c.get("/me", auth=("carol", "rainbow")))  # brute-force counter
            out.append(c.get("/me", headers=bearer(token)))  # revocation list
        with http_client(base, cookies={"authguard_session": cookie}) as c:
            out.append(c.get("/me"))  # session record
    return out


def test_redis_stopped_mid_run_is_503_then_200_again(replicas: Replicas) -> None:
    token = mint("carol")
    cookie = _login(replicas.a)
    assert [r.status_code for r in _needing_the_store(replicas, cookie, token)] == [200] * 6

    replicas.redis.stop()
    for r in _needing_the_store(replicas, cookie, token):
        assert r.status_code == 503, r.text
        assert r.json()["reason"] == "auth_unavailable"
        assert r.headers["retry-after"] == "5" and r.json()["retry_after"] == 5
    with http_client(replicas.b) as b:
        assert b.get("/public").status_code == 200  # nothing to decide: unaffected
        r = b.get("/me")  # no credentials: nothing to look up
        assert r.status_code == 401 and r.json()["reason"] == "credentials_missing"
        r = b.post("/login", json={"username": "carol", "password": "rainbow"})
        assert r.status_code == 503 and "set-cookie" not in r.headers

    replicas.redis.start()  # empty: nothing was persisted, so the old session is gone
    cookie = _login(replicas.b)
    assert [r.status_code for r in _needing_the_store(replicas, cookie, token)] == [200] * 6


def test_a_frozen_redis_is_503_not_a_hang(replicas: Replicas) -> None:
    token = mint("carol")
    cookie = _login(replicas.b)
    assert [r.status_code for r in _needing_the_store(replicas, cookie, token)] == [200] * 6
    replicas.redis.pause()  # connections stay open; nothing answers
    try:
        # the clients' own 10 s timeout would fail the test if a request hung
        for r in _needing_the_store(replicas, cookie, token):
            assert r.status_code == 503 and r.json()["reason"] == "auth_unavailable"
            assert r.headers["retry-after"] == "5"
    finally:
        replicas.redis.resume()
    assert [r.status_code for r in _needing_the_store(replicas, cookie, token)] == [200] * 6


def _payment_challenge_id(r: httpx.Response) -> str:
    for line in r.headers.get_list("www-authenticate"):
        challenge = parse_www_authenticate(line)[0]
        if challenge.scheme.lower() == "payment":
            return dict(challenge.params)["id"]
    raise AssertionError("no Payment challenge")


def test_a_payment_receipt_used_on_one_replica_is_a_replay_on_the_other(
        replicas: Replicas) -> None:
    with http_client(replicas.a) as a, http_client(replicas.b) as b:
        r = a.get("/paid/quote")
        if r.status_code == 404:
            pytest.skip("the example app takes no payments yet (GET /paid/quote, "
                        "POST /billing/pay): nothing to replay across replicas")
        assert r.status_code == 402 and r.json()["reason"] == "payment_required"
        paid = a.post("/billing/pay", json={"challenge": _payment_challenge_id(r)})
        assert paid.status_code == 200
        authorization = {"Authorization": paid.json()["authorization"]}
        # paid through A, used on B: B accepts what A issued…
        r = b.get("/paid/quote", headers=authorization)
        assert r.status_code == 200 and "payment-receipt" in r.headers
        # …and once used, it is used everywhere
        for c in (a, b):
            r = c.get("/paid/quote", headers=authorization)
            assert r.status_code == 402 and r.json()["reason"] == "payment_invalid"
