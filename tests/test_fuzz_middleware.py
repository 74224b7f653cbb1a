"""Fuzzing the whole middleware stack of the example app with hypothesis.

Arbitrary ``Authorization`` (``DPoP`` included, with ``DPoP`` proofs signed by a real key
over arbitrary claims), ``Cookie``, ``X-API-Key``, ``Origin``, ``Forwarded`` and
``X-Forwarded-*`` values, and payment proofs (``Authorization: Payment …``,
``Payment-Authorization``, x402 ``PAYMENT-SIGNATURE`` and ``X-PAYMENT``) — raw bytes as an
ASGI server delivers them, non-ASCII, huge, repeated, near-misses of real credentials,
replays and alterations of payments really made — against every route and method of the
example app, in process. For every request:

* never a 5xx (and no exception escapes the app);
* never an identity without valid credentials (``scope["user"]`` is checked directly), and
  a route that refuses an anonymous request refuses every fuzzed one too;
* never a payment taken without a valid unspent proof: a paid route refuses every fuzzed
  request, and no answer carries a ``Payment-Receipt`` or ``(X-)PAYMENT-RESPONSE``;
* every 401 carries challenges that the strict RFC 9110 parser accepts, one per line (and
  so does every ``WWW-Authenticate`` line of any other status);
* every 402 says ``payment_required`` or ``payment_invalid`` and, on the pay-per-request
  route, offers a fresh ``Payment`` challenge and an x402 ``PAYMENT-REQUIRED`` that decode;
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
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from starlette.routing import BaseRoute

import rawasgi
from authguard import Identity
from authguard.challenges import parse_www_authenticate
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
                                b"Payment", b"Digest", b"Negotiate", b"Cookie", b"", b"B\xe4sic",
                                b"DPoP", b"dpop"])
separators = st.sampled_from([b" ", b"  ", b"\t", b"", b" \t "])
authorization = st.one_of(
    st.builds(lambda s, sep, p: s + sep + p, auth_schemes, separators, payloads),
    st.one_of(jwt_like, near_token, token68).map(lambda t: b"Bearer " + t),
    st.one_of(basic_payload, near_basic, token68).map(lambda t: b"Basic " + t),
    st.one_of(jwt_like, near_token, token68,
              st.sampled_from(VALID_TOKENS).map(str.encode)).map(lambda t: b"DPoP " + t),
    any_bytes, huge)

# DPoP proofs (RFC 9449): signed by a real key with arbitrary claims and header members
# over a valid proof's, or not JWTs at all
_DPOP_KEY = ec.generate_private_key(ec.SECP256R1())
_DPOP_JWK = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(_DPOP_KEY.public_key()))
proof_claims = st.fixed_dictionaries(
    {}, optional={"htm": st.sampled_from(["GET", "POST", "get", ""]) | text,
                  "htu": st.sampled_from(["http://t/me", "http://testserver/me",
                                          "http://testserver/me?x#y"]) | text,
                  "iat": st.integers(0, 2**40) | json_values,
                  "jti": text | json_values, "ath": text | json_values,
                  "nonce": text | json_values}).flatmap(
    lambda c: claims.map(lambda extra: {**extra, **c}))
proof_header = st.fixed_dictionaries(
    {}, optional={"typ": st.sampled_from(["dpop+jwt", "JWT", "at+jwt"]) | text,
                  "jwk": st.one_of(st.just(_DPOP_JWK), st.just({**_DPOP_JWK, "d": "AAAA"}),
                                   json_values),
                  "kid": text})
signed_proof = st.builds(
    # signed as a JWS, so that pyjwt's own claim checks on encoding do not apply
    lambda c, h: jwt.api_jws.PyJWS().encode(json.dumps(c).encode(), _DPOP_KEY,
                                            algorithm="ES256", headers=h).encode(),
    proof_claims, proof_header)
dpop_proof = st.one_of(signed_proof, jwt_like, field_bytes, any_bytes, huge)

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

# payments: the IETF Payment scheme and x402, never with a valid unspent proof
def _b64json(value: object, *, urlsafe: bool) -> bytes:
    raw = json.dumps(value).encode()
    return _b64url(raw) if urlsafe else base64.b64encode(raw)


CHALLENGE_PARAMS = ["id", "realm", "method", "intent", "request", "expires", "opaque",
                    "digest", "header", "description"]
payment_challenge = st.dictionaries(
    st.sampled_from(CHALLENGE_PARAMS) | text,
    st.one_of(text, st.sampled_from(["authguard-demo", "receipt", "charge",
                                     "Payment-Authorization", "2099-01-01T00:00:00Z",
                                     "eyJhbW91bnQiOiIwLjAxIiwiY3VycmVuY3kiOiJVU0QifQ"]),
              json_values),
    max_size=8)
payment_credential = st.builds(
    lambda ch, payload: {"challenge": ch, "payload": payload},
    st.one_of(payment_challenge, json_values),
    st.one_of(st.fixed_dictionaries({"receipt": st.one_of(text, token68.map(bytes.decode))}),
              json_values),
) | st.dictionaries(text, json_values, max_size=3)
payment_param = st.one_of(payment_credential.map(lambda c: _b64json(c, urlsafe=True)),
                          token68, field_bytes, huge, jwt_like)
payment_authorization = st.builds(
    lambda s, sep, p: s + sep + p,
    st.sampled_from([b"Payment", b"payment", b"PAYMENT", b"Payment ", b"Paymen"]),
    separators, payment_param)
# x402 values: any text (a non-ASCII signature once crashed the demo facilitator) and any
# number, Infinity and 1e999 included (once decoded, then impossible to send on: a 500).
any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(text, children,
                                                                       max_size=3),
    max_leaves=8)
x402_requirement = st.fixed_dictionaries({}, optional={
    "scheme": st.sampled_from(["demo", "exact", ""]) | text,
    "network": st.sampled_from(["x402:demo", "eip155:8453"]) | text,
    "asset": st.sampled_from(["demo-usd", "USDC"]) | text,
    "amount": st.sampled_from(["10000", "1", "0", "-10000", "1e4", "10000.0"]) | any_json,
    "payTo": st.sampled_from(["authguard-demo", "mallory"]) | text,
    "maxTimeoutSeconds": any_json, "extra": any_json})
x402_proof = st.fixed_dictionaries(
    {"payload": st.one_of(st.fixed_dictionaries({
        "nonce": st.one_of(text, any_json), "signature": any_json,
        "payer": text}), any_json)},
    optional={"x402Version": st.sampled_from([1, 2, 3, 0, -1, "2", True, None, 2.0]),
              "accepted": st.one_of(x402_requirement, any_json),
              "resource": any_json, "scheme": text, "network": text})
x402_value = st.one_of(
    x402_proof.map(lambda p: _b64json(p, urlsafe=False)),
    x402_proof.map(lambda p: _b64json(p, urlsafe=True)),
    json_values.map(lambda v: _b64json(v, urlsafe=False)),
    token68, field_bytes, any_bytes, huge)
payment_header = st.one_of(
    st.tuples(st.sampled_from([b"authorization", b"payment-authorization"]),
              payment_authorization),
    st.tuples(st.sampled_from([b"payment-signature", b"x-payment"]), x402_value),
)

header = st.one_of(
    payment_header,
    st.tuples(st.just(b"dpop"), dpop_proof),
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


def _decode_b64json(value: bytes) -> dict[str, Any]:
    text = value.decode("ascii")
    data = json.loads(base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_")
                                               + "=" * (-len(text) % 4)))
    assert isinstance(data, dict), data
    return data


def check_payment_answer(answer: rawasgi.Answer, method: str, path: str) -> None:
    """No payment taken; every challenge parses; a 402 offers what the route sells."""
    assert not answer.header(b"payment-receipt"), "a fuzzed request paid"
    for name in (b"payment-response", b"x-payment-response"):
        assert not answer.header(name), "a fuzzed request settled an x402 payment"
    challenges = []
    for line in answer.header(b"www-authenticate"):
        parsed = parse_www_authenticate(line.decode("latin-1"))
        assert len(parsed) == 1, line
        challenges += parsed
    if answer.status != 402:
        return
    if method != "HEAD":
        reason = json.loads(answer.body)["reason"]
        assert reason in ("payment_required", "payment_invalid"), reason
    if path != "/paid/quote":
        return
    (payment,) = [c for c in challenges if c.scheme.lower() == "payment"]
    params = dict(payment.params)
    assert {"id", "realm", "method", "intent", "request", "expires"} <= set(params), params
    request = _decode_b64json(params["request"].encode())
    assert (request["amount"], request["currency"]) == ("0.01", "USD"), request
    (required,) = answer.header(b"payment-required")
    offer = _decode_b64json(required)
    assert offer["x402Version"] == 2 and offer["accepts"][0]["amount"] == "10000", offer


async def check_request(method: str, path: str, hdrs: list[tuple[bytes, bytes]], *,
                        identified: bool = False) -> None:
    """Send one request and apply the oracle; ``identified``: the request carries a valid
    Bearer token on purpose (an identity is then right, but not a payment)."""
    app = example().app
    anonymous = await _anonymous_status(method, path)
    if method == "WS":
        answer = await rawasgi.websocket(app, path, hdrs)
    else:
        answer = await rawasgi.http(app, method, path, hdrs)
    rawasgi.check_answer(answer, method)
    check_payment_answer(answer, method, path)
    reason = b""
    if answer.body.startswith(b"{") and b'"reason"' in answer.body:
        reason = json.loads(answer.body).get("reason", "").encode()
    event(f"{answer.status} {reason.decode()}")
    user = answer.scope.get("user")
    if not identified:
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


# -- payments really made, then replayed and altered -----------------------------------------

RECEIPT_FIELDS = (b"authorization", b"payment-authorization")
X402_FIELDS = (b"payment-signature", b"x-payment")
# HEAD /paid/quote is not routed by FastAPI (405 from the app, nothing paid or served)
PAID_ENDPOINTS = (("GET", "/paid/quote"), ("GET", "/paid/quote"), ("GET", "/premium"),
                  ("HEAD", "/premium"))
_spent: dict[bytes, list[bytes]] = {}


def _challenge_id(answer: rawasgi.Answer) -> str:
    for line in answer.header(b"www-authenticate"):
        (challenge,) = parse_www_authenticate(line.decode("latin-1"))
        if challenge.scheme == "Payment":
            return dict(challenge.params)["id"]
    raise AssertionError("no Payment challenge")


def _x402_proof(required: bytes, version: int, nonce: str) -> bytes:
    import demo_payments  # examples/fastapi_app, on sys.path (conftest.py)

    offer = _decode_b64json(required)
    accepted = offer["accepts"][0]
    proof: dict[str, Any] = {"x402Version": version, "payload": {
        "nonce": nonce, "signature": demo_payments.demo_signature(accepted, nonce),
        "payer": "fuzz-payer"}}
    if version == 2:
        proof |= {"accepted": accepted, "resource": offer["resource"]}
    else:
        proof |= {"scheme": accepted["scheme"], "network": accepted["network"]}
    return _b64json(proof, urlsafe=False)


async def spent_payments() -> dict[bytes, list[bytes]]:
    """Payments really made to the fuzzed app, each used once (200): all of them replays now.

    By header: IETF ``Payment`` credentials for ``Authorization`` (anonymous) and for
    ``Payment-Authorization`` (a challenge issued alongside a Bearer identity), and x402
    proofs for ``PAYMENT-SIGNATURE`` (v2) and ``X-PAYMENT`` (v1).
    """
    if _spent:
        return _spent
    app = example().app
    spent: dict[bytes, list[bytes]] = {name: [] for name in (*RECEIPT_FIELDS, *X402_FIELDS)}
    identity = [(b"authorization", b"Bearer " + VALID_TOKENS[0].encode())]
    for i in range(3):
        for field, alongside in ((b"authorization", []), (b"payment-authorization", identity)):
            quote = await rawasgi.http(app, "GET", "/paid/quote", alongside)
            assert quote.status == 402
            paid = await rawasgi.http(app, "POST", "/billing/pay",
                                      [(b"content-type", b"application/json")],
                                      body=json.dumps({"challenge": _challenge_id(quote)})
                                      .encode())
            assert paid.status == 200, paid.body
            credential = json.loads(paid.body)["authorization"].encode()
            used = await rawasgi.http(app, "GET", "/paid/quote",
                                      [*alongside, (field, credential)])
            assert used.status == 200 and used.header(b"payment-receipt"), used.body
            spent[field].append(credential)
        for field, version in ((b"payment-signature", 2), (b"x-payment", 1)):
            quote = await rawasgi.http(app, "GET", "/paid/quote")
            (required,) = quote.header(b"payment-required")
            proof = _x402_proof(required, version, f"fuzz-spent-{version}-{i}")
            used = await rawasgi.http(app, "GET", "/paid/quote", [(field, proof)])
            assert used.status == 200 and used.header(b"payment-response"), used.body
            spent[field].append(proof)
    _spent.update(spent)
    return _spent


def _set(data: dict[str, Any], path: tuple[str, ...], value: object) -> None:
    """Set (``value`` is ``DELETE``: remove) ``data[path[0]][path[1]]…``, where it exists."""
    *parents, last = path
    for key in parents:
        child = data.get(key)
        if not isinstance(child, dict):
            return
        data = child
    if value is DELETE:
        data.pop(last, None)
    else:
        data[last] = value


DELETE = object()
RECEIPT_PATHS = [("challenge", p) for p in CHALLENGE_PARAMS] + [
    ("payload", "receipt"), ("payload",), ("challenge",), ("source",)]
X402_PATHS = [("payload", k) for k in ("nonce", "signature", "payer")] + [
    ("accepted", k) for k in ("amount", "payTo", "network", "scheme", "asset")] + [
    ("x402Version",), ("accepted",), ("payload",), ("resource",)]


def _altered(draw: st.DataObject, field: bytes, value: bytes,
             others: list[bytes]) -> list[tuple[bytes, bytes]]:
    """A spent payment proof, replayed as it is or altered in one of many ways."""
    receipt = field in RECEIPT_FIELDS
    how = draw.draw(st.sampled_from(["replay", "near miss", "other field", "twice", "edit",
                                     "splice", "with identity"]), label="alteration")
    if how == "near miss":
        return [(field, _miss(value.decode(), draw.draw(st.integers(0, 2))).encode())]
    if how == "other field":
        fields = RECEIPT_FIELDS if receipt else X402_FIELDS
        return [(draw.draw(st.sampled_from(fields)), value)]
    if how == "twice":
        other = draw.draw(st.sampled_from(others))
        return [(field, value), (draw.draw(st.sampled_from(
            RECEIPT_FIELDS if receipt else X402_FIELDS)), other)]
    if how == "with identity":  # alice's valid token: she has no plan, and pays nothing
        return [(b"authorization", b"Bearer " + VALID_TOKENS[0].encode()), (field, value)]
    text = value.decode().removeprefix("Payment ")
    credential = _decode_b64json(text.encode())
    if how == "splice":  # the challenge of one payment with the proof of another
        donor = _decode_b64json(draw.draw(st.sampled_from(others)).decode()
                                .removeprefix("Payment ").encode())
        credential["payload"] = donor["payload"]
    else:
        path = draw.draw(st.sampled_from(RECEIPT_PATHS if receipt else X402_PATHS))
        values = json_values if receipt else any_json
        new = draw.draw(st.one_of(st.just(DELETE), values, text_from(others)),
                        label="new value")
        _set(credential, path, new)
    encoded = _b64json(credential, urlsafe=receipt)
    return [(field, b"Payment " + encoded if receipt else encoded)]


def text_from(values: list[bytes]) -> st.SearchStrategy[str]:
    """Strings taken from real payments (ids, receipts, nonces, signatures)."""
    found: list[str] = []
    for value in values:
        data = _decode_b64json(value.decode().removeprefix("Payment ").encode())
        for part in (data.get("challenge"), data.get("payload"), data.get("accepted")):
            if isinstance(part, dict):
                found += [v for v in part.values() if isinstance(v, str)]
    return st.sampled_from(sorted(set(found)))


@FUZZ
@given(data=st.data(), extra=st.lists(header, max_size=2))
async def test_fuzzed_replays_and_alterations_of_real_payments(
        data: st.DataObject, extra: list[tuple[bytes, bytes]]) -> None:
    spent = await spent_payments()
    field = data.draw(st.sampled_from(sorted(spent)), label="field")
    value = data.draw(st.sampled_from(spent[field]), label="spent payment")
    hdrs = _altered(data, field, value, spent[field])
    identified = (b"authorization", b"Bearer " + VALID_TOKENS[0].encode()) in hdrs
    hdrs += extra
    hdrs = data.draw(st.permutations(hdrs), label="order")
    method, path = data.draw(st.sampled_from(PAID_ENDPOINTS), label="endpoint")
    await check_request(method, path, hdrs, identified=identified)


@FUZZ
@given(data=st.data(), hdrs=st.lists(payment_header, min_size=1, max_size=3))
async def test_fuzzed_payment_headers_on_paid_routes(
        data: st.DataObject, hdrs: list[tuple[bytes, bytes]]) -> None:
    method, path = data.draw(st.sampled_from(PAID_ENDPOINTS), label="endpoint")
    await check_request(method, path, hdrs)


async def test_every_spent_payment_is_refused_as_a_replay() -> None:
    """The payment oracle is not vacuous: each payment above was served once (asserted in
    :func:`spent_payments`) and is now refused as used, by its own field."""
    app = example().app
    spent = await spent_payments()
    assert all(len(v) == 3 for v in spent.values())
    identity = [(b"authorization", b"Bearer " + VALID_TOKENS[0].encode())]
    for field, values in spent.items():
        for value in values:
            alongside = identity if field == b"payment-authorization" else []
            answer = await rawasgi.http(app, "GET", "/paid/quote", [*alongside, (field, value)])
            check_payment_answer(answer, "GET", "/paid/quote")
            body = json.loads(answer.body)
            assert answer.status == 402 and body["reason"] == "payment_invalid", body
            assert "already used" in body["detail"] or "nonce_already_used" in body["detail"]
    assert await _anonymous_status("GET", "/paid/quote") == 402


async def test_a_non_ascii_x402_signature_is_no_server_error() -> None:
    quote = await rawasgi.http(example().app, "GET", "/paid/quote")
    (required,) = quote.header(b"payment-required")
    proof = _decode_b64json(_x402_proof(required, 2, "fuzz-non-ascii"))
    proof["payload"]["signature"] = "sïgnature"
    answer = await rawasgi.http(example().app, "GET", "/paid/quote",
                                [(b"payment-signature", _b64json(proof, urlsafe=False))])
    rawasgi.check_answer(answer)
    assert answer.status == 402 and json.loads(answer.body)["reason"] == "payment_invalid"


async def test_an_x402_proof_with_an_infinite_number_is_no_server_error() -> None:
    quote = await rawasgi.http(example().app, "GET", "/paid/quote")
    (required,) = quote.header(b"payment-required")
    proof = _decode_b64json(_x402_proof(required, 2, "fuzz-infinity"))
    proof["payload"]["amount"] = float("inf")
    answer = await rawasgi.http(example().app, "GET", "/paid/quote",
                                [(b"payment-signature", _b64json(proof, urlsafe=False))])
    rawasgi.check_answer(answer)
    # a number no JSON peer can take makes the payload malformed: 400 (x402 v2 transport)
    assert answer.status == 400 and json.loads(answer.body)["reason"] == "invalid_request"


def test_near_misses_differ_from_the_real_credentials() -> None:
    for value in VALID_BASIC + VALID_KEYS + VALID_TOKENS:
        for how in range(3):
            assert _miss(value, how) != value
