"""Bearer/JWT claims on pyjwt: claim types, ``typ``, audience and issuer, pyjwt's errors as
reasons, the public ``verify_token`` and the verified-token cache."""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Any

import jwt
import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    ConfigurationError,
    JWTKey,
    Reason,
    Refusal,
    protect,
)
from authguard.challenges import parse_www_authenticate
from authguard.client import Problem, error_for
from authguard.client.diagnose import check_token
from helpers import asgi_client

SECRET = "claims-test-secret-0123456789abcdef"
AUD = "https://api.example.test"
ISS = "https://issuer.example.test"


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"sub": "ann", "aud": AUD, "iss": ISS, "iat": now, "exp": now + 60}
    out.update(extra)
    return {k: v for k, v in out.items() if v is not ...}


def token(headers: dict[str, Any] | None = None, secret: str = SECRET, **extra: Any) -> str:
    """A signed token; the payload is any JSON (pyjwt's own ``encode`` refuses some)."""
    payload = json.dumps(claims(**extra)).encode()
    return jwt.api_jws.encode(payload, secret, "HS256", headers=headers)


def authenticator(**options: Any) -> BearerAuthenticator:
    args: dict[str, Any] = {"key": JWTKey.hs256(SECRET), "audience": AUD, "issuer": ISS}
    args.update(options)
    return BearerAuthenticator(**args)


def app_with(bearer: BearerAuthenticator) -> Starlette:
    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity})

    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer]))
    return app


APP = app_with(authenticator())


async def ask(app: Starlette, tok: str) -> tuple[int, dict[str, Any]]:
    """Status and body (``{}`` for 200); a 5xx or an exception fails the test."""
    async with asgi_client(app) as c:
        r = await c.get("/me", headers={"Authorization": f"Bearer {tok}"})
    assert r.status_code < 500, r.text
    return r.status_code, (r.json() if r.status_code >= 400 else {})


# -- claims of any JSON type: a clean 401, never a 5xx ----------------------------------------

HUGE = 10 ** 400  # 400 digits: a valid JSON number that no float holds
NOT_NUMERIC_DATES: list[Any] = [HUGE, -HUGE, "1999999999", "soon", "", [1], {"n": 1}, True,
                                False, None, math.nan, math.inf, -math.inf]


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat", "auth_time"])
@pytest.mark.parametrize("value", NOT_NUMERIC_DATES, ids=repr)
async def test_a_claim_that_is_not_a_numeric_date_is_a_clean_401(claim: str, value: Any) -> None:
    status, body = await ask(APP, token(**{claim: value}))
    assert (status, body["reason"]) == (401, "credentials_invalid")
    assert f"'{claim}'" in body["detail"]


@pytest.mark.parametrize(("claim", "value"), [("iss", 7), ("iss", [ISS]), ("aud", 7),
                                              ("aud", [AUD, 7]), ("aud", {"a": AUD})])
async def test_iss_and_aud_of_the_wrong_type_are_invalid(claim: str, value: Any) -> None:
    status, body = await ask(APP, token(**{claim: value}))
    assert (status, body["reason"]) == (401, "credentials_invalid")
    assert f"'{claim}'" in body["detail"]


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.sampled_from([HUGE, -HUGE, 2 ** 1024])
    | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=8,
)
CLAIMS = st.sampled_from(["exp", "nbf", "iat", "auth_time", "iss", "aud", "sub", "jti",
                          "scope", "scp", "roles", "acr", "cnf"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(CLAIMS, JSON_VALUES, max_size=4))
async def test_any_claim_value_of_any_json_type_is_answered(changes: dict[str, Any]) -> None:
    """A validly signed token with any claims gets 200 or a 401 — never a 5xx."""
    status, body = await ask(APP, token(**changes))
    assert status in (200, 401)
    if status == 401:
        assert body["reason"] in ("credentials_invalid", "token_expired",
                                  "token_not_yet_valid", "token_wrong_audience")


def test_explain_reads_claims_of_any_type() -> None:
    """The client's token report does not crash on the same values."""
    problem = Problem.parse(401, {}, json.dumps({"type": "about:blank", "title": "t",
                                                 "status": 401,
                                                 "reason": "credentials_invalid"}).encode())
    for value in NOT_NUMERIC_DATES:
        report = check_token(token(exp=value, nbf=value, iat=value, auth_time=value), problem)
        assert report.decoded


def _problem(reason: str) -> Problem:
    return Problem.parse(401, {}, json.dumps({"type": "about:blank", "title": "t",
                                              "status": 401, "reason": reason}).encode())


def test_explain_names_the_token_type_and_the_foreign_audience() -> None:
    refresh = check_token(token(headers={"typ": "refresh+jwt"}), _problem("credentials_invalid"))
    assert any(f.startswith("typ: the token says it is a 'refresh+jwt'")
               for f in refresh.findings), refresh.findings
    plain = check_token(token(headers={"typ": "application/at+jwt"}),
                        _problem("credentials_invalid"))
    assert not any(f.startswith("typ:") for f in plain.findings)
    foreign = check_token(token(aud="https://other.test"), _problem("token_wrong_audience"))
    (finding,) = foreign.findings
    assert "['https://other.test']" in finding and "RFC 8707" in finding


# -- typ: only access tokens ------------------------------------------------------------------


@pytest.mark.parametrize("typ", ["at+jwt", "application/at+jwt", "AT+JWT", "JWT", "jwt", None])
async def test_access_token_types_are_accepted_by_default(typ: str | None) -> None:
    assert await ask(APP, token(headers={"typ": typ})) == (200, {})


@pytest.mark.parametrize("typ", ["refresh+jwt", "application/refresh+jwt", "dpop+jwt",
                                 "logout+jwt", "secevent+jwt", "id_token+jwt", 1, ["JWT"]])
async def test_other_token_types_are_refused(typ: Any) -> None:
    status, body = await ask(APP, token(headers={"typ": typ}))
    assert (status, body["reason"]) == (401, "credentials_invalid")
    assert "'typ'" in body["detail"] and "access token" in body["detail"]


async def test_strict_rfc_9068_typing() -> None:
    strict = app_with(authenticator(token_types=["at+jwt"], require_token_type=True))
    assert await ask(strict, token(headers={"typ": "at+jwt"})) == (200, {})
    assert await ask(strict, token(headers={"typ": "application/at+jwt"})) == (200, {})
    for typ in ("JWT", None):
        status, body = await ask(strict, token(headers={"typ": typ}))
        assert (status, body["reason"]) == (401, "credentials_invalid")


def test_token_types_setting_is_checked() -> None:
    for bad in ("at+jwt", [], ["at+jwt", ""], [" JWT"], [1]):
        with pytest.raises(ConfigurationError, match="token_types"):
            authenticator(token_types=bad)


# -- audience and issuer: bound, with their own reason ---------------------------------------


def bearer_params(headers: Any) -> dict[str, str]:
    (challenge,) = parse_www_authenticate(headers["www-authenticate"])
    assert challenge.scheme == "Bearer"
    return dict(challenge.params)


@pytest.mark.parametrize(("changes", "claim"), [
    ({"aud": "https://other-api.example.test"}, "'aud'"),
    ({"aud": ["https://other-api.example.test", "x"]}, "'aud'"),
    ({"aud": ...}, "'aud'"),  # no audience at all
    ({"aud": []}, "'aud'"),
    ({"iss": "https://evil.example.test"}, "'iss'"),
    ({"iss": ...}, "'iss'"),
])
async def test_a_genuine_token_for_another_api_or_issuer(changes: dict[str, Any],
                                                         claim: str) -> None:
    tok = token(**changes)
    async with asgi_client(APP) as c:
        r = await c.get("/me", headers={"Authorization": f"Bearer {tok}"})
    body = r.json()
    assert (r.status_code, body["reason"]) == (401, "token_wrong_audience")
    assert claim in body["detail"]
    assert body["type"].endswith("/token_wrong_audience")
    params = bearer_params(r.headers)
    assert params["error"] == "invalid_token"
    assert "resource" in " ".join(body["hints"]) and "RFC 8707" in " ".join(body["hints"])
    if claim == "'aud'":
        assert "RFC 8707" in body["detail"]
    from authguard.client import InvalidCredentials, TokenWrongAudience

    error = error_for(Problem.from_response(r))
    assert isinstance(error, TokenWrongAudience)
    assert isinstance(error, InvalidCredentials)  # what older clients caught it as


async def test_a_forged_token_for_another_api_says_nothing_about_its_audience() -> None:
    """The audience is only discussed once the signature verified."""
    forged = token(secret="another-secret-0123456789abcdef-xyz", aud="https://other.test")
    status, body = await ask(APP, forged)
    assert (status, body["reason"]) == (401, "credentials_invalid")
    assert "aud" not in body.get("detail", "")


async def test_one_of_several_audiences_is_enough() -> None:
    assert await ask(APP, token(aud=["https://other.test", AUD])) == (200, {})
    several = app_with(authenticator(audience=["a", AUD], issuer=["https://x.test", ISS]))
    assert await ask(several, token()) == (200, {})


def test_an_authenticator_without_an_audience_refuses_to_start() -> None:
    for audience in (None, "", [], [""]):
        with pytest.raises(ConfigurationError, match=r"audience.*accept_any_audience"):
            BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=audience)
    with pytest.raises(ConfigurationError, match="accept_any_audience"):
        BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUD, accept_any_audience=True)
    for issuer in ("", [], [ISS, ""]):
        with pytest.raises(ConfigurationError, match="issuer"):
            BearerAuthenticator(key=JWTKey.hs256(SECRET), audience=AUD, issuer=issuer)


async def test_any_audience_only_when_said_loudly(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="authguard"):
        lax = BearerAuthenticator(key=JWTKey.hs256(SECRET), accept_any_audience=True)
    assert any(r.levelno == logging.WARNING and "ANY audience" in r.getMessage()
               for r in caplog.records)
    app = app_with(lax)
    assert await ask(app, token(aud="https://other-api.example.test")) == (200, {})
    assert await ask(app, token(aud=...)) == (200, {})


# -- pyjwt's time checks, mapped onto reasons -------------------------------------------------


async def test_times_are_pyjwts_with_leeway() -> None:
    now = int(time.time())
    lenient = app_with(authenticator(leeway=30))
    assert await ask(lenient, token(exp=now - 10)) == (200, {})
    status, body = await ask(lenient, token(exp=now - 40))
    assert (status, body["reason"]) == (401, "token_expired")
    assert await ask(lenient, token(nbf=now + 20)) == (200, {})
    for claim in ("nbf", "iat"):
        future: dict[str, Any] = {claim: now + 100}
        status, body = await ask(lenient, token(**future))
        assert (status, body["reason"]) == (401, "token_not_yet_valid")
        assert f"'{claim}'" in body["detail"]
        assert 99 <= body["clock_skew_seconds"] <= 101


async def test_a_missing_required_claim_is_named() -> None:
    status, body = await ask(APP, token(exp=...))
    assert (status, body["reason"]) == (401, "credentials_invalid")
    assert "'exp'" in body["detail"]
    strict = app_with(authenticator(required_claims=["exp", "sub", "jti"]))
    status, body = await ask(strict, token())
    assert "'jti'" in body["detail"]


# -- verify_token: the one public validation path ---------------------------------------------


async def test_verify_token_returns_the_identity_with_its_claims() -> None:
    bearer = authenticator()
    cnf = {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
    identity = await bearer.verify_token(token(scope="a b", cnf=cnf, jti="t-1"))
    assert (identity.subject, identity.scheme, identity.credential_id) == ("ann", "Bearer", "t-1")
    assert identity.scopes == {"a", "b"}
    assert identity.claims["cnf"] == cnf
    assert identity is await bearer.verify_token(token(scope="a b", cnf=cnf, jti="t-1").encode())
    with pytest.raises(Refusal) as refused:
        await bearer.verify_token(token(aud="elsewhere"))
    assert refused.value.reason is Reason.TOKEN_WRONG_AUDIENCE
    with pytest.raises(Refusal) as refused:
        await bearer.verify_token("not a token")
    assert refused.value.reason is Reason.CREDENTIALS_MALFORMED
    with pytest.raises(Refusal) as refused:
        await bearer.verify_token("a" * 9000)
    assert refused.value.reason is Reason.CREDENTIALS_MALFORMED


async def test_a_header_pyjwt_refuses_is_refused() -> None:
    """The header is read to pick the key; pyjwt still checks all of it."""
    # A header segment whose last character carries unused bits (length 2 mod 4): setting
    # them gives the same bytes in a text pyjwt refuses as not canonical base64url.
    good = next(t for t in (token(headers={"kid": "k" * n}) for n in range(1, 5))
                if len(t.split(".")[0]) % 4 == 2)
    head, rest = good.split(".", 1)
    assert head[-1] in "AQgw"
    non_canonical = head[:-1] + chr(ord(head[-1]) + 1)
    assert jwt.utils.base64url_decode(non_canonical) == jwt.utils.base64url_decode(head)
    status, body = await ask(APP, f"{non_canonical}.{rest}")
    assert (status, body["reason"]) == (401, "credentials_malformed")
    assert await ask(APP, good) == (200, {})
    crit = jwt.encode(claims(), SECRET, "HS256", headers={"crit": ["exp"], "exp": 1})
    status, body = await ask(APP, crit)
    assert (status, body["reason"]) == (401, "credentials_invalid")
    for header in ({"alg": "HS256", "kid": 7}, [1, 2], {"kid": "k"}):
        raw = jwt.utils.base64url_encode(json.dumps(header).encode()).decode()
        status, body = await ask(APP, f"{raw}.{rest}")
        assert (status, body["reason"]) == (401, "credentials_malformed")


async def test_each_candidate_key_is_tried() -> None:
    """A key source may offer keys of another algorithm first (it knows only ``kid``)."""

    class Mixed:
        async def keys_for(self, kid: str | None, algorithm: str) -> list[JWTKey]:
            return [JWTKey.hmac("x" * 48, "HS384"), JWTKey.hs256("y" * 32),
                    JWTKey.hs256(SECRET)]

    app = app_with(BearerAuthenticator(keys=Mixed(), audience=AUD, issuer=ISS))
    assert await ask(app, token()) == (200, {})
    status, body = await ask(app, token(secret="z" * 32))
    assert (status, body["reason"]) == (401, "credentials_invalid")


# -- the verified-token cache -----------------------------------------------------------------


async def test_the_cache_is_bounded_and_drops_the_oldest() -> None:
    bearer = authenticator(cache_size=3)
    tokens = [token(jti=str(i)) for i in range(5)]
    for tok in tokens:
        await bearer.verify_token(tok)
    assert len(bearer._cache) == 3
    assert [i.identity.credential_id for i in bearer._cache.values()] == ["2", "3", "4"]
    with pytest.raises(ConfigurationError, match="cache_size"):
        authenticator(cache_size=-1)


async def test_a_cached_token_is_not_served_past_exp() -> None:
    start = time.time()
    with time_machine.travel(start, tick=False) as traveller:
        bearer = authenticator(leeway=5)
        app = app_with(bearer)
        tok = token(exp=int(start) + 60)
        assert await ask(app, tok) == (200, {})
        assert len(bearer._cache) == 1
        traveller.shift(64)  # within the leeway: still served
        assert await ask(app, tok) == (200, {})
        traveller.shift(2)
        status, body = await ask(app, tok)
        assert (status, body["reason"]) == (401, "token_expired")
        assert not bearer._cache


def test_the_clock_setting_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="clock"):
        authenticator(clock=time.time)
