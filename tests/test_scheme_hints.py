"""Hints that fit the case: a rejected JWT is not fixed by checking a password, a lapsed
plan is renewed rather than paid for with a proof."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt as pyjwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    Identity,
    JWTKey,
    PBKDF2Hasher,
    Reason,
    Refusal,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    problem_body,
    protect,
)
from authguard.payments import Entitlement
from authguard.problems import render_problem
from helpers import asgi_client
from test_payment_plan_purchase import ALICE, DAY, World

SECRET = "scheme-hints-secret-0123456789abcdef01234"
PASSWORD = "user name and password"


def _app() -> Starlette:
    passwords = StaticPasswords.from_plaintext({"bob": ("builder", [])},
                                               hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(authenticators=[
        BasicAuthenticator(verifier=passwords, realm="t"),
        APIKeyAuthenticator(store=StaticAPIKeys({hash_api_key("k"): Identity(
            subject="k", scheme="ApiKey")}), realm="t"),
        BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="api", realm="t"),
    ])

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    return Starlette(routes=[protect(Authenticated())(Route("/r", ok))],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard)])


def _jwt(key: str = SECRET) -> str:
    now = int(time.time())
    return pyjwt.encode({"sub": "jo", "aud": "api", "iat": now, "exp": now + 60}, key,
                        algorithm="HS256")


@pytest.fixture
async def client() -> Any:
    async with asgi_client(_app()) as c:
        yield c


async def _hints(client: httpx.AsyncClient, headers: dict[str, str],
                 reason: str) -> str:
    body = (await client.get("/r", headers=headers)).json()
    assert body["reason"] == reason
    return " ".join(body["hints"])


async def test_credentials_invalid_hints_fit_the_scheme(client: httpx.AsyncClient) -> None:
    bad_basic = "Basic " + base64.b64encode(b"bob:nope").decode()
    # in both orders, so that the bodies precomputed per reason are not shared by schemes
    for _ in range(2):
        jwt_hints = await _hints(client, {"Authorization": "Bearer " + _jwt("x" * 40)},
                                 "credentials_invalid")
        assert PASSWORD not in jwt_hints
        assert "token" in jwt_hints and "issuer" in jwt_hints
        basic_hints = await _hints(client, {"Authorization": bad_basic},
                                   "credentials_invalid")
        assert PASSWORD in basic_hints and "token" not in basic_hints
        key_hints = await _hints(client, {"X-API-Key": "nope"}, "credentials_invalid")
        assert "API key" in key_hints and PASSWORD not in key_hints


async def test_credentials_malformed_hints_fit_the_scheme(client: httpx.AsyncClient) -> None:
    bearer = await _hints(client, {"Authorization": "Bearer not-a-jwt"},
                          "credentials_malformed")
    assert "base64(user:password)" not in bearer and "Bearer <token>" in bearer
    basic = await _hints(client, {"Authorization": "Basic !!!"}, "credentials_malformed")
    assert "base64(user:password)" in basic


@pytest.mark.parametrize(("scheme", "word"), [
    ("Cookie", "Log in again"), ("DPoP", "DPoP"), ("ApiKey", "API key"),
    ("Bearer", "token"), ("Basic", "password")])
def test_every_built_in_scheme_has_its_own_invalid_hints(scheme: str, word: str) -> None:
    hints = problem_body(Refusal(Reason.CREDENTIALS_INVALID, scheme=scheme))["hints"]
    assert word in " ".join(hints)
    if scheme != "Basic":
        assert PASSWORD not in " ".join(hints)


def test_another_scheme_and_no_scheme_get_the_general_hints() -> None:
    general = list(Reason.CREDENTIALS_INVALID.spec.hints)
    assert problem_body(Refusal(Reason.CREDENTIALS_INVALID, scheme="Ticket"))["hints"] == general
    assert problem_body(Refusal(Reason.CREDENTIALS_INVALID))["hints"] == general


def test_a_refusal_brings_its_own_hints_and_the_rendered_bytes_agree() -> None:
    cases = [Refusal(Reason.CREDENTIALS_INVALID, scheme="Bearer"),
             Refusal(Reason.CREDENTIALS_INVALID, scheme="Basic"),
             Refusal(Reason.CREDENTIALS_INVALID, scheme="Basic", hints=["Ask Bob."]),
             Refusal(Reason.CREDENTIALS_INVALID)]
    for _ in range(2):
        for refusal in cases:
            rendered = json.loads(render_problem(refusal, request_id="r"))
            assert rendered == problem_body(refusal, request_id="r")
    assert problem_body(cases[2])["hints"] == ["Ask Bob."]
    assert cases[2].replace(scheme="Bearer").hints == ("Ask Bob.",)


async def test_a_lapsed_plan_is_renewed_not_paid_with_a_proof() -> None:
    world = World()
    await world.plans.set("alice", Entitlement(plan="pro",
                                               expires_at=world.clock.now - DAY))
    async with asgi_client(world.asgi) as c:
        r = await c.get("/pro", headers=ALICE)
    body = r.json()
    assert (r.status_code, body["reason"]) == (402, "payment_required")
    assert "expired" in body["detail"]
    hints = " ".join(body["hints"])
    assert "retry with the proof" not in hints
    assert body["hints"][0].startswith("Renew your plan")
    assert "no payment proof" in hints


async def test_a_missing_plan_says_how_to_get_one() -> None:
    world = World()
    async with asgi_client(world.asgi) as c:
        body = (await c.get("/pro", headers=ALICE)).json()
    assert body["reason"] == "payment_required"
    assert body["hints"][0].startswith("Get one of the plans")
    assert "retry with the proof" not in " ".join(body["hints"])


async def test_explain_says_to_renew_a_lapsed_plan() -> None:
    from authguard.client import Problem
    from authguard.client.diagnose import next_steps

    world = World()
    await world.plans.set("alice", Entitlement(plan="pro",
                                               expires_at=world.clock.now - DAY))
    async with asgi_client(world.asgi) as c:
        r = await c.get("/pro", headers=ALICE)
    steps = next_steps(Problem.from_response(r))
    assert steps[0].startswith("Your plan has ended: renew it")
    assert not any("retry with the proof" in s for s in steps)
