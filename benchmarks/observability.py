"""The cost of events and metrics: refusal and allowed rows, observability off and on.

``python -m benchmarks.observability [--seconds 0.01] [--rounds 301] [--processes 7]``
prints a Markdown table of µs per request (in-process ASGI calls, no server), median over
rounds, the variants interleaved in a fresh random order each round (needs the
OpenTelemetry SDK: ``pip install 'authguard[prometheus]'``), then, per row and variant, the
ratio to ``off`` (median of the per-round ratios, its 95 % confidence interval, the
per-round quartiles and the range of each process's median) and PASS/FAIL against the 3 %
budget (``--budget 1.03``). Many short rounds, each variant next to its row's ``off`` in
time: on a shared or virtual machine the speed drifts over seconds, and a few long rounds
leave the median at the drift's mercy. The rounds are shared out over several fresh
interpreters, one after the other (as ``pyperf`` does): each process has its own memory
layout and string hash seed, which move one variant against another by a point or more
for the whole life of the process, so one process's figure is one draw of them. The
interval is then a bootstrap over processes (their rounds resampled together),
approximate over so few.

Variants:

- ``off``: ``AuthGuard(observability=None)`` (refusals logged when INFO is enabled; here
  it is not, as in a production logger at WARNING).
- ``metrics``: ``AuthMetrics()``, the documented default: the counters and gauges and the
  decision-time histogram of allowed requests, tallied in process.
- ``metrics(timed refusals)``: ``AuthMetrics(time_refusals=True)``: refusals' decision
  times tallied too.
- ``metrics(sdk)``: ``AuthMetrics(decision_time="sdk")``: the histogram recorded by the
  OpenTelemetry SDK on every request instead.
- ``metrics+detector``: ``AuthMetrics()`` and the systemic-cause detector.

Rows: ``allowed`` (a valid token), ``refusal`` (no credentials: a refusal the detector
does not watch), ``refusal(expired)`` (an expired token: one it watches, so it builds the
event).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from typing import Any, Literal

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
    def metrics(timed: bool | Literal["sdk"] = True, refusals: bool = False) -> AuthMetrics:
        return AuthMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()]),
                           decision_time=timed, time_refusals=refusals)

    return {
        "off": make(None),
        "metrics": make(Observability(metrics=metrics())),
        "metrics(timed refusals)": make(Observability(metrics=metrics(refusals=True))),
        "metrics(sdk)": make(Observability(metrics=metrics("sdk"))),
        "metrics+detector": make(Observability(metrics=metrics(), detector=Detector())),
    }


EXPIRED = jwt.encode({"sub": "alice", "aud": "bench", "exp": time.time() - 3600}, SECRET,
                     algorithm="HS256").encode()
ROWS = {"allowed": [(b"authorization", b"Bearer " + TOKEN)], "refusal": [],
        "refusal(expired)": [(b"authorization", b"Bearer " + EXPIRED)]}


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


Cell = tuple[str, str]  # (row, variant)


async def measure(seconds: float, rounds: int) -> dict[str, Any]:
    """One process's rounds: per (row, variant), the µs per request of each round and each
    round's ratio to the same round's ``off`` (the same load on the machine)."""
    apps = variants()
    cells = [(row, name) for row in ROWS for name in apps]
    sizes: dict[Cell, int] = {}
    for row, name in cells:
        expected = 200 if row == "allowed" else 401
        assert await call(apps[name], ROWS[row]) == expected, (row, name)
        per = await batch(apps[name], ROWS[row], 200)
        sizes[(row, name)] = max(100, int(seconds * 1e6 / per))
    samples: dict[Cell, list[float]] = {c: [] for c in cells}
    ratios: dict[Cell, list[float]] = {c: [] for c in cells}
    for _ in range(rounds):
        random.shuffle(cells)
        this: dict[Cell, float] = {}
        for row, name in cells:
            this[(row, name)] = await batch(apps[name], ROWS[row], sizes[(row, name)])
            samples[(row, name)].append(this[(row, name)])
        for row, name in cells:
            ratios[(row, name)].append(this[(row, name)] / this[(row, "off")])
    return {"variants": list(apps),
            "cells": [[row, name, samples[(row, name)], ratios[(row, name)]]
                      for row, name in samples]}


def run_processes(seconds: float, rounds: int, processes: int) -> list[dict[str, Any]]:
    """``rounds`` shared out over ``processes`` fresh interpreters, one after the other."""
    out = []
    for i in range(processes):
        share = rounds // processes + (i < rounds % processes)
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.observability", "--worker",
             "--seconds", str(seconds), "--rounds", str(share)],
            stdout=subprocess.PIPE, text=True, check=False,  # (its errors: on stderr)
            env={k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"})
        if done.returncode != 0:
            sys.exit(f"benchmarks.observability: worker {i + 1} of {processes} failed "
                     f"(exit status {done.returncode}; its error is above)")
        out.append(json.loads(done.stdout))
    return out


def report(runs: list[dict[str, Any]], budget: float) -> None:
    names: list[str] = runs[0]["variants"]
    samples: dict[Cell, list[float]] = defaultdict(list)
    ratios: dict[Cell, list[float]] = defaultdict(list)
    per_process: dict[Cell, list[list[float]]] = defaultdict(list)
    for run in runs:
        for row, name, times, rs in run["cells"]:
            samples[(row, name)] += times
            ratios[(row, name)] += rs
            per_process[(row, name)].append(rs)
    rounds = len(samples[(next(iter(ROWS)), "off")])
    print(f"{rounds} rounds in {len(runs)} processes")
    print()
    print("| row | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(names))
    for row in ROWS:
        base = statistics.median(samples[(row, "off")])
        cells_text = []
        for name in names:
            med = statistics.median(samples[(row, name)])
            extra = "" if name == "off" else f" ({100 * (med - base) / base:+.1f} %)"
            cells_text.append(f"{med:.1f} µs{extra}")
        print(f"| {row} | " + " | ".join(cells_text) + " |")
    print()
    interval = ("95 % CI of the median" if len(runs) == 1
                else "≈95 % CI of the median (processes resampled)")
    print(f"| row | variant | ratio to off (median) | {interval} | "
          f"per-round quartiles | per-process medians | ≤ {budget:g} |")
    print("|---|---|---:|---:|---:|---:|---|")
    for row in ROWS:
        for name in names:
            if name == "off":
                continue
            got = sorted(ratios[(row, name)])
            med = statistics.median(got)
            low, high = (median_interval(got) if len(runs) == 1
                         else process_interval(per_process[(row, name)]))
            q1, _, q3 = statistics.quantiles(got, n=4)
            each = [statistics.median(rs) for rs in per_process[(row, name)]]
            verdict = "PASS" if med <= budget else "FAIL"
            print(f"| {row} | {name} | {med:.3f} | {low:.3f}-{high:.3f} | "
                  f"{q1:.3f}-{q3:.3f} | {min(each):.3f}-{max(each):.3f} | {verdict} |")


def process_interval(per_process: list[list[float]], draws: int = 2000) -> tuple[float, float]:
    """A 95 % confidence interval of the median of all rounds, by a percentile bootstrap
    over processes (each process's rounds share its memory layout and hash seed, so they
    are not independent of each other: the processes are the units drawn). Approximate:
    over a handful of processes such an interval covers the true value less often than
    95 % of the time; more processes make it closer."""
    rng = random.Random(0)
    medians = sorted(
        statistics.median([r for rs in rng.choices(per_process, k=len(per_process))
                           for r in rs])
        for _ in range(draws))
    return medians[int(0.025 * draws)], medians[int(0.975 * draws) - 1]


def median_interval(ordered: list[float]) -> tuple[float, float]:
    """The distribution-free 95 % confidence interval of the median of ``ordered`` (sorted):
    the order statistics k and n-1-k, k the largest with P(Binomial(n, 1/2) ≤ k) ≤ 2.5 %."""
    n = len(ordered)
    low, below = 0, 0
    for k in range(n // 2):
        below += math.comb(n, k)
        if below / 2**n > 0.025:
            break
        low = k
    return ordered[low], ordered[n - 1 - low]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.01, help="seconds per batch")
    parser.add_argument("--rounds", type=int, default=301, help="rounds in all (median)")
    parser.add_argument("--processes", type=int, default=7,
                        help="fresh interpreters the rounds are shared out over")
    parser.add_argument("--budget", type=float, default=1.03,
                        help="largest ratio to off that passes")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.worker:  # one process's rounds, as JSON on stdout
        print(json.dumps(asyncio.run(measure(options.seconds, options.rounds))))
        sys.exit()
    if options.rounds < 6:
        parser.error("--rounds must be at least 6 (for the median's 95 % interval)")
    if not 1 <= options.processes <= options.rounds:
        parser.error("--processes must be between 1 and --rounds")
    report(run_processes(options.seconds, options.rounds, options.processes),
           options.budget)
