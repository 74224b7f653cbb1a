"""The per-request shortcuts answer exactly what the long way answers.

* problem bodies rendered from a cached prefix are byte for byte the encoded
  ``problem_body``;
* the plain checks the middleware runs instead of awaiting built-in requirements pass
  exactly when the requirements' own ``check`` passes;
* a remembered session cookie still needs its server-side session on every request, and
  a tampered copy of it is still refused.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from authguard import (
    Anyone,
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    HasRoles,
    HasScopes,
    Identity,
    Public,
    Reason,
    Refusal,
    Requirement,
    SessionAuthenticator,
    protect,
)
from authguard.plans import _plain_checks as _fast_checks
from authguard.plans import passes as _passes
from authguard.policy import Context
from authguard.problems import problem_body, render_problem
from helpers import asgi_client

ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)


def _refusals() -> list[Refusal]:
    out = []
    for reason in Reason:
        out.append(Refusal(reason))
        out.append(Refusal(reason, "Ünïcode détail \u2028 \"quoted\""))
    out += [
        Refusal(Reason.TOO_MANY_ATTEMPTS, headers={"Retry-After": "17"}),
        Refusal(Reason.AUTH_UNAVAILABLE, headers={"Retry-After": "soon"}),
        Refusal(Reason.FORBIDDEN, extensions={"required_roles": ["a", "b"]}),
        # members that collide with fixed ones keep the fixed value (setdefault)
        Refusal(Reason.PAYMENT_REQUIRED, extensions={
            "status": 999, "payment": {"amount": "0.01", "nested": [1, 2.5, None, True]},
            "instance": "/from-extension", "request_id": "x", "retry_after": 3,
            "odd": frozenset({1}), "schemes": ["Z"]}),
        Refusal(Reason.INSUFFICIENT_SCOPE, extensions={"required_scopes": ["r:w"]},
                headers={"Retry-After": "5"}),
        Refusal(Reason.FORBIDDEN, extensions={7: "not a string key"}),  # type: ignore[dict-item]
        Refusal(Reason.PAYMENT_REQUIRED, extensions={
            "payment": {"offers": [{"a": 1, "b": True, "c": None, "d": [1.5, "x"],
                                    "e": (1, 2), "é": "ü\n"}],
                        "deep": [[[[[[[[[[["x"]]]]]]]]]]], "nested": {"k": {"k": {}}},
                        3: "int key inside"},
            "n": -3, "big": 10**30, "f": 2.5, "flag": False, "none": None, "empty": [],
            "reason_like": Reason.FORBIDDEN}),
    ]
    return out


@pytest.mark.parametrize("refusal", _refusals(), ids=repr)
def test_rendered_bodies_are_the_encoded_problem_body(refusal: Refusal) -> None:
    options: list[dict[str, Any]] = [
        {}, {"instance": "/a/b"}, {"request_id": "req-1"},
        {"instance": "/ü", "request_id": "r", "schemes": ["Bearer", "ApiKey"]},
        {"type_base": "https://example.test/problems/", "schemes": ["Basic"]},
        {"instance": '/a\nb"c\\d\x00\u2028', "request_id": "\ud7ff"},
        {"schemes": [1]}, {"schemes": [True]}, {"schemes": ("Bearer",)},
    ]
    for kw in options:
        for _ in range(2):  # the second time from the cached prefix
            want = ENCODER.encode(problem_body(refusal, **kw)).encode("utf-8")
            assert render_problem(refusal, encoder=ENCODER, **kw) == want


class PickyRoles(HasRoles):
    """A subclass may change ``check``: it must never be answered by plain checks."""

    async def check(self, ctx: Context) -> Refusal | None:
        return Refusal(Reason.FORBIDDEN)


REQUIREMENTS: list[Requirement] = [
    Anyone(), Authenticated(), Authenticated("ApiKey"), Authenticated("Bearer", "ApiKey"),
    HasRoles("a"), HasRoles("a", "b"), HasRoles("a", "b", any=True), HasRoles(),
    HasRoles(any=True), HasScopes("s"), HasScopes("s", "t", any=True), HasScopes(),
]
IDENTITIES: list[Identity | None] = [
    None,
    Identity(subject="u", scheme="ApiKey"),
    Identity(subject="u", scheme="Bearer", roles=frozenset({"a"}), scopes=frozenset({"s"})),
    Identity(subject="u", scheme="Basic", roles=frozenset({"a", "b"}),
             scopes=frozenset({"s", "t"})),
]


async def _check(requirement: Requirement, identity: Identity | None) -> bool:
    conn = HTTPConnection({"type": "http", "method": "GET", "path": "/", "headers": []})
    return await requirement.check(Context(conn=conn, identity=identity, now=0.0)) is None


async def test_plain_checks_pass_exactly_when_the_requirements_pass() -> None:
    combos: list[Requirement] = list(REQUIREMENTS)
    combos += [a & b for a, b in itertools.combinations(REQUIREMENTS, 2)]
    combos += [REQUIREMENTS[1] & REQUIREMENTS[5] & REQUIREMENTS[9]]
    for requirement in combos:
        checks = _fast_checks(requirement)
        assert checks is not None, requirement
        for identity in IDENTITIES:
            assert _passes(checks, identity) == await _check(requirement, identity), (
                requirement, identity)
        if checks:  # without an identity, every one of them asks for credentials
            conn = HTTPConnection({"type": "http", "method": "GET", "path": "/",
                                   "headers": []})
            refusal = await requirement.check(Context(conn=conn, identity=None, now=0.0))
            assert refusal is not None and refusal.reason is Reason.CREDENTIALS_MISSING
            assert refusal.detail is None and not refusal.extensions


def test_other_requirements_are_never_answered_by_plain_checks() -> None:
    assert _fast_checks(PickyRoles("a")) is None
    assert _fast_checks(Authenticated() & PickyRoles("a")) is None
    assert _fast_checks(HasRoles("a") | HasScopes("s")) is None
    assert _fast_checks(~Authenticated()) is None


async def test_a_subclass_refuses_even_when_the_built_in_check_would_pass() -> None:
    @protect(Authenticated() & PickyRoles("a"))
    async def picky(request: Request) -> Response:
        return JSONResponse({"ok": True})

    from authguard import APIKeyAuthenticator, StaticAPIKeys, hash_api_key
    keys = StaticAPIKeys({hash_api_key("k"): Identity(subject="svc", scheme="ApiKey",
                                                      roles=frozenset({"a"}))})
    app = Starlette(routes=[Route("/picky", picky)])
    app.add_middleware(AuthGuardMiddleware,
                       guard=AuthGuard(authenticators=[APIKeyAuthenticator(store=keys)]))
    async with asgi_client(app) as c:
        for _ in range(2):
            r = await c.get("/picky", headers={"X-API-Key": "k"})
            assert r.status_code == 403 and r.json()["reason"] == "forbidden"


def _session_app(session: SessionAuthenticator) -> Starlette:
    @protect(Public)
    async def login(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        await session.login(request, response, "ann", roles=["user"])
        return response

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"sub": request.user.subject,
                             "credential_id": request.user.credential_id})

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/me", me)])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[session]))
    return app


async def test_a_remembered_session_cookie_still_needs_its_session() -> None:
    session = SessionAuthenticator(secret_keys=["k" * 40])
    async with asgi_client(_session_app(session)) as c:
        await c.post("/login")
        value = c.cookies["authguard_session"]
        c.cookies.clear()
        cookie = {"Cookie": f"authguard_session={value}"}
        first = await c.get("/me", headers=cookie)
        again = await c.get("/me", headers=cookie)
        assert first.status_code == again.status_code == 200
        assert first.json() == again.json()
        assert len(first.json()["credential_id"]) == 16
        # a tampered copy of a remembered cookie: still a bad signature
        tampered = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
        r = await c.get("/me", headers={"Cookie": f"authguard_session={tampered}"})
        assert r.status_code == 401 and r.json()["reason"] == "session_invalid"
        # the session ends on the server: the remembered cookie stops working at once
        await session.end_sessions("ann")
        r = await c.get("/me", headers=cookie)
        assert r.status_code == 401 and r.json()["reason"] == "session_expired"
        assert "Max-Age=0" in r.headers["set-cookie"]


@pytest.mark.parametrize("fields", [
    [], [b"a=1"], [b"authguard_session=abc"], [b"a=1; authguard_session=abc; b=2"],
    [b"authguard_session=one", b"authguard_session=two"],
    [b" authguard_session = spaced ; x=y"], [b'authguard_session="quo\\"ted"'],
    [b"authguard_session="], [b"authguard_session"], [b"authguard_session=\xe9t\xe9"],
    [b"x=1", b"authguard_session=late; authguard_session=later"],
])
def test_the_session_cookie_is_read_as_starlette_reads_it(fields: list[bytes]) -> None:
    session = SessionAuthenticator(secret_keys=["k" * 40])
    headers = [(b"host", b"h")] + [(b"cookie", f) for f in fields]
    for _ in range(2):  # the second time from the remembered parse
        conn = HTTPConnection({"type": "http", "method": "GET", "path": "/",
                               "headers": headers})
        want = HTTPConnection(conn.scope).cookies.get("authguard_session")
        assert session._cookie(conn) == want
        assert session.has_credentials(conn) == (
            want is not None and any(b"authguard_session=" in f for f in fields))


def _b64(data: bytes) -> bytes:
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=")


def _tokens() -> list[bytes]:
    import jwt as pyjwt
    good = pyjwt.encode({"sub": "a", "exp": 2**31}, "s" * 32, algorithm="HS256",
                        headers={"kid": "k1"}).encode()
    head, body, sig = good.split(b".")
    heads = [
        head, _b64(b'{"alg":"HS256"}'), _b64(b'{"alg":"HS256","kid":7}'),
        _b64(b'{"alg":"HS256","kid":null}'), _b64(b'{"alg":"HS256","crit":["exp"]}'),
        _b64(b'{"alg":"HS256","crit":[]}'), _b64(b'{"alg":"HS256","b64":false}'),
        _b64(b'{"alg":"HS256","b64":true}'), _b64(b'["alg"]'), _b64(b'"text"'),
        _b64(b'{"alg":'), _b64(b"\xff\xfe{}"), _b64('{"alg":"HS256","x":"é"}'.encode()),
        _b64(b"[" * 5000 + b"]" * 5000), head[:-1], head + b"A", head[:-1] + b"B", b"",
    ]
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    out = []
    for segment in (head, head[:-1], head[:-2], body, body[:-1], body[:-2], sig, sig[:-1]):
        for c in alphabet:  # every last character, at every length modulo 4
            tail = segment[:-1] + bytes([c])
            out += [tail + b"." + body + b"." + sig, head + b"." + tail + b"." + sig,
                    head + b"." + body + b"." + tail]
    for h in heads:
        for b in (body, b"", body[:-1], body[:-1] + b"_", b"A"):
            for s in (sig, sig[:-1] + (b"B" if sig[-1:] != b"B" else b"C"), b"", b"AAAAA"):
                out.append(h + b"." + b + b"." + s)
    return out


async def test_a_token_is_accepted_exactly_when_pyjwt_accepts_it() -> None:
    """The header is read before pyjwt only to pick the key: pyjwt has the last word on
    every token of the corpus (non-canonical segments, ``crit``, ``b64``, odd ``kid``)."""
    import jwt as pyjwt

    from authguard import BearerAuthenticator, JWTKey

    bearer = BearerAuthenticator(key=JWTKey.hs256("s" * 32), accept_any_audience=True,
                                 cache_size=0)
    accepted = 0
    for token in _tokens():
        try:
            pyjwt.decode(token, "s" * 32, algorithms=["HS256"])
            want = True
        except pyjwt.InvalidTokenError:
            want = False
        try:
            await bearer.verify_token(token)
            got = True
        except Refusal:
            got = False
        assert got == want, token
        accepted += got
    assert 0 < accepted < len(_tokens()) / 4


def test_the_token_shape_admits_exactly_base64url_and_two_dots() -> None:
    from authguard.authenticators.jwt_checks import check_shape

    def _check_shape(token: bytes) -> None:
        check_shape(token, "Bearer")

    allowed = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for byte in range(256):
        token = b"eyJh." + bytes([byte]) + b"bc.sig"
        if byte in allowed:
            _check_shape(token)
        else:
            with pytest.raises(Refusal):
                _check_shape(token)
    for token in (b"", b"a.b", b"a.b.c.d", b"..", b"a..c"):
        if token.count(b".") == 2:
            _check_shape(token)
        else:
            with pytest.raises(Refusal):
                _check_shape(token)


async def test_a_session_identity_follows_its_record() -> None:
    import dataclasses

    from authguard.stores.memory import MemorySessionStore

    class Promoting(MemorySessionStore):
        promote = False

        async def get(self, session_id: str) -> Any:
            record = await super().get(session_id)
            if record is not None and self.promote:
                record = dataclasses.replace(record, data={**(record.data or {}),
                                                           "roles": "admin"})
            return record

    store = Promoting()
    session = SessionAuthenticator(secret_keys=["k" * 40], store=store)

    @protect(Public)
    async def login(request: Request) -> Response:
        response = JSONResponse({"ok": True})
        await session.login(request, response, "ann", roles=["user"])
        return response

    @protect(Authenticated())
    async def roles(request: Request) -> JSONResponse:
        return JSONResponse(sorted(request.user.roles))

    app = Starlette(routes=[Route("/login", login, methods=["POST"]), Route("/roles", roles)])
    app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[session]))
    async with asgi_client(app) as c:
        await c.post("/login")
        assert (await c.get("/roles")).json() == ["user"]
        assert (await c.get("/roles")).json() == ["user"]
        store.promote = True
        assert (await c.get("/roles")).json() == ["admin"]


def test_a_bearer_refusal_without_parameters_reuses_its_reasons_challenge() -> None:
    from authguard import BearerAuthenticator, Challenge, JWTKey
    from authguard.challenges import format_challenge

    bearer = BearerAuthenticator(key=JWTKey.hs256("k" * 32), audience="api", realm="r")
    for reason in Reason:
        first = bearer.challenge(reason)
        assert bearer.challenge(reason, {}) is first  # made once per reason
        error = reason.spec.bearer_error
        if error is None:
            assert format_challenge(first) == 'Bearer realm="r"'
            continue
        assert first.params["error"] == error
        with_scope = bearer.challenge(reason, {"scope": "a b"})
        assert with_scope is not first and with_scope.params["scope"] == "a b"
        assert "scope" not in first.params  # the shared one is never changed
    shared = bearer.challenge(Reason.TOKEN_EXPIRED)
    with pytest.raises(TypeError):
        shared.params["scope"] = "admin"  # type: ignore[index]
    given = {"realm": "x"}
    made = Challenge("Basic", given)
    given["realm"] = "changed afterwards"
    assert made.params == {"realm": "x"}  # a dict given is copied
    expired = format_challenge(bearer.challenge(Reason.TOKEN_EXPIRED))
    assert expired == ('Bearer realm="r", error="invalid_token", '
                       'error_description="The access token expired"')
