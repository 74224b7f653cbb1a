"""``authguard routes MODULE:APP``: every route of an app with its effective policy.

Reads the app the way uvicorn does (``--app-dir`` is put first on ``sys.path``), finds the
:class:`~authguard.AuthGuard` from the app's ``AuthGuardMiddleware`` (or from
:func:`authguard.fastapi.install`), and prints each route's methods, path and policy:
schemes, scopes, roles, payment, public — and where the policy comes from (``route``, a
path ``rule``, or the guard's ``default``) — and whether anything enforces it: a protected
route that no ``AuthGuardMiddleware`` covers (and whose policy is not taken by FastAPI
``require()`` dependencies with :func:`authguard.fastapi.install`) is marked
``NOT ENFORCED``; its endpoint refuses every request with 403. ``--json`` prints the same
for programs; ``--strict`` exits 1 when a route has no explicit policy (neither on the
route nor by a path rule) or a policy that nothing enforces, so either fails a CI job.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from .guard import AuthGuard
from .route_tree import RouteInfo, effective_policy, has_enforcer, iter_routes
from .routing import find_routes

__all__ = ["add_arguments", "audit", "find_guard", "load_app", "run", "warnings_for"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``authguard routes``."""
    parser.add_argument("app", metavar="MODULE:APP",
                        help="the app to audit, as for uvicorn (e.g. main:app)")
    parser.add_argument("--app-dir", default=".",
                        help="directory put first on sys.path to import MODULE (default: .)")
    parser.add_argument("--guard", metavar="NAME",
                        help="module attribute holding the AuthGuard (default: found from "
                             "the app's middleware)")
    parser.add_argument("--json", action="store_true", help="print JSON for programs")
    parser.add_argument("--strict", action="store_true",
                        help="exit 1 when a route has no explicit policy")


def load_app(target: str, app_dir: str = ".") -> tuple[Any, Any]:
    """Import ``MODULE:APP`` (``app_dir`` first on ``sys.path``); return (module, app)."""
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"expected MODULE:APP, got {target!r}")
    if app_dir not in sys.path:
        sys.path.insert(0, app_dir)
    module = importlib.import_module(module_name)
    app: Any = module
    for part in attr.split("."):
        app = getattr(app, part)
    return module, app


def find_guard(app: Any) -> AuthGuard | None:
    """The guard of ``app``'s ``AuthGuardMiddleware``, or the one given to ``install``."""
    for middleware in getattr(app, "user_middleware", []) or []:
        guard = getattr(middleware, "kwargs", {}).get("guard")
        if isinstance(guard, AuthGuard):
            return guard
    engine = getattr(getattr(app, "state", None), "authguard_engine", None)
    guard = getattr(engine, "guard", None)
    return guard if isinstance(guard, AuthGuard) else None


def _row(info: RouteInfo, guard: AuthGuard | None, app: Any) -> dict[str, Any]:
    row = _policy_row(info, guard)
    installed = getattr(getattr(app, "state", None), "authguard_engine", None) is not None
    row["enforced"] = bool(
        row["public"] or info.under_enforcer or has_enforcer(app)
        or (installed and info.decided_by_dependencies))
    return row


def _policy_row(info: RouteInfo, guard: AuthGuard | None) -> dict[str, Any]:
    if guard is not None:
        policy, source = effective_policy(info, guard)
    elif info.explicit is not None:
        policy, source = info.explicit, "route"
    else:
        return {"path": info.path, "methods": info.methods, "host": info.host,
                "name": getattr(info.route, "name", None), "source": "none",
                "policy": "no policy (no AuthGuard found)", "public": None, "schemes": None,
                "scopes": [], "roles": [], "payment": [], "statuses": [], "conceal": False,
                "login_url": None}
    return {"path": info.path, "methods": info.methods, "host": info.host,
            "name": getattr(info.route, "name", None), "source": source, **policy.summary()}


def audit(app: Any, guard: AuthGuard | None) -> list[dict[str, Any]]:
    """One row per leaf route of ``app`` with its effective policy."""
    routes = find_routes(app) or []
    return [_row(info, guard, app) for info in iter_routes(routes)]


def warnings_for(guard: AuthGuard | None) -> list[str]:
    """What the configuration leaves open that the routes do not show."""
    out = []
    network = guard.network if guard is not None else None
    if guard is not None and guard.brute_force is not None and (
            network is None or not network.use_forwarded or not network.trusted_proxies):
        out.append(
            "the brute-force guard limits each client address, and network.trusted_proxies "
            "is not set (with use_forwarded=True): behind a reverse proxy every client "
            "shares the proxy's address, so one limit. List the proxies in trusted_proxies.")
    return out


def _schemes(row: dict[str, Any]) -> str:
    if row["public"]:
        return "-"
    return ", ".join(row["schemes"]) if row["schemes"] else "any"


def _print_plain(rows: list[dict[str, Any]]) -> None:
    header = ("METHODS", "PATH", "SOURCE", "SCHEMES", "POLICY")
    table = [header] + [(",".join(r["methods"]), (r["host"] or "") + r["path"], r["source"],
                         _schemes(r), r["policy"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        cells = [row[i].ljust(widths[i]) for i in range(4)] + [row[4]]
        print("  ".join(cells).rstrip())


def _print_rich(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="authguard routes")
    for name in ("Methods", "Path", "Source", "Schemes", "Policy"):
        table.add_column(name)
    for r in rows:
        style = ("green" if r["public"] else
                 "yellow" if r["source"] in ("default", "none") else "")
        table.add_row(",".join(r["methods"]), (r["host"] or "") + r["path"], r["source"],
                      _schemes(r), r["policy"], style=style)
    Console().print(table)


def run(args: argparse.Namespace) -> int:
    """Run ``authguard routes``; 0, or 1 under ``--strict`` when a route lacks a policy."""
    try:
        module, app = load_app(args.app, args.app_dir)
    except (ImportError, AttributeError, ValueError) as exc:
        print(f"authguard routes: cannot load {args.app!r}: {exc}", file=sys.stderr)
        return 2
    guard = getattr(module, args.guard, None) if args.guard else find_guard(app)
    if args.guard and not isinstance(guard, AuthGuard):
        print(f"authguard routes: {args.guard!r} is not an AuthGuard", file=sys.stderr)
        return 2
    rows = audit(app, guard)
    for warning in warnings_for(guard):
        print(f"warning: {warning}", file=sys.stderr)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif sys.stdout.isatty():
        _print_rich(rows)
    else:
        _print_plain(rows)
    missing = [r for r in rows if r["source"] in ("default", "none")]
    open_ = [r for r in rows if not r["enforced"]]
    for r in open_:
        print(f"policy NOT ENFORCED (no AuthGuardMiddleware covers it; the endpoint refuses "
              f"with 403): {','.join(r['methods'])} {r['path']}", file=sys.stderr)
    if args.strict and (missing or open_):
        for r in missing:
            print(f"no explicit policy: {','.join(r['methods'])} {r['path']}", file=sys.stderr)
        return 1
    return 0
