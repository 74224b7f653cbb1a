"""``POST /token``: the OAuth2 resource owner password flow (RFC 6749 §4.3), for the demo.

It answers ``{"access_token", "token_type": "bearer", "expires_in", "scope"}`` (RFC 6749
§5.1) with a JWT signed as the app's Bearer tokens are (HS256, the demo's issuer and
audience). The OpenAPI document declares it as an ``oauth2`` password flow, so that
Swagger UI's *Authorize* runs it and then sends the token on the routes that take Bearer.

A real deployment gets its tokens from an authorization server (the password grant is
deprecated for third-party clients by OAuth 2.0 Security BCP, RFC 9700 §2.4); this route
exists so that the demo can be tried without one.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import jwt
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from settings import Settings

from authguard import Identity, Public, Reason, Refusal, protect
from authguard.openapi import add_password_flow

TOKEN_LIFETIME = 900  # seconds
SCOPES = {"reports:read": "Read the reports (GET /reports)"}
_MAX_FORM_BYTES = 4096
_PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}

CheckPassword = Callable[..., Awaitable[Identity]]


def mint(settings: Settings, identity: Identity, scopes: list[str], now: float) -> str:
    """A Bearer token for ``identity`` with ``scopes``, as the app's tokens are made."""
    claims: dict[str, Any] = {
        "sub": identity.subject, "iss": settings.jwt_issuer, "aud": settings.jwt_audience,
        "iat": int(now), "nbf": int(now), "exp": int(now) + TOKEN_LIFETIME,
        "auth_time": int(now), "jti": uuid.uuid4().hex, "scope": " ".join(scopes),
        "roles": sorted(identity.roles),
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


async def _form(request: Request) -> dict[str, str]:
    """The urlencoded form (RFC 6749 §4.3.2); a repeated parameter is a 400 (§3.1)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != (
            "application/x-www-form-urlencoded"):
        raise Refusal(Reason.INVALID_REQUEST, "Send the form as "
                      "application/x-www-form-urlencoded (RFC 6749 §4.3.2).")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > _MAX_FORM_BYTES:
            raise Refusal(Reason.INVALID_REQUEST, "The form is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        raise Refusal(Reason.INVALID_REQUEST, "The form is not UTF-8.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise Refusal(Reason.INVALID_REQUEST, f"The parameter {name!r} is repeated.")
        form[name] = value
    return form


_OPENAPI = {
    "requestBody": {"required": True, "content": {"application/x-www-form-urlencoded": {
        "schema": {
            "type": "object", "required": ["username", "password"],
            "properties": {
                "grant_type": {"type": "string", "enum": ["password"]},
                "username": {"type": "string", "maxLength": 256},
                "password": {"type": "string", "format": "password", "maxLength": 1024},
                "scope": {"type": "string", "description": "Space-separated scopes: "
                          + ", ".join(SCOPES)},
            },
        },
    }}},
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The access token (RFC 6749 §5.1)", "content": {"application/json": {
        "schema": {"type": "object",
                   "required": ["access_token", "token_type", "expires_in", "scope"],
                   "properties": {"access_token": {"type": "string"},
                                  "token_type": {"type": "string", "enum": ["bearer"]},
                                  "expires_in": {"type": "integer"},
                                  "scope": {"type": "string"}}}}}},
    400: {"description": "invalid_request: not a urlencoded form, a repeated parameter, "
                         "or no user name or password", "content": _PROBLEM},
    401: {"description": "credentials_invalid: wrong user name or password",
          "content": _PROBLEM},
    429: {"description": "too_many_attempts: wait Retry-After seconds", "content": _PROBLEM},
}


def setup(app: FastAPI, settings: Settings, check_password: CheckPassword,
          clock: Callable[[], float]) -> None:
    """Add ``POST /token`` and declare it in OpenAPI as the password flow."""

    @app.post("/token", openapi_extra=_OPENAPI, responses=_RESPONSES)
    @protect(Public)
    async def token(request: Request) -> JSONResponse:
        """Exchange a user name and password for a Bearer token (OAuth2 password flow)."""
        form = await _form(request)
        grant = form.get("grant_type", "password")
        username, password = form.get("username", ""), form.get("password", "")
        if grant != "password" or not username or not password:
            raise Refusal(Reason.INVALID_REQUEST,
                          "Send grant_type=password with a username and a password.")
        if len(username) > 256 or len(password) > 1024:
            raise Refusal(Reason.INVALID_REQUEST, "The user name or password is too long.")
        identity = await check_password(request, username, password, scheme=None)
        # Only known scopes are granted; the answer says which (RFC 6749 §3.3).
        granted = sorted({s for s in form.get("scope", "").split() if s in SCOPES})
        now = clock()
        return JSONResponse(
            {"access_token": mint(settings, identity, granted, now), "token_type": "bearer",
             "expires_in": TOKEN_LIFETIME, "scope": " ".join(granted)},
            headers={"Cache-Control": "no-store"},  # RFC 6749 §5.1
        )

    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = add_password_flow(original(), token_url="/token",
                                                   scopes=SCOPES)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
