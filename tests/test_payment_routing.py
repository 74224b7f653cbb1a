"""A paid route asks for no payment, and takes none, for a method it does not serve."""

from __future__ import annotations

from decimal import Decimal

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from authguard import AuthGuard, AuthGuardMiddleware, protect
from authguard.authenticators.apikey import APIKeyAuthenticator, StaticAPIKeys
from authguard.payments import Payment, Price, ReceiptVerifier
from authguard.stores import MemoryNonceStore
from helpers import asgi_client

SECRET = "payment-routing-test-secret-0123456789abcdef"


def make_app() -> tuple[Starlette, ReceiptVerifier, MemoryNonceStore]:
    nonces = MemoryNonceStore()
    receipts = ReceiptVerifier(secret=SECRET, nonces=nonces, realm="test")

    @protect(Payment(Price(Decimal("0.01"), "USD"), verifiers=[receipts]))
    async def quote(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))])
    app = Starlette(routes=[
        Route("/quote", quote, methods=["GET"]),
        Mount("/v1", routes=[Route("/quote", quote, methods=["GET"])]),
    ], middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
    return app, receipts, nonces


@pytest.mark.parametrize("path", ["/quote", "/v1/quote"])
async def test_other_methods_get_405_not_402(path: str) -> None:
    app, _, _ = make_app()
    async with asgi_client(app) as client:
        assert (await client.get(path)).status_code == 402
        for method in ("POST", "DELETE", "TRACE"):
            response = await client.request(method, path)
            assert response.status_code == 405, method
            assert "payment-required" not in response.headers
            assert "www-authenticate" not in response.headers


async def test_a_paid_proof_sent_with_the_wrong_method_is_not_spent() -> None:
    app, receipts, _ = make_app()
    async with asgi_client(app) as client:
        refused = await client.get("/quote")
        challenge = refused.json()["payment"]["offers"][0]
        authorization = receipts.pay(
            {k: v for k, v in challenge.items()
             if k not in ("scheme", "amount", "currency", "credential_header")})
        wrong = await client.post("/quote", headers={"Authorization": authorization})
        assert wrong.status_code == 405
        assert "payment-receipt" not in wrong.headers
        paid = await client.get("/quote", headers={"Authorization": authorization})
        assert paid.status_code == 200, paid.text
        assert "payment-receipt" in paid.headers
        again = await client.get("/quote", headers={"Authorization": authorization})
        assert again.status_code == 402
        assert again.json()["reason"] == "payment_invalid"


def _scope(method: str, path: str, app: object) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "",
            "headers": [(b"host", b"testserver")], "query_string": b"", "app": app}


def test_which_methods_a_route_serves() -> None:
    from authguard import routing

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    gets = Starlette(routes=[Route("/r", ok, methods=["GET"])])
    posts = Starlette(routes=[Route("/r", ok, methods=["POST"])])
    assert routing.serves_method(gets, _scope("GET", "/r", gets))
    assert not routing.serves_method(gets, _scope("POST", "/r", gets))
    assert routing.serves_method(posts, _scope("POST", "/r", posts))
    assert not routing.serves_method(posts, _scope("GET", "/r", posts))
    assert routing.serves_method(gets, _scope("POST", "/elsewhere", gets))  # a 404
    assert routing.serves_method(None, _scope("PUT", "/r", None))  # no routes to read
    gets.routes.append(Route("/r", ok, methods=["POST"]))  # no stale answer
    assert routing.serves_method(gets, _scope("POST", "/r", gets))


def test_the_root_path_and_the_path_are_not_run_together() -> None:
    from authguard import routing

    async def ok(request: Request) -> JSONResponse:
        return JSONResponse({})

    app = Starlette(routes=[Route("/r", ok, methods=["GET"]),
                            Route("/a/a/r", ok, methods=["POST"])])
    under_a = {**_scope("GET", "/a/r", app), "root_path": "/a"}  # the GET route
    at_root = _scope("GET", "/a/a/r", app)  # the POST-only route: a 405
    assert not routing.serves_method(app, at_root)
    assert routing.serves_method(app, under_a)  # not the answer remembered for the other
