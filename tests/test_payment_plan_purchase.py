"""PlanPurchase: a plan route's 402 that a client can pay, and what paying it records."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    ConfigurationError,
    Identity,
    StaticAPIKeys,
    hash_api_key,
    protect,
)
from authguard.challenges import parse_www_authenticate
from authguard.payments import (
    Entitlement,
    EntitlementVerifier,
    MemoryEntitlementStore,
    Payment,
    PlanPurchase,
    Price,
    ReceiptVerifier,
)
from authguard.stores import MemoryNonceStore
from helpers import asgi_client

SECRET = "plan-purchase-test-secret-0123456789abcdef"
DAY = 86_400.0
PRICE = Price(Decimal("9.00"), "USD", "pro, 30 days")
ALICE = {"X-API-Key": "k-alice"}


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class World:
    def __init__(self) -> None:
        self.clock = Clock()
        self.plans = MemoryEntitlementStore()
        self.receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(clock=self.clock),
                                        realm="test")
        plan = EntitlementVerifier(self.plans, plans=["pro"])
        buy = PlanPurchase(self.receipts, self.plans, plan="pro", price=PRICE,
                           seconds=30 * DAY)

        async def ok(request: Request) -> Response:
            return JSONResponse({"subject": request.user.display_name})

        async def fails(request: Request) -> Response:
            return PlainTextResponse("broken", status_code=500)

        def route(path: str, endpoint: Any, **kw: Any) -> Route:
            async def fresh(request: Request) -> Response:
                response: Response = await endpoint(request)
                return response
            return Route(path, protect(Authenticated() & Payment(verifiers=[plan, buy], **kw))(
                fresh))

        keys = StaticAPIKeys({hash_api_key("k-alice"): Identity(subject="alice",
                                                                 scheme="ApiKey")})
        app = Starlette(routes=[route("/pro", ok), route("/pro-fails", fails,
                                                          settle="on_success")])
        self.asgi = AuthGuardMiddleware(app, AuthGuard(
            authenticators=[APIKeyAuthenticator(store=keys)], clock=self.clock))


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(world.asgi) as c:
        yield c


async def buy(c: httpx.AsyncClient, world: World, path: str = "/pro") -> str:
    r = await c.get(path, headers=ALICE)
    assert r.status_code == 402, r.text
    (ch,) = [c for line in r.headers.get_list("www-authenticate")
             for c in parse_www_authenticate(line)]
    assert ch.params["header"] == "Payment-Authorization"
    offer = r.json()["payment"]["offers"][1]
    assert (offer["plan"], offer["amount"], offer["description"]) == ("pro", "9.00",
                                                                     "pro, 30 days")
    return world.receipts.pay(dict(ch.params))


def test_the_seller_must_take_payments_and_the_store_record_them() -> None:
    plans = MemoryEntitlementStore()
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="t")
    with pytest.raises(ConfigurationError, match=r"PlanPurchase\.seller"):
        PlanPurchase(EntitlementVerifier(plans, plans=["pro"]), plans, plan="pro",
                     price=PRICE, seconds=DAY)

    class ReadOnly:
        async def get(self, subject: str) -> Entitlement | None:
            return None

        async def use_credits(self, subject: str, amount: int) -> bool:
            return False

    with pytest.raises(ConfigurationError, match=r"PlanPurchase\.store"):
        PlanPurchase(receipts, ReadOnly(), plan="pro",  # type: ignore[arg-type]
                     price=PRICE, seconds=DAY)
    with pytest.raises(ConfigurationError, match="seconds"):
        PlanPurchase(receipts, plans, plan="pro", price=PRICE, seconds=0)


async def test_paying_grants_the_plan_and_a_second_purchase_extends_it(
        client: httpx.AsyncClient, world: World) -> None:
    credential = await buy(client, world)
    r = await client.get("/pro", headers={**ALICE, "Payment-Authorization": credential})
    assert r.status_code == 200 and "payment-receipt" in r.headers
    held = await world.plans.get("alice")
    assert held is not None and held.expires_at == world.clock.now + 30 * DAY
    assert (await client.get("/pro", headers=ALICE)).status_code == 200
    # with the plan, a proof sent along is not taken
    again = await client.get("/pro", headers={**ALICE, "Payment-Authorization": credential})
    assert again.status_code == 200 and "payment-receipt" not in again.headers
    # once it lapses, the 402 sells it again, from now
    world.clock.now += 31 * DAY
    credential = await buy(client, world)
    r = await client.get("/pro", headers={**ALICE, "Payment-Authorization": credential})
    assert r.status_code == 200
    held = await world.plans.get("alice")
    assert held is not None and held.expires_at == world.clock.now + 30 * DAY


async def test_on_success_a_failed_response_grants_nothing(
        client: httpx.AsyncClient, world: World) -> None:
    credential = await buy(client, world, "/pro-fails")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.asgi),
                                 base_url="http://testserver") as raw:
        r = await raw.get("/pro-fails", headers={**ALICE, "Payment-Authorization": credential})
    assert r.status_code == 500
    assert await world.plans.get("alice") is None  # nothing served, nothing granted
