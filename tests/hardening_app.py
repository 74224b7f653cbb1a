"""A Starlette app with hostile configured strings, for the hardening tests.

Served in process and under uvicorn (``uvicorn hardening_app:app --app-dir tests``): realms
with quotes, backslashes, commas and Latin-1 letters; a route that raises refusals whose
parameters, headers and detail hold CR/LF and non-Latin-1 text; a login page whose URL
needs percent-encoding; a protected upload that must be refused before its body is read.
"""

from __future__ import annotations

import base64
import datetime
import os

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    BearerAuthenticator,
    JWTKey,
    PBKDF2Hasher,
    Policy,
    Public,
    Reason,
    Refusal,
    SessionAuthenticator,
    StaticAPIKeys,
    StaticPasswords,
    hash_api_key,
    protect,
)
from authguard.identity import Identity

REALM = 'say "hi" \\ to café, x=y'
PASSWORD = "hardening-password-7f3a"  # the suite checks that it never leaks
API_KEY = "hardening-key-0123456789abcdef"
JWT_SECRET = "hardening-jwt-secret-0123456789abcdef-0123"
SESSION_SECRET = "hardening-session-secret-0123456789abcdef"
GOOD_BASIC = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()
EVIL = 'x"\r\nSet-Cookie: injected=1\r\n\r\n<html>\\ 日本'
MAX_CREDENTIALS = int(os.environ.get("HARDENING_MAX_CREDENTIALS", "8192"))

users = StaticPasswords.from_plaintext({"alice": (PASSWORD, ["user"])},
                                       hasher=PBKDF2Hasher(iterations=1000))
keys = StaticAPIKeys({hash_api_key(API_KEY): Identity(subject="alice", scheme="ApiKey")})
authenticators = [
    BasicAuthenticator(verifier=users, realm=REALM),
    BearerAuthenticator(key=JWTKey.hs256(JWT_SECRET), audience="hardening", realm=REALM),
    APIKeyAuthenticator(store=keys, realm=REALM),
    SessionAuthenticator(secret_keys=[SESSION_SECRET], realm=REALM, login_url="/sign-in"),
]
guard = AuthGuard(authenticators=authenticators, max_credentials_bytes=MAX_CREDENTIALS)


@protect(Authenticated())
async def me(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.subject})


@protect(Authenticated())
async def upload(request: Request) -> JSONResponse:
    body = await request.body()
    return JSONResponse({"received": len(body)})


@protect(Public)
async def evil(request: Request) -> JSONResponse:
    """Raises a refusal whose every part holds text that must not break the answer."""
    kind = request.query_params.get("kind", "scope")
    if kind == "scope":
        raise Refusal(Reason.INSUFFICIENT_SCOPE, EVIL, scheme="Bearer",
                      challenge_params={"scope": EVIL, "error_description": "日本語",
                                        "acr_values": "fine"})
    raise Refusal(Reason.CREDENTIALS_INVALID, EVIL, scheme="Basic",
                  headers={"X-Evil": EVIL, "Bad Name": "v", "Retry-After": "5",
                           "X-Unicode": "日本"},
                  delete_cookies=["ok_cookie", "bad; Path=/", "x\r\ny"],
                  extensions={"when": datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC),
                              "note": EVIL})


@protect(Policy(Authenticated(), login_url="/lögin page?from=x"))
async def page(request: Request) -> JSONResponse:
    return JSONResponse({"subject": request.user.subject})


app = Starlette(
    routes=[Route("/me", me), Route("/upload", upload, methods=["POST"]),
            Route("/evil", evil), Route("/page", page)],
    middleware=[Middleware(AuthGuardMiddleware, guard=guard)],
)
