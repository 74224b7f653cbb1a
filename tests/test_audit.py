"""``authguard routes MODULE:APP``: the route audit, run as users run it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from helpers import EXAMPLE_DIR, ROOT

AUTHGUARD = [sys.executable, "-m", "authguard.cli"]

STARLETTE_APP = '''
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, WebSocketRoute

from authguard import (APIKeyAuthenticator, AuthGuard, AuthGuardMiddleware, HasRoles,
                       HasScopes, Public, StaticAPIKeys, protect)


async def ok(request):
    return PlainTextResponse("ok")


async def ok2(request):
    return PlainTextResponse("ok")


async def ok3(request):
    return PlainTextResponse("ok")


async def sock(ws):
    await ws.close()


guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=StaticAPIKeys({}))],
                  rules={"/ruled": HasScopes("r:read")})
app = Starlette(routes=[
    Route("/open", protect(Public)(ok)),
    Route("/forgotten", ok2, methods=["GET", "POST"]),
    protect(HasRoles("admin"))(Mount("/admin", routes=[Route("/panel", ok3)])),
    Route("/ruled/x", ok3),
    WebSocketRoute("/ws", sock),
], middleware=[Middleware(AuthGuardMiddleware, guard=guard)])
'''


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*AUTHGUARD, "routes", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, check=False)


def by_path(out: str) -> dict[str, dict[str, Any]]:
    return {row["path"]: row for row in json.loads(out)}


def test_example_app_routes() -> None:
    done = run("app:app", "--app-dir", str(EXAMPLE_DIR), "--json")
    assert done.returncode == 0, done.stderr
    rows = by_path(done.stdout)
    assert rows["/public"]["public"] is True
    assert rows["/me"]["policy"] == "authenticated"
    assert rows["/me"]["methods"] == ["GET"]
    assert rows["/admin"]["roles"] == ["admin"]
    assert rows["/admin"]["statuses"] == [401, 403]
    assert rows["/ws"]["methods"] == ["WS"]
    assert rows["/openapi.json"]["public"] is True  # docs made public by install()
    assert all(r["source"] == "route" for r in rows.values()), "every route is declared"


def test_example_app_strict_passes_and_plain_output() -> None:
    done = run("app:app", "--strict", cwd=EXAMPLE_DIR)  # --app-dir defaults to the cwd
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["METHODS", "PATH", "SOURCE", "SCHEMES", "POLICY"]
    me = next(line for line in lines if " /me " in line)
    assert me.split()[:4] == ["GET", "/me", "route", "any"]
    assert "\x1b[" not in done.stdout  # no colours when stdout is not a terminal


def test_the_audit_warns_when_no_proxy_is_trusted_for_the_brute_force_guard() -> None:
    done = run("app:app", "--app-dir", str(EXAMPLE_DIR), "--json")
    assert done.returncode == 0
    assert done.stderr.count("warning:") == 1
    assert "network.trusted_proxies is not set" in done.stderr
    assert "every client shares the proxy's address" in done.stderr
    env = {**os.environ, "AUTHGUARD_DEMO_TRUSTED_PROXIES": "10.0.0.0/8"}
    done = subprocess.run([*AUTHGUARD, "routes", "app:app", "--app-dir", str(EXAMPLE_DIR)],
                          cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
                          env=env)
    assert done.returncode == 0 and "warning" not in done.stderr, done.stderr


def test_starlette_app_sources_and_strict(tmp_path: Path) -> None:
    (tmp_path / "site_app.py").write_text(STARLETTE_APP)
    done = run("site_app:app", "--app-dir", str(tmp_path), "--json")
    assert done.returncode == 0, done.stderr
    rows = by_path(done.stdout)
    assert rows["/open"]["source"] == "route" and rows["/open"]["public"]
    assert rows["/admin/panel"]["source"] == "route"
    assert rows["/admin/panel"]["roles"] == ["admin"]
    assert rows["/ruled/x"]["source"] == "rule"
    assert rows["/ruled/x"]["scopes"] == ["r:read"]
    assert rows["/forgotten"]["source"] == "default"
    assert rows["/forgotten"]["methods"] == ["GET", "HEAD", "POST"]
    assert rows["/ws"]["methods"] == ["WS"]
    strict = run("site_app:app", "--app-dir", str(tmp_path), "--strict")
    assert strict.returncode == 1
    assert "no explicit policy: GET,HEAD,POST /forgotten" in strict.stderr
    assert "/ws" in strict.stderr and "/open" not in strict.stderr
    assert "warning" not in strict.stderr  # no brute-force guard: nothing to warn about


def test_bad_target() -> None:
    done = run("no_such_module:app", "--app-dir", str(ROOT))
    assert done.returncode == 2
    assert "cannot load" in done.stderr
    done = run("nocolon")
    assert done.returncode == 2


def test_rich_table_on_a_terminal(monkeypatch: Any, capsys: Any) -> None:
    """On a terminal the table is drawn with rich; the content is the same."""
    import argparse

    from authguard import audit

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    args = argparse.Namespace(app="app:app", app_dir=str(EXAMPLE_DIR), guard=None,
                              json=False, strict=True)
    assert audit.run(args) == 0
    out = capsys.readouterr().out
    assert "authguard routes" in out  # the table's title
    assert "/me" in out and "authenticated" in out and "roles admin" in out
    assert "METHODS  " not in out  # not the plain layout


def test_audit_is_the_command_and_routes_its_alias() -> None:
    from authguard.cli import main

    for name in ("audit", "routes"):
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
    help_text = subprocess.run([*AUTHGUARD, "audit", "--help"], capture_output=True,
                               text=True, check=True).stdout
    assert "example:" in help_text and "authguard audit main:app" in help_text
    explain = subprocess.run([*AUTHGUARD, "explain", "--help"], capture_output=True,
                             text=True, check=True).stdout
    assert "example:" in explain
