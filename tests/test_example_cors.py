"""The example app's CORS settings let browser code read every header a refusal explains
itself with (CORSMiddleware replaces authguard's own Access-Control-Expose-Headers)."""

from __future__ import annotations

from authguard.problems import EXPOSE_HEADERS
from helpers import asgi_client
from rawasgi import load_example_app

ORIGIN = "http://localhost:3000"  # AUTHGUARD_DEMO_CORS_ORIGIN's default


async def test_refusals_expose_date_and_the_payment_headers_to_the_allowed_origin() -> None:
    app = load_example_app("cors", {}).app
    async with asgi_client(app) as client:
        for path in ("/me", "/paid/quote"):
            r = await client.get(path, headers={"Origin": ORIGIN})
            assert r.headers["access-control-allow-origin"] == ORIGIN
            exposed = {h.strip().lower() for h in
                       r.headers["access-control-expose-headers"].split(",")}
            assert {h.lower() for h in EXPOSE_HEADERS.split(", ")} <= exposed
            assert {"date", "www-authenticate", "retry-after", "payment-required"} <= exposed
