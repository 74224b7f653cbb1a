"""The example app's ``POST /token`` (OAuth2 password flow), under a real server, and its
declaration in ``/openapi.json`` that Swagger UI's Authorize runs."""

from __future__ import annotations

import jwt
import pytest

from helpers import http_client
from tokens import SETTINGS

pytestmark = pytest.mark.e2e


def test_a_password_buys_a_token_that_reads_reports(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.post("/token", data={"grant_type": "password", "username": "alice",
                                   "password": "wonderland", "scope": "reports:read other"})
        assert r.status_code == 200, r.text
        assert r.headers["cache-control"] == "no-store"
        body = r.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 900
        assert body["scope"] == "reports:read"  # unknown scopes are not granted
        claims = jwt.decode(body["access_token"], SETTINGS.jwt_secret, algorithms=["HS256"],
                            audience=SETTINGS.jwt_audience, issuer=SETTINGS.jwt_issuer)
        assert claims["sub"] == "alice" and claims["exp"] - claims["iat"] == 900
        auth = {"Authorization": f"Bearer {body['access_token']}"}
        r = c.get("/reports", headers=auth)
        assert r.status_code == 200 and r.json()["subject"] == "alice"
        # without the scope: the token works, the scoped route says which scope it needs
        r = c.post("/token", data={"username": "bob", "password": "builder"})
        assert r.json()["scope"] == ""
        auth = {"Authorization": f"Bearer {r.json()['access_token']}"}
        assert c.get("/me", headers=auth).json()["roles"] == ["admin", "user"]
        r = c.get("/reports", headers=auth)
        assert r.status_code == 403 and r.json()["reason"] == "insufficient_scope"


def test_wrong_password_and_bad_forms(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.post("/token", data={"username": "mallory", "password": "guess"})
        assert r.status_code == 401
        assert r.json()["reason"] == "credentials_invalid"
        for bad in ({"username": "alice"}, {"username": "alice", "password": "wonderland",
                                            "grant_type": "client_credentials"}):
            r = c.post("/token", data=bad)
            assert r.status_code == 400 and r.json()["reason"] == "invalid_request"
        r = c.post("/token", content="username=a&username=b&password=x",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400 and "repeated" in r.json()["detail"]
        r = c.post("/token", json={"username": "alice", "password": "wonderland"})
        assert r.status_code == 400 and r.json()["reason"] == "invalid_request"
        r = c.post("/token", content=b"username=%FF&password=\xff",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert r.status_code == 400


def test_openapi_declares_the_password_flow(example_server: str) -> None:
    with http_client(example_server) as c:
        doc = c.get("/openapi.json").json()
    flow = doc["components"]["securitySchemes"]["OAuth2"]
    assert flow["type"] == "oauth2"
    assert flow["flows"]["password"]["tokenUrl"] == "/token"
    assert "reports:read" in flow["flows"]["password"]["scopes"]
    token = doc["paths"]["/token"]["post"]
    form = token["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    assert {"username", "password"} <= set(form["required"])
    assert {"200", "400", "401", "429"} <= set(token["responses"])
    assert "security" not in token
    assert {"OAuth2": ["reports:read"]} in doc["paths"]["/reports"]["get"]["security"]
    assert {"OAuth2": []} in doc["paths"]["/me"]["get"]["security"]
