"""Two replicas of the example app under uvicorn sharing one real redis-server: failed
attempts add up, revocations and logouts reach the other replica, and a Redis that stops or
freezes mid-run gives 503 auth_unavailable with Retry-After (never a 500, never a hang),
then 200s again once it is back, without restarting the app. A payment is spent once across
both replicas: a receipt used on one is a replay on the other, and of concurrent requests
carrying it exactly one is served."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def _pay(base: str) -> dict[str, str]:
    """Ask ``base`` for a Payment challenge and pay it there (``POST /billing/pay`` knows
    only the challenges its own process issued); the header that buys one request."""
    with http_client(base) as c:
        r = c.get("/paid/quote")
        assert r.status_code == 402 and r.json()["reason"] == "payment_required"
        paid = c.post("/billing/pay", json={"challenge": _payment_challenge_id(r)})
        assert paid.status_code == 200, paid.text
        authorization = paid.json()["authorization"]
        assert authorization.startswith("Payment ")
        return {"Authorization": authorization}


def _is_replay(r: httpx.Response) -> None:
    assert r.status_code == 402, r.text
    assert r.json()["reason"] == "payment_invalid"
    assert "already used" in r.json()["detail"]
    assert "payment-receipt" not in r.headers


def test_a_payment_receipt_used_on_one_replica_is_a_replay_on_the_other(
        replicas: Replicas) -> None:
    with http_client(replicas.a) as a, http_client(replicas.b) as b:
        authorization = _pay(replicas.a)
        r = a.get("/paid/quote", headers=authorization)  # paid on A, used on A
        assert r.status_code == 200 and r.json()["symbol"] == "AGRD"
        assert r.headers["payment-receipt"]
        _is_replay(b.get("/paid/quote", headers=authorization))  # replayed on B
        _is_replay(a.get("/paid/quote", headers=authorization))

        # the other way round: B accepts what A issued, and once used it is used everywhere
        authorization = _pay(replicas.a)
        r = b.get("/paid/quote", headers=authorization)
        assert r.status_code == 200 and "payment-receipt" in r.headers
        _is_replay(a.get("/paid/quote", headers=authorization))
    import redis

    client = redis.Redis.from_url(replicas.redis.url)
    try:
        keys = client.keys("authguard-demo:nonce:*")
        assert len(keys) == 2, keys  # the two spent payments, and nothing else
        assert all(0 < client.pttl(k) <= 400_000 for k in keys)  # they expire
    finally:
        client.close()


def test_one_payment_spent_concurrently_on_both_replicas_buys_exactly_one_answer(
        replicas: Replicas) -> None:
    """A double spend: the same authorization sent at once to both replicas, many times."""
    attempts = 16
    for _ in range(3):  # three payments, each raced on both replicas
        authorization = _pay(replicas.a)
        barrier = threading.Barrier(attempts)

        def spend(i: int, authorization: dict[str, str] = authorization,
                  barrier: threading.Barrier = barrier) -> httpx.Response:
            with http_client(replicas.a if i % 2 else replicas.b) as c:
                c.get("/public")  # connect first, so that the requests leave together
                barrier.wait(timeout=30)
                return c.get("/paid/quote", headers=authorization)

        with ThreadPoolExecutor(max_workers=attempts) as pool:
            answers = list(pool.map(spend, range(attempts)))
        served = [r for r in answers if r.status_code == 200]
        assert len(served) == 1, [r.status_code for r in answers]
        assert "payment-receipt" in served[0].headers
        for r in answers:
            if r.status_code != 200:
                _is_replay(r)


def test_a_payment_while_redis_is_down_is_503_never_402(replicas: Replicas) -> None:
    """Never a 402 for a failure of ours: a client told to pay again might pay twice."""
    authorization = _pay(replicas.a)
    replicas.redis.stop()
    try:
        with http_client(replicas.b) as b:
            r = b.get("/paid/quote")  # a challenge needs no store: still a 402 to pay
            assert r.status_code == 402 and r.json()["reason"] == "payment_required"
            r = b.get("/paid/quote", headers=authorization)
            assert r.status_code == 503, r.text
            assert r.json()["reason"] == "auth_unavailable"
            assert r.headers["retry-after"] == "5" and "payment-receipt" not in r.headers
    finally:
        replicas.redis.start()
    with http_client(replicas.a) as a, http_client(replicas.b) as b:
        r = b.get("/paid/quote", headers=authorization)  # the same payment, not lost
        assert r.status_code == 200 and "payment-receipt" in r.headers
        _is_replay(a.get("/paid/quote", headers=authorization))
