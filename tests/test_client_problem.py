"""``authguard.client.Problem`` and the exception per reason: authguard bodies, other servers'
refusals, inference from challenges and status, and nothing ever raised on bad input."""

from __future__ import annotations

import base64
import json
from email.utils import formatdate
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authguard import Reason
from authguard.client import (
    AuthenticationRequired,
    AuthError,
    AuthUnavailable,
    CredentialsRevoked,
    Forbidden,
    InsufficientScope,
    InvalidAuthRequest,
    InvalidCredentials,
    PaymentRequired,
    Problem,
    SessionExpired,
    StepUpRequired,
    TokenExpired,
    TokenNotYetValid,
    TokenWrongAudience,
    TooManyAttempts,
    error_class,
    error_for,
    parse_retry_after,
)
from authguard.client.problem import MAX_DELAY, MAX_JSON_BODY

PROBLEM = "application/problem+json"


def body(reason: str, status: int, **extra: Any) -> bytes:
    return json.dumps({"type": f"https://authguard.dev/reasons/{reason}", "title": "T",
                       "status": status, "detail": "D", "reason": reason, **extra}).encode()


def test_an_authguard_refusal() -> None:
    p = Problem.parse(
        401,
        [("Content-Type", PROBLEM), ("WWW-Authenticate", 'Basic realm="r", charset="UTF-8"'),
         ("WWW-Authenticate", 'Bearer realm="r"'), ("Date", "Fri, 27 Nov 2026 12:00:00 GMT")],
        body("credentials_missing", 401, request_id="abc", hints=["h1", "h2", 3],
             schemes=["Basic", "Bearer"], instance="/me"),
    )
    assert (p.status, p.reason, p.reason_source) == (401, "credentials_missing", "body")
    assert p.known_reason is Reason.CREDENTIALS_MISSING
    assert p.is_problem_json and p.type.endswith("credentials_missing")
    assert (p.title, p.detail, p.instance, p.request_id) == ("T", "D", "/me", "abc")
    assert p.hints == ("h1", "h2")  # non-strings dropped
    assert p.schemes == ("Basic", "Bearer")
    assert [c.scheme for c in p.challenges] == ["Basic", "Bearer"]
    assert p.challenge("BASIC") is p.challenges[0] and p.challenge("Digest") is None
    assert p.server_date == 1795780800.0
    assert p.body is not None and p.body["reason"] == "credentials_missing"


def test_step_up_scope_payment_and_retry_members() -> None:
    p = Problem.parse(401, {"content-type": PROBLEM, "www-authenticate":
                            'Bearer error="insufficient_user_authentication", '
                            'acr_values="mfa", max_age="300"'},
                      body("step_up_required", 401))
    assert (p.acr_values, p.max_age) == ("mfa", 300)
    assert p.bearer_error == "insufficient_user_authentication"
    p = Problem.parse(403, {"content-type": PROBLEM},
                      body("insufficient_scope", 403, required_scopes=["a:read", "b:write"]))
    assert p.required_scopes == ("a:read", "b:write")
    p = Problem.parse(402, {"content-type": PROBLEM},
                      body("payment_required", 402, payment={"offers": [{"amount": "1"}]}))
    assert p.payment == {"offers": [{"amount": "1"}]}
    p = Problem.parse(429, {"content-type": PROBLEM, "retry-after": "99"},
                      body("too_many_attempts", 429, retry_after=7))
    assert p.retry_after == 7.0  # the body wins over the header


def test_unknown_reason_is_kept_and_falls_back_to_the_status_class() -> None:
    p = Problem.parse(401, {"content-type": PROBLEM}, body("quota_exhausted", 401))
    assert p.reason == "quota_exhausted" and p.known_reason is None
    assert error_class(p) is AuthenticationRequired
    p = Problem.parse(403, {"content-type": PROBLEM}, body("geo_blocked", 403))
    assert error_class(p) is Forbidden


@pytest.mark.parametrize(
    ("status", "challenge", "reason"),
    [
        (401, 'Bearer error="invalid_token", error_description="The access token expired"',
         "token_expired"),
        (401, 'Bearer error="invalid_token", error_description="Token has been revoked"',
         "credentials_revoked"),
        (401, 'Bearer realm="x", error="invalid_token"', "credentials_invalid"),
        (401, 'Bearer error="invalid_token", error_description="Invalid audience"',
         "token_wrong_audience"),
        (401, 'Bearer error="invalid_token", error_description="The access token is for '
         'another audience or issuer"', "token_wrong_audience"),
        (403, 'Bearer error="insufficient_scope", scope="repo"', "insufficient_scope"),
        (401, 'Bearer error="insufficient_user_authentication", acr_values="mfa"',
         "step_up_required"),
        (400, 'Bearer error="invalid_request"', "invalid_request"),
        (401, 'DPoP error="invalid_token"', "credentials_invalid"),
    ],
)
def test_reason_inferred_from_a_bearer_challenge(status: int, challenge: str,
                                                 reason: str) -> None:
    p = Problem.parse(status, [("WWW-Authenticate", challenge)], b"")
    assert (p.reason, p.reason_source) == (reason, "challenge")
    assert not p.is_problem_json


def test_a_challenge_error_that_contradicts_the_status_is_not_believed() -> None:
    p = Problem.parse(401, [("WWW-Authenticate", 'Bearer error="insufficient_scope"')], b"",
                      sent_credentials=True)
    assert (p.reason, p.reason_source) == ("credentials_invalid", "status")


@pytest.mark.parametrize(
    ("status", "sent", "reason"),
    [(401, None, None), (401, False, "credentials_missing"), (401, True, "credentials_invalid"),
     (402, None, "payment_required"), (403, None, "forbidden"), (404, True, None),
     (500, True, None)],
)
def test_reason_inferred_from_the_status(status: int, sent: bool | None,
                                         reason: str | None) -> None:
    p = Problem.parse(status, [], b"Unauthorized", sent_credentials=sent)
    assert p.reason == reason
    assert p.reason_source == ("status" if reason else None)
    assert p.detail == "Unauthorized"


def test_other_servers_bodies() -> None:
    oauth = Problem.parse(401, {"content-type": "application/json"},
                          b'{"error": "invalid_token", "error_description": "Bad token"}')
    assert oauth.detail == "Bad token" and not oauth.is_problem_json
    github = Problem.parse(403, {}, b'{"message": "Must have admin rights"}')
    assert github.detail == "Must have admin rights" and github.reason == "forbidden"
    html = Problem.parse(401, {"content-type": "text/html"}, "<h1>401</h1>" + "x" * 2000)
    assert html.detail is not None and len(html.detail) == 500
    assert html.title == "Authentication required"
    broken = Problem.parse(401, {"content-type": PROBLEM}, b'{"reason": ')
    assert broken.reason is None and broken.body is None
    listy = Problem.parse(401, {"content-type": PROBLEM}, b"[1, 2]")
    assert listy.body is None


def test_malformed_challenges_are_recorded_and_the_others_kept() -> None:
    p = Problem.parse(401, [("WWW-Authenticate", 'Basic realm="unterminated'),
                            ("WWW-Authenticate", 'Bearer realm="ok"')], b"")
    assert [c.scheme for c in p.challenges] == ["Bearer"]
    assert len(p.challenge_errors) == 1 and "unterminated" in p.challenge_errors[0]


def test_retry_after_forms() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 5 ") == 5.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    now = 1_800_000_000.0
    assert parse_retry_after(formatdate(now + 90, usegmt=True), now=now) == 90.0
    assert parse_retry_after(formatdate(now - 90, usegmt=True), now=now) == 0.0
    p = Problem.parse(503, {"retry-after": "30"}, b"")
    assert p.retry_after == 30.0
    p = Problem.parse(429, {"content-type": PROBLEM}, body("too_many_attempts", 429,
                                                           retry_after=-5))
    assert p.retry_after == 0.0


def test_x402_payment_required_header() -> None:
    offer = {"x402Version": 2, "accepts": [{"scheme": "exact", "amount": "10000"}]}
    value = base64.b64encode(json.dumps(offer).encode()).decode().rstrip("=")
    p = Problem.parse(402, {"payment-required": value}, b"")
    assert p.payment_required == offer
    assert Problem.parse(402, {"payment-required": "%%%"}, b"").payment_required is None
    assert Problem.parse(402, {"payment-required": "WzFd"}, b"").payment_required is None


EXPECTED_CLASS: dict[Reason, type[AuthError]] = {
    Reason.CREDENTIALS_MISSING: AuthenticationRequired,
    Reason.CREDENTIALS_MALFORMED: InvalidCredentials,
    Reason.CREDENTIALS_INVALID: InvalidCredentials,
    Reason.TOKEN_WRONG_AUDIENCE: TokenWrongAudience,
    Reason.TOKEN_EXPIRED: TokenExpired,
    Reason.TOKEN_NOT_YET_VALID: TokenNotYetValid,
    Reason.CREDENTIALS_REVOKED: CredentialsRevoked,
    Reason.SESSION_EXPIRED: SessionExpired,
    Reason.SESSION_INVALID: SessionExpired,
    Reason.STEP_UP_REQUIRED: StepUpRequired,
    Reason.INSUFFICIENT_SCOPE: InsufficientScope,
    Reason.FORBIDDEN: Forbidden,
    Reason.ORIGIN_REJECTED: Forbidden,
    Reason.NETWORK_BLOCKED: Forbidden,
    Reason.INSECURE_TRANSPORT: Forbidden,
    Reason.PAYMENT_REQUIRED: PaymentRequired,
    Reason.PAYMENT_INVALID: PaymentRequired,
    Reason.TOO_MANY_ATTEMPTS: TooManyAttempts,
    Reason.AUTH_UNAVAILABLE: AuthUnavailable,
    Reason.INVALID_REQUEST: InvalidAuthRequest,
}


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_every_reason_has_its_exception(reason: Reason) -> None:
    p = Problem.parse(reason.status, {"content-type": PROBLEM}, body(reason.value, reason.status))
    error = error_for(p)
    assert isinstance(error, AuthError)
    if reason in EXPECTED_CLASS:
        assert type(error) is EXPECTED_CLASS[reason]
    assert error.status == reason.status and error.reason == reason.value
    assert error.problem is p and error.response is None
    assert str(error).startswith(f"{reason.status} {reason.value}: D")


def test_status_wins_over_a_reason_that_contradicts_it() -> None:
    p = Problem.parse(403, {"content-type": PROBLEM}, body("token_expired", 403))
    assert error_class(p) is Forbidden


def test_not_a_refusal() -> None:
    assert error_for(Problem.parse(200, {}, b"ok")) is None
    assert error_for(Problem.parse(404, {}, b"")) is None
    assert error_for(Problem.parse(503, {}, b"maintenance")) is None  # not about auth
    assert error_for(Problem.parse(429, {}, b"")) is None
    assert isinstance(error_for(Problem.parse(
        503, {"content-type": PROBLEM}, body("auth_unavailable", 503))), AuthUnavailable)
    assert error_class(Problem.parse(400, {}, b"")) is None


def test_exception_attributes() -> None:
    p = Problem.parse(401, {"content-type": PROBLEM, "www-authenticate":
                            'Bearer error="insufficient_user_authentication", '
                            'acr_values="mfa", max_age="60"'},
                      body("step_up_required", 401, hints=["sign in"]))
    e = error_for(p)
    assert isinstance(e, StepUpRequired)
    assert (e.acr_values, e.max_age, e.hints) == ("mfa", 60, ("sign in",))
    p = Problem.parse(403, {"content-type": PROBLEM},
                      body("insufficient_scope", 403, required_scopes=["reports:read"]))
    e = error_for(p)
    assert isinstance(e, InsufficientScope) and e.required_scopes == ("reports:read",)
    p = Problem.parse(402, {"content-type": PROBLEM},
                      body("payment_required", 402, payment={"checkout": "/buy"}))
    e = error_for(p)
    assert isinstance(e, PaymentRequired) and e.payment == {"checkout": "/buy"}
    p = Problem.parse(429, {"retry-after": "12", "content-type": PROBLEM},
                      body("too_many_attempts", 429))
    e = error_for(p)
    assert isinstance(e, TooManyAttempts) and e.retry_after == 12.0


header_names = st.sampled_from(["WWW-Authenticate", "Content-Type", "Retry-After", "Date",
                                "X-Request-ID", "PAYMENT-REQUIRED", "X-Other"])


@given(
    status=st.integers(100, 599),
    headers=st.lists(st.tuples(header_names, st.text(max_size=60)), max_size=6),
    raw=st.one_of(st.binary(max_size=200), st.text(max_size=200),
                  st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=10),
                               lambda c: st.lists(c, max_size=3)
                               | st.dictionaries(st.sampled_from(
                                   ["reason", "hints", "retry_after", "max_age", "schemes",
                                    "required_scopes", "payment", "detail", "type", "title"]),
                                   c, max_size=5), max_leaves=10).map(json.dumps)),
    sent=st.sampled_from([None, True, False]),
)
@settings(max_examples=400)
def test_problem_never_raises(status: int, headers: list[tuple[str, str]], raw: Any,
                              sent: bool | None) -> None:
    p = Problem.parse(status, headers, raw, sent_credentials=sent)
    assert p.status == status
    assert p.retry_after is None or p.retry_after >= 0
    error_for(p)  # never raises either


# -- hostile or odd headers and bodies: a value, never an exception ---------------------------


@pytest.mark.parametrize(
    "value",
    ["9" * 400, "9" * 5000, "\u00b2", "\u0663", "\u0661\u0662", "12\u00b2", "+5", "1e3",
     "\uff11\uff12"],
    ids=["400-digits", "5000-digits", "superscript-two", "arabic-indic-three",
         "arabic-indic-twelve", "digits-then-superscript", "plus", "exponent", "fullwidth"],
)
def test_retry_after_takes_only_ascii_digits_and_never_raises(value: str) -> None:
    parsed = parse_retry_after(value)
    if value.isascii() and value.isdigit():
        assert parsed == MAX_DELAY  # clamped, not an OverflowError
    else:
        assert parsed is None
    p = Problem.parse(503, {"content-type": PROBLEM, "retry-after": value},
                      body("auth_unavailable", 503))
    assert p.retry_after == parsed
    assert isinstance(error_for(p), AuthUnavailable)


def test_retry_after_digits_are_read_and_clamped() -> None:
    assert parse_retry_after("0" * 40 + "42") == 42.0
    assert parse_retry_after("31622399") == 31622399.0
    assert parse_retry_after("9999999999") == MAX_DELAY


@pytest.mark.parametrize("value", ["\u00b2", "\u0663", "9" * 400, "9" * 5000, "-1", "1.5"])
def test_a_bearer_max_age_that_is_not_ascii_digits_is_ignored(value: str) -> None:
    challenge = f'Bearer error="insufficient_user_authentication", max_age="{value}"'
    p = Problem.parse(401, [("WWW-Authenticate", challenge)], b"")
    assert p.reason == "step_up_required"
    assert p.max_age == (MAX_DELAY if value.isascii() and value.isdigit() else None)
    assert isinstance(error_for(p), StepUpRequired)


def test_absurd_body_numbers_are_clamped() -> None:
    huge = Problem.parse(429, {"content-type": PROBLEM},
                         body("too_many_attempts", 429, retry_after=10**400, max_age=10**400))
    assert huge.retry_after == MAX_DELAY and huge.max_age == MAX_DELAY
    raw = b'{"reason": "too_many_attempts", "retry_after": 1e999}'  # inf
    assert Problem.parse(429, {"content-type": PROBLEM}, raw).retry_after == MAX_DELAY
    raw = b'{"reason": "too_many_attempts", "retry_after": NaN}'
    assert Problem.parse(429, {"content-type": PROBLEM, "retry-after": "3"}, raw
                         ).retry_after == 3.0
    negative = Problem.parse(401, {"content-type": PROBLEM},
                             body("step_up_required", 401, max_age=-5))
    assert negative.max_age is None


def test_an_asctime_date_is_utc_not_local_time(monkeypatch: pytest.MonkeyPatch) -> None:
    import time as time_module

    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30: a local reading would be off
    time_module.tzset()
    try:
        for value in ("Sun Nov  6 08:49:37 1994", "Sunday, 06-Nov-94 08:49:37 GMT",
                      "Sun, 06 Nov 1994 08:49:37 GMT"):
            p = Problem.parse(401, {"date": value}, b"")
            assert p.server_date == 784111777.0, value
    finally:
        monkeypatch.delenv("TZ")
        time_module.tzset()
    assert Problem.parse(401, {"date": "Sun, \u06606 Nov 1994 08:49:37 GMT"}, b""
                         ).server_date is None


def nested(depth: int) -> str:
    return '{"a":' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100, 100_000], ids=["deep", "deeper-than-the-stack"])
def test_deeply_nested_json_is_not_read(depth: int) -> None:
    p = Problem.parse(401, {"content-type": PROBLEM}, nested(depth).encode(),
                      sent_credentials=False)
    assert p.body is None and p.reason == "credentials_missing"
    header = base64.b64encode(nested(depth).encode()).decode()
    p = Problem.parse(402, {"payment-required": header}, b"")
    assert p.payment_required is None and p.reason == "payment_required"
    assert isinstance(error_for(p), PaymentRequired)


def test_a_huge_body_is_not_parsed_as_json() -> None:
    big = json.dumps({"reason": "token_expired", "pad": "x" * (MAX_JSON_BODY + 10)})
    p = Problem.parse(401, {"content-type": PROBLEM}, big.encode(), sent_credentials=True)
    assert p.body is None and p.reason == "credentials_invalid"
    assert p.detail is not None and len(p.detail) == 500
    small = json.dumps({"reason": "token_expired", "pad": "x" * 1000})
    assert Problem.parse(401, {"content-type": PROBLEM}, small).reason == "token_expired"


@pytest.mark.parametrize(
    ("ctype", "raw", "reason", "source"),
    [
        ("application/json", {"kind": "Status", "status": "Failure", "reason": "Unauthorized",
                              "message": "Unauthorized", "code": 401},
         "credentials_invalid", "status"),
        ("application/json", {"reason": "Forbidden", "type": "x", "title": "y"},
         "credentials_invalid", "status"),
        ("application/json", {"reason": "token_expired"}, "token_expired", "body"),
        ("application/problem+json", {"reason": "quota_exhausted"}, "quota_exhausted", "body"),
        ("text/plain", {"reason": "quota_exhausted"}, "credentials_invalid", "status"),
    ],
    ids=["kubernetes-status", "problem-shaped-json", "known-code", "problem-json",
         "unknown-code-not-problem-json"],
)
def test_a_body_reason_is_trusted_only_from_problem_json_or_when_known(
    ctype: str, raw: dict[str, Any], reason: str, source: str
) -> None:
    p = Problem.parse(401, {"content-type": ctype}, json.dumps(raw), sent_credentials=True)
    assert (p.reason, p.reason_source) == (reason, source)


def test_required_roles_reach_the_client_and_explain() -> None:
    import io

    import httpx
    from rich.console import Console

    from authguard.client import Problem
    from authguard.client.explain import _render, explain_response

    body = {"type": "https://authguard.dev/reasons/forbidden", "title": "Forbidden",
            "status": 403, "detail": "No.", "reason": "forbidden",
            "required_roles": ["admin"]}
    request = httpx.Request("GET", "http://api.test/admin")
    response = httpx.Response(403, json=body, request=request,
                              headers={"Content-Type": "application/problem+json"})
    assert Problem.from_response(response).required_roles == ("admin",)
    data = explain_response(response)
    assert data["required_roles"] == ["admin"]
    out = io.StringIO()
    _render(data, Console(file=out, width=120))
    assert "required roles: admin" in out.getvalue()
