"""402 end to end: the example app under real uvicorn, over HTTP — plans, pay-per-request
with the Payment scheme, a double-spend raced by 20 clients, the real ``x402`` client, a
facilitator that is stopped and restarted, and the client-side ``pay_and_retry``."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import x402
from demo_payments import X402_NETWORK, demo_signature
from x402.http.clients.httpx import x402AsyncTransport
from x402.http.x402_http_client import x402HTTPClient

from authguard.client import PaymentRequired, apay_and_retry, pay_and_retry
from helpers import EXAMPLE_DIR, check_refusal, free_port, http_client, uvicorn_server
from test_payments import assert_402, b64url_json, payment_challenge

pytestmark = pytest.mark.e2e



async def _acheck(response: httpx.Response) -> None:
    await response.aread()
    check_refusal(response)


def async_client(base_url: str, **kw: Any) -> httpx.AsyncClient:
    """A real async HTTP client whose every refusal is checked (schema, no-store, …)."""
    return httpx.AsyncClient(base_url=base_url, timeout=10,
                             event_hooks={"response": [_acheck]}, **kw)


# -- plans ---------------------------------------------------------------------------------


def test_premium_for_each_user(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/premium")
        assert r.status_code == 401 and r.json()["reason"] == "credentials_missing"
        assert "payment" not in r.json() and "payment-required" not in r.headers
        body = assert_402(c.get("/premium", auth=("alice", "wonderland")))
        assert "active plan" in body["detail"]
        assert body["payment"]["offers"][0] == {"scheme": "plan", "plans": ["pro"],
                                                "checkout": "/billing/checkout"}
        # and the Payment challenge that buys the plan (draft: no 402 without one)
        assert body["payment"]["offers"][1]["plan"] == "pro"
        assert payment_challenge(c.get("/premium", auth=("alice", "wonderland")))
        r = c.get("/premium", headers={"X-API-Key": "demo-key-alice-0123456789"})
        assert_402(r)
        r = c.get("/premium", auth=("bob", "builder"))
        assert r.status_code == 200 and r.json() == {"premium": True, "subject": "bob"}
        body = assert_402(c.get("/premium", auth=("carol", "rainbow")))
        assert "expired at" in body["detail"] and body["payment"]["expired_at"] in body["detail"]
        assert body["checkout"] == "/billing/checkout"
        r = c.get(body["checkout"], auth=("carol", "rainbow"))
        assert r.status_code == 200 and r.json()["current"] == "pro"
        r = c.get("/premium", auth=("alice", "wrong"))
        assert r.status_code == 401 and r.json()["reason"] == "credentials_invalid"


# -- pay per request: the Payment scheme -----------------------------------------------------


def test_paid_quote_offers_both_schemes(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/paid/quote")
    body = assert_402(r)
    ch = payment_challenge(r)
    assert {"id", "realm", "method", "intent", "request"} <= set(ch.params)
    assert b64url_json(ch.params["request"])["amount"] == "0.01"
    required = json.loads(base64.b64decode(r.headers["payment-required"], validate=True))
    assert required["x402Version"] == 2
    assert required["resource"]["url"] == example_server + "/paid/quote"
    assert required["accepts"][0]["amount"] == "10000"
    assert required["accepts"][0]["network"] == X402_NETWORK
    assert [o["scheme"] for o in body["payment"]["offers"]] == ["Payment", "x402"]


def test_pay_then_use_once(example_server: str) -> None:
    with http_client(example_server) as c:
        ch = payment_challenge(c.get("/paid/quote"))
        paid = c.post("/billing/pay", json={"challenge": ch.params["id"]})
        assert paid.status_code == 200
        authorization = paid.json()["authorization"]
        assert authorization.startswith("Payment ")
        r = c.get("/paid/quote", headers={"Authorization": authorization})
        assert r.status_code == 200 and r.json()["symbol"] == "AGRD"
        receipt = b64url_json(r.headers["payment-receipt"])
        assert receipt["status"] == "success" and receipt["reference"] == ch.params["id"]
        again = c.get("/paid/quote", headers={"Authorization": authorization})
        assert "already used" in assert_402(again, "payment_invalid")["detail"]
        r = c.post("/billing/pay", json={"challenge": "no-such-challenge"})
        assert r.status_code == 404 and "No payable challenge" in r.json()["detail"]


async def test_a_receipt_raced_by_twenty_clients_is_served_once(example_server: str) -> None:
    async with async_client(example_server) as c:
        ch = payment_challenge(await c.get("/paid/quote"))
        paid = await c.post("/billing/pay", json={"challenge": ch.params["id"]})
        authorization = paid.json()["authorization"]
    # twenty clients, twenty connections, one payment
    clients = [async_client(example_server) for _ in range(20)]
    try:
        results = await asyncio.gather(*(
            c.get("/paid/quote", headers={"Authorization": authorization}) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))
    assert sorted(r.status_code for r in results) == [200] + [402] * 19
    for r in results:
        if r.status_code == 402:
            assert_402(r, "payment_invalid")
        else:
            assert "payment-receipt" in r.headers


def test_a_bad_credential_on_the_paid_route_is_401(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/paid/quote", auth=("alice", "wrong"))
        assert r.status_code == 401 and "payment" not in r.json()
        r = c.get("/paid/quote", headers={"Authorization": "Payment %%%"})
        assert_402(r, "payment_invalid")


# -- x402 with the real client ---------------------------------------------------------------


class DemoScheme:
    """The ``demo`` scheme's client side: signs what it is asked to pay."""

    scheme = "demo"

    def __init__(self) -> None:
        self.paid: list[dict[str, Any]] = []

    def create_payment_payload(self, requirements: Any) -> dict[str, Any]:
        requirement = requirements.model_dump(by_alias=True)
        self.paid.append(requirement)
        nonce = secrets.token_hex(16)
        return {"nonce": nonce, "signature": demo_signature(requirement, nonce),
                "payer": "e2e-wallet"}


def x402_client(scheme: DemoScheme) -> x402.x402Client:
    client = x402.x402Client()
    client.register(X402_NETWORK, scheme)
    client.set_spend_controls(False)  # the demo asset is on no allow-list
    return client


def settle_response(client: x402.x402Client, r: httpx.Response) -> Any:
    return x402HTTPClient(client).get_payment_settle_response(r.headers.get)


async def paying_client(base_url: str, scheme: DemoScheme) -> tuple[httpx.AsyncClient,
                                                                    x402.x402Client]:
    client = x402_client(scheme)
    transport = x402AsyncTransport(client, transport=httpx.AsyncHTTPTransport())
    return httpx.AsyncClient(base_url=base_url, transport=transport, timeout=10), client


async def test_the_x402_client_pays_the_example_app(example_server: str) -> None:
    scheme = DemoScheme()
    http, client = await paying_client(example_server, scheme)
    async with http:
        r = await http.get("/paid/quote")
    assert r.status_code == 200, r.text
    assert r.json()["symbol"] == "AGRD"
    assert len(scheme.paid) == 1 and scheme.paid[0]["amount"] == "10000"
    settled = settle_response(client, r)
    assert settled.success is True and settled.network == X402_NETWORK
    assert settled.transaction.startswith("demo-tx-") and settled.payer == "e2e-wallet"


@pytest.fixture
async def facilitated() -> AsyncIterator[tuple[str, int]]:
    """The example app whose x402 facilitator runs apart, under its own uvicorn, on a
    fixed loopback port (so that it can be stopped and started again)."""
    port = free_port()
    env = {"AUTHGUARD_DEMO_X402_FACILITATOR": f"http://127.0.0.1:{port}"}
    with uvicorn_server("app:app", env=env) as app_url:
        yield app_url, port


def facilitator(port: int) -> Any:
    return uvicorn_server("demo_payments:demo_facilitator", app_dir=EXAMPLE_DIR, port=port,
                          extra_args=("--factory",))


async def test_a_stopped_facilitator_is_503_and_a_restarted_one_pays(
        facilitated: tuple[str, int]) -> None:
    app_url, port = facilitated
    with facilitator(port):
        scheme = DemoScheme()
        http, client = await paying_client(app_url, scheme)
        async with http:
            r = await http.get("/paid/quote")
        assert r.status_code == 200 and settle_response(client, r).success is True

    # stopped: the proof cannot be verified — 503 with Retry-After, never a 402
    scheme = DemoScheme()
    http, client = await paying_client(app_url, scheme)
    async with http:
        r = await http.get("/paid/quote")
    assert len(scheme.paid) == 1, "the client paid once and got no 402 asking again"
    assert r.status_code == 503
    await _acheck(r)
    assert r.json()["reason"] == "auth_unavailable"
    assert int(r.headers["retry-after"]) > 0
    assert "payment-required" not in r.headers

    with facilitator(port):
        scheme = DemoScheme()
        http, client = await paying_client(app_url, scheme)
        async with http:
            r = await http.get("/paid/quote")
        assert r.status_code == 200, r.text
        assert settle_response(client, r).transaction.startswith("demo-tx-")


# -- the client side: pay_and_retry ---------------------------------------------------------


def _challenge_id(error: PaymentRequired) -> str:
    assert error.payment is not None
    offer = next(o for o in error.payment["offers"] if o["scheme"] == "Payment")
    assert any(ch.scheme == "Payment" and ch.params["id"] == offer["id"]
               for ch in error.problem.challenges)
    assert error.payment_required is not None and error.payment_required["x402Version"] == 2
    return str(offer["id"])


def test_pay_and_retry_pays_through_the_callback(example_server: str) -> None:
    calls: list[PaymentRequired] = []
    with http_client(example_server) as c:

        def pay(error: PaymentRequired) -> dict[str, str]:
            calls.append(error)
            paid = c.post("/billing/pay", json={"challenge": _challenge_id(error)})
            return {"Authorization": paid.json()["authorization"]}

        r = pay_and_retry(c, c.build_request("GET", "/paid/quote"), pay)
        assert r.status_code == 200 and "payment-receipt" in r.headers
        assert len(calls) == 1 and calls[0].reason == "payment_required"
        # a response already received works too; a 200 calls nothing
        first = c.get("/paid/quote")
        assert pay_and_retry(c, first, pay).status_code == 200
        assert pay_and_retry(c, c.build_request("GET", "/public"), pay).status_code == 200
        assert len(calls) == 2


def test_pay_and_retry_retries_once_and_may_decline(example_server: str) -> None:
    with http_client(example_server) as c:
        stale: list[str] = []

        def pay_twice(error: PaymentRequired) -> dict[str, str]:
            if not stale:  # pay once, then hand the same (now used) proof again
                paid = c.post("/billing/pay", json={"challenge": _challenge_id(error)})
                stale.append(paid.json()["authorization"])
                assert c.get("/paid/quote", headers={"Authorization": stale[0]}).is_success
            return {"Authorization": stale[0]}

        r = pay_and_retry(c, c.build_request("GET", "/paid/quote"), pay_twice)
        assert r.status_code == 402 and r.json()["reason"] == "payment_invalid"

        r = pay_and_retry(c, c.build_request("GET", "/paid/quote"), lambda error: None)
        assert r.status_code == 402 and r.json()["reason"] == "payment_required"

        async def not_here(error: PaymentRequired) -> dict[str, str]:
            return {}

        with pytest.raises(TypeError, match="apay_and_retry"):
            pay_and_retry(c, c.build_request("GET", "/paid/quote"), not_here)


async def test_apay_and_retry_with_an_async_callback(example_server: str) -> None:
    async with async_client(example_server) as c:

        async def pay(error: PaymentRequired) -> dict[str, str]:
            paid = await c.post("/billing/pay", json={"challenge": _challenge_id(error)})
            return {"Authorization": paid.json()["authorization"]}

        r = await apay_and_retry(c, c.build_request("GET", "/paid/quote"), pay)
        assert r.status_code == 200 and "payment-receipt" in r.headers

        # an identity travels beside the payment: the challenge names Payment-Authorization
        async def pay_beside(error: PaymentRequired) -> dict[str, str]:
            assert error.payment is not None
            offer = error.payment["offers"][0]
            assert offer["credential_header"] == "Payment-Authorization"
            paid = await c.post("/billing/pay", json={"challenge": offer["id"]})
            return {offer["credential_header"]: paid.json()["authorization"]}

        request = c.build_request("GET", "/paid/quote",
                                  headers={"X-API-Key": "demo-key-bob-0123456789"})
        r = await apay_and_retry(c, request, pay_beside)
        assert r.status_code == 200 and "payment-receipt" in r.headers
