"""RFC 9728 Protected Resource Metadata: the document, its URLs, its routes, challenges."""

from __future__ import annotations

import json

import jwt
import pytest
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    ConfigurationError,
    DPoPAuthenticator,
    HasScopes,
    JWTKey,
    Reason,
    parse_www_authenticate,
    protect,
)
from authguard.oauth import MetadataSigner, ProtectedResource, install_metadata
from helpers import asgi_client

SECRET = "oauth-metadata-test-secret-0123456789abcdef"
RESOURCE = "https://api.example.test/mcp"
ISSUER = "https://as.example.test"
METADATA_URL = "https://api.example.test/.well-known/oauth-protected-resource/mcp"
# RFC 9728 §2: members and their JSON types (resource is the one REQUIRED member).
MEMBER_TYPES = {
    "resource": str, "authorization_servers": list, "jwks_uri": str,
    "scopes_supported": list, "bearer_methods_supported": list,
    "resource_signing_alg_values_supported": list, "resource_name": str,
    "resource_documentation": str, "resource_policy_uri": str, "resource_tos_uri": str,
    "tls_client_certificate_bound_access_tokens": bool,
    "authorization_details_types_supported": list,
    "dpop_signing_alg_values_supported": list, "dpop_bound_access_tokens_required": bool,
    "signed_metadata": str,
}


def resource(**kw: object) -> ProtectedResource:
    settings: dict[str, object] = {
        "resource": RESOURCE, "authorization_servers": [ISSUER],
        "scopes_supported": ["read", "write"], "challenge_scopes": ["read"]}
    settings.update(kw)
    return ProtectedResource(**settings)  # type: ignore[arg-type]


def check_rfc_9728(document: dict[str, object], configured: str) -> None:
    assert document["resource"] == configured  # exactly, no normalisation
    for name, value in document.items():
        if name in MEMBER_TYPES:
            assert isinstance(value, MEMBER_TYPES[name]), name
    for method in document.get("bearer_methods_supported", []):  # type: ignore[attr-defined]
        assert method in ("header", "body", "query")


def app_with(pr: ProtectedResource, *, fastapi: bool = False) -> Starlette:
    async def data(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=RESOURCE, issuer=ISSUER,
                                 resource=pr)
    route = protect(HasScopes("write"))(Route("/data", data))
    app: Starlette = FastAPI() if fastapi else Starlette()
    app.router.routes.append(route)
    install_metadata(app, pr)
    app.add_middleware(AuthGuardMiddleware,
                       guard=AuthGuard(authenticators=[bearer], deny_by_default=True))
    return app


def token(**claims: object) -> str:
    base: dict[str, object] = {"iss": ISSUER, "aud": RESOURCE, "sub": "alice",
                               "exp": 4_000_000_000, "scope": "read"}
    base.update(claims)
    return jwt.encode(base, SECRET, algorithm="HS256")


def test_well_known_urls_insert_the_path() -> None:
    pr = resource()
    assert pr.metadata_url == METADATA_URL
    assert pr.metadata_paths == ("/.well-known/oauth-protected-resource/mcp",
                                 "/.well-known/oauth-protected-resource")
    root = resource(resource="https://api.example.test/")
    assert root.metadata_paths == ("/.well-known/oauth-protected-resource",)
    assert root.metadata_url == "https://api.example.test/.well-known/oauth-protected-resource"
    deep = resource(resource="https://api.example.test:8443/v1/mcp/")
    assert deep.metadata_url == (
        "https://api.example.test:8443/.well-known/oauth-protected-resource/v1/mcp")


@pytest.mark.parametrize("fastapi", [False, True])
async def test_the_document_is_served_public_cacheable_and_cors_readable(
        fastapi: bool) -> None:
    pr = resource(resource_documentation="https://docs.example.test/api")
    app = app_with(pr, fastapi=fastapi)
    # A forged Host changes nothing: the URLs come from the configuration.
    async with asgi_client(app, base_url="http://evil.example") as client:
        for path in pr.metadata_paths:
            response = await client.get(path, headers={"Origin": "https://app.example"})
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/json"
            assert response.headers["cache-control"] == "public, max-age=3600"
            assert response.headers["access-control-allow-origin"] == "*"
            document = response.json()
            check_rfc_9728(document, RESOURCE)
            assert document == {
                "resource": RESOURCE, "authorization_servers": [ISSUER],
                "scopes_supported": ["read", "write"], "bearer_methods_supported": ["header"],
                "resource_documentation": "https://docs.example.test/api"}
        head = await client.head(pr.metadata_paths[0])
        assert head.status_code == 200 and head.content == b""
        preflight = await client.options(pr.metadata_paths[0], headers={
            "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "mcp-protocol-version"})
        assert preflight.status_code == 204
        assert "GET" in preflight.headers["access-control-allow-methods"]
        refused = await client.get("/data")
        (challenge,) = parse_www_authenticate(refused.headers["www-authenticate"])
        assert challenge.params["resource_metadata"] == METADATA_URL


async def test_every_bearer_challenge_carries_resource_metadata() -> None:
    app = app_with(resource())
    async with asgi_client(app) as client:
        cases = [
            ({}, 401, None),
            ({"Authorization": "Bearer not-a-jwt"}, 401, "invalid_token"),
            ({"Authorization": f"Bearer {token(aud='https://other.test')}"}, 401,
             "invalid_token"),
            ({"Authorization": f"Bearer {token(exp=1000)}"}, 401, "invalid_token"),
            ({"Authorization": f"Bearer {token()}"}, 403, "insufficient_scope"),
        ]
        for headers, status, error in cases:
            response = await client.get("/data", headers=headers)
            assert response.status_code == status
            (challenge,) = parse_www_authenticate(response.headers["www-authenticate"])
            assert challenge.params["resource_metadata"] == METADATA_URL
            assert challenge.params.get("error") == error
            if status == 401 and error is None:  # no token: the scope this route needs
                assert challenge.params["scope"] == "write"
            elif status == 401:  # a bad token: what to ask for to use the resource
                assert challenge.params["scope"] == "read"
            else:  # RFC 6750 §3.1: the scope this route needs
                assert challenge.params["scope"] == "write"
                assert response.json()["required_scopes"] == ["write"]
        ok = await client.get("/data", headers={"Authorization": f"Bearer {token(scope='write')}"})
        assert ok.status_code == 200


def test_without_a_resource_challenges_are_unchanged() -> None:
    bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="x")
    assert dict(bearer.challenge().params) == {"realm": "authguard"}
    with_resource = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience="x",
                                        resource=resource())
    routed = with_resource.challenge(None, {"scope": "write"})  # a route's own scope
    assert dict(routed.params) == {"realm": "authguard", "resource_metadata": METADATA_URL,
                                   "scope": "write"}


def test_signed_metadata_is_a_jwt_of_the_same_members() -> None:
    key = "metadata-signing-secret-0123456789abcdef"
    pr = resource(signer=MetadataSigner(key=key, algorithm="HS256",
                                        issuer="https://api.example.test"))
    document = json.loads(pr.body)
    claims = jwt.decode(document.pop("signed_metadata"), key, algorithms=["HS256"])
    assert claims.pop("iss") == "https://api.example.test"
    assert claims == document


@pytest.mark.parametrize(("settings", "named"), [
    ({"resource": "api.example.test/mcp"}, "resource"),
    ({"resource": "http://api.example.test/mcp"}, "resource"),  # http off loopback
    ({"resource": "https://api.example.test/mcp#frag"}, "resource"),
    ({"resource": "https://api.example.test/mcp?x=1"}, "resource"),
    ({"resource": "https://u:p@api.example.test/mcp"}, "resource"),
    ({"resource": "https://api.example.test/\r\nX: y"}, "resource"),
    ({"authorization_servers": "https://as.example.test"}, "authorization_servers"),
    ({"authorization_servers": ["ftp://as.example.test"]}, "authorization_servers"),
    ({"scopes_supported": ["read write"]}, "scopes_supported"),
    ({"challenge_scopes": ["admin"]}, "challenge_scopes"),
    ({"bearer_methods_supported": ["cookie"]}, "bearer_methods_supported"),
    ({"resource_documentation": "javascript:alert(1)"}, "resource_documentation"),
    ({"max_age": -1}, "max_age"),
    ({"extra": {"resource": "https://elsewhere.test"}}, "extra"),
    ({"extra": {"x_when": object()}}, "extra"),
    ({"signer": MetadataSigner(key="k", algorithm="RS256", issuer="https://a.test")},
     "signer.key"),
])
def test_configuration_mistakes_name_the_setting(settings: dict[str, object],
                                                 named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        resource(**settings)


def test_loopback_http_is_allowed_for_development() -> None:
    pr = resource(resource="http://127.0.0.1:8001/mcp",
                  authorization_servers=["http://localhost:9000"])
    assert pr.metadata_url == "http://127.0.0.1:8001/.well-known/oauth-protected-resource/mcp"


async def test_dpop_challenges_carry_resource_metadata_too() -> None:
    """Every Bearer *and DPoP* challenge names the metadata document."""
    pr = resource()
    bearer = BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=pr.resource, resource=pr)
    dpop = DPoPAuthenticator(tokens=bearer, resource=pr)
    assert dpop.challenge().params["resource_metadata"] == METADATA_URL
    refused = dpop.challenge(Reason.CREDENTIALS_INVALID, {"resource_metadata": "https://x"})
    assert refused.params["resource_metadata"] == METADATA_URL  # never replaced per refusal
    app = Starlette(routes=[Route("/data", protect(Authenticated())(_ok))])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer, dpop]))
    async with asgi_client(app) as client:
        response = await client.get("/data")
    assert response.status_code == 401
    challenges = parse_www_authenticate(response.headers["www-authenticate"])
    assert {c.scheme: c.params["resource_metadata"] for c in challenges} == {
        "Bearer": METADATA_URL, "DPoP": METADATA_URL}


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})
