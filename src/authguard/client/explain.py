"""``authguard explain URL``: perform a request and explain the answer for a person.

Shows the status, the reason (from an authguard problem body, or inferred from the status
and challenges of any other server), each challenge and what it asks for, the hints, the
clock skew against the server's ``Date``, what a JWT sent in ``-H`` says (decoded without
verification), which check a DPoP proof sent in ``-H 'DPoP: …'`` fails (RFC 9449 §4.3) and
what to do next. ``--json`` prints the same as one JSON object.

Exit status: 0 for a 1xx-3xx answer, 1 for a refusal or another error status, 2 for bad
arguments, 3 when the server could not be reached. Credentials given with ``-u`` or ``-H``
are never printed.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import re
import sys
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape as _escape_markup
from rich.panel import Panel
from rich.table import Table

from .diagnose import check_token, clock_report, describe_challenge, next_steps
from .dpop import check_proof
from .problem import Problem

__all__ = ["SECRET_QUERY_PARAMS", "add_arguments", "explain_response", "payment_lines",
           "run"]

_TOKEN_REASONS = {"token_expired", "token_not_yet_valid"}
# C0 and C1 controls (ESC starts terminal escape sequences): a server's text must not be
# able to recolour, move the cursor or rewrite the screen of the person reading.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    """``text`` safe to print: control characters replaced, rich markup escaped."""
    return _escape_markup(_CONTROL.sub("\ufffd", text))


# RFC 9110 §5.1 field-name (a token) and §5.5 field-value: visible ASCII, SP and HTAB (the
# obs-text octets are not sent: httpx encodes str values as ASCII).
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
_HEADER_NAME_LIKE = re.compile(r"[A-Za-z][A-Za-z-]{0,39}")


def _header(value: str) -> tuple[str, str]:
    """``-H 'Name: value'``. Errors never echo the value: it is often a credential."""
    name, sep, rest = value.partition(":")
    if not sep or not _TOKEN.fullmatch(name):
        # Only the text before the first whitespace, and only if it reads as a header name
        # (so "Authorization Bearer <token>" shows "Authorization", never the token; a lone
        # word with digits, which may be a key, is not shown either).
        first = re.split(r"[ \t:]", value.strip(), maxsplit=1)[0]
        named = f" (header {first!r})" if first != value.strip() and \
            _HEADER_NAME_LIKE.fullmatch(first) else ""
        raise argparse.ArgumentTypeError(
            f"expected 'Name: value' with a header name that is a token (RFC 9110 §5.1)"
            f"{named}; the value is not shown")
    rest = rest.strip(" \t")
    if not _FIELD_VALUE.fullmatch(rest):
        raise argparse.ArgumentTypeError(
            f"the value of header {name!r} must be ASCII: visible characters, spaces and tabs "
            "(no CR, LF or other control characters; RFC 9110 §5.5); the value is not shown")
    return name, rest


def _user(value: str) -> tuple[str, str]:
    user, sep, password = value.partition(":")
    if not sep:
        raise argparse.ArgumentTypeError("expected user:password")
    return user, password


def _method(value: str) -> str:
    if not _TOKEN.fullmatch(value) or len(value) > 64:
        raise argparse.ArgumentTypeError("an HTTP method is a token (RFC 9110 §9.1), "
                                         "e.g. GET, POST")
    return value.upper()


def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not (0 < seconds <= 86_400):  # also refuses nan and inf
        raise argparse.ArgumentTypeError("expected a number of seconds greater than 0 "
                                         "(at most 86400)")
    return seconds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``authguard explain``."""
    parser.add_argument("url", help="the URL to request")
    parser.add_argument("-X", "--method", type=_method, default="GET",
                        help="HTTP method (default GET)")
    parser.add_argument("-H", "--header", action="append", type=_header, default=[],
                        metavar="'NAME: VALUE'", help="add a request header (repeatable)")
    parser.add_argument("-u", "--user", type=_user, metavar="USER:PASSWORD",
                        help="send Basic credentials")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--audience", help="the audience (aud) the server should require; "
                        "checked against a JWT sent in -H")
    parser.add_argument("--issuer", help="the issuer (iss) the server should trust; checked "
                        "against a JWT sent in -H")
    parser.add_argument("--timeout", type=_timeout, default=10.0,
                        help="seconds (default 10)")
    parser.add_argument("-k", "--insecure", action="store_true",
                        help="do not verify the server's TLS certificate")


# Query parameters that carry credentials in the wild (OAuth's access_token, API keys,
# pre-signed URLs): their values are replaced by "REDACTED" wherever the URL is printed.
SECRET_QUERY_PARAMS = frozenset({
    "access_token", "id_token", "refresh_token", "token", "api_key", "apikey", "api-key",
    "key", "sig", "signature", "x-amz-signature", "x-amz-credential", "x-amz-security-token",
    "password", "client_secret", "secret", "code",
})


def _safe_url(url: httpx.URL) -> str:
    """``url`` without its user information and with credential query values redacted."""
    if url.userinfo:
        url = url.copy_with(username=None, password=None)
    if url.query:
        params = url.params
        if any(k.lower() in SECRET_QUERY_PARAMS for k in params):
            redacted = [(k, "REDACTED" if k.lower() in SECRET_QUERY_PARAMS else v)
                        for k, v in params.multi_items()]
            url = url.copy_with(params=redacted)
    return str(url)


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
    proof: str | None = None,
) -> dict[str, Any]:
    """The explanation of one (read) response, as JSON-ready data (``proof``: the DPoP
    proof that was sent, checked against the request)."""
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
        "title": (problem.title if refused else response.reason_phrase) or None,
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
        "required_roles": list(problem.required_roles),
        "offered_scheme": problem.offered_scheme,
        "acr_values": problem.acr_values,
        "max_age": problem.max_age,
        "payment": dict(problem.payment) if problem.payment is not None else None,
        "payment_required": dict(problem.payment_required)
        if problem.payment_required is not None else None,
        "location": response.headers.get("location"),
        "clock": None,
        "token": None,
        "dpop": None,
        "next_steps": list(next_steps(problem)) if refused else [],
    }
    if proof is not None:
        request = response.request
        # the server's nonce is what the proof lacked only when it asked for one
        asked = problem.reason == "use_dpop_nonce"
        found = check_proof(proof, method=request.method, url=str(request.url), token=token,
                            nonce=response.headers.get("dpop-nonce") if asked else None,
                            now=local)
        out["dpop"] = {"header": dict(found.header), "claims": dict(found.claims),
                       "failed": found.failed, "detail": found.detail}
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


def _text(value: Any, limit: int = 200) -> str | None:
    """A scalar from the server as short text; ``None`` for a missing or nested value."""
    if isinstance(value, bool) or value is None or isinstance(value, dict | list):
        return None
    text = str(value) if isinstance(value, str | int | float) else None
    if not text:
        return None
    return text if len(text) <= limit else text[:limit] + "…"


def _amount(item: Mapping[str, Any], *names: str) -> str | None:
    for name in names:
        if (amount := _text(item.get(name))) is not None:
            return amount
    return None


def _x402_terms(accepts: Any) -> list[str]:
    """One phrase per x402 ``accepts`` entry: amount, asset, network and who is paid."""
    out: list[str] = []
    for item in accepts[:10] if isinstance(accepts, list) else []:
        if not isinstance(item, dict):
            continue
        words = [w for w in (_amount(item, "amount", "maxAmountRequired"),
                             _text(item.get("asset"))) if w]
        phrase = " ".join(words) or "an amount not stated"
        if network := _text(item.get("network")):
            phrase += f" on {network}"
        if pay_to := _text(item.get("payTo")):
            phrase += f" to {pay_to}"
        if scheme := _text(item.get("scheme")):
            phrase += f" (scheme {scheme})"
        out.append(phrase)
    return out


def _offer_line(index: int, offer: Mapping[str, Any]) -> str:
    scheme = _text(offer.get("scheme")) or "an offer"
    parts = [f"offer {index}: {scheme}"]
    amount, currency = _amount(offer, "amount", "price"), _text(offer.get("currency"))
    if amount:
        parts.append(" ".join(w for w in (amount, currency) if w))
    if description := _text(offer.get("description")):
        parts.append(repr(description))
    where: list[str] = []
    if scheme.lower() == "x402":
        terms = _x402_terms(offer.get("accepts"))
        if terms:
            where.append("x402: pay " + "; or ".join(terms) + ", then retry with the "
                         "PAYMENT-SIGNATURE header")
    else:
        for key, label in (("checkout", "checkout"), ("url", "at"), ("pay_url", "at"),
                           ("payTo", "to"), ("method", "method"), ("realm", "realm"),
                           ("intent", "intent"), ("expires", "expires")):
            if value := _text(offer.get(key)):
                where.append(f"{label} {value}")
        header = _text(offer.get("credential_header"))
        if header:
            where.append(f"send the proof in the {header} header")
    if where:
        parts.append(", ".join(where))
    return " — ".join(parts)


def payment_lines(payment: Mapping[str, Any] | None,
                  payment_required: Mapping[str, Any] | None) -> list[str]:
    """What a 402 asks for, one line per fact: the price, each offer, the checkout page."""
    lines: list[str] = []
    if payment:
        price = payment.get("price")
        if isinstance(price, dict):
            words = [w for w in (_text(price.get("amount")), _text(price.get("currency")))
                     if w]
            if words:
                text = "price: " + " ".join(words)
                if description := _text(price.get("description")):
                    text += f" ({description})"
                lines.append(text)
        offers = payment.get("offers")
        for i, offer in enumerate(offers[:10] if isinstance(offers, list) else [], 1):
            if isinstance(offer, dict):
                lines.append(_offer_line(i, offer))
        if checkout := _text(payment.get("checkout")):
            lines.append(f"checkout: {checkout}")
        if expired := _text(payment.get("expired_at")):
            lines.append(f"plan ended: {expired}")
        if not lines:
            lines.append(f"payment: {json.dumps(payment, default=str)[:400]}")
    if payment_required:
        terms = _x402_terms(payment_required.get("accepts"))
        text = "x402 PAYMENT-REQUIRED: " + ("pay " + "; or ".join(terms) if terms
                                            else "no offer this tool can read")
        resource = payment_required.get("resource")
        if isinstance(resource, dict) and (url := _text(resource.get("url"))):
            text += f" for {url}"
        lines.append(text)
    return lines


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
    if data["offered_scheme"]:
        facts.append(f"you sent {data['offered_scheme']} credentials: not accepted by this "
                     "route (not checked)")
    if data["required_scopes"]:
        facts.append(f"required scopes: {' '.join(data['required_scopes'])}")
    if data["required_roles"]:
        facts.append(f"required roles: {' '.join(data['required_roles'])}")
    if data["acr_values"]:
        facts.append(f"acr_values: {data['acr_values']}")
    if data["max_age"] is not None:
        facts.append(f"max_age: {data['max_age']} s")
    if data["retry_after"] is not None:
        facts.append(f"retry after: {data['retry_after']:.0f} s")
    facts += payment_lines(data["payment"], data["payment_required"])
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
    if data["dpop"]:
        _render_proof(data["dpop"], data["reason"], console)
    if data["hints"]:
        console.print("[bold]Hints from the server[/]")
        for hint in data["hints"]:
            console.print(f"  • {escape(hint)}")
    if data["next_steps"]:
        console.print("[bold]What to do next[/]")
        for step in data["next_steps"]:
            console.print(f"  → {escape(step)}")


def _render_proof(found: dict[str, Any], reason: str | None, console: Console) -> None:
    lines = [f"{k}: {escape(json.dumps(v))}" for k, v in
             {**found["header"], **found["claims"]}.items()]
    if found["failed"]:
        lines.append(f"[bold]→ check '{escape(found['failed'])}' fails: "
                     f"{escape(found['detail'])}[/]")
    elif reason == "dpop_proof_replayed":
        lines.append("[bold]→ this proof was used before: sign a new one per request[/]")
    else:
        lines.append(f"→ {escape(found['detail'])}")
    console.print(Panel("\n".join(lines), title="The DPoP proof you sent (RFC 9449 §4.3)",
                        expand=False))


def _fail(args: argparse.Namespace, message: str, status: int) -> int:
    """Print an error on stderr (and, with ``--json``, as ``{"error": …}`` on stdout)."""
    Console(stderr=True, highlight=False).print(f"authguard explain: {escape(message)}",
                                                soft_wrap=True)
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps({"error": message, "exit_status": status}) + "\n")
    return status


def run(args: argparse.Namespace) -> int:
    """Perform the request and print the explanation; returns the exit status.

    Never shows a traceback: bad arguments exit 2, an unreachable server or anything else
    that goes wrong exits 3, with one line on stderr.
    """
    try:
        return _run(args)
    except Exception as exc:  # the last resort of a command-line tool: no traceback
        return _fail(args, f"could not explain the answer ({type(exc).__name__})", 3)


def _run(args: argparse.Namespace) -> int:
    headers: list[tuple[str, str]] = list(args.header)
    if args.user is not None:
        user, password = args.user
        raw = f"{user}:{password}".encode()
        headers.append(("Authorization", "Basic " + base64.b64encode(raw).decode("ascii")))
    try:
        url = httpx.URL(args.url)
        if url.scheme not in ("http", "https") or not url.host:
            raise httpx.InvalidURL("expected an http:// or https:// URL")
    except httpx.InvalidURL as exc:
        return _fail(args, f"invalid URL: {exc}", 2)
    try:
        with httpx.Client(timeout=args.timeout, verify=not args.insecure,
                          follow_redirects=False) as client:
            request = client.build_request(args.method.upper(), url, headers=headers)
            response = client.send(request)
    except (httpx.InvalidURL, httpx.UnsupportedProtocol, UnicodeError) as exc:
        return _fail(args, f"invalid request: {type(exc).__name__}", 2)
    except httpx.HTTPError as exc:
        detail = str(exc)
        # the message comes from the network stack: make sure it cannot carry a credential
        secrets = [v for _, v in headers] + [url.password or "", url.query.decode("ascii",
                                                                                  "replace")]
        for secret in sorted(secrets, key=len, reverse=True):
            if len(secret) >= 4:
                detail = detail.replace(secret, "REDACTED")
        return _fail(args, f"could not get an answer from {_safe_url(url)}: "
                     f"{type(exc).__name__} {detail}", 3)
    proof = next((v for n, v in headers if n.lower() == "dpop"), None)
    data = explain_response(response, token=_bearer_token(headers), audience=args.audience,
                            issuer=args.issuer, proof=proof)
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    else:
        _render(data, Console(highlight=False))
    return 1 if data["refused"] else 0
