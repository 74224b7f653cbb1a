"""Shared test helpers: clients that check every refusal, servers under real uvicorn."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from authguard import problem_schema
from leakcheck import RECORDER

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_DIR = ROOT / "examples" / "fastapi_app"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

_VALIDATOR = jsonschema.Draft202012Validator(problem_schema())
DECLARED_MEMBERS = frozenset(problem_schema()["properties"])
# Extensions that test apps add to their own refusals (RFC 9457 §3.2), not authguard's.
APP_EXTENSIONS = frozenset({"when", "note"})
CHECKED: list[int] = []  # statuses of every refusal checked, for a sanity test


def check_refusal(response: httpx.Response) -> None:
    """Assert DESIGN's rules on any refusal: schema-valid body, a parseable challenge on 401.

    Installed as an httpx response hook on every test client, so every refusal that the
    tests produce is checked against the shipped JSON Schema.
    """
    RECORDER.response(response)  # for test_secrets_leak.py
    ctype = response.headers.get("content-type", "")
    ours = ctype.startswith("application/problem+json")
    if response.status_code >= 500 and not (response.status_code in (502, 503) and ours):
        raise AssertionError(f"server error {response.status_code} for {response.request.url}")
    if not ctype.startswith("application/problem+json"):
        if response.status_code == 401:
            raise AssertionError("a 401 from authguard must be problem+json")
        return
    response.read()
    if response.request.method == "HEAD":
        assert response.content == b"", "HEAD gets no body"
    else:
        body = response.json()
        _VALIDATOR.validate(body)
        undeclared = set(body) - DECLARED_MEMBERS - APP_EXTENSIONS
        assert not undeclared, f"members missing from the problem schema: {undeclared}"
        assert body["status"] == response.status_code
    assert response.headers.get("cache-control") == "no-store"
    if response.status_code == 401:
        lines = response.headers.get_list("www-authenticate")
        assert lines, "every 401 carries at least one challenge (RFC 9110 §11.6.1)"
        try:
            from authguard.challenges import parse_www_authenticate
        except ImportError:  # pragma: no cover - before the parser exists
            return
        for line in lines:
            assert len(parse_www_authenticate(line)) == 1, "one challenge per field line"
    CHECKED.append(response.status_code)


async def _acheck(response: httpx.Response) -> None:
    await response.aread()
    check_refusal(response)


def asgi_client(app: Any, base_url: str = "http://testserver", **kw: Any) -> httpx.AsyncClient:
    """An in-process client for ``app`` whose every refusal is checked."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=base_url,
        event_hooks={"response": [_acheck]},
        **kw,
    )


def http_client(base_url: str, **kw: Any) -> httpx.Client:
    """A real HTTP client for a server under uvicorn; every refusal is checked."""
    return httpx.Client(base_url=base_url, event_hooks={"response": [check_refusal]},
                        timeout=10, **kw)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def need(component: str, why: str) -> None:
    """Skip when ``component`` (a program) is missing; in CI (CI=true) fail instead."""
    if shutil.which(component) is None:
        message = f"{component} is not installed: {why}"
        if IN_CI:
            pytest.fail(message + " (CI must install it: see .ci/run)")
        pytest.skip(message)


def wait_listening(port: int, proc: subprocess.Popen[bytes],
                   output: Callable[[], str] = lambda: "", seconds: float = 30) -> None:
    """Wait until ``proc`` (a server on loopback) accepts connections on ``port``; raise
    with ``output()`` if it exits first, or after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{output()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start in {seconds:g} s") from None
            time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server the tests started: terminate, then kill after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def uvicorn_server(
    app: str,
    *,
    app_dir: Path | None = EXAMPLE_DIR,
    env: Mapping[str, str] | None = None,
    port: int | None = None,
    extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Run ``uvicorn APP`` in a subprocess on loopback; yield its base URL."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "warning", *extra_args]
    if app_dir is not None:
        cmd += ["--app-dir", str(app_dir)]
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.Popen(cmd, env=full_env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_listening(port, proc, lambda: proc.stdout.read().decode() if proc.stdout else "")
        yield base
    finally:
        stop(proc)
        if proc.stdout:
            RECORDER.text(f"output of uvicorn {app}", proc.stdout.read().decode(errors="replace"))
            proc.stdout.close()
