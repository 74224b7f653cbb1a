"""A development OAuth 2.1 authorization server for the MCP example (not for production).

Built from the ``mcp`` SDK's own server-side routes (dynamic client registration, RFC
7591; authorization code with PKCE S256; token; revocation) with an in-memory provider
that signs RS256 JWT access tokens (RFC 9068) with a key made at start. It adds what a
resource server needs to find and check those tokens:

* ``/.well-known/oauth-authorization-server`` (RFC 8414) naming ``jwks_uri`` and
  ``introspection_endpoint``, its ``issuer`` exactly ``AUTHGUARD_MCP_ISSUER``;
* ``/jwks`` — the public key;
* ``/introspect`` (RFC 7662) — for resource servers that authenticate as
  ``AUTHGUARD_MCP_INTROSPECTION_CLIENT_ID`` / ``…_SECRET`` (HTTP Basic or form).

Every user who reaches ``/authorize`` is signed in as ``demo-user``: there is no login
page, so a headless client can play the browser.

    uvicorn auth_server:app --app-dir examples/mcp_server --port 9000
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import time
from typing import Any
from urllib.parse import unquote_plus

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import build_metadata, create_auth_routes
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

ISSUER = os.environ.get("AUTHGUARD_MCP_ISSUER", "http://127.0.0.1:9000")
RESOURCE = os.environ.get("AUTHGUARD_MCP_RESOURCE", "http://127.0.0.1:8001/mcp")
SCOPES = ["mcp:tools", "mcp:admin"]
INTROSPECTION_CLIENT_ID = os.environ.get("AUTHGUARD_MCP_INTROSPECTION_CLIENT_ID",
                                         "mcp-resource-server")
INTROSPECTION_SECRET = os.environ.get("AUTHGUARD_MCP_INTROSPECTION_SECRET",
                                      "demo-introspection-secret-0123456789")
TOKEN_LIFETIME = 3600
SUBJECT = "demo-user"

_PRIVATE_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
KID = secrets.token_urlsafe(8)


def public_jwk() -> dict[str, Any]:
    """The signing key's public half as a JWK."""
    jwk: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(
        _PRIVATE_KEY.public_key()))
    return {**jwk, "kid": KID, "alg": "RS256", "use": "sig"}


def sign(claims: dict[str, Any]) -> str:
    """An RS256 JWT access token (RFC 9068 ``typ: at+jwt``) with these claims."""
    return jwt.encode(claims, _PRIVATE_KEY, algorithm="RS256",
                      headers={"kid": KID, "typ": "at+jwt"})


class DemoProvider:
    """In-memory clients, codes and tokens; everyone is ``demo-user``."""

    def __init__(self) -> None:
        self.clients: dict[str, OAuthClientInformationFull] = {}
        self.codes: dict[str, AuthorizationCode] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.revoked: set[str] = set()

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        # A client registers with the scope of its first challenge; it may step up to any
        # scope of this server later, so it is registered for all of them.
        client_info.scope = " ".join(SCOPES)
        self.clients[str(client_info.client_id)] = client_info

    async def authorize(self, client: OAuthClientInformationFull,
                        params: AuthorizationParams) -> str:
        code = secrets.token_urlsafe(24)
        self.codes[code] = AuthorizationCode(
            code=code, scopes=params.scopes or ["mcp:tools"], expires_at=time.time() + 300,
            client_id=str(client.client_id), code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource, subject=SUBJECT)
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(self, client: OAuthClientInformationFull,
                                      authorization_code: str) -> AuthorizationCode | None:
        found = self.codes.get(authorization_code)
        return found if found is not None and found.client_id == client.client_id else None

    def _tokens(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        now = int(time.time())
        access = sign({
            "iss": ISSUER, "sub": SUBJECT, "aud": resource or RESOURCE,
            "client_id": client_id, "scope": " ".join(scopes), "iat": now,
            "exp": now + TOKEN_LIFETIME, "jti": secrets.token_urlsafe(12),
        })
        refresh = secrets.token_urlsafe(32)
        self.refresh_tokens[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes, resource=resource,
            subject=SUBJECT)
        return OAuthToken(access_token=access, token_type="Bearer",
                          expires_in=TOKEN_LIFETIME, scope=" ".join(scopes),
                          refresh_token=refresh)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: AuthorizationCode) -> OAuthToken:
        self.codes.pop(authorization_code.code, None)
        return self._tokens(authorization_code.client_id, authorization_code.scopes,
                            authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull,
                                 refresh_token: str) -> RefreshToken | None:
        found = self.refresh_tokens.get(refresh_token)
        return found if found is not None and found.client_id == client.client_id else None

    async def exchange_refresh_token(self, client: OAuthClientInformationFull,
                                     refresh_token: RefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        self.refresh_tokens.pop(refresh_token.token, None)
        return self._tokens(refresh_token.client_id, scopes or refresh_token.scopes,
                            refresh_token.resource)

    async def load_access_token(self, token: str) -> AccessToken | None:
        claims = verify(token)
        if claims is None:
            return None
        return AccessToken(token=token, client_id=str(claims.get("client_id", "")),
                           scopes=str(claims.get("scope", "")).split(),
                           expires_at=int(claims["exp"]), resource=str(claims["aud"]),
                           subject=str(claims["sub"]))

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.revoked.add(token.token)
        self.refresh_tokens.pop(token.token, None)


provider = DemoProvider()


def verify(token: str) -> dict[str, Any] | None:
    """The claims of an unrevoked, unexpired token this server signed; else ``None``."""
    if token in provider.revoked:
        return None
    try:
        claims: dict[str, Any] = jwt.decode(
            token, _PRIVATE_KEY.public_key(), algorithms=["RS256"], issuer=ISSUER,
            options={"verify_aud": False, "require": ["exp", "sub", "aud"]})
    except jwt.PyJWTError:
        return None
    return claims


def metadata() -> dict[str, Any]:
    """RFC 8414 metadata; ``issuer`` is exactly ISSUER (no trailing slash added)."""
    document: dict[str, Any] = build_metadata(
        AnyHttpUrl(ISSUER), None, ClientRegistrationOptions(enabled=True),
        RevocationOptions(enabled=True)).model_dump(mode="json", exclude_none=True)
    base = ISSUER.rstrip("/")
    document.update({
        "issuer": ISSUER,
        "scopes_supported": SCOPES,
        "jwks_uri": f"{base}/jwks",
        "introspection_endpoint": f"{base}/introspect",
        "introspection_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post"],
        "id_token_signing_alg_values_supported": ["RS256"],
    })
    return document


async def metadata_endpoint(request: Request) -> Response:
    return JSONResponse(metadata(), headers={"Access-Control-Allow-Origin": "*"})


async def jwks_endpoint(request: Request) -> Response:
    return JSONResponse({"keys": [public_jwk()]},
                        headers={"Access-Control-Allow-Origin": "*"})


def _introspection_client(request: Request, form: dict[str, str]) -> bool:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            pair = base64.b64decode(header[6:], validate=True).decode()
        except ValueError:
            return False
        client_id, _, secret = pair.partition(":")
        client_id, secret = unquote_plus(client_id), unquote_plus(secret)
    else:
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
    return client_id == INTROSPECTION_CLIENT_ID and secrets.compare_digest(
        secret.encode(), INTROSPECTION_SECRET.encode())


async def introspect_endpoint(request: Request) -> Response:
    """RFC 7662 §2: ``{"active": false}`` for anything not a live token of this server."""
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not _introspection_client(request, form):
        return JSONResponse({"error": "invalid_client"}, status_code=401,
                            headers={"WWW-Authenticate": 'Basic realm="introspection"'})
    claims = verify(form.get("token", ""))
    if claims is None:
        return JSONResponse({"active": False})
    return JSONResponse({"active": True, "token_type": "Bearer", **claims})


app = Starlette(routes=[
    # Before the SDK's routes, so that this metadata (exact issuer, jwks_uri) is served.
    Route("/.well-known/oauth-authorization-server", metadata_endpoint, methods=["GET"]),
    Route("/jwks", jwks_endpoint, methods=["GET"]),
    Route("/introspect", introspect_endpoint, methods=["POST"]),
    *create_auth_routes(
        provider, AnyHttpUrl(ISSUER),
        client_registration_options=ClientRegistrationOptions(
            enabled=True, valid_scopes=SCOPES, default_scopes=["mcp:tools"]),
        revocation_options=RevocationOptions(enabled=True)),
])
