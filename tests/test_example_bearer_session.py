"""The example app under real uvicorn: Bearer tokens, step-up, scopes, sessions, revocation."""

from __future__ import annotations

import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

import httpx
import pytest

from authguard.challenges import parse_www_authenticate
from helpers import http_client, uvicorn_server
from tokens import SETTINGS, bearer, mint

pytestmark = pytest.mark.e2e


@pytest.fixture
def server() -> Iterator[str]:
    """A fresh example app (these tests revoke tokens and end sessions)."""
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000"}) as url:
        yield url


def bearer_challenge(r: httpx.Response) -> dict[str, str]:
    for line in r.headers.get_list("www-authenticate"):
        ch = parse_www_authenticate(line)[0]
        if ch.scheme == "Bearer":
            return dict(ch.params)
    raise AssertionError("no Bearer challenge")


def test_me_offers_a_challenge_per_scheme_without_error(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/me")
    schemes = [parse_www_authenticate(x)[0].scheme
               for x in r.headers.get_list("www-authenticate")]
    assert schemes == ["Basic", "Bearer", "ApiKey", "Cookie", "DPoP"]
    assert bearer_challenge(r) == {"realm": "authguard-demo"}
    cookie = parse_www_authenticate(r.headers.get_list("www-authenticate")[3])[0]
    assert cookie.params["form-action"] == "/login"
    assert cookie.params["cookie-name"] == "authguard_session"


def test_bearer_on_me_reports_and_step_up(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/me", headers=bearer(mint("carol", scope="reports:read", roles=["user"])))
        assert r.status_code == 200
        assert r.json() == {"subject": "carol", "scheme": "Bearer",
                            "scopes": ["reports:read"], "roles": ["user"]}
        assert c.get("/reports", headers=bearer(mint(scope="reports:read"))).status_code == 200
        r = c.get("/reports", headers=bearer(mint(scope="profile reports:write")))
        assert r.status_code == 403
        assert r.json()["reason"] == "insufficient_scope"
        assert r.json()["required_scopes"] == ["reports:read"]
        ch = bearer_challenge(r)
        assert ch["error"] == "insufficient_scope" and ch["scope"] == "reports:read"
        # scp as a list works as well as scope
        r = c.get("/reports", headers=bearer(mint(scope=None, scp=["reports:read"])))
        assert r.status_code == 200

        now = int(time.time())
        r = c.get("/step-up", headers=bearer(mint(acr="pwd", auth_time=now)))
        assert r.status_code == 401
        assert r.json()["reason"] == "step_up_required"
        ch = bearer_challenge(r)
        assert ch["error"] == "insufficient_user_authentication"
        assert ch["acr_values"] == "mfa" and ch["max_age"] == "300"
        r = c.get("/step-up", headers=bearer(mint(acr="mfa", auth_time=now - 3600)))
        assert r.json()["reason"] == "step_up_required"
        assert c.get("/step-up", headers=bearer(mint(acr="mfa", auth_time=now))).status_code == 200


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (lambda: mint(lifetime=-60), "token_expired"),
        (lambda: mint(nbf=int(time.time()) + 3600), "token_not_yet_valid"),
        (lambda: mint(iat=int(time.time()) + 3600), "token_not_yet_valid"),
        (lambda: mint(aud="another-service"), "token_wrong_audience"),
        (lambda: mint(iss="https://evil.example"), "token_wrong_audience"),
        (lambda: mint(secret="x" * 40), "credentials_invalid"),
        (lambda: mint(exp=None), "credentials_invalid"),
        (lambda: mint(sub=None), "credentials_invalid"),
        (lambda: mint(exp="tomorrow"), "credentials_invalid"),
        (lambda: "not-a-jwt", "credentials_malformed"),
        (lambda: "a.b.c", "credentials_malformed"),
        (lambda: "a.b.c.d.e", "credentials_malformed"),
        (lambda: "x" * 9000, "credentials_malformed"),
        (lambda: mint(exp=10 ** 400), "credentials_invalid"),
        (lambda: mint(auth_time=10 ** 400), "credentials_invalid"),
        (lambda: mint(headers={"typ": "refresh+jwt"}), "credentials_invalid"),
    ],
    ids=["expired", "nbf-future", "iat-future", "aud", "iss", "signature", "no-exp", "no-sub",
         "exp-string", "garbage", "3-part-garbage", "5-part", "oversize", "exp-400-digits",
         "auth-time-400-digits", "refresh-token"],
)
def test_bad_tokens_get_their_own_reason(example_server: str, token: object,
                                         reason: str) -> None:
    value = token()  # type: ignore[operator]
    with http_client(example_server) as c:
        r = c.get("/me", headers=bearer(value))
    assert r.status_code == 401
    body = r.json()
    assert body["reason"] == reason
    assert bearer_challenge(r)["error"] == "invalid_token"
    assert value not in r.text
    if reason == "token_not_yet_valid":
        # The Date header lets the client see the skew; the body names it.
        assert r.headers.get("date")
        parsedate_to_datetime(r.headers["date"])
        assert body["clock_skew_seconds"] > 3000


def test_a_token_sent_twice_is_invalid_request(example_server: str) -> None:
    token = mint()
    with http_client(example_server) as c:
        r = c.get("/me", headers=[("Authorization", f"Bearer {token}"),
                                  ("Authorization", f"Bearer {token}")])
    assert r.status_code == 400
    assert r.json()["reason"] == "invalid_request"
    assert bearer_challenge(r)["error"] == "invalid_request"


def test_login_session_logout(server: str) -> None:
    with http_client(server) as c:
        r = c.post("/login", json={"username": "alice", "password": "nope"})
        assert r.status_code == 401 and r.json()["reason"] == "credentials_invalid"
        assert "set-cookie" not in r.headers
        r = c.post("/login", json={"username": "alice", "password": "wonderland"})
        assert r.status_code == 200
        set_cookie = r.headers["set-cookie"].lower()
        assert "httponly" in set_cookie and "samesite=lax" in set_cookie
        assert "path=/" in set_cookie and "secure" not in set_cookie  # plain http here
        cookie = c.cookies["authguard_session"]
        r = c.get("/me")
        assert r.json()["scheme"] == "Cookie" and r.json()["subject"] == "alice"
        # A new session id at every login: the old cookie is ended by the new login.
        c.post("/login", json={"username": "alice", "password": "wonderland"})
        assert c.cookies["authguard_session"] != cookie
        assert c.post("/logout").status_code == 200
        assert "authguard_session" not in c.cookies
    # A copied cookie stops working after logout, and the answer deletes it.
    with http_client(server, cookies={"authguard_session": cookie}) as copy:
        r = copy.get("/me")
    assert r.status_code == 401
    assert r.json()["reason"] == "session_expired"
    assert 'authguard_session=""' in r.headers["set-cookie"]
    assert "Max-Age=0" in r.headers["set-cookie"]


def test_tampered_cookie_is_session_invalid_and_deleted(server: str) -> None:
    with http_client(server) as c:
        c.post("/login", json={"username": "bob", "password": "builder"})
        value = c.cookies["authguard_session"]
    tampered = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
    for bad in (tampered, "garbage", "a.b.c", "é" * 10):
        with http_client(server) as c:
            r = c.get("/me", headers={"Cookie": f"authguard_session={bad}".encode()})
        assert r.status_code == 401, bad
        assert r.json()["reason"] == "session_invalid"
        assert r.headers["set-cookie"].startswith('authguard_session=""')
        challenge = parse_www_authenticate(r.headers["www-authenticate"])[0]
        assert challenge.scheme == "Cookie"


def test_cookie_cannot_be_used_from_another_origin(server: str) -> None:
    with http_client(server) as c:
        c.post("/login", json={"username": "alice", "password": "wonderland"})
        r = c.post("/logout", headers={"Origin": "http://evil.example"})
        assert r.status_code == 403 and r.json()["reason"] == "origin_rejected"
        r = c.post("/logout", headers={"Referer": "http://evil.example/page"})
        assert r.json()["reason"] == "origin_rejected"
        r = c.post("/logout", headers={"Origin": "null"})
        assert r.json()["reason"] == "origin_rejected"
        assert c.get("/me", headers={"Origin": "http://evil.example"}).status_code == 200
        host = httpx.URL(server).netloc.decode()
        r = c.post("/logout", headers={"Origin": f"http://{host}"})
        assert r.status_code == 200
    with http_client(server) as c:
        c.post("/login", json={"username": "alice", "password": "wonderland"})
        r = c.post("/logout", headers={"Origin": SETTINGS.cors_origin})
        assert r.status_code == 200


def test_revocation_by_jti_and_by_subject(server: str) -> None:
    admin = ("bob", "builder")
    first, second = mint("alice", jti="token-1"), mint("alice", jti="token-2")
    with http_client(server) as c:
        assert c.get("/me", headers=bearer(first)).status_code == 200
        assert c.post("/admin/revoke", json={"jti": "token-1"}, auth=admin).status_code == 200
        r = c.get("/me", headers=bearer(first))
        assert r.status_code == 401 and r.json()["reason"] == "credentials_revoked"
        assert bearer_challenge(r)["error"] == "invalid_token"
        assert c.get("/me", headers=bearer(second)).status_code == 200
        r = c.post("/admin/revoke", json={"jti": "x"}, auth=("alice", "wonderland"))
        assert r.status_code == 403
    with http_client(server) as alice:
        alice.post("/login", json={"username": "alice", "password": "wonderland"})
        assert alice.get("/me").status_code == 200
        with http_client(server) as c:
            r = c.post("/admin/revoke", json={"subject": "alice"}, auth=admin)
            assert r.status_code == 200
            r = c.get("/me", headers=bearer(second))
            assert r.json()["reason"] == "credentials_revoked"
        r = alice.get("/me")
        assert r.status_code == 401 and r.json()["reason"] == "credentials_revoked"
        assert 'authguard_session=""' in r.headers["set-cookie"]
        # Credentials issued after the change work.
        time.sleep(1.1)  # token iat has whole-second resolution
        assert alice.get("/me", headers=bearer(mint("alice"))).status_code == 200
        alice.post("/login", json={"username": "alice", "password": "wonderland"})
        assert alice.get("/me").status_code == 200


def test_login_form_and_account_page(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/login", params={"next": "//evil.example"})
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/html")
        assert 'data-next="/account"' in r.text  # no open redirect
        r = c.get("/login", params={"next": "/account?tab=1"})
        assert 'data-next="/account?tab=1"' in r.text
        r = c.get("/account", headers={"Accept": "text/html"})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/account"
        assert c.get("/account").status_code == 401
        c.post("/login", json={"username": "carol", "password": "rainbow"})
        r = c.get("/account", headers={"Accept": "text/html"})
        assert r.status_code == 200 and "carol" in r.text


def test_insufficient_scope_challenges_only_bearer(example_server: str) -> None:
    """A 403 never asks for credentials that would not change the outcome (DESIGN §1):
    a Basic user is not asked for a password again, but told which token would do —
    without an error code, which is about a token the client presented (RFC 6750 §3.1,
    RFC 9470 §3)."""
    with http_client(example_server) as c:
        r = c.get("/reports", auth=("alice", "wonderland"))
        assert r.status_code == 403 and r.json()["reason"] == "insufficient_scope"
        (line,) = r.headers.get_list("www-authenticate")
        assert line.startswith("Bearer ")
        assert bearer_challenge(r) == {"realm": "authguard-demo", "scope": "reports:read"}
        r = c.get("/step-up", auth=("alice", "wonderland"))
        assert r.status_code == 401 and r.json()["reason"] == "step_up_required"
        (line,) = r.headers.get_list("www-authenticate")
        assert "error" not in bearer_challenge(r)
        assert bearer_challenge(r)["acr_values"] == "mfa"
        r = c.get("/reports", headers=bearer(mint(scope="")))
        assert r.status_code == 403
        assert bearer_challenge(r)["error"] == "insufficient_scope"


def test_only_clients_that_prefer_html_are_redirected(example_server: str) -> None:
    with http_client(example_server) as c:
        for accept in ("text/html;q=0, application/json", "application/json, text/html;q=0.1",
                       "text/html;q=nonsense", "application/problem+json"):
            r = c.get("/account", headers={"Accept": accept})
            assert r.status_code == 401, accept
        browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
        r = c.get("/account", headers={"Accept": browser})
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/account"
