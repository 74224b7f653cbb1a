"""Under uvicorn: one worker per app, a bounded load generator on loopback.

``wrk`` when it is installed, else a small asyncio HTTP/1.1 client (keep-alive, fixed
concurrency, fixed duration). Reports requests/s and p50/p99 latency for bare Starlette,
authguard with a repeated JWT and Starlette's ``AuthenticationMiddleware`` with pyjwt;
then shows that an argon2 Basic login does not stall other requests under authguard
(the hash runs in a worker thread) while it does with the peer (hash in the event loop).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import apps

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.contextmanager
def server(factory: str) -> Iterator[int]:
    """``uvicorn benchmarks.apps:<factory> --factory`` on a free port, until the block ends."""
    with server_process(factory) as (port, _pid):
        yield port


@contextlib.contextmanager
def server_process(factory: str) -> Iterator[tuple[int, int]]:
    """Like :func:`server`, with the server's process id (for its CPU time)."""
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", f"benchmarks.apps:{factory}", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning",
           "--no-access-log", "--workers", "1"]
    # the benchmarks package first; a PYTHONPATH already set (another authguard) after it
    path = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": path})
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                raise RuntimeError(f"uvicorn {factory} exited: {err[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn {factory} did not start")
            time.sleep(0.05)
        yield port, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class LoadResult:
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0
    non_2xx: int = 0
    requests: int = 0  # answered in the run


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if m is None:
        raise ValueError(text)
    return float(m.group(1)) * _UNITS[m.group(2)]


async def _wrk(url: str, headers: dict[str, str], seconds: float, connections: int
               ) -> LoadResult:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        cmd += ["-H", f"{name}: {value}"]
    proc = await asyncio.create_subprocess_exec(*cmd, url, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    text = out.decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if rps is None or p50 is None or p99 is None:
        raise RuntimeError(f"wrk: unexpected output:\n{text}\n{err.decode()}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    done = re.search(r"(\d+) requests in", text)
    errors = re.search(r"Socket errors:.*", text)
    return LoadResult(float(rps.group(1)), _ms(p50.group(1)), _ms(p99.group(1)),
                      errors=1 if errors else 0,
                      non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
                      requests=int(done.group(1)) if done else 0)


async def _one_connection(port: int, request: bytes, stop: float,
                          latencies: list[float], statuses: list[int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop:
            start = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if length:
                await reader.readexactly(length)
            latencies.append((time.perf_counter() - start) * 1000)
            statuses.append(int(head[9:12]))
    finally:
        writer.close()


async def python_load(port: int, path: str, headers: dict[str, str], seconds: float,
                      connections: int) -> LoadResult:
    """A small keep-alive HTTP/1.1 load generator (the fallback when wrk is missing)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode()
    latencies: list[float] = []
    statuses: list[int] = []
    start = time.perf_counter()
    stop = start + seconds
    await asyncio.gather(*(_one_connection(port, request, stop, latencies, statuses)
                           for _ in range(connections)))
    elapsed = time.perf_counter() - start
    if not latencies:
        return LoadResult(0.0, float("nan"), float("nan"))
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else latencies * 99
    return LoadResult(len(latencies) / elapsed, q[49], q[98],
                      non_2xx=sum(1 for s in statuses if not 200 <= s < 400),
                      requests=len(latencies))


async def generate(port: int, path: str, headers: dict[str, str], seconds: float,
                   connections: int, use_wrk: bool) -> LoadResult:
    if use_wrk:
        return await _wrk(f"http://127.0.0.1:{port}{path}", headers, seconds, connections)
    return await python_load(port, path, headers, seconds, connections)


def throughput(seconds: float, rounds: int, connections: int, use_wrk: bool
               ) -> list[dict[str, Any]]:
    """Bare vs authguard JWT (repeated token) vs the Starlette peer, interleaved rounds."""
    token = _hs256_token()
    auth = {"Authorization": f"Bearer {token}"}
    # The same request for every app: bare Starlette gets (and ignores) the token too, so
    # that parsing its header is not counted against authguard.
    runs = [("bare Starlette (same request, token ignored)", "load_bare", "/private", auth),
            ("Starlette AuthenticationMiddleware + pyjwt HS256", "load_starlette_jwt",
             "/private", auth)]
    if apps.HAS_BEARER:
        runs.insert(1, ("authguard JWT HS256, repeated token", "load_authguard_jwt",
                        "/private", auth))
    short = {"load_bare": "bare Starlette", "load_authguard_jwt": "authguard",
             "load_starlette_jwt": "Starlette + pyjwt"}
    results: dict[str, list[LoadResult]] = {name: [] for name, *_ in runs}
    with contextlib.ExitStack() as stack:
        ports = {factory: stack.enter_context(server(factory)) for _, factory, *_ in runs}
        for _name, factory, path, headers in runs:  # warm up
            asyncio.run(generate(ports[factory], path, headers, 1, connections, use_wrk))
        for r in range(rounds):  # every other round in reverse order: no app always first
            for name, factory, path, headers in (runs if r % 2 == 0 else runs[::-1]):
                results[name].append(asyncio.run(generate(
                    ports[factory], path, headers, seconds, connections, use_wrk)))
    out = []
    for name, factory, *_ in runs:
        rs = results[name]
        out.append({"name": name, "short": short[factory],
                    "rps": statistics.median(r.rps for r in rs),
                    "p50_ms": statistics.median(r.p50_ms for r in rs),
                    "p99_ms": statistics.median(r.p99_ms for r in rs),
                    "non_2xx": sum(r.non_2xx for r in rs)})
    return out


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of process ``pid`` so far (Linux ``/proc``; else ``None``)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The uvicorn apps of the CPU-per-request target: bare, authguard, the hand-written floor.
CPU_APPS = ("load_bare", "load_authguard_jwt", "load_floor_jwt")


def server_cpu(seconds: float, rounds: int, connections: int, use_wrk: bool
               ) -> dict[str, list[float]] | None:
    """Server CPU time per request served (µs), per round, for :data:`CPU_APPS` under the
    same load (a repeated HS256 token), in interleaved rounds: the server process's
    utime + stime over the run, divided by the requests it answered. ``None`` where
    ``/proc`` cannot be read or authguard has no Bearer authenticator."""
    if not apps.HAS_BEARER:
        return None
    auth = {"Authorization": f"Bearer {_hs256_token()}"}
    out: dict[str, list[float]] = {factory: [] for factory in CPU_APPS}
    with contextlib.ExitStack() as stack:
        procs = {f: stack.enter_context(server_process(f)) for f in CPU_APPS}
        if cpu_seconds(procs[CPU_APPS[0]][1]) is None:
            return None
        for port, _pid in procs.values():  # warm up
            asyncio.run(generate(port, "/private", auth, 1, connections, use_wrk))
        for r in range(rounds):  # every other round in reverse order: no app always first
            for factory in (CPU_APPS if r % 2 == 0 else CPU_APPS[::-1]):
                port, pid = procs[factory]
                before = cpu_seconds(pid) or 0.0
                result = asyncio.run(generate(port, "/private", auth, seconds, connections,
                                              use_wrk))
                used = (cpu_seconds(pid) or 0.0) - before
                if result.non_2xx or not result.requests:
                    raise RuntimeError(f"{factory}: {result.non_2xx} non-2xx answers")
                out[factory].append(used / result.requests * 1e6)
    return out


def _hs256_token() -> str:
    import jwt

    now = int(time.time())
    return jwt.encode({"sub": "alice", "iss": apps.ISSUER, "aud": apps.AUDIENCE,
                       "iat": now - 5, "exp": now + 3600, "roles": ["user"]},
                      apps.HS_SECRET, algorithm="HS256")


async def _logins(port: int, stop: float, count: list[int]) -> None:
    """One client logging in with Basic + argon2 over and over (no cache: every request
    hashes)."""
    creds = base64.b64encode(f"{apps.BASIC_USER}:{apps.BASIC_PASSWORD}".encode()).decode()
    request = (f"GET /private HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Authorization: Basic {creds}\r\n\r\n").encode()
    latencies: list[float] = []
    statuses: list[int] = []
    while time.perf_counter() < stop:
        await _one_connection(port, request, stop, latencies, statuses)
    count.append(len(latencies))


def hashing(seconds: float, connections: int, login_clients: int, use_wrk: bool
            ) -> list[dict[str, Any]]:
    """``/public`` throughput while ``login_clients`` clients keep logging in with argon2."""
    out = []
    for name, short, factory in (
        ("authguard (hash in a worker thread)", "authguard", "load_authguard_argon2"),
        ("Starlette peer (hash in the event loop)", "Starlette peer", "load_starlette_argon2"),
    ):
        with server(factory) as port:
            asyncio.run(generate(port, "/public", {}, 1, connections, use_wrk))  # warm up
            idle = asyncio.run(generate(port, "/public", {}, seconds, connections, use_wrk))

            async def busy(port: int = port) -> tuple[LoadResult, int]:
                stop = time.perf_counter() + seconds + 0.5
                done: list[int] = []
                tasks = [asyncio.create_task(_logins(port, stop, done))
                         for _ in range(login_clients)]
                await asyncio.sleep(0.3)  # logins under way first
                result = await generate(port, "/public", {}, seconds, connections, use_wrk)
                await asyncio.gather(*tasks)
                return result, sum(done)

            loaded, logins = asyncio.run(busy())
        out.append({"name": name, "short": short, "idle_rps": idle.rps, "idle_p99_ms": idle.p99_ms,
                    "busy_rps": loaded.rps, "busy_p50_ms": loaded.p50_ms,
                    "busy_p99_ms": loaded.p99_ms, "logins": logins,
                    "login_clients": login_clients, "seconds": seconds})
    return out


def have_wrk() -> bool:
    return shutil.which("wrk") is not None
