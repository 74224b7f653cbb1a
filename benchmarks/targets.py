"""The speed targets, each against its floor or peer, measured side by side.

Every row compares an authguard cell with a reference cell timed in the same interleaved
rounds: a *floor* (what a hand-written pure ASGI middleware costs for the same job) or a
*peer* (Starlette's ``AuthenticationMiddleware``, FastAPI's ``HTTPBearer``). The figure is
the ratio of medians; beside it the ratio's smallest and largest value over the rounds
(round *i* of one cell against round *i* of the other), and PASS/FAIL against the limit.
"Added cost" rows compare what each adds over the bare app.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

import jwt
from fastapi import Depends, FastAPI
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from authguard import Authenticated, AuthGuard, AuthGuardMiddleware, protect
from authguard.fastapi import require

from . import apps
from .inproc import Case, Cell, _hdr, _starlette_session_cookie

# -- floors: hand-written pure ASGI middleware ------------------------------------------

class PassThrough:
    """A pure ASGI middleware that does nothing: the least any middleware costs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)


class HandWrittenJWT:
    """``jwt.decode()`` on every request (``cache=False``), or once per token (a dict of
    verified tokens, the least a token cache costs); a bare 401 otherwise."""

    def __init__(self, app: ASGIApp, *, cache: bool) -> None:
        self.app = app
        self.cache: dict[bytes, dict[str, Any]] | None = {} if cache else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == "/public":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"authorization" and value[:7].lower() == b"bearer ":
                token = value[7:]
                claims = self.cache.get(token) if self.cache is not None else None
                if claims is None:
                    try:
                        claims = jwt.decode(token, apps.HS_SECRET, algorithms=["HS256"],
                                            audience=apps.AUDIENCE, issuer=apps.ISSUER)
                    except jwt.InvalidTokenError:
                        break
                    if self.cache is not None:
                        self.cache[token] = claims
                scope["user"] = claims["sub"]
                await self.app(scope, receive, send)
                return
        await PlainTextResponse("Unauthorized", 401)(scope, receive, send)


def _floor(middleware: Any, **kwargs: Any) -> Any:
    from starlette.middleware import Middleware

    return apps._starlette(
        [Route("/public", apps.ok), Route("/private", apps.ok), Route("/admin", apps.ok),
         Route("/paid", apps.ok), Route("/", apps.ok)], [Middleware(middleware, **kwargs)])


def _authguard_fastapi(m: apps.Material, *, form: str) -> Any:
    """FastAPI with the middleware and a Bearer authenticator (first sight of tokens),
    the route declared by ``require()`` or by ``@protect``."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    if form == "require":
        @app.get("/private", dependencies=[Depends(require(Authenticated()))])
        async def private() -> Response:
            return PlainTextResponse("ok")
    else:
        @app.get("/private")
        @protect(Authenticated())
        async def private_protected() -> Response:
            return PlainTextResponse("ok")
    guard = AuthGuard(authenticators=[apps.bearer_authenticator(m, "HS256", cache=False)])
    app.add_middleware(AuthGuardMiddleware, guard=guard)
    return app


# -- the table ---------------------------------------------------------------------------

@dataclass
class Row:
    """``authguard ≤ limit × reference`` (or, with ``bare``, the costs each adds)."""

    label: str
    authguard: Cell | None
    reference: Cell
    limit: float
    reference_name: str
    bare: Cell | None = None

    def ratios(self) -> list[float]:
        """The ratio in each round."""
        ag, ref = self.authguard, self.reference
        if ag is None or not ag.samples:
            return []
        if self.bare is None:
            return [a / r for a, r in zip(ag.samples, ref.samples, strict=True)]
        return [(a - b) / max(r - b, 1e-9) for a, r, b in
                zip(ag.samples, ref.samples, self.bare.samples, strict=True)]

    def ratio(self) -> float | None:
        ag, ref = self.authguard, self.reference
        if ag is None or not ag.samples:
            return None
        if self.bare is None:
            return ag.median / ref.median
        return (ag.median - self.bare.median) / max(ref.median - self.bare.median, 1e-9)


async def build_rows(m: apps.Material) -> list[Row]:
    """One row per target of the speed table (rows needing a missing authenticator have
    no authguard cell and are reported as skipped)."""
    ak = [_hdr("x-api-key", apps.API_KEY)]
    hs = [_hdr("authorization", "Bearer " + m.valid["HS256"])]
    bare = apps.bare_starlette()
    bare_private = Cell(bare, "/private", expect=200)
    ag_key = apps.authguard_app(apps.api_key_authenticator())
    st_key = apps.starlette_app(apps.APIKeyBackend())
    rows = [
        Row("public route", Cell(ag_key, "/public", expect=200),
            Cell(_floor(PassThrough), "/public", expect=200), 1.05, "pass-through ASGI"),
        Row("API key (valid)", Cell(ag_key, "/private", ak, expect=200),
            Cell(apps.hand_written_app(), "/private", ak, expect=200), 1.15,
            "hand-written API-key check"),
        Row("API key (valid)", Cell(ag_key, "/private", ak, expect=200),
            Cell(st_key, "/private", ak, expect=200), 1.00, "Starlette AuthMW"),
    ]
    bearer = apps.HAS_BEARER
    if bearer:
        repeat = apps.authguard_app(apps.bearer_authenticator(m, "HS256", cache=True))
        first = apps.authguard_app(apps.bearer_authenticator(m, "HS256", cache=False))
    rows += [
        Row("repeated JWT (cache hit)",
            Cell(repeat, "/private", hs, expect=200) if bearer else None,
            Cell(_floor(HandWrittenJWT, cache=True), "/private", hs, expect=200), 1.15,
            "hand-written ASGI + token cache"),
        Row("first-sight JWT HS256, added cost",
            Cell(first, "/private", hs, expect=200) if bearer else None,
            Cell(_floor(HandWrittenJWT, cache=False), "/private", hs, expect=200), 1.10,
            "hand-written jwt.decode() ASGI", bare=bare_private),
    ]
    for alg in ("RS256", "ES256"):
        token = [_hdr("authorization", "Bearer " + m.valid[alg])]
        ag = (Cell(apps.authguard_app(apps.bearer_authenticator(m, alg, cache=False)),
                   "/private", token, expect=200) if bearer else None)
        rows.append(Row(f"first-sight JWT {alg}", ag,
                        Cell(apps.starlette_app(apps.JWTBackend(m.public[alg], alg)),
                             "/private", token, expect=200), 1.05, "Starlette AuthMW + pyjwt"))
    if apps.HAS_SESSION:
        authenticator = apps.session_authenticator()
        cookie = await apps.session_login(authenticator)
        rows.append(Row(
            "session cookie",
            Cell(apps.authguard_app(authenticator), "/private",
                 [_hdr("cookie", f"{authenticator.cookie_name}={cookie}")], expect=200),
            Cell(apps.starlette_app(apps.SessionBackend(), sessions=True), "/private",
                 [_hdr("cookie", f"session={_starlette_session_cookie()}")], expect=200),
            1.00, "Starlette AuthMW + itsdangerous"))
    rows += [
        Row("401 (no credentials)", Cell(ag_key, "/private", expect=401),
            Cell(st_key, "/private"), 1.00, "Starlette AuthMW's refusal"),
        Row("403 (role missing)", Cell(ag_key, "/admin", ak, expect=403),
            Cell(bare, "/admin", expect=200), 1.10, "bare 200"),
        Row("402 (real Payment + entitlement)",
            Cell(ag_key, "/paid", ak, expect=402), Cell(bare, "/paid", expect=200), 1.50,
            "bare 200"),
    ]
    if bearer:
        peer = apps.fastapi_app("jwt", m, "HS256")
        for form in ("require", "protect"):
            rows.append(Row(f"FastAPI first-sight JWT ({form})",
                            Cell(_authguard_fastapi(m, form=form), "/private", hs, expect=200),
                            Cell(peer, "/private", hs, expect=200), 0.80,
                            "FastAPI HTTPBearer + pyjwt"))
    return rows


def cpu_row(cpu: dict[str, list[float]] | None) -> Row:
    """The uvicorn row: server CPU per request above bare (``load.server_cpu``'s figures,
    µs per request per round), authguard against the hand-written ASGI + token cache."""
    def cell(factory: str) -> Cell:
        return Cell(None, "/private", samples=list(cpu[factory]) if cpu else [])

    return Row("under uvicorn, repeated JWT: server CPU per request above bare",
               cell("load_authguard_jwt") if cpu else None, cell("load_floor_jwt"), 1.30,
               "hand-written ASGI + token cache", bare=cell("load_bare"))


def as_cases(rows: list[Row]) -> list[Case]:
    """The rows as cases, for :func:`benchmarks.inproc.measure` (cells shared by rows are
    timed once)."""
    return [Case(f"target{i}", row.label, row.authguard, row.reference, None, bare=row.bare)
            for i, row in enumerate(rows)]


def _times(ratio: float) -> str:
    """A ratio; beyond 100 (an added cost over a reference that adds next to nothing, or
    less than nothing, in a round) it says so rather than print a meaningless figure."""
    return f"{ratio:.2f}" if -100 < ratio < 100 else ("≫100" if ratio > 0 else "≪-100")


def table(rows: list[Row]) -> str:
    """The speed table in Markdown."""
    lines = ["| case | against | authguard µs | reference µs | ratio | per round min–max "
             "| target | verdict |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        ratio = row.ratio()
        per_round = row.ratios()
        ag = row.authguard
        verdict = "skipped" if ratio is None else ("PASS" if ratio <= row.limit else "FAIL")
        spread = (f"{_times(min(per_round))}–{_times(max(per_round))}" if per_round
                  else "—")
        lines.append(
            f"| {row.label} | {row.reference_name} "
            f"| {statistics.median(ag.samples) if ag and ag.samples else 0:.1f} "
            f"| {row.reference.median if row.reference.samples else 0:.1f} "
            f"| {'—' if ratio is None else _times(ratio) + '×'} | {spread} "
            f"| ≤ {row.limit:.2f}× | {verdict} |")
    return "\n".join(lines)
