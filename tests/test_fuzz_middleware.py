"""Fuzzing the whole middleware stack of the example app with hypothesis.

Arbitrary ``Authorization``, ``Cookie``, ``X-API-Key``, ``Origin``, ``Forwarded`` and
``X-Forwarded-*`` values — raw bytes as an ASGI server delivers them, non-ASCII, huge,
repeated, near-misses of real credentials — against every route and method of the example
app, in process. For every request:

* never a 5xx (and no exception escapes the app);
* never an identity without valid credentials (``scope["user"]`` is checked directly), and
  a route that refuses an anonymous request refuses every fuzzed one too;
* every 401 carries challenges that the strict RFC 9110 parser accepts, one per line;
* every problem body is valid against the shipped JSON Schema; no header holds CR/LF/NUL.

``AUTHGUARD_FUZZ_EXAMPLES`` sets the number of examples per test (default 500).
"""

from __future__ import annotations

import base64
import functools
import json
import os
import re
import string
import time
from types import ModuleType
from typing import Any

import jwt
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute

import rawasgi
from authguard import Identity
from authguard.routing import iter_routes

EXAMPLES = int(os.environ.get("AUTHGUARD_FUZZ_EXAMPLES", "500"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

JWT_SECRET = "demo-jwt-secret-0123456789abcdef-0123456789"
VALID_BASIC = [base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in
               [("alice", "wonderland"), ("bob", "builder"), ("carol", "rainbow")]]
VALID_KEYS = ["demo-key-alice-0123456789", "demo-key-bob-0123456789"]


def mint(**claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": "https://auth.example.test", "aud": "authguard-demo", "sub": "alice",
               "scope": "reports:read", "iat": now, "exp": now + 3600, **claims}
    return jwt.encode(payload, JWT_SECRET, algorithm="HS256")


VALID_TOKENS = [mint(), mint(sub="bob", roles=["admin"])]


@functools.cache
def example() -> ModuleType:
    return rawasgi.load_example_app("authguard_fuzz_example_app",
                                    {"AUTHGUARD_DEMO_FAILURE_LIMIT": "1000000000"})


def _concrete(path: str) -> str:
    return re.sub(r"{[^}]+}", "x1", path)


@functools.cache
def endpoints() -> tuple[tuple[str, str], ...]:
    """Every (method, path) of the example app, HEAD and OPTIONS included; ``WS`` for
    websocket routes."""
    out: set[tuple[str, str]] = set()
    routes: list[BaseRoute] = list(example().app.routes)
    for info in iter_routes(routes):
        methods = info.methods
        extra = [] if methods == ["WS"] else ["OPTIONS", "HEAD"] if "GET" in methods else [
            "OPTIONS"]
        for m in [*methods, *extra]:
            out.add((m, _concrete(info.path)))
    return tuple(sorted(out))


# -- strategies ------------------------------------------------------------------------------

_FIELD = bytes(range(0x21, 0x7F)) + b" \t" + bytes(range(0x80, 0x100))
field_bytes = st.lists(st.sampled_from(_FIELD), max_size=120).map(bytes)
any_bytes = st.binary(max_size=120)
huge = st.integers(4_000, 120_000).map(lambda n: b"A" * n)
text = st.text(max_size=40)
b64_alphabet = string.ascii_letters + string.digits + "+/-_~."
token68 = st.text(alphabet=b64_alphabet, min_size=1, max_size=80).flatmap(
    lambda t: st.sampled_from(["", "=", "=="]).map(lambda pad: (t + pad).encode()))


def _miss(value: str, how: int) -> str:
    """A near-miss of a valid credential that is certainly not valid."""
    if how == 0:
        return value[:-1]
    if how == 1:
        return value + "x"
    i = next(i for i in range(len(value) // 2, len(value)) if value[i].isalpha())
    return value[:i] + value[i].swapcase() + value[i + 1:]


near_basic = st.tuples(st.sampled_from(VALID_BASIC), st.integers(0, 2)).map(
    lambda t: _miss(*t).encode())
near_key = st.tuples(st.sampled_from(VALID_KEYS), st.integers(0, 2)).map(
    lambda t: _miss(*t).encode())
near_token = st.tuples(st.sampled_from(VALID_TOKENS), st.integers(0, 2)).map(
    lambda t: _miss(*t).encode())
basic_payload = st.tuples(
    st.one_of(st.sampled_from(["alice", "bob", "carol", "", "al:ice", "ALICE"]), text), text,
).map(lambda up: base64.b64encode(f"{up[0]}:{up[1]}".encode()))


def _b64url(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children,
                                                                       max_size=3),
    max_leaves=8,
)
claims = st.dictionaries(
    st.sampled_from(["iss", "aud", "sub", "exp", "nbf", "iat", "scope", "roles", "jti", "acr",
                     "auth_time", "kid"]) | text, json_values, max_size=6)
jose_header = st.one_of(
    st.sampled_from([{"alg": "none"}, {"alg": "HS256"}, {"alg": "RS256"}, {"alg": "HS256",
                     "crit": ["exp"]}, {"alg": "HS256", "kid": "../../etc/passwd"}, {}]),
    st.dictionaries(text, json_values, max_size=3))
jwt_like = st.builds(
    lambda h, c, sig: b".".join([_b64url(json.dumps(h).encode()), _b64url(
        json.dumps(c).encode()), sig]),
    jose_header, claims, st.one_of(st.just(b""), token68, st.binary(max_size=40).map(_b64url)))

payloads = st.one_of(field_bytes, any_bytes, token68, basic_payload, jwt_like, near_basic,
                     near_token, huge)
auth_schemes = st.sampled_from([b"Basic", b"basic", b"BASIC", b"Bearer", b"bearer", b"ApiKey",
                                b"Payment", b"Digest", b"Negotiate", b"Cookie", b"", b"B\xe4sic"])
separators = st.sampled_from([b" ", b"  ", b"\t", b"", b" \t "])
authorization = st.one_of(
    st.builds(lambda s, sep, p: s + sep + p, auth_schemes, separators, payloads),
    st.one_of(jwt_like, near_token, token68).map(lambda t: b"Bearer " + t),
    st.one_of(basic_payload, near_basic, token68).map(lambda t: b"Basic " + t),
    any_bytes, huge)

cookie_names = st.sampled_from([b"authguard_session", b"session", b"X-API-Key", b"", b"a b"])
cookie_pair = st.builds(lambda n, v: n + b"=" + v, cookie_names,
                        st.one_of(field_bytes, token68, jwt_like, huge, st.just(b'""')))
cookie = st.one_of(st.lists(cookie_pair, min_size=1, max_size=4).map(b"; ".join), any_bytes)
api_key = st.one_of(near_key, field_bytes, any_bytes, huge, token68)
origin = st.one_of(st.sampled_from([b"null", b"http://localhost:3000", b"https://evil.example",
                                    b"http://localhost:3000.evil.example", b"HTTP://LOCALHOST:3000",
                                    b"http://localhost:3000/"]), field_bytes)
addresses = st.sampled_from([b"127.0.0.1", b"10.0.0.1", b"::1", b"[2001:db8::1]:80",
                             b"unknown", b"_hidden", b"999.1.1.1", b"198.51.100.7"])
forwarded = st.one_of(
    st.lists(addresses, min_size=1, max_size=4).map(b", ".join),
    st.lists(addresses.map(lambda a: b"for=" + a + b";proto=https"), min_size=1,
             max_size=3).map(b",".join),
    field_bytes, any_bytes)

header = st.one_of(
    st.tuples(st.just(b"authorization"), authorization),
    st.tuples(st.just(b"cookie"), cookie),
    st.tuples(st.just(b"x-api-key"), api_key),
    st.tuples(st.just(b"origin"), origin),
    st.tuples(st.sampled_from([b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"]),
              forwarded),
    st.tuples(st.sampled_from([b"accept", b"x-request-id", b"access-control-request-method",
                               b"sec-websocket-protocol", b"content-type"]),
              st.one_of(field_bytes, st.just(b"text/html"), st.just(b"GET"))),
)
headers = st.lists(header, max_size=8)


# -- the oracle ------------------------------------------------------------------------------

_baseline: dict[tuple[str, str], int] = {}


async def _anonymous_status(method: str, path: str) -> int:
    key = (method, path)
    if key not in _baseline:
        app = example().app
        if method == "WS":
            _baseline[key] = (await rawasgi.websocket(app, path)).status
        else:
            _baseline[key] = (await rawasgi.http(app, method, path)).status
    return _baseline[key]


def _refused(status: int) -> bool:
    return status >= 400


async def check_request(method: str, path: str, hdrs: list[tuple[bytes, bytes]]) -> None:
    app = example().app
    anonymous = await _anonymous_status(method, path)
    if method == "WS":
        answer = await rawasgi.websocket(app, path, hdrs)
    else:
        answer = await rawasgi.http(app, method, path, hdrs)
    rawasgi.check_answer(answer, method)
    reason = b""
    if answer.body.startswith(b"{") and b'"reason"' in answer.body:
        reason = json.loads(answer.body).get("reason", "").encode()
    event(f"{answer.status} {reason.decode()}")
    user = answer.scope.get("user")
    assert not isinstance(user, Identity), f"authenticated as {user!r} without credentials"
    if _refused(anonymous) and anonymous in (401, 402, 403):
        redirected = answer.status == 303 and answer.header(b"location")[0].startswith(b"/login")
        assert _refused(answer.status) or redirected, (method, path, answer.status)
        assert not answer.accepted


@FUZZ
@given(data=st.data(), hdrs=headers)
async def test_fuzzed_credential_headers_on_every_route(data: st.DataObject,
                                                        hdrs: list[tuple[bytes, bytes]]) -> None:
    method, path = data.draw(st.sampled_from(endpoints()), label="endpoint")
    await check_request(method, path, hdrs)


@FUZZ
@given(data=st.data(), value=authorization, repeat=st.integers(1, 4))
async def test_fuzzed_authorization_alone_and_repeated(data: st.DataObject, value: bytes,
                                                       repeat: int) -> None:
    method, path = data.draw(st.sampled_from(endpoints()), label="endpoint")
    await check_request(method, path, [(b"authorization", value)] * repeat)


@FUZZ
@given(data=st.data(), value=st.one_of(field_bytes, any_bytes, huge, jwt_like))
async def test_fuzzed_websocket_subprotocols(data: st.DataObject, value: bytes) -> None:
    ws = [p for m, p in endpoints() if m == "WS"]
    if not ws:  # pragma: no cover - the example app has WS /ws
        return
    path = data.draw(st.sampled_from(ws))
    protocols = [p.strip() for p in value.decode("latin-1").split(",")]
    answer = await rawasgi.websocket(example().app, path,
                                     [(b"sec-websocket-protocol", value)],
                                     subprotocols=[p for p in protocols if p])
    rawasgi.check_answer(answer)
    assert not answer.accepted
    assert not isinstance(answer.scope.get("user"), Identity)


async def test_the_oracle_sees_valid_credentials() -> None:
    """The fuzz oracle is not vacuous: real credentials do authenticate on every scheme."""
    app = example().app
    for value in (b"Basic " + VALID_BASIC[0].encode(), b"Bearer " + VALID_TOKENS[0].encode()):
        answer = await rawasgi.http(app, "GET", "/me", [(b"authorization", value)])
        assert answer.status == 200 and isinstance(answer.scope["user"], Identity)
    answer = await rawasgi.http(app, "GET", "/me", [(b"x-api-key", VALID_KEYS[0].encode())])
    assert answer.status == 200
    assert await _anonymous_status("GET", "/me") == 401
    assert ("WS", "/ws") in endpoints() and ("GET", "/admin") in endpoints()


def test_near_misses_differ_from_the_real_credentials() -> None:
    for value in VALID_BASIC + VALID_KEYS + VALID_TOKENS:
        for how in range(3):
            assert _miss(value, how) != value
