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
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from authguard import Reason
from authguard.cli import main
from authguard.client import parse_www_authenticate
from authguard.client.explain import explain_response
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
    "required_scopes": list, "acr_values": (str, type(None)), "max_age": (int, type(None)),
    "payment": (dict, type(None)), "payment_required": (dict, type(None)),
    "location": (str, type(None)),
    "clock": (dict, type(None)), "token": (dict, type(None)), "next_steps": list,
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
    assert schemes == ["Basic", "Bearer", "ApiKey", "Cookie"]
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
    assert any(f.startswith(f"{claim}: the token is valid only from") for f in findings)
    assert any("NTP" in step or "clocks" in step for step in data["next_steps"])


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
    ],
    ids=["audience", "issuer", "no-audience"],
)
def test_audience_and_issuer_mismatch(example_server: str, explain: Explain,
                                      claims: dict[str, Any], option: tuple[str, ...],
                                      finding: str) -> None:
    token = mint(**claims)
    _rc, data = explain.json(example_server + "/me", "-H", f"Authorization: Bearer {token}",
                            *option, secrets=(token,))
    assert (data["status"], data["reason"]) == (401, "credentials_invalid")
    findings = data["token"]["findings"]
    assert any(f.startswith(finding) for f in findings), findings


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


# -- a server that is not authguard ------------------------------------------------------------

PLAIN_APP = textwrap.dedent('''
    """A plain Starlette app with the refusals servers commonly send."""
    import time
    from email.utils import formatdate

    from starlette.applications import Starlette
    from starlette.responses import JSONResponse, PlainTextResponse
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

    app = Starlette(routes=[Route("/bare", bare), Route("/basic", basic),
                            Route("/expired", expired), Route("/forbidden", forbidden),
                            Route("/broken", broken), Route("/ansi", ansi),
                            Route("/ok", ok)])
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
    assert len(data["challenges"]) == 4


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
