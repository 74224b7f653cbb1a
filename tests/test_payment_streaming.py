"""A paid streaming response streams: its first chunk reaches the client under uvicorn
before the app has produced the rest, with the receipt in the headers."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from authguard.challenges import parse_www_authenticate
from authguard.payments import ReceiptVerifier
from authguard.stores import MemoryNonceStore
from helpers import uvicorn_server
from streaming_paid_app import SECRET

pytestmark = pytest.mark.e2e
TESTS = Path(__file__).resolve().parent


def test_a_paid_stream_is_not_buffered() -> None:
    provider = ReceiptVerifier(secret=SECRET, nonces=MemoryNonceStore(), realm="stream")
    with uvicorn_server("streaming_paid_app:app", app_dir=TESTS) as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        refused = client.get("/stream")
        assert refused.status_code == 402
        challenge = next(c for c in parse_www_authenticate(
            refused.headers.get_list("www-authenticate")) if c.scheme.lower() == "payment")
        credential = provider.pay(dict(challenge.params))
        with client.stream("GET", "/stream", headers={"Authorization": credential}) as paid:
            assert paid.status_code == 200
            assert "payment-receipt" in paid.headers
            lines = paid.iter_lines()
            # The app is now waiting for POST /go: only a streamed body gets here.
            assert next(lines) == "first"
            assert client.post("/go").status_code == 200
            assert next(lines) == "second"
        again = client.get("/stream", headers={"Authorization": credential})
        assert again.status_code == 402
        assert again.json()["reason"] == "payment_invalid"
