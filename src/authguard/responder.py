"""Sending a refusal: the one path from a :class:`~authguard.Refusal` to the response.

The Reason table gives the status and the challenge rule; the route's plan gives the
accepted schemes and the ``Vary`` field; :mod:`authguard.problems` writes the RFC 9457 body
and the headers. A 403 on a concealed route becomes the framework's own 404, and a
browser navigation refused with 401 on a route with a login page is sent there (303).
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import quote as urlquote

from starlette.requests import HTTPConnection
from starlette.types import Scope, Send

from .authenticators.base import Authenticator
from .challenges import SCHEME_WORD, Challenge, HeaderValueError, offered_scheme_word, quote
from .errors import Refusal
from .guard import AuthGuard
from .net import request_scheme
from .observability.observer import record_refusal
from .plans import Plan
from .problems import redirect_headers, refusal_headers, render_problem, send_problem
from .reasons import Reason, ReasonSpec

__all__ = ["Responder", "full_path", "instance_of", "local_path"]

log = logging.getLogger("authguard")
_SPECS: dict[Reason, ReasonSpec] = {r: r.spec for r in Reason}
# RFC 3986 §3.3 pchar and "/": what a path may hold without percent-encoding ("%" is
# checked apart: it must start a valid escape).
_PATH_SAFE = "/!$&'()*+,;=:@-._~%"
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PATH_REFERENCE = re.compile(r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*")
# Refusals of an identity that another scheme can fix: a token with the scope, a token
# from a stronger sign-in. (A rejected credential keeps its own scheme's challenge.)
_ASK_ANOTHER_SCHEME = frozenset({"insufficient_scope", "insufficient_user_authentication"})


class Responder:
    """Renders refusals for one guard."""

    def __init__(self, guard: AuthGuard) -> None:
        self.guard = guard

    async def refuse(self, scope: Scope, send: Send, refusal: Refusal, plan: Plan,
                     request_id: str | None, started: float | None = None) -> None:
        """Send ``refusal`` for a request to a route with ``plan`` (``started``: the
        ``perf_counter()`` of the decision's start, for its event and metrics)."""
        spec = _SPECS[refusal.reason]
        status = spec.status
        guard = self.guard
        record_refusal(guard, scope, refusal.reason, status, refusal.scheme, request_id,
                       started)
        policy = plan.policy
        if status == 403 and policy.conceal:
            # The framework's own default 404, byte for byte, so that nothing tells a
            # concealed resource from a missing one (a custom 404 handler is not copied).
            await _send_not_found(scope, send)
            return
        login_url = policy.login_url or guard.login_url
        if status == 401 and login_url is not None and _wants_html(scope):
            await self._redirect(scope, send, login_url, refusal, plan)
            return
        if refusal.reason is Reason.CREDENTIALS_MISSING \
                and "offered_scheme" not in refusal.extensions:
            refusal = self.wrong_scheme(scope, refusal, plan)
        challenges = self.challenges(refusal, spec, plan)
        body = render_problem(
            refusal, instance=instance_of(scope), request_id=request_id,
            type_base=guard.type_base,
            schemes=[c.scheme for c in challenges] if status == 401 else ())
        headers = refusal_headers(refusal, challenges, request_id=request_id,
                                  secure=self._secure(scope, refusal),
                                  send_date=guard.send_date, vary=plan.vary)
        await send_problem(scope, send, status, headers, body)

    def wrong_scheme(self, scope: Scope, refusal: Refusal, plan: Plan) -> Refusal:
        """``refusal`` (``credentials_missing``) saying what happened when the request
        carries credentials of a scheme the route does not accept: the ``offered_scheme``
        member (the scheme's name only), a detail naming what the route accepts, and hints
        without the proxy-stripping one. Worked out only here, on the way to a refusal;
        the detail and hints once per (offered scheme, route plan)."""
        if not plan.others:  # then only an Authorization field can name another scheme
            for name, _ in scope["headers"]:
                if name == b"authorization":
                    break
            else:
                return refusal  # the usual 401: nothing was sent
        try:
            offered, known = self._offered_scheme(HTTPConnection(scope), plan)
        except Exception:  # an authenticator's has_credentials failing: the plain answer
            log.warning("authguard: could not tell which scheme a request offered",
                        exc_info=True)
            return refusal
        if offered is None or not plan.accepted or not SCHEME_WORD.fullmatch(offered):
            return refusal  # (an authenticator of one's own may have any scheme name)
        key = offered if known else None  # a scheme of the guard's, or None: bounded
        hit = plan.wrong_scheme.get(key)
        if hit is None:
            hit = plan.wrong_scheme[key] = _wrong_scheme_text(key, plan.accepted, self.guard)
        return refusal.replace(
            detail=refusal.detail or hit[0], hints=hit[1],
            extensions={**refusal.extensions, "offered_scheme": offered})

    def _offered_scheme(self, conn: HTTPConnection, plan: Plan) -> tuple[str | None, bool]:
        """The scheme of credentials the request carries that the route does not accept,
        and whether an authenticator here knows it; ``None`` when there are none (or when
        credentials of an accepted scheme are there)."""
        for a in plan.accepted:
            if a.has_credentials(conn):
                return None, False
        for a in plan.others:
            if a.has_credentials(conn):
                return a.scheme, True
        for name, value in conn.scope["headers"]:
            if name != b"authorization":
                continue
            names = {a.scheme.lower() for a in plan.accepted}
            text = offered_scheme_word(value)
            # Payment credentials pay; they do not sign in (a paid route that needs an
            # identity first asks for one, with its own schemes).
            if (text is not None and text.lower() not in names
                    and text.lower() != "payment"):
                return text, False
        return None, False

    def challenges(self, refusal: Refusal, spec: ReasonSpec, plan: Plan) -> list[Challenge]:
        """The ``WWW-Authenticate`` challenges of ``refusal`` (RFC 9110 §11.6.1).

        A challenge's error code (RFC 6750 §3.1, RFC 9470 §3) goes only on the scheme the
        client used: a client that signed in with Basic is not told about a token it never
        presented.
        """
        status = spec.status
        out: list[Challenge] = []
        if spec.challenge == "all":
            out = list(plan.missing)
        elif spec.challenge == "scheme" and refusal.scheme is not None:
            authenticator = self.guard.authenticator(refusal.scheme)
            if authenticator is not None:
                own = _challenge_of(authenticator, refusal)
                out = [own]
                if spec.bearer_error in _ASK_ANOTHER_SCHEME and "error" not in own.params:
                    # The identity's scheme cannot say what to change (Basic, an API key):
                    # a scheme that can (a token with the scope, from a stronger sign-in)
                    # is offered, without the error code, which is about a token the
                    # client presented (RFC 6750 §3.1, RFC 9470 §3).
                    out = [_without_error(c) for c in (
                        _challenge_of(a, refusal) for a in plan.accepted
                        if a is not authenticator) if "error" in c.params][:1]
                elif status != 401 and "error" not in own.params:
                    # A 400/403 names a challenge only when it says what to change (RFC
                    # 6750 insufficient_scope); a plain "send credentials" would not help.
                    out = []
            if status == 401 and not out:
                out = list(plan.missing)
        out.extend(refusal.challenges)
        if status == 401 and not out:
            out = [a.challenge(None, None) for a in self.guard.authenticators]
        return out

    def _secure(self, scope: Scope, refusal: Refusal) -> bool:
        # only matters for the cookies a refusal deletes
        return bool(refusal.delete_cookies) and request_scheme(
            scope, self.guard.network) in ("https", "wss")

    async def _redirect(self, scope: Scope, send: Send, login_url: str, refusal: Refusal,
                        plan: Plan) -> None:
        target = full_path(scope)
        qs = scope.get("query_string", b"")
        if qs:
            target += "?" + qs.decode("latin-1")
        # No open redirect: a path like "//evil.example" must not become next=//evil.example
        target = local_path(target) or "/"
        sep = "&" if "?" in login_url else "?"
        # Percent-encode what cannot stand in a Location field (CR/LF, spaces, non-ASCII).
        login_url = urlquote(login_url, safe="/?&=%#:@!$'()*+,;~-._")
        location = f"{login_url}{sep}next={urlquote(target, safe='/')}"
        headers = redirect_headers(refusal, location, secure=self._secure(scope, refusal),
                                   vary=plan.vary)
        await send_problem(scope, send, 303, headers, b"", b"text/plain; charset=utf-8")


def _accepted_phrase(authenticator: Authenticator) -> str:
    """How a person names what ``authenticator`` takes: ``Bearer``, ``an API key in the
    X-API-Key header``, ``a session cookie``."""
    scheme = authenticator.scheme
    lowered = scheme.lower()
    if lowered == "apikey":
        params = authenticator.challenge(None, None).params
        where, name = params.get("in"), params.get("name")
        place = {"header": "header", "query": "query parameter", "cookie": "cookie"}.get(
            where or "")
        return f"an API key in the {name} {place}" if name and place else "an API key"
    if lowered == "cookie":
        return "a session cookie"
    return scheme


def _offered_phrase(authenticator: Authenticator | None) -> str:
    if authenticator is None:
        return "the scheme of the Authorization header that was sent"
    lowered = authenticator.scheme.lower()
    if lowered in ("apikey", "cookie"):
        return _accepted_phrase(authenticator)
    return f"the {authenticator.scheme} scheme"


def _one_of(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _wrong_scheme_text(offered: str | None, accepted: tuple[Authenticator, ...],
                       guard: AuthGuard) -> tuple[str, tuple[str, ...]]:
    """The detail and hints of a ``credentials_missing`` answer to credentials of a scheme
    the route does not accept (``offered``: the scheme of an authenticator here; ``None``:
    an Authorization scheme none of them takes, never named in the detail)."""
    authenticator = guard.authenticator(offered) if offered is not None else None
    accepts = _one_of([_accepted_phrase(a) for a in accepted])
    detail = (f"This route does not accept {_offered_phrase(authenticator)}; it accepts "
              f"{accepts}.")
    hints = (f"Send {accepts} instead (see WWW-Authenticate and 'schemes').",
             "Credentials of another scheme are not checked here: they are neither "
             "accepted nor refused.")
    return detail, hints


def _challenge_of(authenticator: Authenticator, refusal: Refusal) -> Challenge:
    """The authenticator's challenge for ``refusal``; parameters that cannot be sent in a
    header (CR/LF, control characters, non-Latin-1) are dropped, never a 500."""
    params: dict[str, str] = {}
    for name, value in refusal.challenge_params.items():
        try:
            quote(value)
            params[name] = value
        except (HeaderValueError, TypeError):
            log.warning("authguard: dropped challenge parameter %r: it cannot be sent in a "
                        "header", name[:64])
    try:
        return authenticator.challenge(refusal.reason, params or None)
    except HeaderValueError:
        log.warning("authguard: %s challenge parameters cannot be sent; sending the plain "
                    "challenge", authenticator.scheme)
        return authenticator.challenge(None, None)


def _without_error(challenge: Challenge) -> Challenge:
    return Challenge(challenge.scheme, {k: v for k, v in challenge.params.items()
                                        if k not in ("error", "error_description")})


def instance_of(scope: Scope) -> str:
    """The problem's ``instance``: the request's path as the client sent it (``raw_path``,
    still percent-encoded), as a URI reference (RFC 9457 §3.1.5, RFC 3986 §4.1). A decoded
    path is not one (``/no%20such%22`` would become ``/no such"``) and may name another
    resource (``/a%2Fb`` is not ``/a/b``)."""
    raw = scope.get("raw_path")
    root = str(scope.get("root_path", ""))
    if isinstance(raw, bytes | bytearray) and raw:
        text = bytes(raw).partition(b"?")[0].decode("latin-1")
        if root and not text.startswith(root):
            text = root + text
    else:
        text = full_path(scope)
    if _PATH_REFERENCE.fullmatch(text):  # the usual case: nothing to encode
        return text
    # What is left outside RFC 3986 (spaces, quotes, non-ASCII, a stray "%") is encoded.
    return _BAD_ESCAPE.sub("%25", urlquote(text, safe=_PATH_SAFE, encoding="latin-1"))


def full_path(scope: Scope) -> str:
    """The request's path from the server's root: Starlette keeps the full path in mounted
    apps (with ``root_path`` already in it); other servers and frameworks may not."""
    root, path = str(scope.get("root_path", "")), str(scope["path"])
    return path if root and path.startswith(root) else root + path


def local_path(value: Any) -> str | None:
    """``value`` if it is a local path safe to redirect to (no scheme, host or ``//``)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return None
    text: str = value
    if "\\" in text or any(ord(c) < 0x20 for c in text):
        return None
    return text


async def _send_not_found(scope: Scope, send: Send) -> None:
    """The framework's default 404, headers in its order; for a websocket, what a missing
    websocket route gets: closed before accept."""
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1000, "reason": ""})
        return
    if _is_fastapi(scope.get("app")):
        body, ctype = b'{"detail":"Not Found"}', b"application/json"
    else:
        body, ctype = b"Not Found", b"text/plain; charset=utf-8"
    await send({"type": "http.response.start", "status": 404, "headers": [
        (b"content-length", str(len(body)).encode()), (b"content-type", ctype)]})
    await send({"type": "http.response.body", "body": body})


def _is_fastapi(app: Any) -> bool:
    return any(cls.__module__.startswith("fastapi") for cls in type(app).__mro__)


def _wants_html(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    for name, value in scope["headers"]:
        if name == b"accept":
            return _accepts_html(value)
    return False


def _accepts_html(accept: bytes) -> bool:
    """``text/html`` is in ``accept`` with a q-value above 0 and no lower than JSON's
    (RFC 9110 §12.5.1): an API client that refuses HTML is never redirected."""
    if b"text/html" not in accept:
        return False
    html = json_q = 0.0
    for item in accept.decode("latin-1").lower().split(","):
        media, _, params = item.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        media = media.strip()
        if media == "text/html":
            html = max(html, q)
        elif media in ("application/json", "application/problem+json"):
            json_q = max(json_q, q)
    return html > 0 and html >= json_q
