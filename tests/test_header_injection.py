"""Header injection: configured and dynamic strings never break a header or a body.

Realms, error descriptions, scope names, login URLs and refusal headers holding quotes,
backslashes, CR/LF or non-Latin-1 text are escaped, percent-encoded, dropped, or refused at
start-up with a message naming the setting — never emitted raw, never a 500.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hardening_app
import rawasgi
from authguard import (
    APIKeyAuthenticator,
    AuthGuard,
    BasicAuthenticator,
    BearerAuthenticator,
    Challenge,
    ConfigurationError,
    HeaderValueError,
    JWTKey,
    SessionAuthenticator,
    StaticAPIKeys,
    StaticPasswords,
    parse_www_authenticate,
)
from authguard.challenges import format_challenge
from helpers import ROOT, check_refusal, http_client, uvicorn_server

REALMS = ['say "hi"', "back\\slash", 'both \\" mixed', "comma, and = sign", "café Ünïcode",
          "tab\there", "", "x" * 500, '"', "\\"]


def authenticators_with(realm: str) -> list[object]:
    users = StaticPasswords({})
    return [
        BasicAuthenticator(verifier=users, realm=realm),
        APIKeyAuthenticator(store=StaticAPIKeys({}), realm=realm),
        BearerAuthenticator(key=JWTKey.hs256("k" * 32), audience="a", realm=realm),
        SessionAuthenticator(secret_keys=["s" * 32], realm=realm),
    ]


@pytest.mark.parametrize("realm", REALMS)
def test_realms_round_trip_through_the_strict_parser(realm: str) -> None:
    for a in authenticators_with(realm):
        challenge = a.challenge(None, None)  # type: ignore[attr-defined]
        line = format_challenge(challenge)
        assert "\r" not in line and "\n" not in line
        line.encode("latin-1")
        (parsed,) = parse_www_authenticate(line)
        assert parsed.scheme == challenge.scheme
        assert parsed.params["realm"] == realm


@pytest.mark.parametrize("realm", ["a\r\nSet-Cookie: x=1", "a\nb", "nul\x00", "bell\x07",
                                   "del\x7f", "日本", "emoji 🙂"])
def test_realms_that_cannot_be_sent_refuse_to_start_naming_the_setting(realm: str) -> None:
    users = StaticPasswords({})
    makers = [
        lambda: BasicAuthenticator(verifier=users, realm=realm),
        lambda: APIKeyAuthenticator(store=StaticAPIKeys({}), realm=realm),
        lambda: BearerAuthenticator(key=JWTKey.hs256("k" * 32), audience="a", realm=realm),
        lambda: SessionAuthenticator(secret_keys=["s" * 32], realm=realm),
    ]
    for make in makers:
        with pytest.raises(ConfigurationError, match=r"^realm: ") as info:
            make()
        assert isinstance(info.value, HeaderValueError)  # both, for callers of either


def test_session_login_url_in_the_challenge_is_checked() -> None:
    with pytest.raises(ConfigurationError, match=r"^login_url: "):
        SessionAuthenticator(secret_keys=["s" * 32], login_url="/in\r\nX: y")


@pytest.mark.parametrize(("setting", "value"), [
    ("login_url", "/in\r\nLocation: //evil.example"), ("login_url", "/sign in"),
    ("login_url", "/日本"), ("login_url", "//evil.example"), ("login_url", "/a\\b"),
    ("request_id_header", "x-request id"), ("request_id_header", "x-id\r\n"),
    ("request_id_header", "x-ïd"),
])
def test_guard_strings_that_would_break_a_header_refuse_to_start(setting: str,
                                                                 value: str) -> None:
    basic = BasicAuthenticator(verifier=StaticPasswords({}))
    with pytest.raises(ConfigurationError, match=rf"^{setting}: "):
        AuthGuard(authenticators=[basic], **{setting: value})  # type: ignore[arg-type]


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_any_text_is_quoted_or_refused_never_emitted_raw(value: str) -> None:
    try:
        challenge = Challenge("Bearer", {"realm": value, "error_description": value})
    except HeaderValueError:
        assert any(c in value for c in "\r\n\x00") or not all(
            c == "\t" or " " <= c <= "~" or "\x80" <= c <= "\xff" for c in value)
        return
    line = str(challenge)
    assert "\r" not in line and "\n" not in line
    (parsed,) = parse_www_authenticate(line.encode("latin-1").decode("latin-1"))
    assert parsed.params["realm"] == value
    assert parsed.params["error_description"] == value


# -- refusals with hostile parts, in process and under uvicorn -------------------------------

def _check_headers(headers: list[tuple[bytes, bytes]]) -> None:
    for name, value in headers:
        assert b"\r" not in value and b"\n" not in value, (name, value)
        assert name.lower() != b"set-cookie" or not value.startswith(b"injected"), value


async def test_a_bad_challenge_parameter_is_dropped_the_rest_is_sent() -> None:
    answer = await rawasgi.http(hardening_app.app, "GET", "/evil", [])
    rawasgi.check_answer(answer)
    _check_headers(answer.headers)
    assert answer.status == 403
    (line,) = answer.header(b"www-authenticate")
    (bearer,) = parse_www_authenticate(line.decode("latin-1"))
    assert bearer.params["error"] == "insufficient_scope"
    assert bearer.params["realm"] == hardening_app.REALM
    assert bearer.params["acr_values"] == "fine"  # the good parameter survives
    assert "scope" not in bearer.params and "error_description" not in bearer.params
    body = json.loads(answer.body)
    assert body["detail"] == hardening_app.EVIL  # JSON carries any text safely


async def test_bad_refusal_headers_and_cookie_names_are_dropped() -> None:
    answer = await rawasgi.http(hardening_app.app, "GET", "/evil", query=b"kind=headers")
    rawasgi.check_answer(answer)
    _check_headers(answer.headers)
    names = [n for n, _ in answer.headers]
    assert b"x-evil" not in names and b"bad name" not in names and b"x-unicode" not in names
    assert answer.header(b"retry-after") == [b"5"]
    cookies = answer.header(b"set-cookie")
    assert len(cookies) == 1 and cookies[0].startswith(b'ok_cookie=""')
    body = json.loads(answer.body)
    assert body["when"] == "2026-01-01 00:00:00+00:00"  # not JSON-native: sent as text
    assert body["note"] == hardening_app.EVIL
    (line,) = answer.header(b"www-authenticate")
    assert parse_www_authenticate(line.decode("latin-1"))[0].params["realm"] == \
        hardening_app.REALM


async def test_login_redirect_percent_encodes_the_configured_url() -> None:
    answer = await rawasgi.http(hardening_app.app, "GET", "/page",
                                [(b"accept", b"text/html")])
    assert answer.status == 303
    (location,) = answer.header(b"location")
    assert location == b"/l%C3%B6gin%20page?from=x&next=/page"


@pytest.mark.e2e
def test_hostile_strings_under_uvicorn() -> None:
    """The real server accepts every header authguard sends (h11 refuses CR/LF outright)."""
    with uvicorn_server("hardening_app:app", app_dir=ROOT / "tests") as base, \
            http_client(base) as client:
        r = client.get("/me")
        assert r.status_code == 401
        realms = {c.params["realm"] for c in
                  parse_www_authenticate(r.headers.get_list("www-authenticate"))}
        assert realms == {hardening_app.REALM}
        for query in ("kind=scope", "kind=headers"):
            r = client.get("/evil?" + query)
            assert r.status_code in (401, 403)
            assert "injected" not in r.headers.get("set-cookie", "")
            assert r.json()["detail"] == hardening_app.EVIL
        r = client.get("/page", headers={"Accept": "text/html"}, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/l%C3%B6gin%20page?")
        good = client.get("/me", headers={"Authorization": hardening_app.GOOD_BASIC})
        assert good.json() == {"subject": "alice"}


def test_basic_user_ids_with_quotes_and_unicode_never_reach_a_header() -> None:
    """A user-id is the one user string Basic reads; it is never echoed anywhere."""
    with uvicorn_server("hardening_app:app", app_dir=ROOT / "tests") as base, \
            httpx.Client(base_url=base, timeout=10) as client:
        for user in ['"', "\\", "日本", "a\"b\\c", "x" * 300]:
            cred = base64.b64encode(f"{user}:pw".encode()).decode()
            r = client.get("/me", headers={"Authorization": f"Basic {cred}"})
            check_refusal(r)
            assert r.status_code == 401
            assert user not in r.text or user in ('"', "\\")  # JSON escapes; never echoed
            assert cred not in r.text and cred not in str(r.headers)
