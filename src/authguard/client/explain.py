"""``authguard explain URL``: perform a request and explain the answer for a person.

Shows the status, the reason (from an authguard problem body, or inferred from the status
and challenges of any other server), each challenge and what it asks for, the hints, the
clock skew against the server's ``Date``, what a JWT sent in ``-H`` says (decoded without
verification) and what to do next. ``--json`` prints the same as one JSON object.

Exit status: 0 for a 1xx-3xx answer, 1 for a refusal or another error status, 2 for bad
arguments, 3 when the server could not be reached. Credentials given with ``-u`` or ``-H``
are never printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import sys
import time
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape as _escape_markup
from rich.panel import Panel
from rich.table import Table

from .diagnose import check_token, clock_report, describe_challenge, next_steps
from .problem import Problem

__all__ = ["add_arguments", "explain_response", "run"]

_TOKEN_REASONS = {"token_expired", "token_not_yet_valid"}
# C0 and C1 controls (ESC starts terminal escape sequences): a server's text must not be
# able to recolour, move the cursor or rewrite the screen of the person reading.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """``text`` safe to print: control characters replaced, rich markup escaped."""
    return _escape_markup(_CONTROL.sub("\ufffd", text))


def _header(value: str) -> tuple[str, str]:
    name, sep, rest = value.partition(":")
    if not sep or not name.strip() or any(c in name for c in " \t\r\n"):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value.split(':')[0]!r}")
    if any(c in rest for c in "\r\n"):
        raise argparse.ArgumentTypeError("a header value must not contain CR or LF")
    return name.strip(), rest.strip()


def _user(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected user:password")
    return user, password


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``authguard explain``."""
    parser.add_argument("url", help="the URL to request")
    parser.add_argument("-X", "--method", default="GET", help="HTTP method (default GET)")
    parser.add_argument("-H", "--header", action="append", type=_header, default=[],
                        metavar="'NAME: VALUE'", help="add a request header (repeatable)")
    parser.add_argument("-u", "--user", type=_user, metavar="USER:PASSWORD",
                        help="send Basic credentials")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--audience", help="the audience (aud) the server should require; "
                        "checked against a JWT sent in -H")
    parser.add_argument("--issuer", help="the issuer (iss) the server should trust; checked "
                        "against a JWT sent in -H")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")
    parser.add_argument("-k", "--insecure", action="store_true",
                        help="do not verify the server's TLS certificate")


def _safe_url(url: httpx.URL) -> str:
    return str(url.copy_with(username=None, password=None)) if url.userinfo else str(url)


def _bearer_token(headers: list[tuple[str, str]]) -> str | None:
    for name, value in headers:
        if name.lower() == "authorization":
            scheme, _, token = value.partition(" ")
            if scheme.lower() in ("bearer", "dpop") and token.strip():
                return token.strip()
    return None


def _iso(ts: float) -> str:
    try:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):  # a claim like exp=1e300
        return f"{ts!r} (not a date)"


def explain_response(
    response: httpx.Response,
    *,
    token: str | None = None,
    audience: str | None = None,
    issuer: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The explanation of one (read) response, as JSON-ready data."""
    local = time.time() if now is None else now
    problem = Problem.from_response(response, now=local)
    refused = response.status_code >= 400
    out: dict[str, Any] = {
        "url": _safe_url(response.request.url),
        "method": response.request.method,
        "status": response.status_code,
        "refused": refused,
        "authguard": problem.is_problem_json and problem.reason_source == "body",
        "reason": problem.reason,
        "reason_source": problem.reason_source,
        "title": problem.title if refused else response.reason_phrase,
        "detail": problem.detail if refused else None,
        "type": problem.type if problem.is_problem_json else None,
        "request_id": problem.request_id,
        "hints": list(problem.hints),
        "challenges": [
            {"scheme": c.scheme, "params": dict(c.params), "token68": c.token68,
             "meaning": describe_challenge(c)} for c in problem.challenges
        ],
        "challenge_errors": list(problem.challenge_errors),
        "retry_after": problem.retry_after,
        "required_scopes": list(problem.required_scopes),
        "acr_values": problem.acr_values,
        "max_age": problem.max_age,
        "payment": dict(problem.payment) if problem.payment is not None else None,
        "payment_required": dict(problem.payment_required)
        if problem.payment_required is not None else None,
        "location": response.headers.get("location"),
        "clock": None,
        "token": None,
        "next_steps": list(next_steps(problem)) if refused else [],
    }
    clock = clock_report(problem, now=local)
    if clock is not None:
        out["clock"] = {"server_date": _iso(clock.server_time), "local_date": _iso(local),
                        "skew_seconds": round(clock.skew, 1), "significant": clock.significant,
                        "summary": clock.sentence()}
    if token is not None and refused:
        report = check_token(token, problem, now=local, audience=audience, issuer=issuer)
        out["token"] = {"decoded": report.decoded, "header": dict(report.header),
                        "claims": dict(report.claims), "findings": list(report.findings)}
    return out


def _render(data: dict[str, Any], console: Console) -> None:
    status = data["status"]
    colour = "green" if status < 400 else "red" if status in (401, 403) else "yellow"
    head = f"[bold {colour}]{status} {escape(data['title'] or '')}[/]"
    if data["reason"]:
        source = {"body": "sent by the server", "challenge": "inferred from the challenge",
                  "status": "inferred from the status"}[data["reason_source"]]
        head += f"\nreason: [bold]{escape(data['reason'])}[/] ({source})"
    if data["detail"]:
        head += f"\n{escape(data['detail'])}"
    if data["request_id"]:
        head += f"\nrequest id: {escape(data['request_id'])}"
    server = "an authguard server" if data["authguard"] else "the server"
    console.print(Panel(head, title=f"{escape(data['method'])} {escape(data['url'])}",
                        subtitle=f"answer of {server}", expand=False))
    if data["location"] and 300 <= status < 400:
        console.print(f"Redirected to [bold]{escape(data['location'])}[/] (not followed).")
    if data["challenges"]:
        table = Table(title="Challenges offered (WWW-Authenticate)", show_lines=True)
        table.add_column("scheme", style="bold")
        table.add_column("parameters")
        table.add_column("what it asks for")
        for ch in data["challenges"]:
            params = ", ".join(f"{k}={v!r}" for k, v in ch["params"].items())
            table.add_row(escape(ch["scheme"]), escape(params or ch["token68"] or ""),
                          escape(ch["meaning"]))
        console.print(table)
    for error in data["challenge_errors"]:
        console.print(f"[yellow]Malformed WWW-Authenticate[/] {escape(error)}")
    facts = []
    if data["required_scopes"]:
        facts.append(f"required scopes: {' '.join(data['required_scopes'])}")
    if data["acr_values"]:
        facts.append(f"acr_values: {data['acr_values']}")
    if data["max_age"] is not None:
        facts.append(f"max_age: {data['max_age']} s")
    if data["retry_after"] is not None:
        facts.append(f"retry after: {data['retry_after']:.0f} s")
    if data["payment"]:
        facts.append(f"payment: {json.dumps(data['payment'])[:400]}")
    if data["payment_required"]:
        facts.append(f"x402 PAYMENT-REQUIRED: {json.dumps(data['payment_required'])[:400]}")
    for fact in facts:
        console.print(f"• {escape(fact)}")
    clock = data["clock"]
    token = data["token"]
    if clock and (data["reason"] in _TOKEN_REASONS or clock["significant"] or token):
        console.print(Panel(
            f"server Date: {clock['server_date']}\nyour clock:  {clock['local_date']}\n"
            f"skew: {clock['skew_seconds']:+.0f} s — {escape(clock['summary'])}",
            title="Clock", expand=False))
    if token:
        lines = [f"{k}: {escape(json.dumps(v))}" for k, v in
                 {**token["header"], **token["claims"]}.items()]
        for k in ("exp", "nbf", "iat", "auth_time"):
            value = token["claims"].get(k)
            if isinstance(value, int | float) and not isinstance(value, bool):
                lines.append(f"{k} = {_iso(value)}")
        lines += [f"[bold]→ {escape(f)}[/]" for f in token["findings"]]
        console.print(Panel("\n".join(lines) or "(no claims)",
                            title="The token you sent (decoded, not verified)", expand=False))
    if data["hints"]:
        console.print("[bold]Hints from the server[/]")
        for hint in data["hints"]:
            console.print(f"  • {escape(hint)}")
    if data["next_steps"]:
        console.print("[bold]What to do next[/]")
        for step in data["next_steps"]:
            console.print(f"  → {escape(step)}")


def run(args: argparse.Namespace) -> int:
    """Perform the request and print the explanation; returns the exit status."""
    headers: list[tuple[str, str]] = list(args.header)
    if args.user is not None:
        user, password = args.user
        raw = f"{user}:{password}".encode()
        headers.append(("Authorization", "Basic " + base64.b64encode(raw).decode("ascii")))
    err = Console(stderr=True, highlight=False)
    try:
        url = httpx.URL(args.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise httpx.InvalidURL("expected an http:// or https:// URL")
        with httpx.Client(timeout=args.timeout, verify=not args.insecure,
                          follow_redirects=False) as client:
            response = client.request(args.method.upper(), url, headers=headers)
    except httpx.InvalidURL as exc:
        err.print(f"authguard explain: invalid URL: {escape(str(exc))}")
        return 2
    except httpx.HTTPError as exc:
        err.print(f"authguard explain: could not get an answer from "
                  f"{escape(_safe_url(httpx.URL(args.url)))}: {escape(type(exc).__name__)} "
                  f"{escape(str(exc))}")
        return 3
    data = explain_response(response, token=_bearer_token(headers), audience=args.audience,
                            issuer=args.issuer)
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        _render(data, Console(highlight=False))
    return 1 if data["refused"] else 0
