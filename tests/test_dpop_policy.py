"""DPoP policy: a route may take DPoP only or both schemes; a guard may take an issuer's
tokens only with DPoP (its Bearer verifier composed, not configured); OpenAPI documents the
DPoP scheme with the route's scopes."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from starlette.requests import Request

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    DPoPAuthenticator,
    HasScopes,
    protect,
)
from authguard.challenges import parse_www_authenticate
from authguard.fastapi import install
from dpop_helpers import ClientKey, bound_token, dpop_headers, proof
from helpers import asgi_client
from test_dpop import BASE, make_bearer
from tokens import bearer, mint


def dpop_only_app() -> FastAPI:
    # The issuer's Bearer verifier is given to DPoP but not to the guard: its tokens are
    # accepted only with a proof, on every route.
    dpop = DPoPAuthenticator(tokens=make_bearer(), algorithms=["ES256"])
    app = FastAPI()

    @app.get("/reports")
    @protect(HasScopes("reports:read"))
    async def reports(request: Request) -> dict[str, Any]:
        return {"subject": request.user.subject}

    @app.get("/both")
    @protect(Authenticated())
    async def both(request: Request) -> dict[str, Any]:
        return {"scheme": request.user.scheme}

    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[dpop]))
    install(app, AuthGuard(authenticators=[dpop]))
    return app


async def test_a_guard_with_dpop_only_refuses_plain_bearer_tokens() -> None:
    key = ClientKey()
    async with asgi_client(dpop_only_app()) as c:
        r = await c.get("/both", headers=bearer(mint()))
        assert r.status_code == 401 and r.json()["reason"] == "credentials_missing"
        lines = r.headers.get_list("www-authenticate")
        assert [parse_www_authenticate(x)[0].scheme for x in lines] == ["DPoP"]
        token = bound_token(key, scope="reports:read")
        r = await c.get("/reports", headers=dpop_headers(
            token, proof(key, "GET", BASE + "/reports", token)))
        assert r.status_code == 200


async def test_openapi_declares_the_dpop_scheme_with_the_routes_scopes() -> None:
    async with asgi_client(dpop_only_app()) as c:
        doc = (await c.get("/openapi.json")).json()
    scheme = doc["components"]["securitySchemes"]["DPoP"]
    assert scheme["type"] == "http" and scheme["scheme"] == "DPoP"
    assert "ES256" in scheme["description"]
    assert doc["paths"]["/reports"]["get"]["security"] == [{"DPoP": ["reports:read"]}]
    assert "401" in doc["paths"]["/reports"]["get"]["responses"]


def test_the_rfc_9728_members_name_the_algorithms_and_the_requirement() -> None:
    dpop = DPoPAuthenticator(tokens=make_bearer(), algorithms=["ES256", "EdDSA"])
    assert dpop.metadata() == {"dpop_signing_alg_values_supported": ["ES256", "EdDSA"],
                               "dpop_bound_access_tokens_required": False}
    assert dpop.metadata(required=True)["dpop_bound_access_tokens_required"] is True
