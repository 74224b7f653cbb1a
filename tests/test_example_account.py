"""The example app's ``GET /account``: browsers go to the login page, API clients get JSON."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import http_client

pytestmark = pytest.mark.e2e

NAVIGATION = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def test_browser_is_sent_to_the_login_page(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/account", headers=NAVIGATION)
        assert r.status_code == 303
        assert r.headers["location"] == "/login?next=/account"
        r = c.get("/account?tab=keys", headers=NAVIGATION)
        target = urlsplit(r.headers["location"])
        assert target.path == "/login"
        assert parse_qs(target.query) == {"next": ["/account?tab=keys"]}
        r = c.head("/account", headers=NAVIGATION)
        assert r.status_code == 303 and r.content == b""


def test_api_client_gets_the_problem(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/account", headers={"Accept": "application/json"})
        assert r.status_code == 401
        assert r.json()["reason"] == "credentials_missing"
        assert r.headers.get_list("www-authenticate")


def test_signed_in_user_sees_the_page(example_server: str) -> None:
    with http_client(example_server) as c:
        # The page accepts only the session: an API key is not a sign-in here.
        r = c.get("/account", headers={**NAVIGATION, "X-API-Key": "demo-key-bob-0123456789"})
        assert r.status_code == 303
        assert c.post("/login", json={"username": "bob", "password": "builder"}).is_success
        r = c.get("/account", headers=NAVIGATION)
        assert r.status_code == 200
        assert "Signed in as <strong>bob</strong>" in r.text
