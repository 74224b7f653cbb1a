"""``authguard explain URL`` end to end: the example app and a plain Starlette app, each
under real uvicorn, asked through the real command (``authguard.cli.main``), its ``--json``
output checked structurally and its text output for what a person needs to read."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from authguard import Reason
from authguard.cli import main
from authguard.client import parse_www_authenticate
from authguard.client.explain import explain_response
from authguard.client.problem import MAX_DELAY
from authguard.reasons import spec
from helpers import ROOT, free_port, http_client, uvicorn_server
from leakcheck import RECORDER
from tokens import SETTINGS, bearer, mint

# The keys of ``--json`` and their types: the output is a contract for scripts.
TOP_LEVEL: dict[str, type | tuple[type, ...]] = {
    "url": str, "method": str, "status": int, "refused": bool, "authguard": bool,
    "reason": (str, type(None)), "reason_source": (str, type(None)),
    "title": (str, type(None)), "detail": (str, type(None)), "type": (str, type(None)),
    "request_id": (str, type(None)), "hints": list, "challenges": list,
    "challenge_errors": list, "retry_after": (int, float, type(None)),
    "required_scopes": list, "required_roles": list, "offered_scheme": (str, type(None)),
    "acr_values": (str, type(None)), "max_age": (int, type(None)),
    "payment": (dict, type(None)), "payment_required": (dict, type(None)),
    "location": (str, type(None)),
    "clock": (dict, type(None)), "token": (dict, type(None)), "next_steps": list,
    "dpop": (dict, type(None)),
}
CLOCK_KEYS = {"server_date", "local_date", "skew_seconds", "significant", "summary"}
TOKEN_KEYS = {"decoded", "header", "claims", "findings"}
CHALLENGE_KEYS = {"scheme", "params", "token68", "meaning"}


def check_structure(data: dict[str, Any]) -> None:
    """Every ``--json`` answer has exactly these members, with these types."""
    assert set(data) == set(TOP_LEVEL)
    for key, kind in TOP_LEVEL.items():
        assert isinstance(data[key], kind), (key, data[key])
    for ch in data["challenges"]:
        assert set(ch) == CHALLENGE_KEYS
        assert isinstance(ch["scheme"], str) and isinstance(ch["params"], dict)
        assert isinstance(ch["meaning"], str) and ch["meaning"]
    if data["clock"] is not None:
        assert set(data["clock"]) == CLOCK_KEYS
        assert isinstance(data["clock"]["significant"], bool)
    if data["token"] is not None:
        assert set(data["token"]) == TOKEN_KEYS
        assert all(isinstance(f, str) for f in data["token"]["findings"])
    assert all(isinstance(s, str) and s for s in data["next_steps"])
    assert data["refused"] == (data["status"] >= 400)


class Explain:
    """Runs ``authguard explain`` in this process and checks that no secret is printed."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):
        self.capsys = capsys
        monkeypatch.setenv("COLUMNS", "200")  # rich wraps at the terminal width

    def run(self, *argv: str, secrets: tuple[str, ...] = ()) -> tuple[int, str]:
        self.capsys.readouterr()
        rc = main(["explain", *argv])
        out, err = self.capsys.readouterr()
        RECORDER.text("authguard explain " + argv[0], out + err)
        for secret in secrets:
            assert secret not in out and secret not in err
        return rc, out + err

    def json(self, *argv: str, secrets: tuple[str, ...] = ()) -> tuple[int, dict[str, Any]]:
        rc, out = self.run(*argv, "--json", secrets=secrets)
        data = json.loads(out)
        check_structure(data)
        return rc, data


@pytest.fixture
def explain(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Explain:
    return Explain(capsys, monkeypatch)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """An example app of this module's own: revocations, logouts and lock-outs change it."""
    with uvicorn_server("app:app", env={"AUTHGUARD_DEMO_FAILURE_LIMIT": "3"}) as url:
        yield url


def basic(user: str, password: str) -> str:
    return "Authorization: Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- the example app: every reason it can produce --------------------------------------------


def test_credentials_missing_lists_every_challenge_and_what_it_means(
    example_server: str, explain: Explain
) -> None:
    rc, data = explain.json(example_server + "/me")
    assert rc == 1
    assert (data["status"], data["reason"], data["reason_source"]) == (
        401, "credentials_missing", "body")
    assert data["authguard"] is True
    assert data["type"] and data["type"] != "about:blank"
    assert data["request_id"]
    schemes = [c["scheme"] for c in data["challenges"]]
    assert schemes == ["Basic", "Bearer", "ApiKey", "Cookie", "DPoP"]
    by_scheme = {c["scheme"]: c for c in data["challenges"]}
    assert by_scheme["Basic"]["params"]["realm"] == "authguard-demo"
    assert "RFC 7617" in by_scheme["Basic"]["meaning"]
    assert "X-API-Key" in by_scheme["ApiKey"]["meaning"]
    assert by_scheme["Cookie"]["params"]["form-action"] == "/login"
    assert data["hints"] and data["next_steps"]
    assert data["token"] is None


def test_text_output_for_a_person(example_server: str, explain: Explain) -> None:
    rc, out = explain.run(example_server + "/me")
    assert rc == 1
    for expected in ("401 Authentication required", "credentials_missing",
                     "sent by the server", "Challenges offered", "Basic", "Bearer", "ApiKey",
                     "Cookie", "Hints from the server", "What to do next",
                     "answer of an authguard server"):
        assert expected in out, expected
    assert not out.lstrip().startswith("{")


def test_allowed_request_exits_0(example_server: str, explain: Explain) -> None:
    rc, data = explain.json(example_server + "/me", "-u", "alice:wonderland",
                            secrets=("wonderland",))
    assert rc == 0
    assert data["status"] == 200 and data["refused"] is False
    assert data["reason"] is None and data["next_steps"] == []


@pytest.mark.parametrize(
    ("argv", "reason", "scheme"),
    [
        (("-u", "alice:not-her-password"), "credentials_invalid", "Basic"),
        (("-H", "X-API-Key: demo-key-nobody-000000"), "credentials_invalid", "ApiKey"),
        (("-H", "Authorization: Basic %%%"), "credentials_malformed", "Basic"),
    ],
    ids=["basic-wrong-password", "unknown-api-key", "basic-not-base64"],
)
def test_bad_credentials(example_server: str, explain: Explain, argv: tuple[str, ...],
                         reason: str, scheme: str) -> None:
    rc, data = explain.json(example_server + "/me", *argv,
                            secrets=("not-her-password", "demo-key-nobody-000000"))
    assert rc == 1
    assert (data["status"], data["reason"]) == (401, reason)
    assert [c["scheme"] for c in data["challenges"]] == [scheme]
    assert data["next_steps"]


def test_an_opaque_bearer_token_is_malformed_and_not_decoded(
    example_server: str, explain: Explain
) -> None:
    _rc, data = explain.json(example_server + "/me", "-H", "Authorization: Bearer not-a-jwt")
    assert (data["status"], data["reason"]) == (401, "credentials_malformed")
    assert data["challenges"][0]["params"]["error"] == "invalid_token"
    assert "invalid_token" in data["challenges"][0]["meaning"]
    assert data["token"]["decoded"] is False
    assert "opaque" in data["token"]["findings"][0]


def test_token_expired_reports_the_clock_and_the_exp_claim(
    example_server: str, explain: Explain
) -> None:
    token = mint(lifetime=-120)
    rc, data = explain.json(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                            secrets=(token,))
    assert rc == 1
    assert (data["status"], data["reason"]) == (401, "token_expired")
    clock = data["clock"]
    assert clock is not None and clock["significant"] is False  # same machine, same clock
    assert abs(clock["skew_seconds"]) <= 5
    assert "agree" in clock["summary"]
    report = data["token"]
    assert report["decoded"] is True
    assert report["header"]["alg"] == "HS256"
    assert report["claims"]["sub"] == "alice" and report["claims"]["aud"] == SETTINGS.jwt_audience
    assert any(f.startswith("exp: the token expired") for f in report["findings"])
    rc, out = explain.run(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                          secrets=(token,))
    for expected in ("token_expired", "Clock", "server Date:", "skew:",
                     "The token you sent (decoded, not verified)", "exp: the token expired"):
        assert expected in out, expected


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_token_not_yet_valid_points_at_the_future_claim(
    example_server: str, explain: Explain, claim: str
) -> None:
    token = mint(**{claim: int(time.time()) + 3600})
    _rc, data = explain.json(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                            secrets=(token,))
    assert (data["status"], data["reason"]) == (401, "token_not_yet_valid")
    assert data["clock"] is not None
    findings = data["token"]["findings"]
    assert len(findings) == 1, findings  # only the claim in the future, nothing spurious
    expected = {"nbf": "nbf: the token becomes valid only in ",
                "iat": "iat: the token says it was issued "}[claim]
    assert findings[0].startswith(expected) and "by the server's clock" in findings[0]
    assert "NTP" in findings[0]
    assert any("NTP" in step or "clocks" in step for step in data["next_steps"])


def _not_yet_valid(date: float) -> httpx.Response:
    body = {"type": "about:blank", "title": "t", "status": 401, "reason": "token_not_yet_valid"}
    return httpx.Response(
        401, json=body, request=httpx.Request("GET", "http://api.test/me"),
        headers={"content-type": "application/problem+json",
                 "date": formatdate(date, usegmt=True),
                 "www-authenticate": 'Bearer error="invalid_token"'})


@pytest.mark.parametrize("lag", [0, 1, 2])
def test_a_date_a_second_or_two_behind_a_fresh_claim_is_not_blamed(lag: int) -> None:
    """``Date`` is truncated to the second and refreshed about once a second: a fresh
    token's iat (or nbf) may lie up to two seconds past it; only the real future claim is
    reported."""
    now = 1_800_000_000
    token = mint(iat=now + lag, nbf=now + 3600, exp=now + 7200)
    data = explain_response(_not_yet_valid(now), token=token, now=now)
    assert len(data["token"]["findings"]) == 1
    assert data["token"]["findings"][0].startswith("nbf: the token becomes valid only in 60 min")
    token = mint(iat=now + 600, nbf=now + lag, exp=now + 7200)
    data = explain_response(_not_yet_valid(now), token=token, now=now)
    assert [f[:5] for f in data["token"]["findings"]] == ["iat: "]


def test_a_skewed_local_clock_is_reported(example_server: str) -> None:
    """The skew is local clock minus the server's ``Date``; an injected clock stands in for a
    machine whose clock is ten minutes fast."""
    token = mint(lifetime=-120)
    with httpx.Client() as c:
        r = c.get(example_server + "/me", headers=bearer(token))
    now = time.time() + 600
    data = explain_response(r, token=token, now=now)
    check_structure(data)
    assert data["reason"] == "token_expired"
    assert data["clock"]["significant"] is True
    assert 590 <= data["clock"]["skew_seconds"] <= 610
    assert "ahead of the server's clock" in data["clock"]["summary"]


@pytest.mark.parametrize(
    ("claims", "option", "finding"),
    [
        ({"aud": "another-service"}, ("--audience", SETTINGS.jwt_audience), "aud:"),
        ({"iss": "https://evil.example"}, ("--issuer", SETTINGS.jwt_issuer), "iss:"),
        ({"aud": None}, (), "aud: the token names no audience"),
        ({"aud": "another-service"}, (), "The server says this token is not for it"),
    ],
    ids=["audience", "issuer", "no-audience", "audience-unknown-to-the-client"],
)
def test_audience_and_issuer_mismatch(example_server: str, explain: Explain,
                                      claims: dict[str, Any], option: tuple[str, ...],
                                      finding: str) -> None:
    token = mint(**claims)
    _rc, data = explain.json(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                            *option, secrets=(token,))
    assert (data["status"], data["reason"]) == (401, "token_wrong_audience")
    findings = data["token"]["findings"]
    assert any(f.startswith(finding) for f in findings), findings
    assert any("'resource' parameter (RFC 8707)" in step for step in data["next_steps"])


def test_a_token_that_matches_everything_gets_no_claim_blamed(
    example_server: str, explain: Explain
) -> None:
    token = mint(secret="another-secret-0123456789abcdef-0123456789")
    _rc, data = explain.json(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                            "--audience", SETTINGS.jwt_audience, "--issuer", SETTINGS.jwt_issuer,
                            secrets=(token,))
    assert data["reason"] == "credentials_invalid"
    findings = data["token"]["findings"]
    assert len(findings) == 1 and findings[0].startswith("Nothing in the claims explains")


def test_insufficient_scope_names_the_missing_scope(example_server: str,
                                                    explain: Explain) -> None:
    token = mint(scope="profile")
    _rc, data = explain.json(example_server + "/reports", "-H",
                            f"Authorization: Bearer {token}", secrets=(token,))
    assert (data["status"], data["reason"]) == (403, "insufficient_scope")
    assert data["required_scopes"] == ["reports:read"]
    assert data["challenges"][0]["params"]["error"] == "insufficient_scope"
    assert "scope needed: reports:read" in data["challenges"][0]["meaning"]
    assert any(f.startswith("scope: the token lacks reports:read")
               for f in data["token"]["findings"])


@pytest.mark.parametrize(
    ("claims", "finding"),
    [({}, "acr: the token says None"),
     ({"acr": "mfa", "auth_time": int(time.time()) - 3600}, "auth_time: you signed in")],
    ids=["no-acr", "too-long-ago"],
)
def test_step_up_required(example_server: str, explain: Explain, claims: dict[str, Any],
                          finding: str) -> None:
    token = mint(**claims)
    _rc, data = explain.json(example_server + "/step-up", "-H",
                            f"Authorization: Bearer {token}", secrets=(token,))
    assert (data["status"], data["reason"]) == (401, "step_up_required")
    assert (data["acr_values"], data["max_age"]) == ("mfa", 300)
    assert data["challenges"][0]["params"]["error"] == "insufficient_user_authentication"
    assert any(f.startswith(finding) for f in data["token"]["findings"])


def test_forbidden_has_no_challenge(example_server: str, explain: Explain) -> None:
    _rc, data = explain.json(example_server + "/admin", "-u", "alice:wonderland",
                            secrets=("wonderland",))
    assert (data["status"], data["reason"]) == (403, "forbidden")
    assert data["challenges"] == []
    assert any("administrator" in s for s in data["next_steps"])


def test_a_token_sent_twice_is_invalid_request(example_server: str, explain: Explain) -> None:
    token = mint()
    header = f"Authorization: Bearer {token}"
    _rc, data = explain.json(example_server + "/me", "-H", header, "-H", header,
                            secrets=(token,))
    assert (data["status"], data["reason"]) == (400, "invalid_request")
    assert data["challenges"][0]["params"]["error"] == "invalid_request"


def test_session_invalid(example_server: str, explain: Explain) -> None:
    _rc, data = explain.json(example_server + "/me", "-H", "Cookie: authguard_session=garbage")
    assert (data["status"], data["reason"]) == (401, "session_invalid")
    assert [c["scheme"] for c in data["challenges"]] == ["Cookie"]


def _login(server: str, user: str, password: str) -> str:
    with http_client(server) as c:
        r = c.post("/login", json={"username": user, "password": password})
        assert r.status_code == 200
        return c.cookies["authguard_session"]


def test_session_expired_after_logout(server: str, explain: Explain) -> None:
    cookie = _login(server, "alice", "wonderland")
    with http_client(server, cookies={"authguard_session": cookie}) as c:
        assert c.post("/logout").status_code == 200
    _rc, data = explain.json(server + "/me", "-H", f"Cookie: authguard_session={cookie}",
                            secrets=(cookie,))
    assert (data["status"], data["reason"]) == (401, "session_expired")
    assert any("Sign in again" in s for s in data["next_steps"])


def test_origin_rejected(server: str, explain: Explain) -> None:
    cookie = _login(server, "alice", "wonderland")
    _rc, data = explain.json(server + "/logout", "-X", "post", "-H",
                            f"Cookie: authguard_session={cookie}", "-H",
                            "Origin: http://evil.example", secrets=(cookie,))
    assert data["method"] == "POST"
    assert (data["status"], data["reason"]) == (403, "origin_rejected")
    assert any("origin" in s for s in data["next_steps"])


def test_credentials_revoked(server: str, explain: Explain) -> None:
    token = mint("alice", jti="explain-revoked-1")
    with http_client(server) as c:
        assert c.post("/admin/revoke", json={"jti": "explain-revoked-1"},
                      auth=("bob", "builder")).status_code == 200
    _rc, data = explain.json(server + "/me", "-H", f"Authorization: Bearer {token}",
                            secrets=(token,))
    assert (data["status"], data["reason"]) == (401, "credentials_revoked")
    assert data["token"]["claims"]["jti"] == "explain-revoked-1"
    assert data["challenges"][0]["params"]["error"] == "invalid_token"


def test_too_many_attempts_reports_retry_after(server: str, explain: Explain) -> None:
    for _ in range(3):
        rc, data = explain.json(server + "/me", "-u", "carol:wrong-guess-1",
                                secrets=("wrong-guess-1",))
        assert data["reason"] == "credentials_invalid"
    rc, data = explain.json(server + "/me", "-u", "carol:wrong-guess-1",
                            secrets=("wrong-guess-1",))
    assert rc == 1
    assert (data["status"], data["reason"]) == (429, "too_many_attempts")
    assert data["retry_after"] is not None and data["retry_after"] > 0
    _rc, out = explain.run(server + "/me", "-u", "carol:rainbow", secrets=("rainbow",))
    assert "too_many_attempts" in out and "retry after:" in out


def test_auth_unavailable_when_redis_cannot_be_reached(explain: Explain) -> None:
    env = {"AUTHGUARD_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}
    with uvicorn_server("app:app", env=env) as url:
        _rc, data = explain.json(url + "/me", "-H", f"Authorization: Bearer {mint()}")
    assert (data["status"], data["reason"]) == (503, "auth_unavailable")
    assert data["retry_after"] is not None
    assert any("nothing is wrong with your credentials" in s for s in data["next_steps"])


def _payments_served(base: str) -> bool:
    with httpx.Client() as c:
        return c.get(base + "/premium").status_code != 404


def test_payment_required(example_server: str, explain: Explain) -> None:
    if not _payments_served(example_server):
        pytest.skip("the example app takes no payments yet")
    rc, data = explain.json(example_server + "/premium", "-u", "alice:wonderland",
                            secrets=("wonderland",))
    assert rc == 1
    assert (data["status"], data["reason"]) == (402, "payment_required")
    assert any("Pay" in s for s in data["next_steps"])
    _rc, data = explain.json(example_server + "/paid/quote")
    assert (data["status"], data["reason"]) == (402, "payment_required")
    assert "Payment" in [c["scheme"] for c in data["challenges"]]
    assert data["payment_required"]["x402Version"] == 2  # the decoded x402 header
    _rc, out = explain.run(example_server + "/paid/quote")
    assert "x402 PAYMENT-REQUIRED" in out and "Payment" in out
    # the price and each offer, readable, not JSON cut short
    assert "price: 0.01 USD (One stock quote)" in out
    assert "offer 1: Payment — 0.01 USD — 'One stock quote'" in out
    assert "send the proof in the Authorization header" in out
    assert "offer 2: x402 — x402: pay 10000 demo-usd on x402:demo to authguard-demo" in out
    assert "x402 PAYMENT-REQUIRED: pay 10000 demo-usd on x402:demo to authguard-demo" in out
    assert '{"offers"' not in out


def test_payment_invalid(server: str, explain: Explain) -> None:
    if not _payments_served(server):
        pytest.skip("the example app takes no payments yet")
    with http_client(server) as c:
        offer = c.get("/paid/quote")
        challenge = next(ch for ch in (httpx.Headers(offer.headers).get_list("www-authenticate"))
                         if ch.lower().startswith("payment"))
        cid = parse_www_authenticate(challenge)[0].params["id"]
        authorization = c.post("/billing/pay", json={"challenge": cid}).json()["authorization"]
        assert c.get("/paid/quote", headers={"Authorization": authorization}).status_code == 200
    _rc, data = explain.json(server + "/paid/quote", "-H", f"Authorization: {authorization}")
    assert (data["status"], data["reason"]) == (402, "payment_invalid")


# -- the command itself ------------------------------------------------------------------------


def test_the_console_script(example_server: str) -> None:
    script = Path(sys.executable).parent / "authguard"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "authguard.cli"]
    done = subprocess.run([*cmd, "explain", example_server + "/me", "-u", "alice:wrong-pw-9"],
                          capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env={"COLUMNS": "200", "PATH": str(Path(sys.executable).parent)},
                          check=False)
    RECORDER.text("authguard explain (console script)", done.stdout + done.stderr)
    assert done.returncode == 1, done.stderr
    assert "credentials_invalid" in done.stdout
    assert "wrong-pw-9" not in done.stdout + done.stderr


def test_bad_arguments_and_unreachable_servers(explain: Explain) -> None:
    rc, out = explain.run("ftp://example.test/")
    assert rc == 2 and "invalid URL" in out
    port = free_port()
    rc, out = explain.run(f"http://user:url-secret-77@127.0.0.1:{port}/x", "-u",
                          "alice:arg-secret-88", secrets=("url-secret-77", "arg-secret-88"))
    assert rc == 3 and "could not get an answer" in out
    for bad in (["-H", "no colon here"], ["-H", "Bad Name: x"], ["-u", "nopassword"]):
        with pytest.raises(SystemExit) as exc:
            main(["explain", "http://127.0.0.1:1/", *bad])
        assert exc.value.code == 2


@pytest.mark.parametrize(
    ("argv", "shown"),
    [
        (["-H", "Authorization Bearer SECRET-tok-1"], "'Authorization'"),
        (["-H", "Authorization\tBearer SECRET-tok-1"], "'Authorization'"),
        (["-H", "SECRET-tok-1"], None),
        (["-H", "SECRET-tok-1 more"], None),  # a word with digits may be a key: not shown
        (["-H", "Bearer SECRETTOKEN"], "'Bearer'"),
        (["-H", "X-Key SECRET-tok-1:x"], "'X-Key'"),
        (["-H", "Authorization: Bearer SECRET-tok-1\x1b[2J"], "'Authorization'"),
        (["-H", "X-Foo: \u65e5\u672c SECRET-tok-1"], "'X-Foo'"),
        (["-H", "X-F\u00f6\u00f6: SECRET-tok-1"], None),
        (["-H", "X-Foo: SECRET-tok-1\r\nX-Injected: 1"], "'X-Foo'"),
    ],
    ids=["no-colon", "tab", "bare-token", "token-then-word", "scheme-then-token",
         "colon-later", "control", "non-ascii-value", "non-ascii-name", "crlf"],
)
def test_a_bad_header_argument_never_echoes_its_value(
    capsys: pytest.CaptureFixture[str], argv: list[str], shown: str | None
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", "http://127.0.0.1:1/", *argv])
    assert exc.value.code == 2
    out, err = capsys.readouterr()
    assert "SECRET-tok-1" not in out + err and "SECRETTOKEN" not in out + err
    assert "Traceback" not in out + err
    assert "the value is not shown" in err
    if shown is not None:
        assert shown in err


@pytest.mark.parametrize(
    "argv",
    [["--timeout", "-1"], ["--timeout", "0"], ["--timeout", "nan"], ["--timeout", "inf"],
     ["--timeout", "soon"], ["-X", "GE T"], ["-X", ""], ["-X", "G\u00c9T"],
     ["-X", "GET\r\nX: y"]],
    ids=["negative-timeout", "zero-timeout", "nan-timeout", "inf-timeout", "word-timeout",
         "method-with-space", "empty-method", "non-ascii-method", "crlf-method"],
)
def test_bad_options_exit_2_without_a_traceback(capsys: pytest.CaptureFixture[str],
                                                argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["explain", "http://127.0.0.1:1/", *argv])
    assert exc.value.code == 2
    _out, err = capsys.readouterr()
    assert "Traceback" not in err and "error:" in err


def test_an_unexpected_failure_exits_3_without_a_traceback(
    example_server: str, explain: Explain, monkeypatch: pytest.MonkeyPatch
) -> None:
    from authguard.client import explain as explain_module

    def broken(*args: Any, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("something internal secret-detail-5")

    monkeypatch.setattr(explain_module, "explain_response", broken)
    rc, out = explain.run(example_server + "/me", secrets=("secret-detail-5",))
    assert rc == 3 and "could not explain the answer (RuntimeError)" in out
    rc, out = explain.run(example_server + "/me", "--json")
    assert rc == 3
    stdout = out[:out.index("\n") + 1] if out.startswith("{") else out.splitlines()[-1]
    assert json.loads(stdout)["exit_status"] == 3


def test_a_network_error_message_cannot_carry_a_credential(
    explain: Explain, monkeypatch: pytest.MonkeyPatch
) -> None:
    def send(self: httpx.Client, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        raise httpx.ConnectError(f"refused {request.headers['authorization']} "
                                 f"{request.headers['x-key']}", request=request)

    monkeypatch.setattr(httpx.Client, "send", send)
    rc, out = explain.run("http://127.0.0.1:1/?q=1", "-H", "Authorization: Bearer net-secret-6",
                          "-H", "X-Key: net-secret-7", secrets=("net-secret-6", "net-secret-7"))
    assert rc == 3 and "ConnectError refused REDACTED REDACTED" in out


def test_json_errors_are_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()
    rc = main(["explain", f"http://127.0.0.1:{port}/x?access_token=qs-secret-3", "--json"])
    out, err = capsys.readouterr()
    assert rc == 3
    data = json.loads(out)
    assert data["exit_status"] == 3 and "could not get an answer" in data["error"]
    assert "could not get an answer" in err and not err.lstrip().startswith("{")
    assert "qs-secret-3" not in out + err and "access_token=REDACTED" in data["error"]
    rc = main(["explain", "ftp://example.test/", "--json"])
    out, _err = capsys.readouterr()
    assert rc == 2 and "invalid URL" in json.loads(out)["error"]


def test_credential_query_parameters_are_redacted(plain_server: str, explain: Explain) -> None:
    url = plain_server + "/basic?access_token=qs-secret-1&page=2&API_KEY=qs-secret-2&sig=qs-3"
    rc, data = explain.json(url, secrets=("qs-secret-1", "qs-secret-2", "qs-3"))
    assert rc == 1
    assert "access_token=REDACTED" in data["url"] and "page=2" in data["url"]
    assert "API_KEY=REDACTED" in data["url"] and "sig=REDACTED" in data["url"]
    _rc, out = explain.run(url, secrets=("qs-secret-1", "qs-secret-2", "qs-3"))
    assert "access_token=REDACTED" in out


def test_without_audience_the_token_audience_is_questioned(example_server: str,
                                                           explain: Explain) -> None:
    token = mint(secret="another-secret-0123456789abcdef-0123456789")
    _rc, data = explain.json(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                            secrets=(token,))
    assert data["reason"] == "credentials_invalid"
    findings = data["token"]["findings"]
    assert findings[0].startswith("Nothing in the claims explains")
    assert findings[1] == (f"aud is {SETTINGS.jwt_audience!r}: is that this API's audience? "
                           "(check with --audience)")


def test_a_status_without_a_title_of_its_own_uses_the_reason_phrase() -> None:
    response = httpx.Response(418, request=httpx.Request("GET", "http://api.test/x"))
    data = explain_response(response)
    assert data["title"] == "I'm a teapot"
    response = httpx.Response(599, request=httpx.Request("GET", "http://api.test/x"))
    assert explain_response(response)["title"] == "HTTP 599"


def test_an_expired_token_step_does_not_point_below() -> None:
    body = {"type": "about:blank", "title": "t", "status": 401, "reason": "token_expired"}
    response = httpx.Response(401, json=body, headers={"content-type": "application/problem+json"},
                              request=httpx.Request("GET", "http://api.test/x"))
    steps = explain_response(response)["next_steps"]
    assert steps and not any("below" in step or "above" in step for step in steps)


# -- a server that is not authguard ------------------------------------------------------------

PLAIN_APP = textwrap.dedent('''
    """A plain Starlette app with the refusals servers commonly send."""
    import base64
    import time
    from email.utils import formatdate

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def date(offset=0.0):
        return formatdate(time.time() + offset, usegmt=True)

    async def bare(request):
        return PlainTextResponse("Unauthorized", status_code=401, headers={"Date": date()})

    async def basic(request):
        return PlainTextResponse("Unauthorized", status_code=401, headers={
            "Date": date(), "WWW-Authenticate": 'Basic realm="legacy"'})

    async def expired(request):
        # A server whose clock is an hour ahead: its Date says so.
        return JSONResponse({"error": "invalid_token"}, status_code=401, headers={
            "Date": date(3600),
            "WWW-Authenticate": 'Bearer realm="api", error="invalid_token", '
                                'error_description="The access token expired"'})

    async def forbidden(request):
        return JSONResponse({"message": "Must have admin rights to Repository."},
                            status_code=403, headers={"Date": date()})

    async def broken(request):
        return PlainTextResponse("no", status_code=401, headers={
            "Date": date(), "WWW-Authenticate": 'Basic realm="unterminated'})

    async def ansi(request):
        return JSONResponse(
            {"detail": "\x1b[2J\x1b[31mscreen cleared", "hints": ["\x1b]0;title\x07 hint"]},
            status_code=401, headers={"Date": date(), "WWW-Authenticate": 'Basic realm="x"'})

    async def ok(request):
        return PlainTextResponse("fine", headers={"Date": date()})

    NESTED = '{"a":' + "[" * 100_000 + "]" * 100_000 + "}"
    NESTED_HEADER = base64.b64encode(('{"a":' + "[" * 3000 + "]" * 3000 + "}").encode())

    async def hostile(request):
        digits = int(request.query_params.get("digits", "400"))
        response = Response(NESTED, status_code=401, media_type="application/problem+json",
                            headers={"Date": date()})
        response.raw_headers += [
            (b"retry-after", b"9" * digits),
            (b"www-authenticate", 'Bearer error="insufficient_user_authentication", '
                                  'max_age="\u00b2"'.encode()),
        ]
        return response

    async def superscript(request):
        response = PlainTextResponse("slow down", status_code=503, headers={"Date": date()})
        response.raw_headers.append((b"retry-after", "\u00b2".encode()))
        return response

    async def nested_payment(request):
        return PlainTextResponse("pay", status_code=402, headers={
            "Date": date(), "PAYMENT-REQUIRED": NESTED_HEADER.decode()})

    async def euro(request):
        response = PlainTextResponse("Unauthorized", status_code=401, headers={"Date": date()})
        response.raw_headers.append((b"www-authenticate", 'Basic realm="Zone \u20ac"'.encode()))
        return response

    async def kubernetes(request):
        return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Failure",
                             "message": "Unauthorized", "reason": "Unauthorized",
                             "code": 401}, status_code=401, headers={"Date": date()})

    app = Starlette(routes=[Route("/bare", bare), Route("/basic", basic),
                            Route("/expired", expired), Route("/forbidden", forbidden),
                            Route("/broken", broken), Route("/ansi", ansi),
                            Route("/ok", ok), Route("/hostile", hostile),
                            Route("/superscript", superscript),
                            Route("/nested-payment", nested_payment), Route("/euro", euro),
                            Route("/kubernetes", kubernetes)])
''')


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app_dir = tmp_path_factory.mktemp("plain_app")
    (app_dir / "plain_app.py").write_text(PLAIN_APP)
    with uvicorn_server("plain_app:app", app_dir=app_dir,
                        extra_args=("--no-date-header",)) as url:
        yield url


def test_plain_bare_401_without_credentials(plain_server: str, explain: Explain) -> None:
    rc, data = explain.json(plain_server + "/bare")
    assert rc == 1
    assert data["status"] == 401 and data["authguard"] is False
    assert (data["reason"], data["reason_source"]) == ("credentials_missing", "status")
    assert data["challenges"] == [] and data["type"] is None
    assert data["detail"] == "Unauthorized"
    assert any("carries no WWW-Authenticate challenge" in s for s in data["next_steps"])
    rc, out = explain.run(plain_server + "/bare")
    assert "inferred from the status" in out and "answer of the server" in out


def test_plain_bare_401_with_credentials(plain_server: str, explain: Explain) -> None:
    _rc, data = explain.json(plain_server + "/bare", "-u", "someone:plain-secret-42",
                            secrets=("plain-secret-42",))
    assert (data["reason"], data["reason_source"]) == ("credentials_invalid", "status")


def test_plain_basic_challenge_is_explained(plain_server: str, explain: Explain) -> None:
    _rc, data = explain.json(plain_server + "/basic")
    assert [(c["scheme"], c["params"]) for c in data["challenges"]] == [
        ("Basic", {"realm": "legacy"})]
    assert "RFC 7617" in data["challenges"][0]["meaning"]
    assert not any("carries no WWW-Authenticate" in s for s in data["next_steps"])


def test_plain_expired_bearer_with_a_server_clock_an_hour_ahead(
    plain_server: str, explain: Explain
) -> None:
    # Valid for ten more minutes by the local clock; the server's clock is an hour ahead.
    token = mint(lifetime=600)
    rc, data = explain.json(plain_server + "/expired", "-H", f"Authorization: Bearer {token}",
                            secrets=(token,))
    assert rc == 1
    assert (data["reason"], data["reason_source"]) == ("token_expired", "challenge")
    assert data["challenges"][0]["params"]["error_description"] == "The access token expired"
    clock = data["clock"]
    assert clock["significant"] is True
    assert -3610 <= clock["skew_seconds"] <= -3590
    assert "behind the server's clock" in clock["summary"]
    exp = [f for f in data["token"]["findings"] if f.startswith("exp:")]
    assert len(exp) == 1
    assert "by the server's clock" in exp[0] and "the clocks disagree" in exp[0]
    _rc, out = explain.run(plain_server + "/expired", "-H", f"Authorization: Bearer {token}",
                           secrets=(token,))
    for expected in ("inferred from the challenge", "behind the server's clock",
                     "the clocks disagree", "answer of the server"):
        assert expected in out, expected


def test_plain_403_json_message(plain_server: str, explain: Explain) -> None:
    _rc, data = explain.json(plain_server + "/forbidden")
    assert (data["status"], data["reason"], data["reason_source"]) == (
        403, "forbidden", "status")
    assert data["detail"] == "Must have admin rights to Repository."


def test_plain_malformed_challenge_is_reported_not_raised(plain_server: str,
                                                          explain: Explain) -> None:
    rc, data = explain.json(plain_server + "/broken")
    assert rc == 1 and data["challenges"] == []
    assert len(data["challenge_errors"]) == 1 and "unterminated" in data["challenge_errors"][0]
    assert any("does not follow RFC 9110" in s for s in data["next_steps"])
    _rc, out = explain.run(plain_server + "/broken")
    assert "Malformed WWW-Authenticate" in out


def test_a_malformed_only_challenge_is_not_called_missing(plain_server: str,
                                                          explain: Explain) -> None:
    _rc, data = explain.json(plain_server + "/broken")
    assert not any("carries no WWW-Authenticate" in s for s in data["next_steps"])
    assert any("only malformed ones" in s for s in data["next_steps"])


@pytest.mark.parametrize("digits", [400, 5000])
def test_hostile_headers_and_bodies_are_explained_not_raised(
    plain_server: str, explain: Explain, digits: int
) -> None:
    url = f"{plain_server}/hostile?digits={digits}"
    rc, data = explain.json(url)
    assert rc == 1 and data["status"] == 401
    assert data["retry_after"] == MAX_DELAY  # clamped
    assert data["max_age"] is None  # "²" is not a number of seconds
    assert data["reason"] == "step_up_required" and data["reason_source"] == "challenge"
    rc, out = explain.run(url)
    assert rc == 1 and "Traceback" not in out and "step_up_required" in out


def test_a_superscript_retry_after_is_ignored(plain_server: str, explain: Explain) -> None:
    rc, data = explain.json(plain_server + "/superscript")
    assert rc == 1 and data["status"] == 503 and data["retry_after"] is None


def test_a_deeply_nested_payment_header_is_ignored(plain_server: str, explain: Explain) -> None:
    rc, data = explain.json(plain_server + "/nested-payment")
    assert rc == 1 and data["reason"] == "payment_required"
    assert data["payment_required"] is None
    rc, out = explain.run(plain_server + "/nested-payment")
    assert "payment_required" in out and "Traceback" not in out


def test_a_utf8_realm_is_read(plain_server: str, explain: Explain) -> None:
    _rc, data = explain.json(plain_server + "/euro")
    assert data["challenge_errors"] == []
    assert data["challenges"][0]["params"] == {"realm": "Zone \u20ac"}


def test_a_kubernetes_status_body_is_not_taken_for_authguard(plain_server: str,
                                                             explain: Explain) -> None:
    _rc, data = explain.json(plain_server + "/kubernetes")
    assert data["authguard"] is False
    assert (data["reason"], data["reason_source"]) == ("credentials_missing", "status")
    assert data["detail"] == "Unauthorized"


def test_plain_success(plain_server: str, explain: Explain) -> None:
    rc, data = explain.json(plain_server + "/ok")
    assert rc == 0 and data["status"] == 200 and data["reason"] is None


def test_a_browser_redirect_to_the_login_page(example_server: str, explain: Explain) -> None:
    rc, data = explain.json(example_server + "/account", "-H", "Accept: text/html")
    assert rc == 0
    assert data["status"] == 303 and data["refused"] is False
    assert data["location"] == "/login?next=/account"
    _rc, out = explain.run(example_server + "/account", "-H", "Accept: text/html")
    assert "Redirected to /login?next=/account (not followed)" in out


def test_head_request(example_server: str, explain: Explain) -> None:
    rc, data = explain.json(example_server + "/me", "-X", "HEAD")
    assert rc == 1 and data["method"] == "HEAD"
    assert (data["status"], data["reason"], data["reason_source"]) == (
        401, "credentials_missing", "status")  # no body: inferred, as for any server
    assert len(data["challenges"]) == 5


def test_a_server_cannot_send_terminal_escape_sequences(plain_server: str,
                                                       explain: Explain) -> None:
    rc, out = explain.run(plain_server + "/ansi")
    assert rc == 1
    assert "screen cleared" in out and "hint" in out
    assert "\x1b" not in out and "\x07" not in out
    _rc, data = explain.json(plain_server + "/ansi")
    assert data["detail"] == "\x1b[2J\x1b[31mscreen cleared"  # JSON keeps it, escaped


def test_absurd_claims_do_not_break_the_report(example_server: str, explain: Explain) -> None:
    token = jwt.encode({"sub": "x", "exp": 1e300, "nbf": -1e300, "iat": "yesterday",
                        "aud": 5, "auth_time": 1e300}, "k" * 32, algorithm="HS256")
    header = f"Authorization: Bearer {token}"
    rc, data = explain.json(example_server + "/step-up", "-H", header, secrets=(token,))
    assert rc == 1 and data["status"] == 401
    assert data["token"]["decoded"] is True
    _rc, out = explain.run(example_server + "/step-up", "-H", header, secrets=(token,))
    assert "(not a date)" in out


@pytest.mark.parametrize("reason", list(Reason), ids=lambda r: r.value)
def test_every_reason_gets_a_next_step(reason: Reason) -> None:
    status = spec(reason).status
    body = {"type": "about:blank", "title": spec(reason).title, "status": status,
            "detail": "d", "reason": reason.value}
    response = httpx.Response(status, json=body,
                              headers={"content-type": "application/problem+json"},
                              request=httpx.Request("GET", "http://api.test/x"))
    data = explain_response(response)
    check_structure(data)
    assert data["reason"] == reason.value and data["authguard"] is True
    assert data["next_steps"], reason.value


# -- DPoP: the proof sent is decoded and the failed check named -----------------------------


def test_a_dpop_proof_is_decoded_and_the_failed_check_named(
    example_server: str, explain: Explain
) -> None:
    from authguard.client import DPoPKey

    key = DPoPKey.generate()
    token = mint("alice", cnf={"jkt": key.jkt})
    url = example_server + "/dpop/me"
    wrong = key.proof("POST", url, access_token=token)  # htm: a proof for another method
    rc, data = explain.json(url, "-H", f"Authorization: DPoP {token}", "-H", f"DPoP: {wrong}")
    assert rc == 1 and data["reason"] == "invalid_dpop_proof"
    assert data["dpop"]["failed"] == "htm"
    assert data["dpop"]["header"]["typ"] == "dpop+jwt"
    assert data["dpop"]["claims"]["htm"] == "POST"
    rc, text = explain.run(url, "-H", f"Authorization: DPoP {token}", "-H",
                           f"DPoP: {key.proof('GET', url, access_token=token + 'x')}")
    assert "check 'ath' fails" in text
    rc, data = explain.json(url, "-H", f"Authorization: DPoP {token}", "-H",
                            f"DPoP: {key.proof('GET', url, access_token=token)}")
    assert rc == 0 and data["dpop"]["failed"] is None
