"""The cost of events and metrics: refusal and allowed rows, observability off and on.

``python -m benchmarks.observability [--seconds 0.2] [--rounds 7]`` prints a Markdown table
of µs per request (in-process ASGI calls, no server), median over rounds, the variants
interleaved in a fresh random order each round (needs the OpenTelemetry SDK:
``pip install 'authguard[prometheus]'``). Variants:

- ``off``: ``AuthGuard(observability=None)`` (refusals logged when INFO is enabled; here
  it is not, as in a production logger at WARNING).
- ``counters``: ``AuthMetrics(decision_time=False)`` on the OpenTelemetry SDK (in-memory
  reader): the counters and gauges, no histogram.
- ``metrics``: ``AuthMetrics()``: the same and the decision-time histogram.
- ``metrics+detector``: the same, and the systemic-cause detector.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time
from typing import Any

import jwt
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BearerAuthenticator,
    JWTKey,
    protect,
)
from authguard.observability import AuthMetrics, Detector, Observability

SECRET = "bench-secret-0123456789abcdef-0123456789abcdef"
TOKEN = jwt.encode({"sub": "alice", "aud": "bench", "exp": time.time() + 3600}, SECRET,
                   algorithm="HS256").encode()


@protect(Authenticated())
async def item(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def make(observability: Observability | None) -> Any:
    guard = AuthGuard(authenticators=[BearerAuthenticator(key=JWTKey.hs256(SECRET),
                                                          audience="bench")],
                      observability=observability)
    return Starlette(routes=[Route("/items/{item_id}", item)],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard)])


def variants() -> dict[str, Any]:
    def metrics(timed: bool = True) -> AuthMetrics:
        return AuthMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()]),
                           decision_time=timed)

    return {
        "off": make(None),
        "counters": make(Observability(metrics=metrics(timed=False))),
        "metrics": make(Observability(metrics=metrics())),
        "metrics+detector": make(Observability(metrics=metrics(), detector=Detector())),
    }


ROWS = {"allowed": [(b"authorization", b"Bearer " + TOKEN)], "refusal": []}


async def call(app: Any, headers: list[tuple[bytes, bytes]]) -> int:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/items/1", "raw_path": b"/items/1",
             "root_path": "", "query_string": b"", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {}}
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def batch(app: Any, headers: list[tuple[bytes, bytes]], n: int) -> float:
    start = time.perf_counter()
    for _ in range(n):
        await call(app, headers)
    return (time.perf_counter() - start) / n * 1e6


async def main(seconds: float, rounds: int) -> None:
    apps = variants()
    cells = [(row, name) for row in ROWS for name in apps]
    sizes: dict[tuple[str, str], int] = {}
    for row, name in cells:
        expected = 200 if row == "allowed" else 401
        assert await call(apps[name], ROWS[row]) == expected, (row, name)
        per = await batch(apps[name], ROWS[row], 200)
        sizes[(row, name)] = max(100, int(seconds * 1e6 / per))
    samples: dict[tuple[str, str], list[float]] = {c: [] for c in cells}
    for _ in range(rounds):
        random.shuffle(cells)
        for row, name in cells:
            samples[(row, name)].append(await batch(apps[name], ROWS[row],
                                                    sizes[(row, name)]))
    print("| row | " + " | ".join(apps) + " |")
    print("|---|" + "---:|" * len(apps))
    for row in ROWS:
        base = statistics.median(samples[(row, "off")])
        cells_text = []
        for name in apps:
            med = statistics.median(samples[(row, name)])
            extra = "" if name == "off" else f" ({100 * (med - base) / base:+.1f} %)"
            cells_text.append(f"{med:.1f} µs{extra}")
        print(f"| {row} | " + " | ".join(cells_text) + " |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.2, help="seconds per batch")
    parser.add_argument("--rounds", type=int, default=7, help="rounds (median)")
    options = parser.parse_args()
    asyncio.run(main(options.seconds, options.rounds))
