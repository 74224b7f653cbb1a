"""A paid route whose description is not ASCII, for end-to-end tests under uvicorn."""

from __future__ import annotations

from decimal import Decimal

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authguard import APIKeyAuthenticator, AuthGuard, AuthGuardMiddleware, StaticAPIKeys, protect
from authguard.payments import Payment, Price, ReceiptVerifier
from authguard.stores import MemoryNonceStore

SECRET = "unicode-payment-secret-0123456789abcdef"
DESCRIPTION = "Caf\u00e9 cr\u00e8me \u2013 5 \u20ac \u2013 \u30b3\u30fc\u30d2\u30fc"
receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="unicode",
                           remember=100)


async def quote(request: Request) -> Response:
    return JSONResponse({"ok": True})


async def provider(request: Request) -> Response:
    """Stand-in payment provider: pays a challenge this process issued, by id."""
    authorization = receipts.authorization_for((await request.json())["challenge"])
    return JSONResponse({"authorization": authorization})


paid = Payment(Price(Decimal("0.01"), "USD", DESCRIPTION), verifiers=[receipts])
app = AuthGuardMiddleware(
    Starlette(routes=[Route("/quote", protect(paid)(quote)),
                      Route("/pay", protect(None)(provider), methods=["POST"])]),
    AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))]))
