"""402 in process: prices, the 401 → 403 → 402 order, plans and credits, the IETF Payment
scheme's receipts, x402 through a facilitator, settlement and its receipts."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import httpx
import jsonschema
import jwt
import pytest
from demo_payments import X402_ASSET, X402_NETWORK, X402_PAY_TO, demo_facilitator, demo_signature
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    ConfigurationError,
    HasRoles,
    HasScopes,
    Identity,
    JWTKey,
    PBKDF2Hasher,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    problem_schema,
    protect,
)
from authguard.challenges import Challenge, parse_www_authenticate
from authguard.client import PaymentRequired, apay_and_retry
from authguard.composition import Requirement
from authguard.payments import (
    Entitlement,
    EntitlementVerifier,
    MemoryEntitlementStore,
    Offer,
    Payment,
    PaymentContext,
    PaymentRejected,
    PaymentVerifier,
    Price,
    ReceiptVerifier,
)
from authguard.payments.x402 import FacilitatorClient, X402Verifier
from authguard.stores import MemoryNonceStore
from helpers import asgi_client, free_port

SECRET = "test-payment-secret-0123456789abcdef-0123"
JWT_SECRET = "test-jwt-secret-0123456789abcdef-0123456789"
ALICE = {"X-API-Key": "k-alice"}  # role user
BOB = {"X-API-Key": "k-bob"}  # role admin
EXPOSED = {"www-authenticate", "payment-required", "payment-response", "payment-receipt"}
VALIDATOR = jsonschema.Draft202012Validator(problem_schema())
DAY = 86_400.0
Endpoint = Callable[[Request], Awaitable[Response]]


class Clock:
    """A clock the tests move by hand."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


# -- the test app ------------------------------------------------------------------------


def dynamic_price(conn: HTTPConnection) -> Price:
    size = int(conn.query_params.get("size", "1"))
    return Price(Decimal("0.01") * size, "USD", f"{size} rows")


async def ok(request: Request) -> JSONResponse:
    user = request.user.display_name if request.user.is_authenticated else None
    return JSONResponse({"ok": True, "user": user})


def fresh_ok() -> Endpoint:
    """``ok`` as a new function object: protect() marks the very function it is given."""
    async def served(request: Request) -> JSONResponse:
        return await ok(request)
    return served


async def fails(request: Request) -> Response:
    return PlainTextResponse("broken", status_code=500)


async def streamed(request: Request) -> StreamingResponse:
    async def chunks() -> AsyncIterator[bytes]:
        for i in range(3):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


async def echo(request: Request) -> Response:
    return JSONResponse({"got": (await request.json())})


async def garbage(request: Request) -> Response:
    return PlainTextResponse("<html>not a facilitator</html>")


async def answers_nothing(request: Request) -> Response:
    return JSONResponse({"hello": "world"})


def facilitator(kind: str) -> FacilitatorClient:
    if kind == "demo":
        app: Any = demo_facilitator()
    elif kind == "garbage":
        app = Starlette(routes=[Route("/verify", garbage, methods=["POST"]),
                                Route("/settle", garbage, methods=["POST"])])
    elif kind == "no-isvalid":
        app = Starlette(routes=[Route("/verify", answers_nothing, methods=["POST"])])
    elif kind in ("settle-garbage", "settle-declined"):
        demo = demo_facilitator()

        async def declined(request: Request) -> Response:
            return JSONResponse({"success": False, "errorReason": "insufficient_funds",
                                 "transaction": "", "network": X402_NETWORK})

        settle = garbage if kind == "settle-garbage" else declined
        app = Starlette(routes=[Route("/settle", settle, methods=["POST"]),
                                Route("/verify", demo, methods=["POST"])])
    else:  # "down": a loopback port nobody listens on (connection refused)
        return FacilitatorClient(f"http://127.0.0.1:{free_port()}", timeout=2.0, retry_after=7)
    return FacilitatorClient("http://facilitator.test", transport=httpx.ASGITransport(app=app))


class World:
    """The verifiers, stores and clock behind one test app."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.nonces = MemoryNonceStore(clock=self.clock)
        self.plans = MemoryEntitlementStore({
            "bob": Entitlement(plan="pro", expires_at=self.clock.now + 30 * DAY),
            "carol": Entitlement(plan="pro", expires_at=self.clock.now - DAY),
            "dave": Entitlement(credits=3),
        })
        self.receipts = ReceiptVerifier(secret=SECRET, nonces=self.nonces, realm="test",
                                        recipient="shop", ttl=60)
        self.x402 = {kind: X402Verifier(facilitator=facilitator(kind), network=X402_NETWORK,
                                        asset=X402_ASSET, pay_to=X402_PAY_TO, scheme="demo")
                     for kind in ("demo", "garbage", "no-isvalid", "down", "settle-garbage",
                                  "settle-declined")}
        self.x402["v1"] = X402Verifier(facilitator=facilitator("demo"), network=X402_NETWORK,
                                       asset=X402_ASSET, pay_to=X402_PAY_TO, scheme="demo",
                                       accept_v1=True)
        self.app = self._app()

    def _app(self) -> AuthGuardMiddleware:
        price = Price(Decimal("0.01"), "USD", "One quote")
        plan = EntitlementVerifier(self.plans, plans=["pro"], checkout="/checkout")
        credits = EntitlementVerifier(self.plans, credits=1, checkout="/checkout")
        receipts = self.receipts

        def paid(*verifiers: PaymentVerifier, **kw: Any) -> Payment:
            return Payment(price, verifiers=list(verifiers), **kw)

        def route(path: str, requirement: Requirement, endpoint: Endpoint = ok,
                  methods: tuple[str, ...] = ("GET",)) -> Route:
            # a fresh function per route: protect() marks the function object it decorates
            async def fresh(request: Request) -> Response:
                return await endpoint(request)

            return Route(path, protect(requirement)(fresh), methods=list(methods))

        routes = [
            route("/plan", Authenticated() & Payment(verifiers=[plan])),
            route("/credits", Payment(verifiers=[credits])),
            route("/quote", paid(receipts, self.x402["demo"])),
            route("/dynamic", Payment(dynamic_price, verifiers=[receipts])),
            route("/admin-paid", HasRoles("admin") & paid(receipts)),
            route("/reports-paid", paid(receipts) & HasScopes("reports:read")),
            route("/on-success", paid(receipts, settle="on_success")),
            route("/on-success-fails", paid(receipts, settle="on_success"), fails),
            route("/before-fails", paid(receipts), fails),
            route("/stream", paid(receipts), streamed),
            route("/x402/garbage", paid(self.x402["garbage"])),
            route("/x402/no-isvalid", paid(self.x402["no-isvalid"])),
            route("/x402/down", paid(self.x402["down"])),
            route("/x402/settle-garbage", paid(self.x402["settle-garbage"])),
            route("/x402/settle-declined", paid(self.x402["settle-declined"])),
            route("/x402/v1", paid(self.x402["v1"])),
            route("/echo", paid(receipts), echo, ("POST",)),
        ]
        keys = StaticAPIKeys({
            hash_api_key("k-alice"): Identity(subject="alice", scheme="ApiKey",
                                              roles=frozenset({"user"})),
            hash_api_key("k-bob"): Identity(subject="bob", scheme="ApiKey",
                                            roles=frozenset({"admin"})),
            hash_api_key("k-carol"): Identity(subject="carol", scheme="ApiKey"),
            hash_api_key("k-dave"): Identity(subject="dave", scheme="ApiKey"),
        })
        passwords = StaticPasswords.from_plaintext({"alice": ("wonderland", ["user"])},
                                                   hasher=PBKDF2Hasher(iterations=1000))
        bearer = BearerAuthenticator(key=JWTKey.hs256(JWT_SECRET), issuer="https://issuer.test",
                                     audience="shop", realm="t")
        guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=keys, realm="t"),
                                          BasicAuthenticator(verifier=passwords, realm="t"),
                                          bearer],
                          clock=self.clock)
        return AuthGuardMiddleware(Starlette(routes=routes), guard)


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
async def client(world: World) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(world.app) as c:
        yield c


@pytest.fixture
async def raw(world: World) -> AsyncIterator[httpx.AsyncClient]:
    """A client that does not check refusals (for 5xx, which the checked client rejects)."""
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=world.app),
                                 base_url="http://testserver") as c:
        yield c


# -- helpers -----------------------------------------------------------------------------


def assert_402(r: httpx.Response, reason: str = "payment_required") -> dict[str, Any]:
    """Every 402: problem+json with reason and offers, no-store, the exposed headers."""
    assert r.status_code == 402, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["cache-control"] == "no-store"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert exposed >= EXPOSED
    body: dict[str, Any] = r.json()
    VALIDATOR.validate(body)
    assert body["reason"] == reason
    assert isinstance(body["payment"]["offers"], list) and body["payment"]["offers"]
    return body


def assert_no_way_to_pay_here(r: httpx.Response) -> dict[str, Any]:
    """A plan or credits that nothing here sells: 403 with the offers and the checkout link
    (no 402 without a Payment challenge, draft-httpauth-payment §Usage of 402)."""
    assert r.status_code == 403, r.text
    assert "www-authenticate" not in r.headers and "payment-required" not in r.headers
    body: dict[str, Any] = r.json()
    VALIDATOR.validate(body)
    assert body["reason"] == "forbidden" and body["payment"]["offers"]
    return body


def payment_challenge(r: httpx.Response) -> Challenge:
    found = [ch for line in r.headers.get_list("www-authenticate")
             for ch in parse_www_authenticate(line) if ch.scheme == "Payment"]
    assert len(found) == 1, r.headers.get_list("www-authenticate")
    return found[0]


def b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def b64url(value: Any) -> str:
    raw = json.dumps(value).encode() if not isinstance(value, bytes) else value
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def credential_of(authorization: str) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    assert scheme == "Payment"
    decoded: dict[str, Any] = b64url_json(token)
    return decoded


async def pay(c: httpx.AsyncClient, world: World, path: str,
              headers: dict[str, str] | None = None) -> str:
    """Ask ``path`` for its 402 and pay its Payment challenge: the credential header value."""
    r = await c.get(path, headers=headers)
    assert_402(r)
    return world.receipts.pay(dict(payment_challenge(r).params))


def x402_required(r: httpx.Response) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(r.headers["payment-required"],
                                                          validate=True))
    return decoded


def x402_signature(requirement: dict[str, Any], nonce: str = "n-1",
                   **changes: Any) -> str:
    accepted = {**requirement, **changes}
    payload = {"nonce": nonce, "signature": demo_signature(requirement, nonce), "payer": "me"}
    proof = {"x402Version": 2, "payload": payload, "accepted": accepted,
             "resource": {"url": "http://testserver/quote"}}
    return base64.b64encode(json.dumps(proof).encode()).decode()


REQUIREMENT = {"scheme": "demo", "network": X402_NETWORK, "asset": X402_ASSET,
               "amount": "10000", "payTo": X402_PAY_TO, "maxTimeoutSeconds": 60, "extra": {}}


# -- configuration -----------------------------------------------------------------------


@pytest.mark.parametrize("amount", ["abc", "-1", "NaN", "Infinity", None])
def test_a_price_must_be_a_finite_amount(amount: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"Price\.amount"):
        Price(amount)


@pytest.mark.parametrize("currency", ["", "€", "US\nD"])
def test_a_price_needs_an_ascii_currency(currency: str) -> None:
    with pytest.raises(ConfigurationError, match=r"Price\.currency"):
        Price(Decimal(1), currency)


def test_a_price_keeps_decimals_exact() -> None:
    assert Price("0.10").amount == Decimal("0.10")  # type: ignore[arg-type]
    assert Price(0.1).amount == Decimal("0.1")  # type: ignore[arg-type]
    assert Price(Decimal("0.01"), "USD", "x").as_json() == {
        "amount": "0.01", "currency": "USD", "description": "x"}


def test_payment_configuration_mistakes_name_the_setting(world: World) -> None:
    with pytest.raises(ConfigurationError, match=r"Payment\.verifiers"):
        Payment(Price(Decimal(1)), verifiers=[])
    with pytest.raises(ConfigurationError, match=r"Payment\.price"):
        Payment(verifiers=[world.receipts])
    with pytest.raises(ConfigurationError, match=r"Payment\.settle"):
        Payment(Price(Decimal(1)), verifiers=[world.receipts],
                settle="later")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="EntitlementVerifier"):
        EntitlementVerifier(world.plans)
    with pytest.raises(ConfigurationError, match=r"ReceiptVerifier\.secret"):
        ReceiptVerifier(secret="short", nonces=world.nonces, realm="r")
    with pytest.raises(ConfigurationError, match=r"ReceiptVerifier\.method"):
        ReceiptVerifier(secret=SECRET, nonces=world.nonces, realm="r", method="Receipt")
    for realm in ("a|b", "caf\u00e9"):  # the binding's separator; not ASCII
        with pytest.raises(ConfigurationError, match=r"ReceiptVerifier\.realm"):
            ReceiptVerifier(secret=SECRET, nonces=world.nonces, realm=realm)
    with pytest.raises(ConfigurationError, match=r"FacilitatorClient\.url"):
        FacilitatorClient("ftp://x")


def test_the_verifiers_implement_the_protocol(world: World) -> None:
    for v in (world.receipts, world.x402["demo"],
              EntitlementVerifier(world.plans, plans=["pro"])):
        assert isinstance(v, PaymentVerifier)


# -- the order: 401, then 403, then 402 --------------------------------------------------


@pytest.mark.parametrize("path", ["/plan", "/credits"])
async def test_a_plan_route_asks_for_identity_first_without_prices(
        client: httpx.AsyncClient, path: str) -> None:
    r = await client.get(path)
    assert r.status_code == 401
    body = r.json()
    assert body["reason"] == "credentials_missing"
    assert "payment" not in body and "price" not in r.text
    assert "payment-required" not in r.headers
    schemes = {parse_www_authenticate(x)[0].scheme for x in r.headers.get_list("www-authenticate")}
    assert "Payment" not in schemes and "ApiKey" in schemes


@pytest.mark.parametrize("headers", [
    {"X-API-Key": "k-nobody"},
    {"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()},
    {"Authorization": "Basic %%%"},
])
async def test_a_bad_credential_on_an_anonymous_payable_route_is_401_never_402(
        client: httpx.AsyncClient, headers: dict[str, str]) -> None:
    r = await client.get("/quote", headers=headers)
    assert r.status_code == 401
    assert r.json()["reason"] in ("credentials_invalid", "credentials_malformed")
    assert "payment" not in r.json()
    assert "payment-required" not in r.headers


async def test_a_paid_route_that_the_policy_denies_is_403_even_with_a_valid_payment(
        client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/admin-paid")).status_code == 401  # anonymous: who first
    r = await client.get("/admin-paid", headers=ALICE)
    assert r.status_code == 403 and r.json()["reason"] == "forbidden"
    assert "payment" not in r.json()
    # alice holds a valid proof (paid for bob's challenge): still 403, and nothing consumed
    credential = await pay(client, world, "/admin-paid", BOB)
    r = await client.get("/admin-paid", headers={**ALICE, "Payment-Authorization": credential})
    assert r.status_code == 403 and r.json()["reason"] == "forbidden"
    r = await client.get("/admin-paid", headers={**BOB, "Payment-Authorization": credential})
    assert r.status_code == 200 and "payment-receipt" in r.headers


def bearer(world: World, scope: str) -> dict[str, str]:
    now = int(time.time())  # BearerAuthenticator reads its own clock, not the guard's
    token = jwt.encode({"sub": "erin", "iss": "https://issuer.test", "aud": "shop",
                        "iat": now, "exp": now + 300, "scope": scope}, JWT_SECRET)
    return {"Authorization": f"Bearer {token}"}


async def test_a_missing_scope_is_403_before_any_price_even_when_paid(
        client: httpx.AsyncClient, world: World) -> None:
    """``Payment & HasScopes`` written in that order: the scope is still checked first."""
    reader, other = bearer(world, "reports:read"), bearer(world, "notes:read")
    credential = await pay(client, world, "/reports-paid", reader)
    r = await client.get("/reports-paid", headers={**other, "Payment-Authorization": credential})
    assert r.status_code == 403 and r.json()["reason"] == "insufficient_scope"
    assert "payment" not in r.json() and "payment-required" not in r.headers
    challenge = parse_www_authenticate(r.headers["www-authenticate"])[0]
    assert challenge.scheme == "Bearer" and challenge.params["scope"] == "reports:read"
    # the Bearer token and the payment travel together; the proof was not used by the 403
    r = await client.get("/reports-paid", headers={**reader, "Payment-Authorization": credential})
    assert r.status_code == 200 and r.json()["user"] == "erin"
    assert "payment-receipt" in r.headers


# -- plans and credits -------------------------------------------------------------------


async def test_plans_none_active_and_expired(client: httpx.AsyncClient) -> None:
    body = assert_no_way_to_pay_here(await client.get("/plan", headers=ALICE))
    assert "active plan" in body["detail"] and "'pro'" in body["detail"]
    assert body["payment"]["offers"] == [{"scheme": "plan", "plans": ["pro"],
                                          "checkout": "/checkout"}]
    r = await client.get("/plan", headers=BOB)
    assert r.status_code == 200 and r.json()["user"] == "bob"
    body = assert_no_way_to_pay_here(await client.get("/plan", headers={"X-API-Key": "k-carol"}))
    expired = "2027-01-14T08:00:00Z"  # the test clock minus one day
    assert "expired" in body["detail"] and expired in body["detail"]
    assert body["checkout"] == body["payment"]["checkout"] == "/checkout"
    assert body["payment"]["expired_at"] == expired


async def test_a_plan_lapses_when_the_clock_passes_its_expiry(
        client: httpx.AsyncClient, world: World) -> None:
    assert (await client.get("/plan", headers=BOB)).status_code == 200
    world.clock.now += 31 * DAY
    body = assert_no_way_to_pay_here(await client.get("/plan", headers=BOB))
    assert "expired" in body["detail"]


async def test_credits_are_used_atomically(client: httpx.AsyncClient, world: World) -> None:
    dave = {"X-API-Key": "k-dave"}
    results = await asyncio.gather(*(client.get("/credits", headers=dave) for _ in range(10)))
    assert sorted(r.status_code for r in results) == [200] * 3 + [403] * 7
    for r in results:
        if r.status_code == 403:
            assert_no_way_to_pay_here(r)
    left = await world.plans.get("dave")
    assert left is not None and left.credits == 0
    body = assert_no_way_to_pay_here(await client.get("/credits", headers=ALICE))
    assert body["payment"]["offers"][0]["credits"] == 1
    assert body["detail"] == "This needs 1 credit, and 0 are left."


# -- the IETF Payment scheme ---------------------------------------------------------------


async def test_the_402_offers_a_bound_payment_challenge(client: httpx.AsyncClient) -> None:
    r = await client.get("/quote")
    body = assert_402(r)
    ch = payment_challenge(r)
    for name in ("id", "realm", "method", "intent", "request", "expires", "opaque"):
        assert ch.params[name], name
    assert ch.params["realm"] == "test"
    assert (ch.params["method"], ch.params["intent"]) == ("receipt", "charge")
    assert ch.params["expires"] == "2027-01-15T08:01:00Z"  # now + ttl, RFC 3339
    assert "header" not in ch.params  # anonymous: the credential goes in Authorization
    assert b64url_json(ch.params["request"]) == {"amount": "0.01", "currency": "USD",
                                                 "recipient": "shop"}
    offer = body["payment"]["offers"][0]
    assert offer["scheme"] == "Payment" and offer["id"] == ch.params["id"]
    assert offer["credential_header"] == "Authorization"
    assert body["payment"]["price"] == {"amount": "0.01", "currency": "USD",
                                        "description": "One quote"}
    # every 402 has a fresh challenge
    assert payment_challenge(await client.get("/quote")).params["id"] != ch.params["id"]


async def test_a_receipt_pays_once(client: httpx.AsyncClient, world: World) -> None:
    credential = await pay(client, world, "/quote")
    r = await client.get("/quote", headers={"Authorization": credential})
    assert r.status_code == 200 and r.json() == {"ok": True, "user": None}
    receipt = b64url_json(r.headers["payment-receipt"])
    assert receipt["status"] == "success" and receipt["method"] == "receipt"
    assert receipt["reference"] == credential_of(credential)["challenge"]["id"]
    assert r.headers["cache-control"] == "private"
    again = await client.get("/quote", headers={"Authorization": credential})
    body = assert_402(again, "payment_invalid")
    assert "already used" in body["detail"]
    assert payment_challenge(again).params["id"] != receipt["reference"]  # a fresh one


async def test_concurrent_uses_of_one_receipt_pass_once(
        client: httpx.AsyncClient, world: World) -> None:
    credential = await pay(client, world, "/quote")
    results = await asyncio.gather(*(client.get("/quote", headers={"Authorization": credential})
                                     for _ in range(20)))
    assert sorted(r.status_code for r in results) == [200] + [402] * 19
    for r in results:
        if r.status_code == 402:
            assert_402(r, "payment_invalid")


@pytest.mark.parametrize("param", ["id", "realm", "method", "intent", "request", "expires",
                                   "opaque"])
async def test_altering_any_bound_parameter_is_payment_invalid(
        client: httpx.AsyncClient, world: World, param: str) -> None:
    credential = credential_of(await pay(client, world, "/quote"))
    value = credential["challenge"][param]
    if param == "request":
        altered = b64url({"amount": "0.001", "currency": "USD", "recipient": "shop"})
    elif param == "expires":
        altered = "2099-01-01T00:00:00Z"
    else:
        altered = value[:-1] + ("A" if value[-1] != "A" else "B")
    credential["challenge"][param] = altered
    r = await client.get("/quote", headers={"Authorization": "Payment " + b64url(credential)})
    body = assert_402(r, "payment_invalid")
    assert "not issued here or was altered" in body["detail"]
    assert payment_challenge(r).params["id"]  # a fresh challenge to pay


async def test_an_expired_challenge_is_payment_invalid(
        client: httpx.AsyncClient, world: World) -> None:
    credential = await pay(client, world, "/quote")
    world.clock.now += 61
    r = await client.get("/quote", headers={"Authorization": credential})
    body = assert_402(r, "payment_invalid")
    assert "expired at 2027-01-15T08:01:00Z" in body["detail"]
    fresh = payment_challenge(r)
    assert fresh.params["expires"] == "2027-01-15T08:02:01Z"


async def test_a_payment_for_another_amount_is_payment_invalid(
        client: httpx.AsyncClient, world: World) -> None:
    r = await client.get("/dynamic", params={"size": "2"})
    assert b64url_json(payment_challenge(r).params["request"])["amount"] == "0.02"
    assert assert_402(r)["payment"]["price"]["amount"] == "0.02"
    cheap = await pay(client, world, "/dynamic?size=1")
    r = await client.get("/dynamic", params={"size": "3"}, headers={"Authorization": cheap})
    body = assert_402(r, "payment_invalid")
    assert "0.01 USD" in body["detail"] and "0.03 USD" in body["detail"]
    r = await client.get("/dynamic", params={"size": "1"}, headers={"Authorization": cheap})
    assert r.status_code == 200  # the rejected attempt did not use it up


async def test_the_credential_travels_beside_an_identity(
        client: httpx.AsyncClient, world: World) -> None:
    basic = {"Authorization": "Basic " + base64.b64encode(b"alice:wonderland").decode()}
    r = await client.get("/quote", headers=basic)
    assert_402(r)
    ch = payment_challenge(r)
    assert ch.params["header"] == "Payment-Authorization"
    credential = world.receipts.pay(dict(ch.params))
    r = await client.get("/quote", headers={**basic, "Payment-Authorization": credential})
    assert r.status_code == 200 and r.json()["user"] == "alice"
    assert "payment-receipt" in r.headers


async def test_a_credential_counts_only_in_its_selected_field(
        client: httpx.AsyncClient, world: World) -> None:
    # draft-httpauth-payment §Credentials: the challenge's header parameter selects the
    # field, and is bound into its id; the credential counts in that field only.
    credential = await pay(client, world, "/quote", ALICE)  # says Payment-Authorization
    r = await client.get("/quote", headers={"Authorization": credential})
    assert "selected the Payment-Authorization field" in assert_402(r, "payment_invalid")[
        "detail"]
    assert (await client.get("/quote", headers={**ALICE, "Payment-Authorization": credential})
            ).status_code == 200


async def test_two_payment_credentials_are_payment_invalid(
        client: httpx.AsyncClient, world: World) -> None:
    one = await pay(client, world, "/quote")
    two = await pay(client, world, "/quote")
    r = await client.get("/quote", headers={"Authorization": one,
                                            "Payment-Authorization": two})
    body = assert_402(r, "payment_invalid")
    assert "one Payment credential" in body["detail"]
    # neither was used up
    assert (await client.get("/quote", headers={"Authorization": one})).status_code == 200


def _deep() -> str:
    return b64url(b"[" * 5000)


@pytest.mark.parametrize("token", [
    "!!!not-base64!!!",
    b64url(b"hello, not json"),
    b64url(b"\xff\xfe\xfd"),
    b64url([1, 2, 3]),
    b64url({"challenge": "x", "payload": {}}),
    b64url({"challenge": {"id": 1}, "payload": {}}),
    b64url({"payload": {}}),
    _deep(),
    "A" * 20_000,
    "",
])
async def test_malformed_payment_credentials_are_402_never_500(
        client: httpx.AsyncClient, token: str) -> None:
    r = await client.get("/quote", headers={"Payment-Authorization": f"Payment {token}"})
    body = assert_402(r, "payment_invalid")
    assert token[:40] not in body["detail"] or not token
    assert payment_challenge(r).params["id"]


async def test_a_huge_payment_credential_is_402_with_a_fresh_challenge(
        client: httpx.AsyncClient) -> None:
    """Over the guard's size limit, a Payment credential is still its verifier's to refuse:
    402 with a fresh challenge (draft §Status Codes), not a 401 for the other schemes."""
    for size in (20_000, 8000):
        r = await client.get("/quote", headers={"Authorization": "Payment " + "A" * size})
        assert_402(r, "payment_invalid")
        assert payment_challenge(r).params["id"]
    r = await client.get("/quote", headers={"Authorization": "Basic " + "A" * 20_000})
    assert r.status_code == 401 and r.json()["reason"] == "credentials_malformed"


async def test_a_forged_receipt_is_payment_invalid(
        client: httpx.AsyncClient, world: World) -> None:
    credential = credential_of(await pay(client, world, "/quote"))
    credential["payload"]["receipt"] = "A" * 43
    r = await client.get("/quote", headers={"Authorization": "Payment " + b64url(credential)})
    assert assert_402(r, "payment_invalid")["detail"] == "The payment proof was not accepted."


# -- settlement ----------------------------------------------------------------------------


async def test_on_success_settles_nothing_when_the_app_fails(
        raw: httpx.AsyncClient, client: httpx.AsyncClient, world: World) -> None:
    credential = await pay(client, world, "/on-success-fails")
    r = await raw.get("/on-success-fails", headers={"Authorization": credential})
    assert r.status_code == 500 and r.text == "broken"
    assert "payment-receipt" not in r.headers
    # the receipt was held while the app ran, then given back: the retry is not a replay
    r = await raw.get("/on-success-fails", headers={"Authorization": credential})
    assert r.status_code == 500 and r.text == "broken"
    # and it pays for this route only
    other = await client.get("/on-success", headers={"Authorization": credential})
    assert_402(other, "payment_invalid")


async def test_settle_before_charges_first_but_sends_no_receipt_on_a_failure(
        raw: httpx.AsyncClient, client: httpx.AsyncClient, world: World) -> None:
    """draft-httpauth-payment §Receipt Status Semantics: no Payment-Receipt on an error
    response. The payment was taken before the app ran: the proof is used up."""
    credential = await pay(client, world, "/before-fails")
    r = await raw.get("/before-fails", headers={"Authorization": credential})
    assert r.status_code == 500
    assert "payment-receipt" not in r.headers
    assert_402(await client.get("/before-fails", headers={"Authorization": credential}),
               "payment_invalid")


async def test_an_answer_to_a_payment_authorization_is_private(
        client: httpx.AsyncClient) -> None:
    """draft §Caching: a response to a request with a credential outside Authorization is
    private, even when something else (here a plan) paid for it."""
    r = await client.get("/plan", headers={**BOB, "Payment-Authorization": "Payment e30"})
    assert r.status_code == 200 and r.headers["cache-control"] == "private"
    assert "payment-receipt" not in r.headers


async def test_a_streaming_response_passes_with_its_receipt(
        client: httpx.AsyncClient, world: World) -> None:
    credential = await pay(client, world, "/stream")
    async with client.stream("GET", "/stream", headers={"Authorization": credential}) as r:
        assert r.status_code == 200
        assert "payment-receipt" in r.headers
        body = b"".join([chunk async for chunk in r.aiter_bytes()])
    assert body == b"chunk 0\nchunk 1\nchunk 2\n"


async def test_head_is_answered_like_get(client: httpx.AsyncClient, world: World) -> None:
    get, head = await client.get("/quote"), await client.head("/quote")
    assert head.status_code == get.status_code == 402
    assert head.content == b""
    ignore = {"content-length", "x-request-id"}
    assert {k for k in head.headers if k not in ignore} == {
        k for k in get.headers if k not in ignore}
    assert head.headers["payment-required"] == get.headers["payment-required"]
    assert payment_challenge(head).params["realm"] == "test"
    credential = await pay(client, world, "/quote")
    r = await client.head("/quote", headers={"Authorization": credential})
    assert r.status_code == 200 and "payment-receipt" in r.headers


# -- x402 ------------------------------------------------------------------------------------


async def test_the_402_carries_an_x402_payment_required(client: httpx.AsyncClient) -> None:
    r = await client.get("/quote")
    body = assert_402(r)
    assert len(r.headers["payment-required"]) % 4 == 0  # standard base64, padded
    required = x402_required(r)
    assert required["x402Version"] == 2
    assert required["resource"] == {"url": "http://testserver/quote",
                                    "description": "One quote"}
    assert required["accepts"] == [REQUIREMENT]
    assert {"scheme": "x402", "x402Version": 2, "accepts": [REQUIREMENT]} in (
        body["payment"]["offers"])


async def test_an_x402_payment_passes_once(client: httpx.AsyncClient) -> None:
    signature = x402_signature(REQUIREMENT, "nonce-1")
    r = await client.get("/quote", headers={"PAYMENT-SIGNATURE": signature})
    assert r.status_code == 200
    settled = json.loads(base64.b64decode(r.headers["payment-response"], validate=True))
    assert settled["success"] is True and settled["network"] == X402_NETWORK
    assert settled["transaction"].startswith("demo-tx-") and settled["payer"] == "me"
    again = await client.get("/quote", headers={"PAYMENT-SIGNATURE": signature})
    body = assert_402(again, "payment_invalid")
    assert "nonce_already_used" in body["detail"]
    assert "payment-required" in again.headers


@pytest.mark.parametrize("value", [
    "%%%",
    base64.b64encode(b"not json").decode(),
    base64.b64encode(b"[1]").decode(),
    base64.b64encode(json.dumps({"x402Version": 2, "payload": {}}).encode()).decode(),
    base64.b64encode(json.dumps({"x402Version": 1, "payload": {}}).encode()).decode(),
    base64.b64encode(json.dumps({"x402Version": "2", "payload": {}, "accepted": {}}).encode()
                     ).decode(),
    base64.b64encode(b"[" * 5000).decode(),
    "A" * 20_000,
])
async def test_a_malformed_payment_signature_is_400(client: httpx.AsyncClient,
                                                    value: str) -> None:
    """x402 v2 HTTP transport: a malformed payment payload is 400, never a 500."""
    r = await client.get("/quote", headers={"PAYMENT-SIGNATURE": value})
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["reason"] == "invalid_request" and "could not be parsed" in body["detail"]
    assert "www-authenticate" not in r.headers


@pytest.mark.parametrize(("key", "value"), [("amount", "1"), ("payTo", "thief"),
                                            ("network", "x402:other"), ("asset", "x")])
async def test_a_mismatched_accepted_requirement_is_payment_invalid(
        client: httpx.AsyncClient, key: str, value: str) -> None:
    signature = x402_signature(REQUIREMENT, **{key: value})
    body = assert_402(await client.get("/quote", headers={"PAYMENT-SIGNATURE": signature}),
                      "payment_invalid")
    assert f"({key})" in body["detail"]


async def test_a_declined_x402_payment_is_payment_invalid(client: httpx.AsyncClient) -> None:
    proof = json.loads(base64.b64decode(x402_signature(REQUIREMENT)))
    proof["payload"]["signature"] = "0" * 64
    signature = base64.b64encode(json.dumps(proof).encode()).decode()
    body = assert_402(await client.get("/quote", headers={"PAYMENT-SIGNATURE": signature}),
                      "payment_invalid")
    assert "declined (invalid_signature)" in body["detail"]


async def test_a_facilitator_that_is_down_is_503_with_retry_after(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/x402/down", headers={"PAYMENT-SIGNATURE": x402_signature(REQUIREMENT)})
    assert r.status_code == 503
    assert r.json()["reason"] == "auth_unavailable"
    assert r.headers["retry-after"] == "7"
    assert "payment-required" not in r.headers
    # without a proof there is nothing to verify: the 402 is made without the facilitator
    assert_402(await client.get("/x402/down"))


@pytest.mark.parametrize("path", ["/x402/garbage", "/x402/no-isvalid"])
async def test_a_facilitator_answering_garbage_is_502(raw: httpx.AsyncClient,
                                                      path: str) -> None:
    r = await raw.get(path, headers={"PAYMENT-SIGNATURE": x402_signature(REQUIREMENT)})
    assert r.status_code == 502
    assert r.headers["content-type"] == "application/problem+json"
    assert r.headers["cache-control"] == "no-store"
    body = r.json()
    VALIDATOR.validate(body)
    assert body["reason"] == "payment_provider_error" and "payment" not in body
    assert "not a facilitator" not in r.text


async def test_a_facilitator_that_dies_between_verify_and_settle_is_503() -> None:
    """Verified, then /settle cannot be reached: 503 before the app runs, nothing served."""
    served: list[str] = []

    async def endpoint(request: Request) -> JSONResponse:
        served.append("yes")
        return JSONResponse({})

    demo = demo_facilitator()

    async def verify_only(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == "/settle":
            raise httpx.ConnectError("refused")
        await demo(scope, receive, send)

    verifier = X402Verifier(
        facilitator=FacilitatorClient("http://f.test", retry_after=3,
                                      transport=httpx.ASGITransport(app=verify_only)),
        network=X402_NETWORK, asset=X402_ASSET, pay_to=X402_PAY_TO, scheme="demo")
    route = Route("/x", protect(Payment(Price(Decimal("0.01")), verifiers=[verifier]))(endpoint))
    keys = StaticAPIKeys({hash_api_key("k"): Identity(subject="a", scheme="ApiKey")})
    app = AuthGuardMiddleware(Starlette(routes=[route]),
                              AuthGuard(authenticators=[APIKeyAuthenticator(store=keys)]))
    async with asgi_client(app) as c:
        r = await c.get("/x", headers={"PAYMENT-SIGNATURE": x402_signature(REQUIREMENT)})
    assert r.status_code == 503 and r.headers["retry-after"] == "3"
    assert served == []


@pytest.mark.parametrize("path", ["/x402/settle-garbage"])
async def test_a_settlement_answered_with_garbage_is_502_and_nothing_is_served(
        raw: httpx.AsyncClient, path: str) -> None:
    r = await raw.get(path, headers={"PAYMENT-SIGNATURE": x402_signature(REQUIREMENT)})
    assert r.status_code == 502 and r.json()["reason"] == "payment_provider_error"
    assert "ok" not in r.json()


async def test_a_declined_settlement_is_payment_invalid(client: httpx.AsyncClient) -> None:
    r = await client.get("/x402/settle-declined",
                         headers={"PAYMENT-SIGNATURE": x402_signature(REQUIREMENT)})
    body = assert_402(r, "payment_invalid")
    assert "could not be settled (insufficient_funds)" in body["detail"]
    assert x402_required(r)["accepts"] == [REQUIREMENT]


async def test_x_payment_is_read_only_with_accept_v1(client: httpx.AsyncClient) -> None:
    signature = x402_signature(REQUIREMENT, "v1-nonce")
    assert_402(await client.get("/quote", headers={"X-PAYMENT": signature}))
    r = await client.get("/x402/v1", headers={"X-PAYMENT": signature})
    assert r.status_code == 200 and "payment-response" in r.headers


async def test_receipt_keys_rotate(client: httpx.AsyncClient, world: World) -> None:
    """Challenges paid under the old key still pass once the new key signs."""
    credential = await pay(client, world, "/quote")
    rotated = ReceiptVerifier(secret=[SECRET, "a-new-payment-secret-0123456789abcdef"],
                              nonces=world.nonces, realm="test", recipient="shop", ttl=60)
    app = AuthGuardMiddleware(
        Starlette(routes=[Route("/quote", protect(Payment(Price(Decimal("0.01")),
                                                          verifiers=[rotated]))(fresh_ok()))]),
        AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))],
                  clock=world.clock))
    async with asgi_client(app) as c:
        r = await c.get("/quote", headers={"Authorization": credential})
        assert r.status_code == 200
        new = rotated.pay(dict(payment_challenge(await c.get("/quote")).params))
    assert_402(await client.get("/quote", headers={"Authorization": new}), "payment_invalid")


# -- the client side, in process --------------------------------------------------------------


async def test_apay_and_retry_replays_the_body(client: httpx.AsyncClient, world: World) -> None:
    seen: list[PaymentRequired] = []

    def pay(error: PaymentRequired) -> dict[str, str]:
        seen.append(error)
        ch = next(c for c in error.problem.challenges if c.scheme == "Payment")
        return {"Authorization": world.receipts.pay(dict(ch.params))}

    request = client.build_request("POST", "/echo", json={"rows": [1, 2]})
    r = await apay_and_retry(client, request, pay)
    assert r.status_code == 200 and r.json() == {"got": {"rows": [1, 2]}}
    assert len(seen) == 1 and seen[0].status == 402 and seen[0].payment is not None


@pytest.mark.parametrize(("answer", "error"), [({}, ValueError), ({"X": 1}, TypeError),
                                               ("Payment x", TypeError)])
async def test_apay_and_retry_refuses_a_callback_that_returns_no_headers(
        client: httpx.AsyncClient, answer: Any, error: type[Exception]) -> None:
    with pytest.raises(error, match="callback"):
        await apay_and_retry(client, client.build_request("GET", "/quote"),
                             lambda e: answer)


# -- a verifier of your own ---------------------------------------------------------------------


class Coupons:
    """A verifier with no settle(): a coupon code in ``X-Coupon`` pays, and stays valid."""

    name = "coupon"
    needs_identity = False

    def offer(self, ctx: PaymentContext) -> Offer:
        return Offer(body={"scheme": "coupon", "header": "X-Coupon"})

    def extract(self, ctx: PaymentContext) -> str | None:
        value = ctx.conn.headers.get("x-coupon")
        if value is not None and not value.isalnum():
            raise PaymentRejected("A coupon code is letters and digits.")
        return value

    async def verify(self, credential: str, ctx: PaymentContext) -> str:
        if credential != "FREE2027":
            raise PaymentRejected("This coupon is not valid.")
        return credential


async def test_a_verifier_of_your_own_needs_no_settle(world: World) -> None:
    route = Route("/c", protect(Payment(Price(Decimal(1)), verifiers=[Coupons(),
                                                                      world.receipts]))(fresh_ok()))
    app = AuthGuardMiddleware(Starlette(routes=[route]), AuthGuard(
        authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))]))
    async with asgi_client(app) as c:
        body = assert_402(await c.get("/c"))
        assert [o["scheme"] for o in body["payment"]["offers"]] == ["coupon", "Payment"]
        assert (await c.get("/c", headers={"X-Coupon": "FREE2027"})).status_code == 200
        assert (await c.get("/c", headers={"X-Coupon": "FREE2027"})).status_code == 200
        body = assert_402(await c.get("/c", headers={"X-Coupon": "NOPE"}), "payment_invalid")
        assert body["detail"] == "This coupon is not valid."
        assert_402(await c.get("/c", headers={"X-Coupon": "no pe!"}), "payment_invalid")


def test_a_verifier_that_is_not_one_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match=r"Payment\.verifiers: object is not a"):
        Payment(Price(Decimal(1)), verifiers=[object()])  # type: ignore[list-item]
