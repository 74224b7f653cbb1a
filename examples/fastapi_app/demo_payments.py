"""The example app's 402 routes: a plan, pay-per-request, and a stand-in payment provider.

``setup(app, guard, nonces=...)`` is called once from ``app.py``:

* ``GET /premium`` needs an identity with an active ``pro`` plan: bob has one, carol's
  expired yesterday, alice has none (402 ``payment_required``, whose ``Payment`` challenge
  buys 30 days of ``pro`` for 9.00 USD); anonymous requests get 401.
* ``GET /paid/quote`` costs 0.01 USD per request and needs no identity: the 402 offers the
  IETF ``Payment`` scheme (``WWW-Authenticate: Payment …``) and x402 (``PAYMENT-REQUIRED``).
* ``POST /billing/pay`` stands in for a payment provider: ``{"challenge": "<id>"}`` answers
  ``{"authorization": "Payment …"}``, which pays that one challenge (one ``GET /paid/quote``,
  or the ``pro`` plan); an id it does not know is 404.

Both paid routes take ``HEAD`` too (FastAPI routes only the methods it is given; the
``HEAD`` route stays out of the OpenAPI document), answered like ``GET``.

x402 payments are verified and settled by a facilitator: ``AUTHGUARD_DEMO_X402_FACILITATOR``
names one; unset, a demo facilitator runs in-process (:func:`demo_facilitator`) for the
made-up scheme ``demo`` on network ``x402:demo`` — no chain, no network.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from decimal import Decimal
from typing import Any

import httpx
from fastapi import APIRouter, Body, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from starlette.applications import Starlette
from starlette.requests import Request as StarletteRequest
from starlette.routing import Route

from authguard import Authenticated, AuthGuard, Public, protect
from authguard.payments import (
    Entitlement,
    EntitlementVerifier,
    MemoryEntitlementStore,
    Payment,
    PlanPurchase,
    Price,
    ReceiptVerifier,
)
from authguard.payments.x402 import FacilitatorClient, X402Verifier
from authguard.stores import MemoryNonceStore, NonceStore

DAY = 86_400.0
PAYMENT_SECRET = os.environ.get("AUTHGUARD_DEMO_PAYMENT_SECRET",
                                "demo-payment-secret-0123456789abcdef-0123")
X402_NETWORK = "x402:demo"
X402_ASSET = "demo-usd"
X402_PAY_TO = "authguard-demo"
# The demo wallet's signing key, shared by the demo facilitator and the tests' client.
X402_DEMO_KEY = b"demo-x402-wallet-key-0123456789abcdef"


def demo_signature(requirement: dict[str, Any], nonce: str) -> str:
    """The demo scheme's proof: an HMAC of the requirement paid and a nonce (the amount is
    ``amount`` in x402 v2 requirements, ``maxAmountRequired`` in v1)."""
    amount = requirement.get("amount", requirement.get("maxAmountRequired"))
    text = "|".join([nonce, str(amount), str(requirement["asset"]),
                     str(requirement["payTo"]), str(requirement["network"])])
    return hmac.new(X402_DEMO_KEY, text.encode(), hashlib.sha256).hexdigest()


def demo_facilitator() -> Starlette:
    """An x402 facilitator for the ``demo`` scheme: ``POST /verify`` and ``POST /settle``.

    A payload ``{"nonce", "signature", "payer"}`` is valid when the signature matches the
    requirement; settling spends the nonce once.
    """
    spent: set[str] = set()

    def check(body: dict[str, Any]) -> tuple[bool, str | None, dict[str, Any]]:
        payload = body.get("paymentPayload", {}).get("payload", {})
        req = body.get("paymentRequirements", {})
        nonce = str(payload.get("nonce", ""))
        if req.get("scheme") != "demo" or req.get("network") != X402_NETWORK:
            return False, "unsupported_scheme", payload
        # Each version has its own shape of requirements: a mix-up is refused.
        amount_field = "maxAmountRequired" if body.get("x402Version") == 1 else "amount"
        if amount_field not in req:
            return False, "invalid_x402_version", payload
        if not hmac.compare_digest(str(payload.get("signature", "")).encode(),
                                   demo_signature(req, nonce).encode()):
            return False, "invalid_signature", payload
        if nonce in spent:
            return False, "nonce_already_used", payload
        return True, None, payload

    async def verify(request: StarletteRequest) -> JSONResponse:
        ok, why, payload = check(await request.json())
        return JSONResponse({"isValid": ok, "invalidReason": why,
                             "payer": payload.get("payer")})

    async def settle(request: StarletteRequest) -> JSONResponse:
        body = await request.json()
        ok, why, payload = check(body)
        if ok:
            spent.add(str(payload["nonce"]))
        return JSONResponse({
            "success": ok, "errorReason": why, "payer": payload.get("payer"),
            "transaction": "demo-tx-" + hashlib.sha256(
                str(payload.get("nonce")).encode()).hexdigest()[:16] if ok else "",
            "network": X402_NETWORK,
        })

    return Starlette(routes=[Route("/verify", verify, methods=["POST"]),
                             Route("/settle", settle, methods=["POST"])])


def _facilitator() -> FacilitatorClient:
    url = os.environ.get("AUTHGUARD_DEMO_X402_FACILITATOR")
    if url:
        return FacilitatorClient(url, timeout=5.0)
    return FacilitatorClient("http://facilitator.invalid",
                             transport=httpx.ASGITransport(app=demo_facilitator(),
                                                           raise_app_exceptions=False))


def setup(app: FastAPI, guard: AuthGuard, *, nonces: NonceStore | None = None) -> None:
    """Add ``/premium``, ``/paid/quote`` and ``/billing/pay`` to the example app."""
    now = time.time()
    # --8<-- [start:verifiers]
    plans = MemoryEntitlementStore({
        "bob": Entitlement(plan="pro", expires_at=now + 365 * DAY),
        "carol": Entitlement(plan="pro", expires_at=now - DAY),
    })
    premium_plan = EntitlementVerifier(plans, plans=["pro"], checkout="/billing/checkout")
    receipts = ReceiptVerifier(secret=PAYMENT_SECRET, nonces=nonces or MemoryNonceStore(),
                               remember=10_000,
                               realm="authguard-demo", recipient="authguard-demo")
    # The plan's 402 can be paid: its Payment challenge buys 30 days of "pro".
    buy_pro = PlanPurchase(receipts, plans, plan="pro", seconds=30 * DAY,
                           price=Price(Decimal("9.00"), "USD", "The pro plan, 30 days"))
    x402 = X402Verifier(facilitator=_facilitator(), network=X402_NETWORK, asset=X402_ASSET,
                        pay_to=X402_PAY_TO, scheme="demo", decimals=6, accept_v1=True)
    quote_price = Price(Decimal("0.01"), "USD", "One stock quote")
    # --8<-- [end:verifiers]

    router = APIRouter()

    # --8<-- [start:routes]
    @router.head("/premium", include_in_schema=False)
    @router.get("/premium")
    @protect(Authenticated() & Payment(verifiers=[premium_plan, buy_pro]))
    async def premium(request: Request) -> dict[str, Any]:
        """For identities with an active ``pro`` plan."""
        return {"premium": True, "subject": request.user.subject}

    @router.head("/paid/quote", include_in_schema=False)
    @router.get("/paid/quote")
    @protect(Payment(quote_price, verifiers=[receipts, x402]))
    async def paid_quote() -> dict[str, Any]:
        """0.01 USD per request; no identity needed."""
        return {"symbol": "AGRD", "price": "42.00", "currency": "USD"}
    # --8<-- [end:routes]

    @router.get("/billing/checkout")
    @protect(Authenticated())
    async def checkout(request: Request) -> dict[str, Any]:
        """Where a person would buy or renew the ``pro`` plan (the 402's ``checkout``)."""
        plan = await plans.get(request.user.subject)
        return {"subject": request.user.subject, "plans": ["pro"],
                "current": None if plan is None else plan.plan,
                "detail": "This demo sells nothing: a real app shows its checkout here."}

    # --8<-- [start:provider]
    @router.post("/billing/pay", responses={
        400: {"description": "FastAPI could not parse the body"},
        404: {"description": "No payable challenge has this id"}})
    @protect(Public)
    async def pay(challenge: str = Body(embed=True, max_length=256)) -> dict[str, str]:
        """Stand-in for a payment provider: pays one ``Payment`` challenge by its id."""
        authorization = receipts.authorization_for(challenge)
        if authorization is None:
            # There is no such challenge to pay: 404, not a 402 (which must carry a
            # Payment challenge, draft-httpauth-payment §Usage of 402).
            raise HTTPException(404, "No payable challenge has this id; request the "
                                     "resource again for a fresh one.")
        return {"authorization": authorization}
    # --8<-- [end:provider]

    app.include_router(router)
