"""Bearer/JWT: keys, algorithms, the attack corpus, JWKS from a real loopback server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import time_machine
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
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
    JWKSKeys,
    JWTKey,
    StaticKeys,
    protect,
)
from authguard.stores import MemoryRevocationStore
from helpers import asgi_client, free_port, uvicorn_server

AUD = "api"
ISS = "https://issuer.test"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PUBLIC_PEM = RSA_KEY.public_key().public_bytes(
    serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ED_KEY = ed25519.Ed25519PrivateKey.generate()


def claims(**extra: Any) -> dict[str, Any]:
    now = int(time.time())
    out: dict[str, Any] = {"sub": "ann", "aud": AUD, "iss": ISS, "iat": now, "exp": now + 60}
    out.update(extra)
    return out


def app_with(bearer: BearerAuthenticator) -> Starlette:
    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.identity, "scopes": sorted(request.auth.scopes)})

    app = Starlette(routes=[Route("/me", me)])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[bearer]))
    return app


async def status_and_reason(app: Starlette, token: str) -> tuple[int, str | None]:
    async with asgi_client(app) as c:
        r = await c.get("/me", headers={"Authorization": f"Bearer {token}"})
    reason = r.json().get("reason") if r.status_code >= 400 else None
    assert token not in r.text
    return r.status_code, reason


def b64(data: dict[str, Any] | bytes) -> str:
    raw = data if isinstance(data, bytes) else json.dumps(data).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# -- algorithms bound to keys ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "signing_key", "alg"),
    [
        (JWTKey.from_pem(RSA_PUBLIC_PEM, "RS256"), RSA_KEY, "RS256"),
        (JWTKey.from_pem(RSA_PUBLIC_PEM, "PS256"), RSA_KEY, "PS256"),
        (JWTKey.from_pem(EC_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            "ES256"), EC_KEY, "ES256"),
        (JWTKey.from_pem(ED_KEY.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
            "EdDSA"), ED_KEY, "EdDSA"),
    ],
    ids=["RS256", "PS256", "ES256", "EdDSA"],
)
async def test_asymmetric_algorithms(key: JWTKey, signing_key: Any, alg: str) -> None:
    app = app_with(BearerAuthenticator(key=key, audience=AUD, issuer=ISS))
    assert await status_and_reason(app, jwt.encode(claims(), signing_key, alg)) == (200, None)
    other = jwt.encode(claims(), "k" * 32, "HS256")
    assert await status_and_reason(app, other) == (401, "credentials_invalid")


async def test_attack_corpus_rsa_server() -> None:
    """Each a 401 with the right reason, never a 5xx (checked by the client hook)."""
    app = app_with(BearerAuthenticator(key=JWTKey.from_pem(RSA_PUBLIC_PEM, "RS256"),
                                       audience=AUD, issuer=ISS))
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims())}."
    none_upper = f"{b64({'alg': 'NONE'})}.{b64(claims())}."
    # HS256 "signed" with the server's RSA public key: the classic key-confusion attack.
    header = b64({"alg": "HS256", "typ": "JWT"})
    body = b64(claims())
    sig = hmac.new(RSA_PUBLIC_PEM, f"{header}.{body}".encode(), hashlib.sha256).digest()
    confusion = f"{header}.{body}.{b64(sig)}"
    corpus = {
        unsigned: "credentials_invalid",  # well-formed, but unsigned tokens never verify
        none_upper: "credentials_invalid",
        confusion: "credentials_invalid",
        jwt.encode(claims(aud="other"), RSA_KEY, "RS256"): "token_wrong_audience",
        jwt.encode(claims(iss="https://evil.test"), RSA_KEY, "RS256"): "token_wrong_audience",
        jwt.encode(claims(), RSA_KEY, "RS256", headers={"typ": "refresh+jwt"}):
            "credentials_invalid",
        jwt.encode(claims(exp=10**400), RSA_KEY, "RS256"): "credentials_invalid",
        jwt.encode({k: v for k, v in claims().items() if k != "exp"}, RSA_KEY, "RS256"):
            "credentials_invalid",
        jwt.encode(claims(sub=""), RSA_KEY, "RS256"): "credentials_invalid",  # nobody
        jwt.encode(claims(exp="soon"), RSA_KEY, "RS256"): "credentials_invalid",
        jwt.encode(claims(exp=10**30), RSA_KEY, "RS256"): None,
        jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "../../../../etc/passwd"}): None,
        jwt.encode(claims(), RSA_KEY, "RS256", headers={"kid": "x" * 300}): "credentials_invalid",
        "e30.e30.e30": "credentials_malformed",  # a header without "alg"
        "a.b.c": "credentials_malformed",
        "a.b.c.d.e": "credentials_malformed",
        "..": "credentials_malformed",
        "x" * 10_000: "credentials_malformed",
        f"{b64(b'not json')}.{b64(claims())}.sig": "credentials_malformed",
        f"{b64([1, 2])}.{b64(claims())}.sig": "credentials_malformed",
    }
    for token, reason in corpus.items():
        got = await status_and_reason(app, token)
        expected = (200, None) if reason is None else (401, reason)
        assert got == expected, (token[:60], got)


async def test_alg_none_and_weak_secrets_refuse_to_start() -> None:
    with pytest.raises(ConfigurationError, match="'none'"):
        JWTKey.from_jwk({"kty": "oct", "k": "abc"}, "none")
    with pytest.raises(ConfigurationError, match="secret"):
        JWTKey.hs256("too-short")
    with pytest.raises(ConfigurationError, match="HS512"):
        JWTKey.hmac("x" * 40, "HS512")
    with pytest.raises(ConfigurationError, match="audience"):
        BearerAuthenticator(key=JWTKey.hs256("x" * 32), audience="")
    with pytest.raises(ConfigurationError, match="key/keys"):
        BearerAuthenticator(audience="a")
    with pytest.raises(ConfigurationError, match="algorithm"):
        JWTKey.from_pem(RSA_PUBLIC_PEM, "HS256")


async def test_key_rotation_with_kids() -> None:
    old, new = JWTKey.hs256("o" * 32, kid="2025"), JWTKey.hs256("n" * 32, kid="2026")
    app = app_with(BearerAuthenticator(keys=StaticKeys([new, old]), audience=AUD))
    for secret, kid in (("o" * 32, "2025"), ("n" * 32, "2026")):
        token = jwt.encode(claims(), secret, "HS256", headers={"kid": kid})
        assert await status_and_reason(app, token) == (200, None)
    wrong_kid = jwt.encode(claims(), "o" * 32, "HS256", headers={"kid": "2026"})
    assert await status_and_reason(app, wrong_kid) == (401, "credentials_invalid")


async def test_leeway() -> None:
    now = int(time.time())
    bearer = BearerAuthenticator(key=JWTKey.hs256("s" * 32), audience=AUD, leeway=30)
    app = app_with(bearer)
    token = jwt.encode({"sub": "a", "aud": AUD, "exp": now - 10, "iat": now - 100},
                       "s" * 32, "HS256")
    assert await status_and_reason(app, token) == (200, None)  # within leeway
    token = jwt.encode({"sub": "a", "aud": AUD, "exp": now - 40}, "s" * 32, "HS256")
    assert await status_and_reason(app, token) == (401, "token_expired")
    token = jwt.encode({"sub": "a", "aud": AUD, "exp": now + 99, "nbf": now + 20},
                       "s" * 32, "HS256")
    assert await status_and_reason(app, token) == (200, None)
    token = jwt.encode({"sub": "a", "aud": AUD, "exp": now + 99, "nbf": now + 60},
                       "s" * 32, "HS256")
    assert await status_and_reason(app, token) == (401, "token_not_yet_valid")


async def test_verified_token_cache_honours_exp_and_revocation() -> None:
    start = time.time()
    with time_machine.travel(start, tick=False) as traveller:
        store = MemoryRevocationStore()
        bearer = BearerAuthenticator(key=JWTKey.hs256("s" * 32), audience=AUD,
                                     revocations=store)
        app = app_with(bearer)
        token = jwt.encode({"sub": "a", "aud": AUD, "exp": int(start) + 60,
                            "iat": int(start), "jti": "j1"}, "s" * 32, "HS256")
        assert await status_and_reason(app, token) == (200, None)
        assert len(bearer._cache) == 1
        traveller.shift(61)
        assert await status_and_reason(app, token) == (401, "token_expired")
        traveller.shift(-61)
        assert await status_and_reason(app, token) == (200, None)
        await store.revoke_token("j1", start + 60)
        assert await status_and_reason(app, token) == (401, "credentials_revoked")


async def test_query_and_subprotocol_are_opt_in() -> None:
    token = jwt.encode(claims(), "s" * 32, "HS256")
    closed = app_with(BearerAuthenticator(key=JWTKey.hs256("s" * 32), audience=AUD, issuer=ISS))
    opened = app_with(BearerAuthenticator(key=JWTKey.hs256("s" * 32), audience=AUD, issuer=ISS,
                                          allow_query=True))
    async with asgi_client(closed) as c:
        r = await c.get("/me", params={"access_token": token})
        assert r.status_code == 401 and r.json()["reason"] == "credentials_missing"
    async with asgi_client(opened) as c:
        assert (await c.get("/me", params={"access_token": token})).status_code == 200
        r = await c.get("/me", params={"access_token": token},
                        headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 400 and r.json()["reason"] == "invalid_request"
        assert 'error="invalid_request"' in r.headers["www-authenticate"]


# -- jku / x5u are never followed ------------------------------------------------------------


@pytest.fixture
def trap() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server that records every request it gets."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"keys": []}')

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()
        server.server_close()


async def test_jku_and_x5u_are_never_contacted(trap: tuple[str, list[str]]) -> None:
    url, hits = trap
    app = app_with(BearerAuthenticator(key=JWTKey.from_pem(RSA_PUBLIC_PEM, "RS256"),
                                       audience=AUD, issuer=ISS))
    attacker = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for header in ({"jku": f"{url}/jwks.json"}, {"x5u": f"{url}/cert.pem"},
                   {"jwk": json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(attacker.public_key()))}):
        token = jwt.encode(claims(), attacker, "RS256", headers=header)
        assert await status_and_reason(app, token) == (401, "credentials_invalid")
    assert hits == []


# -- JWKS from a real server under uvicorn ---------------------------------------------------

JWKS_APP = '''
import json, os
from pathlib import Path
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

async def jwks(request):
    folder = Path(os.environ["JWKS_DIR"])
    with open(folder / "hits", "a") as f:
        f.write("x")
    return Response((folder / "jwks.json").read_bytes(), media_type="application/json")

app = Starlette(routes=[Route("/jwks.json", jwks)])
'''


def jwk_of(key: Any, kid: str) -> dict[str, Any]:
    out = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    return {**out, "kid": kid, "alg": "RS256", "use": "sig"}


async def test_jwks_lookup_refresh_outage_and_recovery(tmp_path: Path) -> None:
    key1 = RSA_KEY
    key2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "app.py").write_text(JWKS_APP)
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [jwk_of(key1, "k1")]}))
    port = free_port()
    env = {"JWKS_DIR": str(tmp_path)}

    def hits() -> int:
        path = tmp_path / "hits"
        return len(path.read_text()) if path.exists() else 0

    with uvicorn_server("app:app", app_dir=tmp_path, env=env, port=port) as url:
        # An interval the 21 refused requests below fit in even on a loaded machine.
        keys = JWKSKeys(f"{url}/jwks.json", min_refresh_interval=3, refresh_interval=60)
        app = app_with(BearerAuthenticator(keys=keys, audience=AUD, issuer=ISS))
        t1 = jwt.encode(claims(), key1, "RS256", headers={"kid": "k1"})
        t2 = jwt.encode(claims(), key2, "RS256", headers={"kid": "k2"})
        assert await status_and_reason(app, t1) == (200, None)
        assert hits() == 1
        # An unknown kid: one refresh, then "no such key" until the interval has passed.
        assert await status_and_reason(app, t2) == (401, "credentials_invalid")
        for _ in range(20):
            assert await status_and_reason(app, t2) == (401, "credentials_invalid")
        assert hits() == 1  # the first lookup of k2 came within min_refresh_interval
        # The issuer rotates in k2: after the interval, the unknown kid triggers a fetch.
        (tmp_path / "jwks.json").write_text(
            json.dumps({"keys": [jwk_of(key1, "k1"), jwk_of(key2, "k2")]}))
        time.sleep(3.1)
        assert await status_and_reason(app, t2) == (200, None)
        assert hits() == 2

    # The JWKS server is down: cached keys keep working; an unknown kid cannot be decided.
    time.sleep(3.1)
    assert await status_and_reason(app, t1) == (200, None)
    t3 = jwt.encode(claims(), key2, "RS256", headers={"kid": "k3"})
    async with asgi_client(app) as c:
        r = await c.get("/me", headers={"Authorization": f"Bearer {t3}"})
    assert r.status_code == 503 and r.json()["reason"] == "auth_unavailable"
    assert int(r.headers["retry-after"]) > 0
    # A fresh process with no cached key: 503, never 401.
    cold_keys = JWKSKeys(f"http://127.0.0.1:{port}/jwks.json", timeout=1,
                         min_refresh_interval=0.5)
    cold = app_with(BearerAuthenticator(keys=cold_keys, audience=AUD, issuer=ISS))
    async with asgi_client(cold) as c:
        r = await c.get("/me", headers={"Authorization": f"Bearer {t1}"})
    assert r.status_code == 503 and "retry-after" in r.headers

    # Restarted: the cold process recovers without a restart of its own.
    with uvicorn_server("app:app", app_dir=tmp_path, env=env, port=port):
        time.sleep(0.6)
        async with asgi_client(cold) as c:
            r = await c.get("/me", headers={"Authorization": f"Bearer {t1}"})
        assert r.status_code == 200


async def test_jwks_background_refresh_before_expiry() -> None:
    clock = [1000.0]
    documents = [json.dumps({"keys": [jwk_of(RSA_KEY, "k1")]}).encode()]
    fetched: list[float] = []

    def fetch(url: str, timeout: float) -> bytes:
        fetched.append(clock[0])
        return documents[-1]

    keys = JWKSKeys("https://issuer.test/jwks.json", refresh_interval=100,
                    min_refresh_interval=10, fetch=fetch, clock=lambda: clock[0])
    assert [k.kid for k in await keys.keys_for("k1", "RS256")] == ["k1"]
    clock[0] += 85  # past 80% of the interval: served from cache, refreshed behind
    assert await keys.keys_for("k1", "RS256")
    assert keys._background is not None
    await keys._background
    assert fetched == [1000.0, 1085.0]
    assert await keys.keys_for("k1", "HS256") == []  # never a symmetric key from a JWKS
