"""``GET /``: what the example app offers and what to try (HTML for browsers, JSON else)."""

from __future__ import annotations

from html import escape
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse

from authguard import Public, protect

ROUTES: list[dict[str, str]] = [
    {"route": "GET /public", "needs": "nothing", "try": "curl -i {base}/public"},
    {"route": "GET /me", "needs": "any identity",
     "try": "curl -i -u alice:PASSWORD {base}/me"},
    {"route": "GET /admin", "needs": "role admin",
     "try": "curl -i -H 'X-API-Key: BOBS_KEY' {base}/admin"},
    {"route": "POST /token", "needs": "a user name and password",
     "try": "curl -s {base}/token -d username=alice -d password=PASSWORD "
            "-d scope=reports:read"},
    {"route": "GET /reports", "needs": "a Bearer token with scope reports:read",
     "try": "curl -i -H 'Authorization: Bearer <access_token>' {base}/reports"},
    {"route": "GET /step-up", "needs": "acr=mfa, signed in within 300 s",
     "try": "curl -i -u alice:PASSWORD {base}/step-up"},
    {"route": "GET /premium", "needs": "an active pro plan",
     "try": "curl -i -u carol:PASSWORD {base}/premium"},
    {"route": "GET /paid/quote", "needs": "a payment of 0.01 USD",
     "try": "curl -i {base}/paid/quote"},
    {"route": "GET /login", "needs": "nothing (a browser page)", "try": "open {base}/login"},
    {"route": "GET /docs", "needs": "nothing: Swagger UI, Authorize runs POST /token",
     "try": "open {base}/docs"},
]

# The page never shows a password or key itself (nothing secret in a response).
_WHERE = ("PASSWORD and BOBS_KEY: the demo identities' credentials, listed in "
          "examples/fastapi_app/README.md.")


def _wants_html(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept.split(",")[0]


def setup(app: FastAPI) -> None:
    """Add ``GET /``."""

    @app.get("/", responses={200: {"description": "The routes and what to try",
                                   "content": {"text/html": {}}}})
    @protect(Public)
    async def index(request: Request) -> Any:
        """The routes of the example app and a curl line to try each (HTML or JSON)."""
        base = str(request.base_url).rstrip("/")
        routes = [{**r, "try": r["try"].format(base=base)} for r in ROUTES]
        if not _wants_html(request):
            return JSONResponse({"app": "authguard example app", "credentials": _WHERE,
                                 "routes": routes})
        rows = "".join(f"<tr><td><code>{escape(r['route'])}</code></td>"
                       f"<td>{escape(r['needs'])}</td><td><code>{escape(r['try'])}</code>"
                       "</td></tr>" for r in routes)
        return HTMLResponse(
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            "<title>authguard example app</title></head><body>"
            "<h1>authguard example app</h1><p>Each route and a command to try it. "
            f"{escape(_WHERE)}</p>"
            f"<table><tr><th>route</th><th>needs</th><th>try</th></tr>{rows}</table>"
            "</body></html>")
