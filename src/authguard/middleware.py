"""The pure ASGI middleware: decide, attach the identity, or render the refusal.

DESIGN §1, in order: CORS preflight and public routes pass; network policy; transport
policy; authentication (first authenticator that finds its credentials decides); the
brute-force guard; the route's requirements; then the app runs with the identity in
``scope["user"]``/``scope["auth"]``. Refusals raised by the app before it starts its
response (e.g. from a FastAPI dependency) are rendered here too.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
from typing import Any
from urllib.parse import quote as urlquote

from starlette._utils import get_route_path
from starlette.authentication import UnauthenticatedUser
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .authenticators.base import Authenticator
from .challenges import Challenge, HeaderValueError, quote
from .composition import RESPONSE_HOOK
from .errors import AuthUnavailable, Refusal
from .formbody import is_form_post, read_form_tokens
from .guard import AuthGuard
from .identity import AuthContext, Identity
from .net import client_address, request_scheme
from .overrides import has_overrides, overridden
from .policy import AllOf, Context, Policy
from .problems import refusal_headers, render_problem, send_problem
from .reasons import Reason, ReasonSpec
from .requirements import Anyone, Authenticated, HasRoles, HasScopes
from .routing import RequestKey, find_routes, match_route, request_key, warn_unprotected

__all__ = ["AuthGuardMiddleware", "AuthState"]


log = logging.getLogger("authguard")
_SAFE_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_CACHE_MAX = 4096
_ANON = UnauthenticatedUser()
# Request ids: a random per-process prefix and a counter (32 hex digits, unique, no syscall
# per request, unlike uuid4).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)
# One encoder for every body (json.dumps with options builds a new one on each call).
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str)
# The messages that start a response (after one, a refusal can no longer be sent).
_START_TYPES = frozenset({"http.response.start", "websocket.accept",
                          "websocket.http.response.start", "websocket.close"})
# Reason → its row, without the enum property on every refusal.
_SPECS: dict[Reason, ReasonSpec] = {r: r.spec for r in Reason}


def _new_request_id() -> str:
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def request_id_of(headers: list[tuple[bytes, bytes]], wanted: bytes) -> str:
    """The client's request id from header ``wanted`` when it is a safe token, else a new one."""
    for name, value in headers:
        if name == wanted:
            text: str = value.decode("latin-1")
            if _SAFE_ID.fullmatch(text):
                return text
            break
    return _new_request_id()


class AuthState(AuthContext):
    """What authguard leaves in ``scope["authguard"]`` for integrations and the app.

    On a protected route the middleware puts the same object in ``scope["auth"]``: it is an
    :class:`~authguard.AuthContext` too (Starlette's ``AuthCredentials`` with the identity),
    so that one object per request carries both.

    ``request_id`` is made on first use (most allowed requests never need one), from the
    request's headers when given, so that a refusal raised later by the app carries the
    same id the app saw.
    """

    __slots__ = ("_headers", "_request_id", "_scopes", "guard", "identity", "policy")

    def __init__(self, guard: AuthGuard, policy: Policy, identity: Identity | None,
                 request_id: str | None,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
        super().__init__(identity)
        self.guard = guard
        self.policy = policy
        self._request_id = request_id
        self._headers = headers

    @property
    def request_id(self) -> str | None:
        """The request id (the client's ``X-Request-ID`` when safe, else a new one)."""
        if self._request_id is None and self._headers is not None:
            self._request_id = request_id_of(
                self._headers, self.guard.request_id_header.encode("latin-1"))
            self._headers = None
        return self._request_id

    @request_id.setter
    def request_id(self, value: str | None) -> None:
        self._request_id = value
        self._headers = None


class AuthGuardMiddleware:
    """ASGI middleware that authenticates requests and refuses them with the right answer.

    ``app.add_middleware(AuthGuardMiddleware, guard=AuthGuard(authenticators=[...]))``.
    Add ``CORSMiddleware`` *after* it (so that it wraps it) for refusals to carry CORS headers.
    """

    def __init__(self, app: ASGIApp, guard: AuthGuard) -> None:
        self.app = app
        self.guard = guard
        self._cache: dict[RequestKey, tuple[_Plan, dict[str, Any]]] = {}
        self._checked_routes = not guard.deny_by_default
        self._accepted: dict[int, _Plan] = {}
        self._id_header = guard.request_id_header.encode("latin-1")
        # RFC 6750 §2.2 form-body tokens: the largest body any opted-in authenticator reads.
        self._form_limit = max((getattr(a, "max_form_bytes", 0) for a in guard.authenticators
                                if getattr(a, "reads_form_body", False)), default=0)
        # No address policy, no https rule, no brute-force guard: the decision is only the
        # authenticators and the route's checks (see ``__call__``). The guard is frozen.
        self._max_bytes = guard.max_credentials_bytes
        self._plain = (not guard.require_https and guard.brute_force is None
                       and (guard.network is None or not guard.network.active))

    # -- policy resolution -------------------------------------------------------------

    def policy_for(self, scope: Scope) -> Policy:
        """The effective policy of the route ``scope`` is for (cached per method and path)."""
        return self._route(scope)[0]

    def _route(self, scope: Scope) -> _Plan:
        """The plan of the route ``scope`` is for: found once per request key (type, method,
        Host, root path, path; see :func:`~authguard.routing.request_key`), then one
        dictionary read."""
        key = request_key(scope)
        cached = self._cache.get(key)
        if cached is None:
            routes = find_routes(scope.get("app") or self.app)
            explicit: Policy | None = None
            params: dict[str, Any] = {}
            if routes is not None:
                _, explicit, params = match_route(routes, scope)
            policy = explicit or self.guard.rule_for(get_route_path(scope)) or self.guard.default
            hit = self._accepted.get(id(policy))
            plan = hit if hit is not None and hit[0] is policy else self._plan(policy)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            cached = self._cache[key] = (plan, params)
        # Path params, so that permission callables see the resource before routing.
        if "path_params" not in scope:
            scope["path_params"] = dict(cached[1]) if cached[1] else {}
        return cached[0]

    def _accepted_by(self, policy: Policy) -> list[Authenticator]:
        """``guard.accepted(policy)``, worked out once per policy."""
        hit = self._accepted.get(id(policy))
        if hit is not None and hit[0] is policy:
            return hit[1]
        return self._plan(policy)[1]

    def _plan(self, policy: Policy) -> _Plan:
        """What a policy needs on every request, worked out once: the authenticators it
        accepts, and its requirement as plain checks when it is made only of the built-in
        identity, scheme, role and scope requirements (``None`` otherwise)."""
        entry = (policy, self.guard.accepted(policy), _fast_checks(policy.requirement))
        if len(self._accepted) >= _CACHE_MAX:
            self._accepted.clear()
        self._accepted[id(policy)] = entry
        return entry

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if not self._checked_routes:  # once, at lifespan start-up or the first request
            self._checked_routes = True
            warn_unprotected(scope.get("app") or self.app, self.guard)
        if kind == "http":
            if scope["method"] == "OPTIONS" and _is_preflight(scope):
                await self._anonymous(scope, receive, send)
                return
        elif kind != "websocket":
            await self.app(scope, receive, send)
            return
        policy, accepted, checks = self._route(scope)
        if policy.requirement is None:
            # Public: no authenticator runs, but a Refusal raised by the app is still
            # rendered (never a 500).
            if "user" not in scope:
                scope["user"] = _ANON
            if "auth" not in scope:  # a new one: an app may change its scope list
                scope["auth"] = AuthContext(None)
        else:
            if self._form_limit and is_form_post(scope):
                # Only where an authenticator this route accepts reads form-body tokens.
                limit = max((getattr(a, "max_form_bytes", 0) for a in accepted
                             if getattr(a, "reads_form_body", False)), default=0)
                if limit:
                    receive = await read_form_tokens(scope, receive, limit)
            conn = HTTPConnection(scope)
            identity: Identity | None = None
            refusal: Refusal | None = None
            try:
                # tests: FastAPI's dependency_overrides on authguard's dependencies
                decided = (await overridden(conn, policy, self.guard.clock)
                           if has_overrides(scope) else None)
                if decided is not None:
                    identity, refusal = decided
                elif self._plain and checks is not None:
                    # The usual case, decided here rather than in ``_decide`` (one
                    # coroutine less per request); the same steps, none of them skipped.
                    limit = self._max_bytes
                    for _, value in scope["headers"]:
                        if len(value) > limit:  # before any authenticator parses or decodes
                            _check_sizes(self.guard, scope)
                            break
                    for authenticator in accepted:
                        if authenticator.has_credentials(conn):
                            try:
                                identity = await authenticator.authenticate(conn)
                            except Refusal as exc:
                                if exc.scheme is None:
                                    exc.scheme = authenticator.scheme
                                raise
                            if identity is not None:
                                break
                    if not _passes(checks, identity):
                        # what each plain check answers without an identity, else the
                        # requirement's own check says why not
                        refusal = (Refusal(Reason.CREDENTIALS_MISSING) if identity is None
                                   else await self._check(conn, policy, identity))
                        if refusal is not None:
                            identity = None
                else:
                    identity, refusal = await self._decide(conn, policy)
            except Refusal as exc:
                refusal = exc
            except AuthUnavailable as exc:
                refusal = _unavailable(exc)
            if refusal is not None:
                await self._refuse(scope, send, refusal, policy, self._request_id(scope))
                return
            scope["user"] = _ANON if identity is None else identity
            # the request id is made only if someone asks (a refusal, the app, an integration)
            scope["auth"] = scope["authguard"] = AuthState(
                self.guard, policy, identity, None, scope["headers"])
        # Set by a requirement that must act once the decision is taken (payment
        # settlement): see ``_run_hooked``. Taken out of the scope, so that nothing further
        # in (a dependency, a nested app) runs it a second time.
        hook = scope.pop(RESPONSE_HOOK, None)
        if hook is not None:
            await self._run_hooked(scope, receive, send, policy, hook)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if not started and message["type"] in _START_TYPES:
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except (Refusal, AuthUnavailable) as exc:
            if started:
                raise
            await self._refuse_raised(scope, send, exc, policy)

    async def _anonymous(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope.setdefault("user", _ANON)
        if "auth" not in scope:
            scope["auth"] = AuthContext(None)
        await self.app(scope, receive, send)

    async def _run_hooked(self, scope: Scope, receive: Receive, send: Send, policy: Policy,
                          hook: Any) -> None:
        """The app run with a response hook: ``before_app()`` runs first,
        ``on_start(message)`` may add headers to the response start. Either may raise a
        Refusal while nothing has been sent; one from ``on_start`` replaces the app's
        response (the rest of it is dropped). Only the start message is touched: the body
        streams through."""
        started = replaced = False

        async def tracking_send(message: Message) -> None:
            nonlocal started, replaced
            if replaced:
                return
            if message["type"] in _START_TYPES:
                if message["type"] == "http.response.start":
                    try:
                        await hook.on_start(message)
                    except (Refusal, AuthUnavailable) as exc:
                        started = replaced = True
                        await self._refuse_raised(scope, send, exc, policy)
                        return
                started = True
            await send(message)

        try:
            await hook.before_app()
            await self.app(scope, receive, tracking_send)
        except (Refusal, AuthUnavailable) as exc:
            if started:
                raise
            await _on_failure(hook)  # nothing served: a held payment is given back
            await self._refuse_raised(scope, send, exc, policy)
        except BaseException:
            if not started:
                await _on_failure(hook)
            raise

    async def _refuse_raised(self, scope: Scope, send: Send, exc: Refusal | AuthUnavailable,
                             policy: Policy) -> None:
        """Render a refusal raised by the app (or the hook) before the response started,
        with the request id the app may have seen (else a new one)."""
        refusal = exc if isinstance(exc, Refusal) else _unavailable(exc)
        state = scope.get("authguard")
        request_id = (state.request_id if isinstance(state, AuthState) else None
                      ) or self._request_id(scope)
        await self._refuse(scope, send, refusal, policy, request_id)

    # -- the decision --------------------------------------------------------------------

    async def decide(self, conn: HTTPConnection, policy: Policy) -> Identity | None:
        """Take the decision for ``conn`` under ``policy``: the identity, or raise a
        :class:`~authguard.Refusal` (used by integrations that run without the middleware)."""
        identity, refusal = await self._decide(conn, policy)
        if refusal is not None:
            raise refusal
        return identity

    async def refuse(self, conn: HTTPConnection, send: Send, refusal: Refusal,
                     policy: Policy, request_id: str | None = None) -> None:
        """Render ``refusal`` on ``send`` exactly as the middleware does."""
        await self._refuse(conn.scope, send, refusal, policy,
                           request_id or self._request_id(conn.scope))

    async def _decide(self, conn: HTTPConnection, policy: Policy
                      ) -> tuple[Identity | None, Refusal | None]:
        """(identity, None), or (None, the requirement's refusal); authenticators and the
        checks before them raise theirs."""
        guard = self.guard
        scope = conn.scope
        hit = self._accepted.get(id(policy))
        if hit is None or hit[0] is not policy:
            hit = self._plan(policy)
        accepted, plan = hit[1], hit[2]
        client: str | None = None  # worked out only when a policy needs it
        network = guard.network
        if network is not None and network.active:
            client = client_address(scope, network)
            if not network.is_allowed(client):
                raise Refusal(Reason.NETWORK_BLOCKED)
        limit = guard.max_credentials_bytes
        for _, value in scope["headers"]:
            if len(value) > limit:  # before any authenticator parses or decodes
                _check_sizes(guard, scope)
                break
        if guard.require_https and request_scheme(scope, network) in ("http", "ws"):
            if any(a.has_credentials(conn) for a in guard.authenticators):
                raise Refusal(Reason.INSECURE_TRANSPORT)
        identity: Identity | None = None
        guarded = guard.brute_force is not None
        for authenticator in accepted:
            if not authenticator.has_credentials(conn):
                continue
            if guarded:
                identity = await self._authenticate(conn, authenticator, client)
            else:
                try:
                    identity = await authenticator.authenticate(conn)
                except Refusal as exc:
                    if exc.scheme is None:
                        exc.scheme = authenticator.scheme
                    raise
            if identity is not None:
                break
        if plan is not None:  # plain checks: no context, no await
            if _passes(plan, identity):
                return identity, None
            if identity is None:  # what each of them answers without an identity
                return None, Refusal(Reason.CREDENTIALS_MISSING)
        refusal = await self._check(conn, policy, identity)
        if refusal is not None:
            return None, refusal
        return identity, None

    async def _check(self, conn: HTTPConnection, policy: Policy,
                     identity: Identity | None) -> Refusal | None:
        """The route's requirement on ``identity``: ``None`` when it passes."""
        requirement = policy.requirement
        assert requirement is not None  # noqa: S101 - public routes never get here
        return await requirement.check(
            Context(conn=conn, identity=identity, now=self.guard.clock()))

    async def _authenticate(self, conn: HTTPConnection, authenticator: Authenticator,
                            client: str | None) -> Identity | None:
        """One authenticator that found its credentials, behind the brute-force guard."""
        guard = self.guard
        bf = guard.brute_force
        assert bf is not None  # noqa: S101 - called only with a guard
        account = authenticator.account(conn)
        if client is None:
            client = client_address(conn.scope, guard.network)
        wait = await bf.retry_after(client, account, guard.clock())
        if wait is not None:
            raise Refusal(Reason.TOO_MANY_ATTEMPTS, headers={"Retry-After": str(wait)})
        try:
            return await authenticator.authenticate(conn)
        except Refusal as refusal:
            if refusal.reason in (Reason.CREDENTIALS_INVALID, Reason.CREDENTIALS_MALFORMED):
                await bf.failed(client, refusal.account or account, guard.clock())
            if refusal.scheme is None:
                refusal.scheme = authenticator.scheme
            raise

    # -- rendering -----------------------------------------------------------------------

    def _challenges(self, refusal: Refusal, spec: ReasonSpec, policy: Policy) -> list[Challenge]:
        rule = spec.challenge
        status = spec.status
        out: list[Challenge] = []
        if rule == "all":
            out = [a.challenge(None, None) for a in self._accepted_by(policy)]
        elif rule == "scheme" and refusal.scheme is not None:
            authenticator = self.guard.authenticator(refusal.scheme)
            if authenticator is not None:
                out = [_challenge_of(authenticator, refusal)]
                if spec.bearer_error in _ASK_ANOTHER_SCHEME and "error" not in out[0].params:
                    # The identity's scheme cannot say what to change (Basic, an API key):
                    # a scheme that can (Bearer: insufficient_scope, RFC 9470 step-up)
                    # tells the client how to get what this route needs, if it is accepted.
                    out = [c for c in (_challenge_of(a, refusal)
                                       for a in self._accepted_by(policy)) if "error" in c.params]
                    out = out[:1]
                if status != 401 and out and "error" not in out[0].params:
                    # A 400/403 names a challenge only when it says what to change (RFC
                    # 6750 insufficient_scope); a plain "send credentials" would not help.
                    out = []
            if status == 401 and not out:
                out = [a.challenge(None, None) for a in self._accepted_by(policy)]
        out.extend(refusal.challenges)
        if status == 401 and not out:
            out = [a.challenge(None, None) for a in self.guard.authenticators]
        return out

    def _request_id(self, scope: Scope) -> str:
        return request_id_of(scope["headers"], self._id_header)

    async def _refuse(self, scope: Scope, send: Send, refusal: Refusal, policy: Policy,
                      request_id: str | None) -> None:
        spec = _SPECS[refusal.reason]
        status = spec.status
        guard = self.guard
        if log.isEnabledFor(logging.INFO):
            client = client_address(scope, guard.network)
            log.info(
                "refused %s %s: %d %s",
                scope.get("method", "WEBSOCKET"), scope["path"], status, refusal.reason.value,
                extra={"authguard": {
                    "reason": refusal.reason.value, "status": status,
                    "route": scope["path"], "scheme": refusal.scheme,
                    "client": client, "request_id": request_id,
                }},
            )
        if status == 403 and policy.conceal:
            # The framework's own default 404, byte for byte, so that nothing tells a
            # concealed resource from a missing one (a custom 404 handler is not copied).
            await _send_not_found(scope, send)
            return
        login_url = policy.login_url or guard.login_url
        if status == 401 and login_url is not None and _wants_html(scope):
            secure = request_scheme(scope, guard.network) in ("https", "wss")
            await self._redirect(scope, send, login_url, refusal, secure)
            return
        challenges = self._challenges(refusal, spec, policy)
        data = render_problem(
            refusal,
            instance=full_path(scope),
            request_id=request_id,
            type_base=guard.type_base,
            schemes=[c.scheme for c in challenges] if status == 401 else (),
            encoder=_JSON,
        )
        # ``secure`` only matters for the cookies a refusal deletes.
        secure = bool(refusal.delete_cookies) and request_scheme(
            scope, guard.network) in ("https", "wss")
        headers = refusal_headers(refusal, challenges, request_id=request_id, secure=secure,
                                  send_date=guard.send_date)
        await send_problem(scope, send, status, headers, data)

    async def _redirect(self, scope: Scope, send: Send, login_url: str, refusal: Refusal,
                        secure: bool) -> None:
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
        headers = [(b"location", location.encode("latin-1")), (b"cache-control", b"no-store")]
        headers += refusal_headers(refusal, [], request_id=None, secure=secure)[2:]
        await send_problem(scope, send, 303, headers, b"", b"text/plain; charset=utf-8")


# A policy's per-request needs: (policy, accepted authenticators, plain checks or None).
# A plain check is (kind, names, any): kind 0 an identity (of one of ``names``, if any),
# 1 roles, 2 scopes.
_Check = tuple[int, tuple[str, ...], bool]
_Plan = tuple[Policy, list[Authenticator], tuple[_Check, ...] | None]


def _fast_checks(requirement: Any) -> tuple[_Check, ...] | None:
    """``requirement`` as plain checks, when every part is exactly one of the built-in
    requirements whose ``check`` only reads the identity (subclasses may override it)."""
    parts: tuple[Any, ...] = (requirement.requirements if type(requirement) is AllOf
                              else (requirement,))
    checks: list[_Check] = []
    for r in parts:
        kind = type(r)
        if kind is Anyone:
            continue
        if kind is Authenticated:
            checks.append((0, tuple(r.accepted), False))
        elif kind is HasRoles:
            checks.append((1, tuple(r.roles), bool(r.any)))
        elif kind is HasScopes:
            checks.append((2, tuple(r.scopes), bool(r.any)))
        else:
            return None
    return tuple(checks)


def _passes(checks: tuple[_Check, ...], identity: Identity | None) -> bool:
    """Whether the plain checks certainly pass (``False`` sends the request through the
    requirement's own ``check``, which says why not)."""
    for kind, names, any_ in checks:
        if identity is None:
            return False
        if kind == 0:
            if names and identity.scheme not in names:
                return False
            continue
        have = identity.roles if kind == 1 else identity.scopes
        if any_:
            if not any(n in have for n in names):
                return False
        else:
            for n in names:
                if n not in have:
                    return False
    return True


def _check_sizes(guard: AuthGuard, scope: Scope) -> None:
    """Refuse credentials longer than ``guard.max_credentials_bytes``, undecoded."""
    limit = guard.max_credentials_bytes
    wanted = guard.credential_headers
    for name, value in scope["headers"]:
        if len(value) <= limit or name not in wanted:
            continue
        if name == b"cookie":
            if all(len(pair) <= limit for pair in value.split(b";")):
                continue
            what, scheme = "A cookie", None
        elif name == b"authorization":
            claimed = guard.authenticator(value.split(b" ", 1)[0].decode("latin-1"))
            what, scheme = "The Authorization header", claimed.scheme if claimed else None
        else:
            what, scheme = "A credentials header", None
        raise Refusal(Reason.CREDENTIALS_MALFORMED, f"{what} is longer than {limit} bytes.",
                      scheme=scheme)


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


def _unavailable(exc: AuthUnavailable) -> Refusal:
    log.warning("authguard: %s", exc)
    return Refusal(Reason.AUTH_UNAVAILABLE, headers={"Retry-After": str(exc.retry_after)})


def _is_preflight(scope: Scope) -> bool:
    has_origin = has_method = False
    for name, _ in scope["headers"]:
        if name == b"origin":
            has_origin = True
        elif name == b"access-control-request-method":
            has_method = True
    return has_origin and has_method


def _wants_html(scope: Scope) -> bool:
    if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
        return False
    for name, value in scope["headers"]:
        if name == b"accept":
            return _accepts_html(value)
    return False


# Refusals of an identity that another scheme can fix: a token with the scope, a token
# from a stronger sign-in. (A rejected credential keeps its own scheme's challenge.)
_ASK_ANOTHER_SCHEME = frozenset({"insufficient_scope", "insufficient_user_authentication"})


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


async def _on_failure(hook: Any) -> None:
    on_failure = getattr(hook, "on_failure", None)
    if on_failure is not None:
        try:
            await on_failure()
        except Exception:  # the original error is what matters; this one is logged
            log.warning("authguard: the response hook failed to clean up", exc_info=True)


def full_path(scope: Scope) -> str:
    """The request's path from the server's root: Starlette keeps the full path in mounted
    apps (with ``root_path`` already in it); other servers and frameworks may not."""
    root, path = str(scope.get("root_path", "")), str(scope["path"])
    return path if root and path.startswith(root) else root + path


def _is_fastapi(app: Any) -> bool:
    return any(cls.__module__.startswith("fastapi") for cls in type(app).__mro__)


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


def local_path(value: Any) -> str | None:
    """``value`` if it is a local path safe to redirect to (no scheme, host or ``//``)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return None
    text: str = value
    if "\\" in text or any(ord(c) < 0x20 for c in text):
        return None
    return text
