"""A paid streaming route, for tests under uvicorn (test_payment_streaming.py).

``GET /stream`` costs 0.01 USD; it sends its first chunk, then waits until ``POST /go``
before it sends the second: a middleware that buffered the body would never let the
first chunk out.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

from authguard import AuthGuard, AuthGuardMiddleware, Public, protect
from authguard.authenticators.apikey import APIKeyAuthenticator, StaticAPIKeys
from authguard.payments import Payment, Price, ReceiptVerifier
from authguard.stores import MemoryNonceStore

SECRET = "streaming-payment-test-secret-0123456789abcdef"
receipts = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="stream")
go = asyncio.Event()


async def chunks() -> AsyncIterator[bytes]:
    yield b"first\n"
    await asyncio.wait_for(go.wait(), timeout=30)
    yield b"second\n"


@protect(Payment(Price(Decimal("0.01"), "USD"), verifiers=[receipts]))
async def stream(request: Request) -> Response:
    go.clear()
    return StreamingResponse(chunks(), media_type="text/plain")


@protect(Public)
async def release(request: Request) -> Response:
    go.set()
    return PlainTextResponse("ok")


guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))])
app = Starlette(routes=[Route("/stream", stream), Route("/go", release, methods=["POST"])],
                middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
