"""Two replicas of the example app under uvicorn sharing one real redis-server: a DPoP proof
used on one is a replay on the other, of one proof raced to both exactly one is served, and
nonces issued by one replica are accepted by the other (same secret, no shared state).

Behind a load balancer both replicas see the same ``Host``; the requests here send the
first replica's, so that ``htu`` names one URL for both."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from dpop_helpers import ClientKey, bound_token, dpop_headers, proof
from helpers import http_client, need, uvicorn_server
from redis_server import RedisServer

pytestmark = [pytest.mark.e2e, pytest.mark.redis]


@dataclass
class Replicas:
    a: str
    b: str

    @property
    def host(self) -> str:
        return self.a.removeprefix("http://")


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replicas]:
    need("redis-server", "the replicas share a real Redis")
    redis = RedisServer(tmp_path_factory.mktemp("redis"))
    redis.start()
    env = {"AUTHGUARD_REDIS_URL": redis.url, "AUTHGUARD_DEMO_DPOP_NONCE": "1"}
    try:
        with contextlib.ExitStack() as stack:
            a = stack.enter_context(uvicorn_server("app:app", env=env))
            b = stack.enter_context(uvicorn_server("app:app", env=env))
            yield Replicas(a, b)
    finally:
        redis.stop()


def test_a_proof_used_on_one_replica_is_refused_by_the_other(replicas: Replicas) -> None:
    key = ClientKey()
    token = bound_token(key)
    url = replicas.a + "/dpop/me"
    host = {"Host": replicas.host}
    with http_client(replicas.a) as a, http_client(replicas.b) as b:
        # the nonce comes from replica A and is good on B (an HMAC of the time slot)
        asked = a.get("/dpop/me", headers=dpop_headers(token, proof(key, "GET", url, token)))
        assert asked.json()["reason"] == "use_dpop_nonce"
        nonce = asked.headers["dpop-nonce"]
        one = proof(key, "GET", url, token, nonce=nonce)
        first = b.get("/dpop/me", headers={**host, **dpop_headers(token, one)})
        assert first.status_code == 200, first.text
        again = a.get("/dpop/me", headers=dpop_headers(token, one))
        assert again.status_code == 401
        assert again.json()["reason"] == "dpop_proof_replayed"


def test_one_proof_raced_to_both_replicas_is_served_once(replicas: Replicas) -> None:
    key = ClientKey()
    token = bound_token(key)
    url = replicas.a + "/dpop/me"
    with http_client(replicas.a) as a:
        nonce = a.get("/dpop/me", headers=dpop_headers(
            token, proof(key, "GET", url, token))).headers["dpop-nonce"]
    one = proof(key, "GET", url, token, nonce=nonce)

    def send(base: str) -> int:
        with http_client(base) as c:
            r = c.get("/dpop/me", headers={"Host": replicas.host, **dpop_headers(token, one)})
            return r.status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(send, [replicas.a, replicas.b] * 4))
    assert sorted(statuses) == [200] + [401] * 7
