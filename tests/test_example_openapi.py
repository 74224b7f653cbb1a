"""The example app's ``/openapi.json``, fetched from a real server: schemes and refusals."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import http_client

pytestmark = pytest.mark.e2e

KINDS = {"Basic": ("http", "basic"), "Bearer": ("http", "bearer"), "ApiKey": ("apiKey", None),
         "Cookie": ("apiKey", None), "DPoP": ("http", "DPoP")}


@pytest.fixture(scope="module")
def doc(example_server: str) -> dict[str, Any]:
    with http_client(example_server) as c:
        r = c.get("/openapi.json")
        assert r.status_code == 200
        found: dict[str, Any] = r.json()
        return found


def test_every_authenticator_is_a_security_scheme(doc: dict[str, Any]) -> None:
    import app as example  # the example app module, on sys.path via conftest

    schemes = doc["components"]["securitySchemes"]
    for authenticator in example.guard.authenticators:
        kind, http_scheme = KINDS[authenticator.scheme]
        entry = schemes[authenticator.scheme]
        assert entry["type"] == kind
        if http_scheme:
            assert entry["scheme"] == http_scheme
    assert schemes["Basic"] == {**schemes["Basic"], "type": "http", "scheme": "basic"}
    assert schemes["ApiKey"]["in"] == "header" and schemes["ApiKey"]["name"] == "X-API-Key"
    if "Bearer" in schemes:
        assert schemes["Bearer"]["bearerFormat"] == "JWT"


def test_refusals_are_documented(doc: dict[str, Any]) -> None:
    problem = {"$ref": "#/components/schemas/Problem"}
    assert doc["components"]["schemas"]["Problem"]["required"] == [
        "type", "title", "status", "detail", "reason"]
    me = doc["paths"]["/me"]["get"]
    assert me["responses"]["401"]["content"]["application/problem+json"]["schema"] == problem
    assert "security" in me and {"Basic": []} in me["security"]
    admin = doc["paths"]["/admin"]["get"]
    assert {"401", "403"} <= set(admin["responses"])
    assert admin["responses"]["403"]["content"]["application/problem+json"]["schema"] == problem
    public = doc["paths"]["/public"]["get"]
    assert "security" not in public and "401" not in public["responses"]
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            if "security" in op and [{}] != op["security"][:1]:
                assert "401" in op["responses"], f"{method.upper()} {path} documents its 401"


def test_bearer_and_session_schemes_and_scopes(example_server: str) -> None:
    with http_client(example_server) as c:
        doc = c.get("/openapi.json").json()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["Bearer"] == {**schemes["Bearer"], "type": "http", "scheme": "bearer",
                                 "bearerFormat": "JWT"}
    assert schemes["Cookie"]["in"] == "cookie"
    assert schemes["Cookie"]["name"] == "authguard_session"
    reports = doc["paths"]["/reports"]["get"]
    assert {"Bearer": ["reports:read"]} in reports["security"]
    assert {"401", "403"} <= set(reports["responses"])
    step_up = doc["paths"]["/step-up"]["get"]
    assert "401" in step_up["responses"]
    assert "security" not in doc["paths"]["/login"]["post"] or \
        doc["paths"]["/login"]["post"]["security"] in ([], [{}])


def test_paid_routes_document_402_and_their_5xx(doc: dict[str, Any]) -> None:
    quote = doc["paths"]["/paid/quote"]["get"]["responses"]
    assert {"402", "502", "503"} <= set(quote)
    assert {"WWW-Authenticate", "PAYMENT-REQUIRED"} <= set(quote["402"]["headers"])
    assert "Retry-After" in quote["503"]["headers"]
    assert "do not pay again" in quote["502"]["description"]
    premium = doc["paths"]["/premium"]["get"]["responses"]
    assert {"401", "402", "503"} <= set(premium)
    assert "502" not in premium  # a plan calls no payment provider


def test_cookie_routes_that_change_state_document_origin_rejected(doc: dict[str, Any]) -> None:
    logout = doc["paths"]["/logout"]["post"]["responses"]
    assert {"401", "403"} <= set(logout)
    assert "origin_rejected" in logout["403"]["description"]
    account = doc["paths"]["/account"]["get"]["responses"]
    assert "403" not in account  # a GET is never origin-checked


def test_no_alternative_that_can_never_succeed(doc: dict[str, Any]) -> None:
    """OpenAPI 3.1: each security alternative is enough on its own. Only tokens carry a
    scope or an acr; the demo's passwords carry roles, its API keys roles, and its login
    form gives a session roles only (``SessionAuthenticator(claims=["roles"])``)."""
    for path in ("/reports", "/step-up"):
        offered = {name for alt in doc["paths"][path]["get"]["security"] for name in alt}
        assert offered == {"Bearer", "OAuth2", "DPoP"}, path
    admin = {name for alt in doc["paths"]["/admin"]["get"]["security"] for name in alt}
    assert {"Basic", "ApiKey", "Cookie", "Bearer"} <= admin


def test_dpop_route_documents_the_proof_reasons(doc: dict[str, Any]) -> None:
    examples = doc["paths"]["/dpop/me"]["get"]["responses"]["401"]["content"][
        "application/problem+json"]["examples"]
    assert {"dpop_proof_missing", "invalid_dpop_proof", "use_dpop_nonce"} <= set(examples)
    assert all(e["value"]["status"] == 401 for e in examples.values())
    # In-memory stores cannot be unreachable: no 503 where no payment provider is called.
    assert "503" not in doc["paths"]["/me"]["get"]["responses"]
