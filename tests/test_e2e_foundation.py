"""The example app under real uvicorn, over HTTP: the foundation's rows of the table."""

from __future__ import annotations

import base64
import shutil
import subprocess

import httpx
import pytest

from authguard.challenges import parse_www_authenticate
from helpers import http_client, need, uvicorn_server

pytestmark = pytest.mark.e2e

ALICE = ("alice", "wonderland")
BOB_KEY = {"X-API-Key": "demo-key-bob-0123456789"}


def test_public_needs_nothing(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/public", headers={"Authorization": "Basic garbage!!"})
    assert r.status_code == 200


def test_me_without_credentials_offers_every_scheme(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/me")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    lines = r.headers.get_list("www-authenticate")
    challenges = [parse_www_authenticate(line)[0] for line in lines]
    schemes = [ch.scheme for ch in challenges]
    assert {"Basic", "ApiKey"} <= set(schemes)
    assert len(lines) == len(schemes), "one challenge per field line"
    for ch in challenges:
        assert "error" not in ch.params, "no error parameter without credentials (RFC 6750 §3.1)"
    basic = next(ch for ch in challenges if ch.scheme == "Basic")
    assert basic.params["realm"] and basic.params["charset"] == "UTF-8"
    body = r.json()
    assert body["reason"] == "credentials_missing"
    assert body["schemes"] == schemes
    assert body["request_id"] == r.headers["x-request-id"]


def test_me_with_basic_and_api_key(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/me", auth=ALICE)
        assert r.status_code == 200
        assert r.json() == {"subject": "alice", "scheme": "Basic", "scopes": [],
                            "roles": ["user"]}
        r = c.get("/me", headers=BOB_KEY)
        assert r.json()["subject"] == "bob"
        assert r.json()["scheme"] == "ApiKey"


def test_admin_is_403_for_a_user_and_200_for_an_admin(example_server: str) -> None:
    with http_client(example_server) as c:
        r = c.get("/admin", auth=ALICE)
        assert r.status_code == 403
        assert r.json()["reason"] == "forbidden"
        assert "www-authenticate" not in r.headers
        assert c.get("/admin", headers=BOB_KEY).status_code == 200
        assert c.get("/admin", auth=("bob", "builder")).status_code == 200


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Authorization": "Basic %%%"}, "credentials_malformed"),
        ({"Authorization": "Basic " + base64.b64encode(b"nocolon").decode()},
         "credentials_malformed"),
        ({"Authorization": "Basic " + base64.b64encode(b"alice:wrong").decode()},
         "credentials_invalid"),
        ({"Authorization": "Basic " + base64.b64encode(b"nobody:wrong").decode()},
         "credentials_invalid"),
        ({"X-API-Key": "demo-key-nobody-000000"}, "credentials_invalid"),
        ({"X-API-Key": ""}, "credentials_malformed"),
    ],
)
def test_bad_credentials_get_their_reason_and_scheme_challenge(
    example_server: str, headers: dict[str, str], reason: str
) -> None:
    with http_client(example_server) as c:
        r = c.get("/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["reason"] == reason
    scheme = "ApiKey" if "X-API-Key" in headers else "Basic"
    assert [parse_www_authenticate(v)[0].scheme for v in r.headers.get_list("www-authenticate")
            ] == [scheme]


def test_no_5xx_for_malformed_headers_over_the_wire(example_server: str) -> None:
    nasty = [
        b"Basic", b"Basic  x", b"Basic =", b"Basic ====", b"basic YQ==", b"Basic \xff\xfe",
        b"Basic " + b"A" * 10000, b"Digest username=x", b"\x80\x81", b"Basic a b c",
    ]
    with http_client(example_server) as c:
        for value in nasty:
            r = c.get("/me", headers=[(b"Authorization", value)])
            assert r.status_code in (400, 401), (value, r.status_code)
            r = c.get("/admin", headers=[(b"X-API-Key", value)])
            assert r.status_code in (400, 401), (value, r.status_code)


def test_head_is_like_get_without_body(example_server: str) -> None:
    with http_client(example_server) as c:
        g = c.get("/me")
        h = c.head("/me")
    assert h.status_code == g.status_code == 401
    assert h.content == b""
    assert h.headers.get_list("www-authenticate") == g.headers.get_list("www-authenticate")


def test_cors_preflight_and_cross_origin_refusal(example_server: str) -> None:
    origin = "http://localhost:3000"
    with http_client(example_server) as c:
        pre = c.options("/me", headers={"Origin": origin,
                                        "Access-Control-Request-Method": "GET",
                                        "Access-Control-Request-Headers": "authorization"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == origin
        r = c.get("/me", headers={"Origin": origin})
    assert r.status_code == 401
    assert r.headers["access-control-allow-origin"] == origin
    exposed = r.headers["access-control-expose-headers"].lower()
    assert "www-authenticate" in exposed
    assert r.json()["reason"] == "credentials_missing"


def test_too_many_attempts_is_429_for_known_and_unknown_accounts() -> None:
    env = {"AUTHGUARD_DEMO_FAILURE_LIMIT": "3"}
    with uvicorn_server("app:app", env=env) as url, http_client(url) as c:
        for user in ("alice", "nobody"):
            for _ in range(3):
                assert c.get("/me", auth=(user, "wrong")).status_code == 401
            locked = c.get("/me", auth=(user, "wrong"))
            assert locked.status_code == 429
            assert locked.json()["reason"] == "too_many_attempts"
            assert int(locked.headers["retry-after"]) > 0
            assert locked.json()["retry_after"] == int(locked.headers["retry-after"])
        # Even the right password is refused while the account is locked.
        assert c.get("/me", auth=ALICE).status_code == 429
        # Another account from the same client is still fine (per-client limit is 20x).
        assert c.get("/me", auth=("bob", "builder")).status_code == 200


def test_curl_anyauth_picks_basic_from_the_challenges(example_server: str) -> None:
    need("curl", "checks that a real client reads the challenges and picks Basic")
    curl = shutil.which("curl")
    assert curl is not None
    out = subprocess.run(
        [curl, "--silent", "--show-error", "--anyauth", "-u", "alice:wonderland",
         "-w", "\n%{http_code}", f"{example_server}/me"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout
    body, _, status = out.rpartition("\n")
    assert status == "200", out
    assert httpx.Response(200, content=body).json()["subject"] == "alice"
