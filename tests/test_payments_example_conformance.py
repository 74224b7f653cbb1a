"""The example app's 402s under real uvicorn: every one carries a ``Payment`` challenge a
client can act on (draft-httpauth-payment §Usage of 402), and HEAD is answered like GET.

A server of its own (alice buys a plan here, which other tests must not see).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from authguard.challenges import Challenge, parse_www_authenticate
from helpers import http_client, uvicorn_server
from tokens import bearer, mint

ALICE = ("alice", "wonderland")
CAROL = ("carol", "rainbow")
PA = "Payment-Authorization"


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}) as url:
        yield url


def payment_challenge(r: httpx.Response) -> Challenge:
    found = [ch for line in r.headers.get_list("www-authenticate")
             for ch in parse_www_authenticate(line) if ch.scheme == "Payment"]
    assert len(found) == 1, (r.status_code, r.headers.get_list("www-authenticate"))
    return found[0]


def b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_premium_without_a_plan_offers_a_payment_that_buys_it(server: str) -> None:
    """The plan 402 is payable: its Payment challenge buys the plan; once bought, the
    plan alone lets the next request through."""
    with http_client(server) as c:
        r = c.get("/premium", auth=ALICE)
        assert r.status_code == 402 and r.json()["reason"] == "payment_required"
        ch = payment_challenge(r)
        assert ch.params["header"] == PA  # alice's Basic credentials stay in Authorization
        request = b64url_json(ch.params["request"])
        assert request["currency"] == "USD" and request["amount"] == "9.00"
        offers = {o["scheme"] for o in r.json()["payment"]["offers"]}
        assert offers == {"plan", "Payment"}
        paid = c.post("/billing/pay", json={"challenge": ch.params["id"]}).json()
        r = c.get("/premium", auth=ALICE, headers={PA: paid["authorization"]})
        assert r.status_code == 200, r.text
        assert r.json() == {"premium": True, "subject": "alice"}
        assert b64url_json(r.headers["payment-receipt"])["status"] == "success"
        # the plan is hers now: no payment needed
        assert c.get("/premium", auth=ALICE).status_code == 200


def test_an_expired_plan_is_renewed_by_its_payment_challenge(server: str) -> None:
    with http_client(server) as c:
        r = c.get("/premium", auth=CAROL)
        assert r.status_code == 402 and "expired" in r.json()["detail"]
        ch = payment_challenge(r)
        paid = c.post("/billing/pay", json={"challenge": ch.params["id"]}).json()
        assert c.get("/premium", auth=CAROL,
                     headers={PA: paid["authorization"]}).status_code == 200


def test_paying_an_unknown_challenge_is_404_not_a_bare_402(server: str) -> None:
    """The stand-in provider has no such challenge, and no Payment challenge to offer:
    404, not a 402."""
    with http_client(server) as c:
        r = c.post("/billing/pay", json={"challenge": "no-such-challenge"})
        assert r.status_code == 404, r.text
        assert "No payable challenge" in r.json()["detail"]
        assert "www-authenticate" not in r.headers


@pytest.mark.parametrize("path", ["/paid/quote", "/premium"])
def test_head_on_a_paid_route_is_answered_like_get(server: str, path: str) -> None:
    planless = bearer(mint("erin")) if path == "/premium" else {}
    with http_client(server) as c:
        get, head = c.get(path, headers=planless), c.head(path, headers=planless)
    assert head.status_code == get.status_code == 402
    assert head.content == b""
    varying = {"content-length", "x-request-id", "date", "www-authenticate",
               "payment-required"}
    assert {k for k in head.headers if k not in varying} == {
        k for k in get.headers if k not in varying}
    assert payment_challenge(head).params["realm"] == "authguard-demo"


def test_a_paid_head_request_is_served_with_its_receipt(server: str) -> None:
    with http_client(server) as c:
        ch = payment_challenge(c.get("/paid/quote"))
        paid = c.post("/billing/pay", json={"challenge": ch.params["id"]}).json()
        r = c.head("/paid/quote", headers={"Authorization": paid["authorization"]})
        assert r.status_code == 200 and r.content == b""
        assert "payment-receipt" in r.headers
