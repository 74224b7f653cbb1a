"""No lock-out of the innocent, on two replicas of the example app sharing one real Redis.

An attacker spraying wrong passwords for ``bob`` from one address is stopped, on both
replicas, while ``bob`` still gets in from another address; a client's bad API keys block
its API keys, not its valid Bearer token, password or session. Clients use distinct
loopback source addresses (127.0.0.2, 127.0.0.3), which uvicorn reports as the peer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import httpx
import pytest

from helpers import http_client, need, uvicorn_server
from redis_server import RedisServer
from tokens import bearer, mint

pytestmark = [pytest.mark.e2e, pytest.mark.redis]

LIMIT = 4  # per pair and per account; per client and scheme: 20 times that
ATTACKER, BOB = "127.0.0.2", "127.0.0.3"


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    need("redis-server", "the replicas share a real Redis")
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    env = {"AUTHGUARD_REDIS_URL": redis.url, "AUTHGUARD_DEMO_FAILURE_LIMIT": str(LIMIT)}
    try:
        with contextlib.ExitStack() as stack:
            a = stack.enter_context(uvicorn_server("app:app", env=env))
            b = stack.enter_context(uvicorn_server("app:app", env=env))
            yield a, b
    finally:
        redis.stop()


def from_address(base: str, address: str, **kw: object) -> httpx.Client:
    """A client whose connections leave from ``address`` (any 127/8 address is local)."""
    return http_client(base, transport=httpx.HTTPTransport(local_address=address), **kw)


def test_spraying_bobs_password_from_one_address_does_not_stop_bob_elsewhere(
        replicas: tuple[str, str]) -> None:
    a, b = replicas
    with from_address(a, ATTACKER) as ea, from_address(b, ATTACKER) as eb:
        answers = [(ea if i % 2 else eb).get("/me", auth=("bob", f"guess-{i}")).status_code
                   for i in range(3 * LIMIT)]
        # the attacker's own guesses stop at the limit, counted across both replicas
        assert answers[:LIMIT] == [401] * LIMIT
        assert set(answers[LIMIT:]) == {429}
        for c in (ea, eb):
            for user in ("bob", "BOB"):  # names fold case: the same account
                r = c.get("/me", auth=(user, "builder"))
                assert r.status_code == 429 and r.json()["reason"] == "too_many_attempts"
                assert int(r.headers["retry-after"]) >= 1
            r = c.post("/login", json={"username": "bob", "password": "builder"})
            assert r.status_code == 429 and "set-cookie" not in r.headers
    # bob, from his own address, on either replica: the right password gets in
    with from_address(a, BOB) as ba, from_address(b, BOB) as bb:
        for c in (ba, bb):
            r = c.get("/me", auth=("bob", "builder"))
            assert r.status_code == 200 and r.json()["subject"] == "bob"
            r = c.post("/login", json={"username": "bob", "password": "builder"})
            assert r.status_code == 200 and "authguard_session" in r.headers["set-cookie"]


def test_a_clients_bad_api_keys_do_not_block_its_valid_token(
        replicas: tuple[str, str]) -> None:
    a, b = replicas
    address = "127.0.0.4"
    token = mint("alice", scope="reports:read")
    with from_address(a, address) as ca, from_address(b, address) as cb:
        statuses = [(ca if i % 2 else cb).get(
            "/me", headers={"X-API-Key": f"wrong-key-{i:04d}-0123456789"}).status_code
            for i in range(20 * LIMIT + 2)]
        assert statuses[:20 * LIMIT] == [401] * (20 * LIMIT)
        assert statuses[-1] == 429
        for c in (ca, cb):
            # its API keys are refused for now, even a valid one ...
            r = c.get("/me", headers={"X-API-Key": "demo-key-alice-0123456789"})
            assert r.status_code == 429 and r.json()["reason"] == "too_many_attempts"
            # ... but a valid token is not a guess, nor is a password
            r = c.get("/me", headers=bearer(token))
            assert r.status_code == 200 and r.json()["scheme"] == "Bearer"
            r = c.get("/me", auth=("alice", "wonderland"))
            assert r.status_code == 200 and r.json()["scheme"] == "Basic"
        r = ca.post("/login", json={"username": "carol", "password": "rainbow"})
        assert r.status_code == 200
        r = ca.get("/me")
        assert r.status_code == 200 and r.json()["scheme"] == "Cookie"
