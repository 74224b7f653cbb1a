"""DPoP (RFC 9449) in process: every failure of a proof, each with a proof that differs from a
valid one in exactly that respect, its own reason and the DPoP challenge of §7.1; the
downgrade of a bound token to Bearer (§7.2); nonces (§8, §9); configuration mistakes."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jwt.algorithms import ECAlgorithm
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
    DPoPAuthenticator,
    DPoPNonces,
    HasScopes,
    JWTKey,
    Reason,
    protect,
)
from authguard.challenges import Challenge, parse_www_authenticate
from authguard.stores import MemoryNonceStore
from dpop_helpers import ClientKey, bound_token, dpop_headers, proof
from helpers import asgi_client
from tokens import SETTINGS, bearer, mint

BASE = "http://testserver"
URL = BASE + "/me"


def make_bearer() -> BearerAuthenticator:
    return BearerAuthenticator(key=JWTKey.hs256(SETTINGS.jwt_secret), issuer=SETTINGS.jwt_issuer,
                               audience=SETTINGS.jwt_audience, realm="demo")


def make_app(**dpop_kw: Any) -> Starlette:
    bearer_auth = make_bearer()
    dpop = DPoPAuthenticator(tokens=bearer_auth, realm="demo", **dpop_kw)

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject, "scheme": request.user.scheme})

    app = Starlette(routes=[
        protect(Authenticated())(Route("/me", me, methods=["GET", "POST"])),
        protect(Authenticated("DPoP"))(Route("/dpop/me", me)),
        protect(HasScopes("reports:read"))(Route("/reports", me)),
    ])
    app.add_middleware(AuthGuardMiddleware,
                       guard=AuthGuard(authenticators=[bearer_auth, dpop]))
    return app


def challenges(r: httpx.Response) -> dict[str, Challenge]:
    out: dict[str, Challenge] = {}
    for line in r.headers.get_list("www-authenticate"):
        for c in parse_www_authenticate(line):
            out[c.scheme] = c
    return out


@pytest.fixture
def key() -> ClientKey:
    return ClientKey()


async def test_a_bound_token_with_a_valid_proof_is_accepted(key: ClientKey) -> None:
    token = bound_token(key)
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token)))
        assert r.status_code == 200
        assert r.json() == {"subject": "alice", "scheme": "DPoP"}
        # the query is not part of htu (§4.3 check 9)
        r = await c.get("/me?x=1", headers=dpop_headers(token, proof(key, "GET", URL, token)))
        assert r.status_code == 200
        r = await c.post("/me", headers=dpop_headers(token, proof(key, "POST", URL, token)))
        assert r.status_code == 200


async def test_no_credentials_gets_both_challenges_and_dpop_advertises_its_algorithms() -> None:
    async with asgi_client(make_app(algorithms=["ES256", "PS256"])) as c:
        r = await c.get("/me")
    assert r.status_code == 401
    found = challenges(r)
    assert set(found) == {"Bearer", "DPoP"}
    assert found["DPoP"].params == {"realm": "demo", "algs": "ES256 PS256"}
    assert r.json()["reason"] == "credentials_missing"


# Each case: a keyword of ``proof`` that changes one respect, and the check that names it.
INVALID = {
    "typ": ({"typ": "JWT"}, "typ"),
    "alg_symmetric": ({"alg": "HS256"}, "alg"),
    "alg_none_listed": ({"alg": "ES384"}, "alg"),  # ES384 is not in the route's list below
    "no_jwk": ({"jwk": None}, "jwk"),
    "private_jwk": ({"jwk": "PRIVATE"}, "jwk"),
    "signature": ({"signer": "OTHER"}, "signature"),
    "htm": ({"htm": "POST"}, "htm"),
    "htu": ({"htu": BASE + "/other"}, "htu"),
    "htu_host": ({"htu": "http://evil.example/me"}, "htu"),
    "iat_old": ({"iat": int(time.time()) - 3600}, "iat"),
    "iat_future": ({"iat": int(time.time()) + 3600}, "iat"),
    "no_jti": ({"jti": None}, "jti"),
    "ath": ({"ath": "A" * 43}, "ath"),
}


@pytest.mark.parametrize("case", sorted(INVALID))
async def test_each_invalid_proof_is_refused_with_invalid_dpop_proof(
        case: str, key: ClientKey) -> None:
    change, check = INVALID[case]
    change = dict(change)
    if change.get("jwk") == "PRIVATE":
        change["jwk"] = ECAlgorithm.to_jwk(key.private, as_dict=True)  # with its "d"
        assert "d" in change["jwk"]
    if change.get("signer") == "OTHER":
        change["signer"] = ClientKey()
    if case == "alg_none_listed":
        change.pop("alg")
    token = bound_token(key)
    algorithms = ["ES256"] if case != "alg_none_listed" else ["ES512"]
    async with asgi_client(make_app(algorithms=algorithms)) as c:
        # the same proof, unchanged, is accepted (so the change alone is refused)
        if case != "alg_none_listed":
            good = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token)))
            assert good.status_code == 200
        r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token,
                                                                 **change)))
    assert r.status_code == 401
    body = r.json()
    assert body["reason"] == "invalid_dpop_proof"
    assert body["dpop_check"] == check
    dpop = challenges(r)["DPoP"]
    assert dpop.params["error"] == "invalid_dpop_proof"
    assert dpop.params["algs"] == " ".join(algorithms)
    assert "Bearer" not in challenges(r), "the error goes only on the scheme the client used"


async def test_a_proof_by_a_key_other_than_the_tokens_is_refused(key: ClientKey) -> None:
    other = ClientKey()
    token = bound_token(key)
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers=dpop_headers(token, proof(other, "GET", URL, token)))
    assert r.status_code == 401
    assert r.json()["reason"] == "invalid_dpop_proof"
    assert r.json()["dpop_check"] == "jkt"


async def test_two_dpop_headers_are_refused(key: ClientKey) -> None:
    token = bound_token(key)
    headers = [("Authorization", f"DPoP {token}"), ("DPoP", proof(key, "GET", URL, token)),
               ("DPoP", proof(key, "GET", URL, token))]
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["reason"] == "invalid_dpop_proof"
    assert r.json()["dpop_check"] == "shape"


async def test_a_replayed_proof_is_refused(key: ClientKey) -> None:
    token = bound_token(key)
    headers = dpop_headers(token, proof(key, "GET", URL, token))
    async with asgi_client(make_app()) as c:
        assert (await c.get("/me", headers=headers)).status_code == 200
        r = await c.get("/me", headers=headers)
    assert r.status_code == 401
    assert r.json()["reason"] == "dpop_proof_replayed"
    assert challenges(r)["DPoP"].params["error"] == "invalid_dpop_proof"


async def test_a_dpop_token_without_a_proof_is_refused(key: ClientKey) -> None:
    token = bound_token(key)
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers={"Authorization": f"DPoP {token}"})
    assert r.status_code == 401
    assert r.json()["reason"] == "dpop_proof_missing"
    dpop = challenges(r)["DPoP"]
    assert dpop.params["error"] == "invalid_dpop_proof"
    assert "algs" in dpop.params


async def test_a_bound_token_sent_as_bearer_is_refused_downgrade(key: ClientKey) -> None:
    token = bound_token(key)
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers=bearer(token))
        plain = await c.get("/me", headers=bearer(mint()))
    assert r.status_code == 401
    assert r.json()["reason"] == "dpop_proof_missing"
    found = challenges(r)
    assert found["Bearer"].params["error"] == "invalid_token"
    assert "error" not in found["DPoP"].params and "algs" in found["DPoP"].params
    assert plain.status_code == 200, "an unbound Bearer token still works"


async def test_an_unbound_token_sent_as_dpop_is_refused(key: ClientKey) -> None:
    token = mint()  # no cnf.jkt
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token)))
    assert r.status_code == 401
    assert r.json()["reason"] == "credentials_invalid"
    assert challenges(r)["DPoP"].params["error"] == "invalid_token"


async def test_token_refusals_carry_the_dpop_challenge(key: ClientKey) -> None:
    token = bound_token(key, lifetime=-10)
    async with asgi_client(make_app()) as c:
        r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token)))
    assert r.status_code == 401
    assert r.json()["reason"] == "token_expired"
    dpop = challenges(r)["DPoP"]
    assert dpop.params["error"] == "invalid_token"
    assert dpop.params["error_description"] == "The access token expired"


async def test_a_dpop_only_route_refuses_bearer_with_a_dpop_challenge(key: ClientKey) -> None:
    async with asgi_client(make_app()) as c:
        r = await c.get("/dpop/me", headers=bearer(mint()))
        token = bound_token(key)
        ok = await c.get("/dpop/me", headers=dpop_headers(
            token, proof(key, "GET", BASE + "/dpop/me", token)))
    assert r.status_code == 401
    assert set(challenges(r)) == {"DPoP"}
    assert ok.status_code == 200


async def test_insufficient_scope_goes_on_the_dpop_challenge(key: ClientKey) -> None:
    token = bound_token(key, scope="other")
    async with asgi_client(make_app()) as c:
        r = await c.get("/reports", headers=dpop_headers(
            token, proof(key, "GET", BASE + "/reports", token)))
    assert r.status_code == 403
    dpop = challenges(r)["DPoP"]
    assert dpop.params["error"] == "insufficient_scope"
    assert dpop.params["scope"] == "reports:read"


async def test_the_nonce_dance(key: ClientKey) -> None:
    now = [1_000_000.0]
    nonces = DPoPNonces(b"n" * 32, lifetime=60, clock=lambda: now[0])
    token = bound_token(key)
    async with asgi_client(make_app(nonces=nonces)) as c:
        r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token)))
        assert r.status_code == 401
        assert r.json()["reason"] == "use_dpop_nonce"
        assert challenges(r)["DPoP"].params["error"] == "use_dpop_nonce"
        nonce = r.headers["dpop-nonce"]
        assert "DPoP-Nonce" in r.headers["access-control-expose-headers"]
        ok = await c.get("/me", headers=dpop_headers(
            token, proof(key, "GET", URL, token, nonce=nonce)))
        assert ok.status_code == 200
        bad = await c.get("/me", headers=dpop_headers(
            token, proof(key, "GET", URL, token, nonce=nonce[:-2] + "AA")))
        assert bad.json()["reason"] == "use_dpop_nonce"
        now[0] += 60  # rotated: the previous slot's nonce is still accepted
        assert r.headers["dpop-nonce"] != nonces.issue()
        ok = await c.get("/me", headers=dpop_headers(
            token, proof(key, "GET", URL, token, nonce=nonce)))
        assert ok.status_code == 200
        now[0] += 60  # two rotations later: stale
        stale = await c.get("/me", headers=dpop_headers(
            token, proof(key, "GET", URL, token, nonce=nonce)))
        assert stale.json()["reason"] == "use_dpop_nonce"
        assert stale.headers["dpop-nonce"] == nonces.issue() != nonce


def test_nonces_agree_across_instances_with_one_secret() -> None:
    a = DPoPNonces(b"s" * 32, clock=lambda: 1000.0)
    b = DPoPNonces(b"s" * 32, clock=lambda: 1000.0)
    other = DPoPNonces(b"t" * 32, clock=lambda: 1000.0)
    assert b.check(a.issue())
    assert not other.check(a.issue())
    for junk in (None, 5, "", "zz.zz", "0x3." + "A" * 24, "3", "é" * 10, "1" * 100):
        assert not a.check(junk)


async def test_the_origin_setting_is_what_htu_must_name(key: ClientKey) -> None:
    token = bound_token(key)
    app = make_app(origin="https://api.example.com")
    async with asgi_client(app) as c:
        r = await c.get("/me", headers=dpop_headers(
            token, proof(key, "GET", "https://api.example.com/me", token)))
        assert r.status_code == 200
        r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token)))
        assert r.json()["dpop_check"] == "htu"


async def test_htu_comparison_normalizes_case_default_port_and_escapes(key: ClientKey) -> None:
    token = bound_token(key)
    async with asgi_client(make_app()) as c:
        for htu in ("HTTP://TestServer:80/me", "http://testserver/%6De", "http://testserver/me#f"):
            r = await c.get("/me", headers=dpop_headers(token, proof(key, "GET", URL, token,
                                                                     htu=htu)))
            assert r.status_code == 200, htu


@pytest.mark.parametrize("kw", [
    {"algorithms": ["HS256"]}, {"algorithms": ["none"]}, {"algorithms": []},
    {"algorithms": "ES256"}, {"max_age": 0}, {"leeway": -1}, {"origin": "ftp://x"},
    {"origin": "https://api.example.com/path"}, {"realm": "a\r\nb"},
])
def test_configuration_mistakes_name_the_setting(kw: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError) as err:
        DPoPAuthenticator(tokens=make_bearer(), **kw)
    assert next(iter(kw)) in str(err.value)


def test_tokens_must_be_a_token_verifier() -> None:
    with pytest.raises(ConfigurationError, match="tokens"):
        DPoPAuthenticator(tokens=object())  # type: ignore[arg-type]


def test_short_nonce_secrets_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="secret"):
        DPoPNonces(b"short")


async def test_the_replay_store_is_the_one_given(key: ClientKey) -> None:
    store = MemoryNonceStore()
    token = bound_token(key)
    headers = dpop_headers(token, proof(key, "GET", URL, token))
    async with asgi_client(make_app(replays=store)) as c:
        assert (await c.get("/me", headers=headers)).status_code == 200
    async with asgi_client(make_app(replays=store)) as c:  # another "replica", same store
        assert (await c.get("/me", headers=headers)).json()["reason"] == "dpop_proof_replayed"


async def test_a_bare_dpop_scheme_is_malformed(key: ClientKey) -> None:
    async with asgi_client(make_app()) as c:
        for value in ("DPoP", "DPoP ", "DPoP a b", "DPoP é"):
            r = await c.get("/me", headers={"Authorization": value.encode("utf-8")})
            assert r.status_code == 401
            assert r.json()["reason"] == "credentials_malformed", value
            assert challenges(r)["DPoP"].params["error"] == "invalid_token"


JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)


_FUZZ_APP = make_app()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=st.dictionaries(st.sampled_from(["typ", "alg", "jwk", "crit", "kid", "x"]),
                              JSON, max_size=4),
       claims=st.dictionaries(st.sampled_from(["jti", "htm", "htu", "iat", "ath", "nonce"]),
                              JSON, max_size=6),
       raw=st.binary(max_size=64))
async def test_arbitrary_proofs_get_a_401_never_a_500(header: dict[str, Any],
                                                      claims: dict[str, Any],
                                                      raw: bytes) -> None:
    key = ClientKey.shared()
    token = bound_token(key)

    def b64(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    full = {"typ": "dpop+jwt", "alg": "ES256", "jwk": key.jwk, **header}
    valid = jwt.decode(proof(key, "GET", URL, token), options={"verify_signature": False})
    # the random members over a valid proof's: each check meets values of every JSON type
    head = b64(json.dumps(full).encode()) + b"." + b64(json.dumps({**valid, **claims}).encode())
    # validly signed by the key in the header (whatever the header says), and garbage
    signature = ECAlgorithm(ECAlgorithm.SHA256).sign(head, key.private)
    async with asgi_client(_FUZZ_APP) as c:
        for i, value in enumerate((head + b"." + b64(signature), head + b"." + b64(raw), raw)):
            r = await c.get("/me", headers=[(b"authorization", f"DPoP {token}".encode()),
                                            (b"dpop", value.replace(b"\n", b""))])
            # only a signed proof whose random members happen to be valid may pass
            assert r.status_code == 401 or (i == 0 and r.status_code == 200)


async def test_any_token_verifier_composes_introspection_style(key: ClientKey) -> None:
    from authguard import Identity, Refusal, TokenVerifier

    class Introspection:
        """What an RFC 7662 client gives: the answer's members as claims, cnf included."""

        async def verify_token(self, token: str) -> Identity:
            if token != "opaque-token-1":
                raise Refusal(Reason.CREDENTIALS_INVALID)
            return Identity(subject="carol", scheme="Bearer", scopes=frozenset({"a"}),
                            claims={"active": True, "cnf": {"jkt": key.jkt}})

    assert isinstance(Introspection(), TokenVerifier)
    dpop = DPoPAuthenticator(tokens=Introspection())

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject, "scheme": request.user.scheme})

    app = Starlette(routes=[protect(Authenticated())(Route("/me", me))])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[dpop]))
    async with asgi_client(app) as c:
        ok = await c.get("/me", headers=dpop_headers(
            "opaque-token-1", proof(key, "GET", URL, "opaque-token-1")))
        assert ok.json() == {"subject": "carol", "scheme": "DPoP"}
        bad = await c.get("/me", headers=dpop_headers(
            "opaque-token-2", proof(key, "GET", URL, "opaque-token-2")))
        assert bad.json()["reason"] == "credentials_invalid"
        assert challenges(bad)["DPoP"].params["error"] == "invalid_token"
