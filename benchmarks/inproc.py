"""In-process ASGI calls: no server, no sockets, just ``await app(scope, receive, send)``.

Each cell (one case done one way) is checked once for its status, calibrated so that a
batch takes about ``batch_seconds``, then timed in several rounds; in every round the
cells run in a fresh random order, so that drift (CPU frequency, other processes) spreads
over all of them instead of favouring whoever ran first. A cell's figure is the median
over rounds of the mean per request within a batch; the spread is the interquartile range
over rounds relative to that median.
"""

from __future__ import annotations

import asyncio
import gc
import json
import random
import statistics
import time
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import TimestampSigner

from . import apps
from .apps import Material

Headers = list[tuple[bytes, bytes]]

_BASE_HEADERS: Headers = [(b"host", b"bench.local"), (b"user-agent", b"bench/1"),
                          (b"accept", b"*/*")]


@dataclass(eq=False)
class Cell:
    """One job done one way: an app, a request, the status it must answer with."""

    app: Any
    path: str
    headers: Headers = field(default_factory=list)
    expect: int | None = None  # checked before timing (authguard cells always set it)
    slow: bool = False  # a password hash per request: fewer iterations
    status: int | None = None
    samples: list[float] = field(default_factory=list)  # µs per request, one per round
    n: int = 0

    def scope(self) -> dict[str, Any]:
        return {
            "type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1", "method": "GET", "scheme": "http",
            "path": self.path, "raw_path": self.path.encode(), "root_path": "",
            "query_string": b"", "headers": _BASE_HEADERS + self.headers,
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 51000), "state": {},
        }

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def spread(self) -> float:
        """Interquartile range over rounds, relative to the median."""
        if len(self.samples) < 4:
            return (max(self.samples) - min(self.samples)) / 2 / self.median
        q = statistics.quantiles(self.samples, n=4)
        return (q[2] - q[0]) / self.median


@dataclass(frozen=True)
class Target:
    """``authguard ≤ limit × reference`` where the reference is ``bare`` or ``peer``."""

    against: str  # "bare" | "peer"
    limit: float

    def describe(self) -> str:
        return f"≤ {self.limit:.2f}× {'bare' if self.against == 'bare' else 'Starlette'}"


@dataclass
class Case:
    key: str
    label: str
    authguard: Cell | None
    starlette: Cell | None
    fastapi: Cell | None
    target: Target | None = None
    note: str = ""
    bare: Cell | None = None  # bare Starlette on this case's path (else the bare row's)

    def cells(self) -> list[Cell]:
        return [c for c in (self.authguard, self.starlette, self.fastapi, self.bare)
                if c is not None]


def _hdr(name: str, value: str | bytes) -> tuple[bytes, bytes]:
    return name.encode(), value if isinstance(value, bytes) else value.encode()


def _starlette_session_cookie() -> str:
    """What Starlette's SessionMiddleware would have set for ``{"user": "alice"}``."""
    data = b64encode(json.dumps({"user": "alice"}).encode())
    return TimestampSigner(apps.SESSION_KEY).sign(data).decode()


async def build_cases(m: Material) -> list[Case]:
    """Every case of the issue, each with its Starlette and FastAPI peers."""
    ak = [_hdr("x-api-key", apps.API_KEY)]
    basic = [_hdr("authorization", apps.basic_header())]

    ag_key = apps.authguard_app(apps.api_key_authenticator())
    st_key = apps.starlette_app(apps.APIKeyBackend())
    fa_key = apps.fastapi_app("apikey", m)

    bare = apps.bare_starlette()  # the same routes, in the same order, as every app
    hand = apps.hand_written_app()
    cases = [
        Case("bare", "bare app, no auth (reference: GET /private)", None,
             Cell(bare, "/private", expect=200),
             Cell(apps.bare_fastapi(), "/private", expect=200)),
        Case("floor", "hand-written pure ASGI API-key check (floor; Starlette column)", None,
             Cell(hand, "/private", ak, expect=200), None),
        Case("public", "public route (no authenticator runs)",
             Cell(ag_key, "/public", expect=200),
             Cell(st_key, "/public", expect=200),
             Cell(fa_key, "/public", expect=200),
             Target("bare", 1.05), bare=Cell(bare, "/public", expect=200)),
        Case("apikey", "API key (X-API-Key)",
             Cell(ag_key, "/private", ak, expect=200),
             Cell(st_key, "/private", ak, expect=200),
             Cell(fa_key, "/private", ak, expect=200),
             Target("bare", 1.10)),
        Case("basic_plain", "Basic, plain verifier",
             Cell(apps.authguard_app(apps.basic_plain_authenticator()), "/private", basic,
                  expect=200),
             Cell(apps.starlette_app(apps.BasicBackend(apps.plain_check)), "/private", basic,
                  expect=200),
             Cell(apps.fastapi_app("basic_plain", m), "/private", basic, expect=200)),
    ]
    st_argon = Cell(apps.starlette_app(apps.BasicBackend(apps.argon2_check(m))), "/private",
                    basic, expect=200, slow=True)
    fa_argon = Cell(apps.fastapi_app("basic_argon2", m), "/private", basic, expect=200,
                    slow=True)
    cases += [
        Case("basic_argon2_first", "Basic, argon2id, every request hashes",
             Cell(apps.authguard_app(apps.basic_argon2_authenticator(m, cache=False)),
                  "/private", basic, expect=200, slow=True),
             st_argon, fa_argon,
             note="authguard hashes in a worker thread; the Starlette peer in the event loop"),
        Case("basic_argon2_repeat", "Basic, argon2id, repeated credentials",
             Cell(apps.authguard_app(apps.basic_argon2_authenticator(m, cache=True)),
                  "/private", basic, expect=200),
             st_argon, fa_argon, Target("bare", 1.60),
             note="authguard's verified-credential cache; the peers have none"),
    ]

    for alg in apps.ALGORITHMS:
        valid = [_hdr("authorization", "Bearer " + m.valid[alg])]
        expired = [_hdr("authorization", "Bearer " + m.expired[alg])]
        bad = [_hdr("authorization", "Bearer " + m.bad_signature[alg])]
        st_app = apps.starlette_app(apps.JWTBackend(m.public[alg], alg))
        fa_app = apps.fastapi_app("jwt", m, alg)
        st_valid = Cell(st_app, "/private", valid, expect=200)
        fa_valid = Cell(fa_app, "/private", valid, expect=200)
        ag_first = ag_repeat = None
        if apps.HAS_BEARER:
            ag_first = Cell(apps.authguard_app(apps.bearer_authenticator(m, alg, cache=False)),
                            "/private", valid, expect=200)
            ag_app = apps.authguard_app(apps.bearer_authenticator(m, alg, cache=True))
            ag_repeat = Cell(ag_app, "/private", valid, expect=200)
        cases += [
            Case(f"jwt_{alg}_first", f"JWT {alg}, first sight of the token", ag_first,
                 st_valid, fa_valid, Target("peer", 1.00)),
            Case(f"jwt_{alg}_repeat", f"JWT {alg}, repeated token", ag_repeat,
                 st_valid, fa_valid, Target("bare", 1.10)),
            Case(f"jwt_{alg}_expired", f"JWT {alg}, expired",
                 Cell(ag_app, "/private", expired, expect=401) if apps.HAS_BEARER else None,
                 Cell(st_app, "/private", expired), Cell(fa_app, "/private", expired)),
            Case(f"jwt_{alg}_bad_signature", f"JWT {alg}, bad signature",
                 Cell(ag_app, "/private", bad, expect=401) if apps.HAS_BEARER else None,
                 Cell(st_app, "/private", bad), Cell(fa_app, "/private", bad)),
        ]

    if apps.HAS_DPOP:
        for cache, when in ((False, "first"), (True, "repeat")):
            dpop, token, proof = apps.dpop_case(m, cache=cache)
            headers = [_hdr("authorization", "DPoP " + token), _hdr("dpop", proof)]
            cases.append(Case(
                f"dpop_{when}", "DPoP (ES256 proof, HS256 token), "
                + ("first sight of the token" if not cache else "repeated token"),
                Cell(apps.authguard_app(dpop), "/private", headers, expect=200), None, None,
                note="beside 'JWT HS256': the proof's signature is checked on every request; "
                     "no peer supports DPoP"))

    ag_session = None
    if apps.HAS_SESSION:
        authenticator = apps.session_authenticator()
        cookie = await apps.session_login(authenticator)
        ag_session = Cell(apps.authguard_app(authenticator), "/private",
                          [_hdr("cookie", f"{authenticator.cookie_name}={cookie}")], expect=200)
    cases.append(Case(
        "session", "session cookie, repeated", ag_session,
        Cell(apps.starlette_app(apps.SessionBackend(), sessions=True), "/private",
             [_hdr("cookie", f"session={_starlette_session_cookie()}")], expect=200),
        Cell(apps.fastapi_app("session", m), "/private",
             [_hdr("cookie", f"session={m.session_cookie()}")], expect=200),
        Target("bare", 1.30)))

    cases += [
        Case("floor_401", "hand-written pure ASGI 401 (floor; Starlette column)", None,
             Cell(hand, "/private", expect=401), None),
        Case("refuse_401", "401 refusal (no credentials)",
             Cell(ag_key, "/private", expect=401), Cell(st_key, "/private"),
             Cell(fa_key, "/private"), Target("bare", 1.10)),
        Case("refuse_403", "403 refusal (role missing)",
             Cell(ag_key, "/admin", ak, expect=403), Cell(st_key, "/admin", ak),
             Cell(fa_key, "/admin", ak), Target("bare", 1.10),
             bare=Cell(bare, "/admin", expect=200)),
        Case("refuse_402", "402 refusal (payment required)",
             Cell(ag_key, "/paid", ak, expect=402), Cell(st_key, "/paid", ak),
             Cell(fa_key, "/paid", ak), Target("bare", 1.10),
             bare=Cell(bare, "/paid", expect=200)),
    ]
    return cases


# -- timing --------------------------------------------------------------------------

async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _discard(message: dict[str, Any]) -> None:
    return None


async def _status_of(cell: Cell) -> int:
    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await cell.app(cell.scope(), _receive, send)
    return status


async def _batch(cell: Cell, n: int) -> float:
    """Mean µs per request over ``n`` requests."""
    app = cell.app
    template = cell.scope()
    receive, send = _receive, _discard
    clock = time.perf_counter_ns
    start = clock()
    for _ in range(n):
        await app(dict(template), receive, send)
    return (clock() - start) / n / 1000


@dataclass
class Settings:
    rounds: int = 15
    batch_seconds: float = 0.015
    max_n: int = 20_000
    fixed_n: int | None = None  # smoke runs: exactly this many requests per batch


async def measure(cases: list[Case], settings: Settings,
                  progress: Callable[[str], None] = lambda _: None) -> None:
    """Fill in every cell's status and samples."""
    cells: list[Cell] = []
    for case in cases:
        for cell in case.cells():
            if cell not in cells:
                cells.append(cell)
    for case in cases:
        for cell in case.cells():
            if cell.status is None:
                cell.status = await _status_of(cell)
            if cell.expect is not None and cell.status != cell.expect:
                raise RuntimeError(f"{case.key}: expected {cell.expect}, got {cell.status}")
    progress(f"{len(cells)} cells, {settings.rounds} rounds")
    for cell in cells:  # warm up (route caches, first-call imports) and calibrate
        await _batch(cell, 1 if cell.slow else 3)
        if settings.fixed_n is not None:
            cell.n = settings.fixed_n
        else:
            probe = await _batch(cell, 1 if cell.slow else 20)
            cell.n = max(1 if cell.slow else 5,
                         min(settings.max_n, int(settings.batch_seconds * 1e6 / probe)))
    rng = random.Random(8)
    for r in range(settings.rounds):
        order = cells[:]
        rng.shuffle(order)
        gc.collect()
        for cell in order:
            cell.samples.append(await _batch(cell, cell.n))
        progress(f"round {r + 1}/{settings.rounds}")


def run(cases_factory: Callable[[], Any], settings: Settings,
        progress: Callable[[str], None] = lambda _: None) -> list[Case]:
    async def main() -> list[Case]:
        cases: list[Case] = await cases_factory()
        await measure(cases, settings, progress)
        return cases
    return asyncio.run(main())
