"""The DPoP client: DPoPKey signs proofs the server accepts, DPoPAuth retries once on
use_dpop_nonce and raises the typed exception of every other refusal; check_proof names
the failed check (what ``authguard explain`` shows)."""

from __future__ import annotations

import time

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from authguard import DPoPNonces
from authguard.client import (
    DPoPAuth,
    DPoPKey,
    DPoPNonceRequired,
    DPoPProofReplayed,
    InvalidDPoPProof,
    TokenExpired,
    check_proof,
)
from helpers import http_client, uvicorn_server
from test_dpop import BASE, make_app
from tokens import mint


def bound(key: DPoPKey, **claims: object) -> str:
    return mint("alice", cnf={"jkt": key.jkt}, **claims)


async def test_dpop_auth_completes_the_nonce_dance_in_one_retry() -> None:
    key = DPoPKey.generate()
    sent: list[str] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request.headers["dpop"])  # one request object, re-signed for the retry

    app = make_app(nonces=DPoPNonces(b"k" * 32))
    auth = DPoPAuth(bound(key), key)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                 auth=auth, event_hooks={"request": [record]}) as c:
        r = await c.get("/me")
        assert r.status_code == 200 and r.json()["scheme"] == "DPoP"
        assert len(sent) == 2  # the first proof had no nonce; one retry with it
        assert sent[0] != sent[1]
        r = await c.get("/me")  # the nonce is remembered: no retry now
        assert r.status_code == 200 and len(sent) == 3


async def test_dpop_auth_raises_the_typed_exceptions() -> None:
    key, other = DPoPKey.generate(), DPoPKey.generate()
    app = make_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as c:
        with pytest.raises(InvalidDPoPProof) as err:
            await c.get("/me", auth=DPoPAuth(bound(other), key))
        assert err.value.check == "jkt"
        assert not isinstance(err.value, DPoPProofReplayed)
        with pytest.raises(TokenExpired):
            await c.get("/me", auth=DPoPAuth(bound(key, lifetime=-10), key))
        answer = await c.get("/me", auth=DPoPAuth(bound(other), key, raise_for_refusal=False))
        assert answer.status_code == 401


async def test_a_server_that_keeps_asking_for_a_nonce_raises_after_one_retry() -> None:
    key = DPoPKey.generate()
    now = [1_000_000.0]
    nonces = DPoPNonces(b"k" * 32, lifetime=1, clock=lambda: now[0])
    sent: list[httpx.Request] = []

    async def record(request: httpx.Request) -> None:
        sent.append(request)
        now[0] += 5  # every nonce is stale by the time it comes back

    app = make_app(nonces=nonces)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE,
                                 event_hooks={"request": [record]}) as c:
        with pytest.raises(DPoPNonceRequired) as err:
            await c.get("/me", auth=DPoPAuth(bound(key), key))
    assert len(sent) == 2
    assert err.value.nonce


def test_dpop_auth_against_the_example_app_under_uvicorn() -> None:
    key = DPoPKey.generate()
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_DPOP_NONCE": "1"}) as url, \
            http_client(url, auth=DPoPAuth(bound(key, scope="reports:read"), key)) as c:
        assert c.get("/dpop/me").json()["subject"] == "alice"
        assert c.get("/reports").status_code == 200


def test_rsa_and_edwards_keys_sign_proofs_the_server_accepts() -> None:
    for key in (DPoPKey(rsa.generate_private_key(public_exponent=65537, key_size=2048)),
                DPoPKey.generate("EdDSA"), DPoPKey.generate("ES384")):
        token = bound(key)
        found = check_proof(key.proof("GET", BASE + "/me?q=1", access_token=token),
                            method="GET", url=BASE + "/me", token=token)
        assert found.failed is None, (key.algorithm, found)


def test_check_proof_names_the_failed_check() -> None:
    key = DPoPKey.generate()
    token = bound(key)
    url = BASE + "/me"
    good = key.proof("GET", url, access_token=token)
    assert check_proof(good, method="GET", url=url, token=token).failed is None
    assert check_proof(good, method="POST", url=url, token=token).failed == "htm"
    assert check_proof(good, method="GET", url=BASE + "/x", token=token).failed == "htu"
    assert check_proof(good, method="GET", url=url, token=token + "x").failed == "ath"
    assert check_proof(good, method="GET", url=url, token=token,
                       now=time.time() + 3600).failed == "iat"
    assert check_proof(good, method="GET", url=url, token=token, nonce="n").failed == "nonce"
    other = bound(DPoPKey.generate())
    stranger = key.proof("GET", url, access_token=other)
    assert check_proof(stranger, method="GET", url=url, token=other).failed == "jkt"
    assert check_proof("not.a.proof", method="GET", url=url).failed == "shape"
    found = check_proof(good, method="GET", url=url)
    assert found.header["typ"] == "dpop+jwt" and found.claims["htm"] == "GET"
