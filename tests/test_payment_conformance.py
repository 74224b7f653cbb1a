"""The ``Payment`` scheme's MUSTs (draft-httpauth-payment-01) and x402 v2's transport rules.

Each test names the clause it holds authguard to. A 402 here is always checked for a
``Payment`` challenge (§"Usage of 402": no 402 without one) unless the route offers x402
only, whose transport answers 402 with ``PAYMENT-REQUIRED``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import rfc8785
from demo_payments import X402_ASSET, X402_NETWORK, X402_PAY_TO, demo_facilitator, demo_signature
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    ConfigurationError,
    Identity,
    PBKDF2Hasher,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.challenges import Challenge, parse_www_authenticate
from authguard.client import PaymentRequired, apay_and_retry
from authguard.payments import (
    EntitlementVerifier,
    MemoryEntitlementStore,
    Payment,
    PaymentContext,
    Price,
    ReceiptVerifier,
)
from authguard.payments.x402 import FacilitatorClient, X402Verifier
from authguard.stores import MemoryNonceStore
from helpers import asgi_client

SECRET = "conformance-payment-secret-0123456789abcdef"
LATIN1 = "Caf\u00e9 cr\u00e8me, 2 \u00d7 0.01 \u00a4"  # every character below U+0100
WIDE = "Kaffee \u2013 5 \u20ac \u2013 \u30b3\u30fc\u30d2\u30fc \U0001f642"  # beyond Latin-1
API_KEY = {"X-API-Key": "k-alice"}
PA = "Payment-Authorization"


def b64url_json(text: str) -> Any:
    return json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def b64url(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def correlation(ctx: PaymentContext) -> dict[str, Any]:
    """Correlation data with values that are not strings (JCS writes 1.0 as 1)."""
    return {"attempt": 1.0, "ratio": 0.5, "flags": [True, None], "order": "o-1"}


class App:
    """One paid app: a receipt verifier, a plan, x402, and the routes that use them."""

    def __init__(self) -> None:
        self.nonces = MemoryNonceStore()
        self.receipts = ReceiptVerifier(secret=SECRET, nonces=self.nonces, realm="test",
                                        recipient="shop", remember=100)
        self.x402 = X402Verifier(
            facilitator=FacilitatorClient("http://facilitator.test", transport=httpx.ASGITransport(
                app=demo_facilitator())),
            network=X402_NETWORK, asset=X402_ASSET, pay_to=X402_PAY_TO, scheme="demo")
        plans = MemoryEntitlementStore()
        plan = EntitlementVerifier(plans, plans=["pro"], checkout="/checkout")

        async def ok(request: Request) -> Response:
            user = request.user.display_name if request.user.is_authenticated else None
            return JSONResponse({"ok": True, "user": user})

        def route(path: str, requirement: Any) -> Route:
            async def endpoint(request: Request) -> Response:
                return await ok(request)
            return Route(path, protect(requirement)(endpoint))

        def paid(description: str | None, *verifiers: Any) -> Payment:
            return Payment(Price(Decimal("0.01"), "USD", description), verifiers=list(verifiers))

        routes = [
            route("/quote", paid("One quote", self.receipts)),
            route("/latin1", paid(LATIN1, self.receipts)),
            route("/wide", paid(WIDE, self.receipts)),
            route("/x402", paid(None, self.x402)),
            route("/plan", Authenticated() & Payment(verifiers=[plan])),
        ]
        keys = StaticAPIKeys({hash_api_key("k-alice"): Identity(subject="alice",
                                                                 scheme="ApiKey")})
        passwords = StaticPasswords.from_plaintext({"alice": ("wonderland", ["user"])},
                                                   hasher=PBKDF2Hasher(iterations=1000))
        guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=keys, realm="t"),
                                          BasicAuthenticator(verifier=passwords, realm="t")])
        self.asgi = AuthGuardMiddleware(Starlette(routes=routes), guard)


@pytest.fixture
def world() -> App:
    return App()


@pytest.fixture
async def client(world: App) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(world.asgi) as c:
        yield c


def payment_challenge(r: httpx.Response) -> Challenge:
    """The one ``Payment`` challenge of a 402 (authguard's own RFC 9110 parser)."""
    found = [ch for line in r.headers.get_list("www-authenticate")
             for ch in parse_www_authenticate(line) if ch.scheme == "Payment"]
    assert len(found) == 1, r.headers.get_list("www-authenticate")
    return found[0]


def assert_402(r: httpx.Response, reason: str = "payment_required") -> Challenge:
    """A 402 with its reason and a fresh Payment challenge to act on."""
    assert r.status_code == 402, r.text
    assert r.json()["reason"] == reason, r.json()
    return payment_challenge(r)


async def credential(c: httpx.AsyncClient, world: App, path: str,
                     headers: dict[str, str] | None = None) -> tuple[Challenge, str]:
    r = await c.get(path, headers=headers)
    ch = assert_402(r)
    return ch, world.receipts.pay(dict(ch.params))


def reencode(authorization: str, **changes: Any) -> str:
    data = b64url_json(authorization.split(" ", 1)[1])
    for key, value in changes.items():
        if value is None:
            data["challenge"].pop(key, None)
        else:
            data["challenge"][key] = value
    return "Payment " + b64url(data)


# -- 1. a description outside ASCII --------------------------------------------------------


@pytest.mark.parametrize(("path", "text"), [("/latin1", LATIN1), ("/wide", WIDE)])
async def test_a_non_ascii_description_reaches_the_client_and_its_echo_pays(
        client: httpx.AsyncClient, world: App, path: str, text: str) -> None:
    """§Internationalization: string values are UTF-8. The description goes out as UTF-8
    octets (obs-text in the quoted-string), httpx reads it back exactly, and the echo of it
    is accepted: the description is not bound, and never used to verify."""
    r = await client.get(path)
    ch = assert_402(r)
    assert ch.params["description"] == text
    raw = dict(r.headers.raw)[b"www-authenticate"]
    assert text.encode("utf-8") in raw
    assert r.json()["payment"]["price"]["description"] == text
    paid = await client.get(path, headers={"Authorization": world.receipts.pay(dict(ch.params))})
    assert paid.status_code == 200, paid.text


async def test_an_echo_decoded_as_latin1_pays_too(client: httpx.AsyncClient, world: App) -> None:
    """A client that reads the octets as Latin-1 (browsers do) echoes other text: still paid."""
    r = await client.get("/wide")
    raw = dict(r.headers.raw)[b"www-authenticate"].decode("latin-1")
    (ch,) = parse_www_authenticate(raw)
    assert ch.params["description"] != WIDE
    paid = await client.get("/wide", headers={"Authorization": world.receipts.pay(
        dict(ch.params))})
    assert paid.status_code == 200, paid.text


async def test_authguards_own_client_pays_a_non_ascii_challenge(
        client: httpx.AsyncClient, world: App) -> None:
    async def pay(error: PaymentRequired) -> dict[str, str]:
        (ch,) = [c for c in error.problem.challenges if c.scheme == "Payment"]
        assert ch.params["description"] == LATIN1
        return {"Authorization": world.receipts.pay(dict(ch.params))}

    r = await apay_and_retry(client, client.build_request("GET", "/latin1"), pay)
    assert r.status_code == 200, r.text


def test_a_description_with_control_characters_is_refused_at_start_up() -> None:
    with pytest.raises(ConfigurationError, match=r"Price\.description"):
        Price(Decimal(1), "USD", "two\r\nlines")


# -- 2. header is bound ------------------------------------------------------------------------


async def test_header_is_bound_into_the_challenge_id(
        client: httpx.AsyncClient, world: App) -> None:
    """§Challenge Binding: servers MUST bind ``header`` when present."""
    ch, paid = await credential(client, world, "/quote", API_KEY)
    assert ch.params["header"] == PA
    dropped = reencode(paid, header=None)  # as if the challenge had selected Authorization
    r = await client.get("/quote", headers={**API_KEY, "Authorization": dropped})
    assert_402(r, "payment_invalid")
    assert "not issued here or was altered" in r.json()["detail"]
    added = reencode((await credential(client, world, "/quote"))[1], header=PA)
    r = await client.get("/quote", headers={PA: added})
    assert "altered" in r.json()["detail"] and r.status_code == 402
    # the untouched credential still pays, in its own field
    r = await client.get("/quote", headers={**API_KEY, PA: paid})
    assert r.status_code == 200, r.text


async def test_a_slot_cannot_be_shifted_across_the_separator(
        client: httpx.AsyncClient, world: App) -> None:
    """The binding joins slots with ``|``: an echo that drops ``header`` and moves it into
    ``opaque`` behind a ``|`` would join to the same string, so ``|`` is never read."""
    ch, paid = await credential(client, world, "/quote", API_KEY)
    shifted = reencode(paid, header=None, opaque=ch.params["opaque"] + "|" + PA)
    r = await client.get("/quote", headers={**API_KEY, "Authorization": shifted})
    assert_402(r, "payment_invalid")
    assert "could not be parsed" in r.json()["detail"]
    assert r.json()["payment"]["problem_type"].endswith("/malformed-credential")


# -- 3. the field the challenge selected ---------------------------------------------------------


async def test_a_credential_counts_only_in_the_field_its_challenge_selected(
        client: httpx.AsyncClient, world: App) -> None:
    """§Credentials: a credential received in any other field MUST NOT satisfy it."""
    _, plain = await credential(client, world, "/quote")  # no header: Authorization
    r = await client.get("/quote", headers={PA: plain})
    assert_402(r, "payment_invalid")
    assert "Authorization" in r.json()["detail"]
    _, selected = await credential(client, world, "/quote", API_KEY)  # Payment-Authorization
    r = await client.get("/quote", headers={**API_KEY, "Authorization": selected})
    assert_402(r, "payment_invalid")
    assert PA in r.json()["detail"]
    # neither was used up by the refusals
    assert (await client.get("/quote", headers={"Authorization": plain})).status_code == 200
    assert (await client.get("/quote", headers={**API_KEY, PA: selected})).status_code == 200


# -- 4. no 402 without a Payment challenge ------------------------------------------------


async def test_a_plan_that_cannot_be_bought_here_is_403_not_a_bare_402(
        client: httpx.AsyncClient) -> None:
    """§Usage of 402: MUST NOT return 402 without a Payment challenge. A plan with no way
    to pay over HTTP is 403 with the checkout link (the client cannot act on a 402)."""
    r = await client.get("/plan", headers=API_KEY)
    assert r.status_code == 403, r.text
    body = r.json()
    assert body["reason"] == "forbidden"
    assert body["checkout"] == "/checkout" and body["payment"]["offers"][0]["scheme"] == "plan"
    assert "www-authenticate" not in r.headers


# -- 5. RFC 8785 --------------------------------------------------------------------------------


@pytest.fixture
def correlated() -> tuple[ReceiptVerifier, AuthGuardMiddleware]:
    """A verifier whose ``opaque`` carries correlation data that are not all strings."""
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="test",
                               opaque=correlation)

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    paid = Payment(Price(Decimal("0.01"), "USD"), verifiers=[receipts])
    app = Starlette(routes=[Route("/correlated", protect(paid)(ok))])
    return receipts, AuthGuardMiddleware(app, AuthGuard(authenticators=[
        APIKeyAuthenticator(store=StaticAPIKeys({}))]))


async def test_request_and_opaque_are_rfc8785_canonical(
        correlated: tuple[ReceiptVerifier, AuthGuardMiddleware]) -> None:
    """§Required Parameters: ``request`` and ``opaque`` are JCS (RFC 8785) JSON."""
    async with asgi_client(correlated[1]) as client:
        ch = payment_challenge(await client.get("/correlated"))
    for name in ("request", "opaque"):
        raw = base64.urlsafe_b64decode(ch.params[name] + "=" * (-len(ch.params[name]) % 4))
        assert raw == rfc8785.dumps(json.loads(raw)), name
    assert b64url_json(ch.params["opaque"])["attempt"] == 1  # JCS: 1.0 is written 1


async def test_an_opaque_reencoded_canonically_by_the_client_still_pays(
        correlated: tuple[ReceiptVerifier, AuthGuardMiddleware]) -> None:
    """pympp parses ``opaque`` and writes it back with RFC 8785: values that are not
    strings must come back byte for byte, or the id does not match."""
    from mpp import Challenge as MppChallenge
    from mpp import Credential

    receipts, app = correlated
    async with asgi_client(app) as client:
        r = await client.get("/correlated")
        echo = MppChallenge.from_www_authenticate(r.headers["www-authenticate"]).to_echo()
        proof = b64url_json(receipts.pay(dict(payment_challenge(r).params)).split(" ")[1])
        token = Credential(challenge=echo, payload=proof["payload"]).to_authorization()
        paid = await client.get("/correlated", headers={"Authorization": token})
    assert paid.status_code == 200, paid.text


# -- 6. an over-long credential ------------------------------------------------------------------


async def test_an_over_long_payment_credential_gets_a_fresh_payment_challenge(
        client: httpx.AsyncClient) -> None:
    """§Status Codes: a malformed credential is 402 with a fresh challenge, not a 401
    listing the other schemes."""
    r = await client.get("/quote", headers={"Authorization": "Payment " + "A" * 20_000})
    ch = assert_402(r, "payment_invalid")
    assert ch.params["id"]
    assert [c.scheme for line in r.headers.get_list("www-authenticate")
            for c in parse_www_authenticate(line)] == ["Payment"]


# -- 7. x402 v2 transport ------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["!!!not base64!!!", base64.b64encode(b"not json").decode(),
                                   base64.b64encode(b'{"x402Version": 2}').decode()])
async def test_a_malformed_payment_signature_is_400(client: httpx.AsyncClient,
                                                    value: str) -> None:
    """x402 v2 HTTP transport: "Invalid Payment — Malformed payment payload" is 400."""
    r = await client.get("/x402", headers={"PAYMENT-SIGNATURE": value})
    assert r.status_code == 400, r.text
    assert r.json()["reason"] == "invalid_request"
    assert "x402" in r.json()["detail"]


async def test_a_well_formed_but_invalid_payment_signature_is_402(
        client: httpx.AsyncClient) -> None:
    r = await client.get("/x402")
    required = json.loads(base64.b64decode(r.headers["payment-required"]))
    requirement = required["accepts"][0]
    payload = {"nonce": "n-1", "signature": demo_signature(requirement, "n-2"), "payer": "me"}
    proof = {"x402Version": 2, "payload": payload, "accepted": requirement,
             "resource": required["resource"]}
    r = await client.get("/x402", headers={
        "PAYMENT-SIGNATURE": base64.b64encode(json.dumps(proof).encode()).decode()})
    assert r.status_code == 402 and r.json()["reason"] == "payment_invalid"
    assert "payment-required" in r.headers


# -- Accept-Payment (SHOULD) ----------------------------------------------------------------


@pytest.fixture
async def two_methods() -> AsyncIterator[httpx.AsyncClient]:
    nonces = MemoryNonceStore()
    alpha, beta = (ReceiptVerifier(secret=SECRET, nonces=nonces, realm="test", method=m)
                   for m in ("alpha", "beta"))

    async def ok(request: Request) -> Response:
        return JSONResponse({"ok": True})

    paid = Payment(Price(Decimal("0.01"), "USD"), verifiers=[alpha, beta])
    app = AuthGuardMiddleware(Starlette(routes=[Route("/two", protect(paid)(ok))]),
                              AuthGuard(authenticators=[APIKeyAuthenticator(
                                  store=StaticAPIKeys({}))]))
    async with asgi_client(app) as c:
        yield c


@pytest.mark.parametrize(("accept", "methods"), [
    (None, ["alpha", "beta"]),
    ("beta/charge, alpha/charge;q=0.5", ["beta", "alpha"]),
    ("alpha/*;q=0, */charge", ["beta"]),  # the most specific range decides
    ("beta/*;q=0.2, */*;q=0.9", ["alpha", "beta"]),
    ("gamma/charge", ["alpha", "beta"]),  # matches nothing: ignored
    ("beta/charge;q=2", ["alpha", "beta"]),  # malformed: ignored
])
async def test_accept_payment_filters_and_orders_the_challenges(
        two_methods: httpx.AsyncClient, accept: str | None, methods: list[str]) -> None:
    """§Client Payment Preferences: filter to ranges with q>0, order by q."""
    headers = {"Accept-Payment": accept} if accept else {}
    r = await two_methods.get("/two", headers=headers)
    assert r.status_code == 402
    got = [c.params["method"] for line in r.headers.get_list("www-authenticate")
           for c in parse_www_authenticate(line)]
    assert got == methods


def test_without_rfc8785_the_receipt_verifier_names_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from authguard.payments import scheme

    monkeypatch.setattr(scheme, "_jcs", None)
    with pytest.raises(ConfigurationError, match=r"authguard\[payments\]"):
        ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="test")


@pytest.mark.parametrize("bad", [Decimal("1.5"), 2**60, float("nan")])
async def test_correlation_data_rfc8785_cannot_write_names_the_setting(bad: Any) -> None:
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="test",
                               opaque=lambda ctx: {"bad": bad})
    ctx = PaymentContext(conn=Request({"type": "http", "method": "GET", "path": "/",
                                       "headers": []}),
                         identity=None, price=Price(Decimal(1)), now=0.0, resource="/")
    with pytest.raises(ConfigurationError, match=r"ReceiptVerifier\.opaque"):
        receipts.challenge_params(ctx)
