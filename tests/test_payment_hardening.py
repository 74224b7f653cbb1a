"""402 hardening: a proof pays for one request of one route, once, whatever the wiring.

Each test here stands for a way a payment could be taken twice, spent elsewhere, or
crash the server: install() without the middleware, settle="on_success" under
concurrency and on WebSockets, proofs moved between routes, non-ASCII proofs, price
callables that fail on bad input, and a full in-memory nonce store.
"""

from __future__ import annotations

import asyncio
import base64
import json
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

import rawasgi
from authguard import AuthGuard, AuthGuardMiddleware, protect
from authguard.authenticators.apikey import APIKeyAuthenticator, StaticAPIKeys
from authguard.challenges import parse_www_authenticate
from authguard.fastapi import install, require
from authguard.payments import Payment, Price, ReceiptVerifier
from authguard.stores import MemoryNonceStore
from helpers import asgi_client

SECRET = "payment-hardening-test-secret-0123456789abcdef"
PRICE = Price(Decimal("0.05"), "USD")


def guard() -> AuthGuard:
    return AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))])


def authorization(receipts: ReceiptVerifier, refused: httpx.Response) -> str:
    offer = next(o for o in refused.json()["payment"]["offers"] if o["scheme"] == "Payment")
    params = {k: v for k, v in offer.items()
              if k not in ("scheme", "amount", "currency", "credential_header")}
    return receipts.pay(params)


def tamper(credential: str, **changes: Any) -> str:
    token = credential.split(" ", 1)[1]
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for path, value in changes.items():
        where, _, key = path.partition("__")
        data[where][key] = value
    raw = json.dumps(data).encode()
    return "Payment " + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- FastAPI with install() only: the dependency settles --------------------------------


async def test_install_without_the_middleware_settles_each_payment_once() -> None:
    nonces = MemoryNonceStore()
    receipts = ReceiptVerifier(secret=SECRET, nonces=nonces, realm="api")
    app = FastAPI()
    install(app, guard())
    runs: list[int] = []

    @app.get("/quote")
    async def quote(_: object = Depends(require(Payment(PRICE, verifiers=[receipts])))
                    ) -> dict[str, bool]:
        runs.append(1)
        return {"ok": True}

    async with asgi_client(app) as client:
        refused = await client.get("/quote")
        assert refused.status_code == 402
        credential = authorization(receipts, refused)
        paid = await client.get("/quote", headers={"Authorization": credential})
        assert paid.status_code == 200
        assert "payment-receipt" in paid.headers
        again = await client.get("/quote", headers={"Authorization": credential})
        assert again.status_code == 402
        assert again.json()["reason"] == "payment_invalid"
    assert runs == [1]


# -- settle="on_success" ---------------------------------------------------------------


def on_success_app(receipts: ReceiptVerifier, runs: list[str]) -> Starlette:
    paid = protect(Payment(PRICE, verifiers=[receipts], settle="on_success"))

    async def slow(request: Request) -> Response:
        runs.append(request.url.path)
        await asyncio.sleep(0.05)
        return JSONResponse({"ok": True})

    async def socket(ws: WebSocket) -> None:
        runs.append("ws")
        await ws.accept()
        await ws.send_text("paid")
        await ws.close()

    return Starlette(routes=[Route("/slow", paid(slow)), WebSocketRoute("/ws", paid(socket))],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard())])


async def test_on_success_runs_the_app_once_per_receipt_even_under_concurrency() -> None:
    runs: list[str] = []
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api")
    app = on_success_app(receipts, runs)
    async with asgi_client(app) as client:
        credential = authorization(receipts, await client.get("/slow"))
        answers = await asyncio.gather(*[
            client.get("/slow", headers={"Authorization": credential}) for _ in range(8)])
    statuses = sorted(r.status_code for r in answers)
    assert statuses == [200] + [402] * 7
    assert runs == ["/slow"]  # the app ran for the one paid request only


async def test_on_success_websocket_is_settled_at_the_handshake() -> None:
    runs: list[str] = []
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api")
    app = on_success_app(receipts, runs)
    refused = await rawasgi.websocket(app, "/ws")
    assert refused.status == 402 and not refused.accepted
    challenge = next(c for c in parse_www_authenticate(
        [v.decode("latin-1") for v in refused.header(b"www-authenticate")])
        if c.scheme.lower() == "payment")
    credential = receipts.pay(dict(challenge.params)).encode()
    paid = await rawasgi.websocket(app, "/ws", [(b"authorization", credential)])
    assert paid.accepted
    again = await rawasgi.websocket(app, "/ws", [(b"authorization", credential)])
    assert again.status == 402 and not again.accepted  # one receipt, one socket
    assert runs == ["ws"]


# -- proofs moved or mangled -------------------------------------------------------------


def two_routes(receipts: ReceiptVerifier) -> Starlette:
    paid = protect(Payment(PRICE, verifiers=[receipts]))

    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/cheap", paid(ok)), Route("/other", paid(ok),
                                                             methods=["GET", "POST"])],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard())])


async def test_a_proof_pays_for_its_own_route_and_method_only() -> None:
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api")
    async with asgi_client(two_routes(receipts)) as client:
        credential = authorization(receipts, await client.get("/cheap"))
        moved = await client.get("/other", headers={"Authorization": credential})
        assert moved.status_code == 402 and moved.json()["reason"] == "payment_invalid"
        for_get = authorization(receipts, await client.get("/other"))
        posted = await client.post("/other", headers={"Authorization": for_get})
        assert posted.status_code == 402 and posted.json()["reason"] == "payment_invalid"
        # neither attempt used them up
        assert (await client.get("/cheap", headers={"Authorization": credential})
                ).status_code == 200
        assert (await client.head("/other", headers={"Authorization": for_get})
                ).status_code == 200  # HEAD pays as GET


@pytest.mark.parametrize("changes", [
    {"challenge__id": "é" * 43},
    {"payload__receipt": "ü" * 43},
    {"challenge__opaque": "\ud800"},
    {"challenge__realm": "api\r\nX-Evil: 1"},
    {"challenge__opaque": "x|y"},
])
async def test_mangled_proofs_are_payment_invalid_never_500(changes: dict[str, Any]) -> None:
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api")
    async with asgi_client(two_routes(receipts)) as client:
        credential = authorization(receipts, await client.get("/cheap"))
        r = await client.get("/cheap", headers={"Authorization": tamper(credential,
                                                                          **changes)})
        assert r.status_code == 402, r.text
        assert r.json()["reason"] == "payment_invalid"


async def test_the_selected_header_is_part_of_the_binding() -> None:
    # draft-httpauth-payment §Challenge Binding: "header" is bound when present, so a
    # client cannot drop it (or add one) to move the credential to another field.
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api",
                               header="Payment-Authorization")
    async with asgi_client(two_routes(receipts)) as client:
        offer = (await client.get("/cheap")).json()["payment"]["offers"][0]
        assert offer["header"] == "Payment-Authorization"
        params = {k: v for k, v in offer.items()
                  if k not in ("scheme", "amount", "currency", "credential_header")}
        dropped = receipts.pay({k: v for k, v in params.items() if k != "header"})
        r = await client.get("/cheap", headers={"Authorization": dropped})
        assert r.status_code == 402 and "altered" in r.json()["detail"]
        credential = receipts.pay(params)
        assert (await client.get("/cheap", headers={"Payment-Authorization": credential})
                ).status_code == 200


# -- prices and stores -------------------------------------------------------------------


async def test_a_price_callable_failing_on_bad_input_is_400_not_500() -> None:
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api")

    def by_size(conn: HTTPConnection) -> Price:
        return Price(Decimal(int(conn.query_params.get("size", "1"))) / 100, "USD")

    async def ok(request: Request) -> Response:
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/sized", protect(Payment(by_size, verifiers=[receipts]))(ok))],
                    middleware=[Middleware(AuthGuardMiddleware, guard=guard())])
    async with asgi_client(app) as client:
        assert (await client.get("/sized?size=3")).status_code == 402
        for bad in ("x", "-1", "1e999999"):
            r = await client.get(f"/sized?size={bad}")
            assert r.status_code == 400, (bad, r.text)
            assert r.json()["reason"] == "invalid_request"


async def test_a_full_nonce_store_fails_closed_instead_of_forgetting() -> None:
    nonces = MemoryNonceStore(max_keys=2)
    receipts = ReceiptVerifier(secret=SECRET, nonces=nonces, realm="api")
    async with asgi_client(two_routes(receipts)) as client:
        used = []
        for _ in range(2):
            credential = authorization(receipts, await client.get("/cheap"))
            assert (await client.get("/cheap", headers={"Authorization": credential})
                    ).status_code == 200
            used.append(credential)
        third = authorization(receipts, await client.get("/cheap"))
        full = await client.get("/cheap", headers={"Authorization": third})
        assert full.status_code == 503
        assert full.json()["reason"] == "auth_unavailable"
        assert "retry-after" in full.headers
        # nothing was forgotten: the first receipt is still a replay
        replay = await client.get("/cheap", headers={"Authorization": used[0]})
        assert replay.status_code == 402


async def test_a_paid_answer_exposes_its_receipt_to_browser_code() -> None:
    receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="api")
    async with asgi_client(two_routes(receipts)) as client:
        credential = authorization(receipts, await client.get("/cheap"))
        paid = await client.get("/cheap", headers={"Authorization": credential})
        assert paid.status_code == 200
        exposed = paid.headers["access-control-expose-headers"].lower()
        assert "payment-receipt" in exposed
        assert paid.headers["cache-control"] == "private"
