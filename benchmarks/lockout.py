"""``python -m benchmarks.lockout``: mixed good and bad clients against two replicas on Redis.

    .venv/bin/python -m benchmarks.lockout               # 30 s (the default)
    .venv/bin/python -m benchmarks.lockout --seconds 3   # a short check

Starts a ``redis-server`` and two replicas of the example app under uvicorn sharing it,
all on loopback. ``wrk`` (one per replica, from 127.0.0.1) sends only bad credentials:
wrong passwords for ``bob``, ``alice`` and ``BOB``, unknown users, bad API keys, forged
Bearer tokens, malformed headers. At the same time, good clients from 127.0.0.2 (replica
A) and 127.0.0.3 (replica B) keep signing in as ``bob`` and ``alice`` with the right
password, API key, Bearer token and session cookie. The run passes when no answer is a 5xx
and every good request gets 200: no valid user is refused because of someone else's
failures. Prints a report; exit status 1 when the run fails.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "examples" / "fastapi_app"
JWT_SECRET = "demo-jwt-secret-0123456789abcdef-0123456789"  # the example app's default
GOOD_ADDRESSES = ("127.0.0.2", "127.0.0.3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start in 30 s")
        time.sleep(0.05)


@contextlib.contextmanager
def _process(cmd: list[str], port: int, what: str, log: Path,
             env: dict[str, str] | None = None) -> Iterator[None]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, **(env or {})})
    try:
        _wait_for(port, proc, what)
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _token(subject: str, secret: str = JWT_SECRET) -> str:
    now = int(time.time())
    return jwt.encode({"sub": subject, "iss": "https://auth.example.test",
                       "aud": "authguard-demo", "iat": now, "exp": now + 3600,
                       "scope": "reports:read"}, secret, algorithm="HS256")


def bad_requests() -> list[dict[str, str]]:
    """Headers of the attackers' requests (all wrong, every kind)."""
    out: list[dict[str, str]] = []
    for i in range(50):
        out.append({"Authorization": _basic("bob", f"guess-{i}")})
        out.append({"Authorization": _basic("alice", f"guess-{i}")})
        out.append({"Authorization": _basic("BOB", f"guess-{i}")})
        out.append({"Authorization": _basic(f"user{i}", "password")})
        out.append({"X-API-Key": f"wrong-key-{i:04d}-0123456789"})
        out.append({"Authorization": "Bearer " + _token("bob", "x" * 43 + str(i))})
        out.append({"Authorization": "Basic !!not-base64!!"})
    return out


def _lua(requests: list[dict[str, str]]) -> str:
    """A wrk script cycling through ``requests`` and counting every status."""
    rows = ",\n".join(
        "{" + ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in r.items()) + "}"
        for r in requests)
    return f"""
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
local bad = {{
{rows}
}}
function init(args) statuses = {{}}; n = 0 end
function request()
  n = n + 1
  return wrk.format("GET", "/me", bad[(n % #bad) + 1])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local total = {{}}
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do total[k] = (total[k] or 0) + v end
  end
  for k, v in pairs(total) do io.write(string.format("status %d %d\\n", k, v)) end
end
"""


async def _wrk(url: str, script: Path, seconds: int, connections: int) -> Counter[int]:
    proc = await asyncio.create_subprocess_exec(
        "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-s", str(script), url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    statuses: Counter[int] = Counter()
    for status, count in re.findall(r"^status (\d+) (\d+)$", out.decode(), re.M):
        statuses[int(status)] += int(count)
    if not statuses:
        raise RuntimeError(f"wrk: no statuses:\n{out.decode()}\n{err.decode()}")
    return statuses


async def _good_client(base: str, address: str, stop: float) -> Counter[str]:
    """Right credentials of every kind, one request at a time, until ``stop``."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    results: Counter[str] = Counter()
    async with httpx.AsyncClient(base_url=base, transport=transport, timeout=30) as c:
        r = await c.post("/login", json={"username": "alice", "password": "wonderland"})
        results[f"login {r.status_code}"] += 1
        cookie = c.cookies.get("authguard_session", "")
        c.cookies.clear()
        kinds = {
            "Basic bob": {"Authorization": _basic("bob", "builder")},
            "Basic alice": {"Authorization": _basic("alice", "wonderland")},
            "API key": {"X-API-Key": "demo-key-alice-0123456789"},
            "Bearer": {"Authorization": "Bearer " + _token("bob")},
            "session": {"Cookie": f"authguard_session={cookie}"},
        }
        while time.monotonic() < stop:
            for kind, headers in kinds.items():
                r = await c.get("/me", headers=headers)
                results[f"{kind} {r.status_code}"] += 1
        r = await c.post("/login", json={"username": "bob", "password": "builder"})
        results[f"login {r.status_code}"] += 1
    return results


async def _run(a: str, b: str, script: Path, seconds: int, connections: int
               ) -> tuple[list[Counter[int]], Counter[str]]:
    stop = time.monotonic() + seconds
    jobs = [_wrk(a, script, seconds, connections), _wrk(b, script, seconds, connections),
            _good_client(a, GOOD_ADDRESSES[0], stop), _good_client(b, GOOD_ADDRESSES[1], stop)]
    wa, wb, ga, gb = await asyncio.gather(*jobs)
    return [wa, wb], ga + gb  # type: ignore[list-item, operator]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.lockout", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=int, default=30, help="length of the run (default 30)")
    p.add_argument("--connections", type=int, default=8,
                   help="wrk connections per replica (default 8)")
    args = p.parse_args(argv)
    for program in ("wrk", "redis-server"):
        if shutil.which(program) is None:
            print(f"{program} is not installed", file=sys.stderr)
            return 2
    with tempfile.TemporaryDirectory(prefix="lockout-") as tmp_name:
        tmp = Path(tmp_name)
        script = tmp / "bad.lua"
        script.write_text(_lua(bad_requests()), encoding="utf-8")
        redis_port, ports = _free_port(), (_free_port(), _free_port())
        env = {"AUTHGUARD_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0"}
        with contextlib.ExitStack() as stack:
            stack.enter_context(_process(
                ["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1",
                 "--save", "", "--appendonly", "no", "--dir", str(tmp)],
                redis_port, "redis-server", tmp / "redis.log"))
            for name, port in zip("ab", ports, strict=True):
                stack.enter_context(_process(
                    [sys.executable, "-m", "uvicorn", "app:app", "--app-dir",
                     str(EXAMPLE_DIR), "--host", "127.0.0.1", "--port", str(port),
                     "--log-level", "warning", "--no-access-log"],
                    port, f"replica {name}", tmp / f"replica-{name}.log", env))
            urls = [f"http://127.0.0.1:{port}" for port in ports]
            bad, good = asyncio.run(_run(urls[0], urls[1], script, args.seconds,
                                         args.connections))
        tracebacks = sum(
            (tmp / f"replica-{n}.log").read_text(errors="replace").count("Traceback")
            for n in "ab")
    return report(bad, good, tracebacks, args.seconds)


def report(bad: list[Counter[int]], good: Counter[str], tracebacks: int,
           seconds: int) -> int:
    """Print the run's answers; 0 when it passed."""
    total_bad = bad[0] + bad[1]
    print(f"Mixed load, {seconds} s, two replicas of the example app on one Redis")
    print("| client | requests | answers |")
    print("|---|---|---|")
    for name, statuses in zip(("bad (wrk, replica A)", "bad (wrk, replica B)"), bad,
                              strict=True):
        answers = ", ".join(f"{s}: {n}" for s, n in sorted(statuses.items()))
        print(f"| {name} | {sum(statuses.values())} | {answers} |")
    answers = ", ".join(f"{k}: {n}" for k, n in sorted(good.items()))
    print(f"| good (127.0.0.2, 127.0.0.3) | {sum(good.values())} | {answers} |")
    server_errors = sum(n for s, n in total_bad.items() if s >= 500)
    server_errors += sum(n for k, n in good.items() if k.endswith(tuple(
        f" {s}" for s in range(500, 600))))
    refused_good = sum(n for k, n in good.items() if not k.endswith(" 200"))
    print(f"5xx answers: {server_errors}; good requests refused: {refused_good}; "
          f"tracebacks in the replicas' output: {tracebacks}")
    passed = server_errors == 0 and refused_good == 0 and tracebacks == 0
    print("PASS" if passed else "FAIL")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
