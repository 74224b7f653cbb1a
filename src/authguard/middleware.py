"""The pure ASGI middleware: it only dispatches.

Public routes (and CORS preflights a CORS layer will answer) run the app; protected routes
are decided by :class:`~authguard.decision.Decider` over the route's plan (see
:mod:`authguard.plans`), then either run the app with the identity in
``scope["user"]``/``scope["auth"]``, or get the refusal from
:class:`~authguard.responder.Responder`. Refusals raised by the app before it starts its
response (e.g. from a FastAPI dependency) are rendered here too.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from time import perf_counter
from typing import Any

from starlette.authentication import UnauthenticatedUser
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocket

from .composition import RESPONSE_HOOK
from .decision import Decider
from .errors import AuthUnavailable, Refusal
from .formbody import is_form_post, read_form_tokens
from .guard import AuthGuard
from .identity import AuthContext, Identity
from .observability.observer import record_allowed
from .observability.safety import safe_text
from .plans import Plan, RouteEntry, RouteTable
from .policy import DECIDED, Policy
from .reasons import Reason
from .responder import Responder, full_path, local_path
from .route_tree import warn_unprotected
from .routing import ROUTE_ENTRY, find_routes

__all__ = ["AuthGuardMiddleware", "AuthState", "full_path", "local_path", "unavailable"]


log = logging.getLogger("authguard")
_SAFE_ID = re.compile(r"[A-Za-z0-9._~:-]{1,128}")
_ANON = UnauthenticatedUser()
# Request ids: a random per-process prefix and a counter (32 hex digits, unique, no syscall
# per request, unlike uuid4).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)
# The messages that start a response (after one, a refusal can no longer be sent).
_START_TYPES = frozenset({"http.response.start", "websocket.accept",
                          "websocket.http.response.start", "websocket.close"})
# Set in a WebSocket's scope once the app has answered the handshake: the exception layer
# hands its handler a new WebSocket object, which cannot tell.
_ANSWERED = "authguard.answered"


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
        self.identity = identity  # AuthContext's two fields, without its __init__ frame
        self._scopes = None
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
    It enforces the policies of the routes of the app it wraps, wherever it sits (the whole
    app, a ``Mount``, a mounted sub-app).
    """

    enforces_policies = True  # what the route audit looks for (see authguard.route_tree)

    def __init__(self, app: ASGIApp, guard: AuthGuard) -> None:
        self.app = app
        self.guard = guard
        self.routes = RouteTable(app, guard, owner=self)
        self.decider = Decider(guard)
        self.responder = Responder(guard)
        self._id_header = guard.request_id_header.encode("latin-1")
        # A CORS layer between this middleware and the app answers preflights itself.
        self._cors_inside = any(isinstance(a, CORSMiddleware) for a in _wrapped(app))
        self._observed = guard.observability is not None
        self._started = False
        self._app_renders = False  # the app's exception handlers render refusals

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._started:  # once, at lifespan start-up or the first request
            self._start(scope)
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        entry = self.routes.lookup(scope)
        plan = entry.plan
        # What requirements and the refusal of a raised exception ask of the route.
        scope[ROUTE_ENTRY] = entry
        if "path_params" not in scope:  # permission callables see the resource
            scope["path_params"] = dict(entry.params) if entry.params else {}
        if plan.public or (scope.get("method") == "OPTIONS"
                           and self._preflight_passes(scope, entry)):
            scope.setdefault("user", _ANON)
            if "auth" not in scope:  # a new one: an app may change its scope list
                scope["auth"] = AuthContext(None)
            await self._run(scope, receive, send, plan)
            return
        if plan.form_limit and is_form_post(scope):  # RFC 6750 §2.2 form-body tokens
            receive = await read_form_tokens(scope, receive, plan.form_limit)
        started = perf_counter() if self._observed else None  # the decision's time
        try:
            identity, refusal = await self.decider.decide(HTTPConnection(scope), plan)
        except (Refusal, AuthUnavailable) as exc:
            refusal = exc if isinstance(exc, Refusal) else unavailable(exc)
        if refusal is not None:
            await self.responder.refuse(scope, send, refusal, plan, self._request_id(scope),
                                        started)
            return
        if started is not None:
            record_allowed(self.guard, scope, identity, started)
        scope["user"] = _ANON if identity is None else identity
        # the request id is made only if someone asks (a refusal, the app, an integration)
        scope["auth"] = scope["authguard"] = AuthState(
            self.guard, plan.policy, identity, None, scope["headers"])
        token = DECIDED.set(plan.policy)  # what protected endpoints check (fail closed)
        try:
            await self._run(scope, receive, send, plan)
        finally:
            DECIDED.reset(token)

    # -- for integrations ----------------------------------------------------------------

    def policy_for(self, scope: Scope) -> Policy:
        """The effective policy of the route ``scope`` is for."""
        return self.routes.lookup(scope).plan.policy

    async def decide(self, conn: HTTPConnection, policy: Policy) -> Identity | None:
        """Take the decision for ``conn`` under ``policy``: the identity, or raise a
        :class:`~authguard.Refusal` (used by integrations that run without the middleware)."""
        identity, refusal = await self.decider.decide(conn, self.routes.plan(policy))
        if refusal is not None:
            raise refusal
        return identity

    async def refuse(self, conn: HTTPConnection, send: Send, refusal: Refusal,
                     policy: Policy, request_id: str | None = None) -> None:
        """Render ``refusal`` on ``send`` exactly as the middleware does."""
        await self.responder.refuse(conn.scope, send, refusal, self.routes.plan(policy),
                                    request_id or self._request_id(conn.scope))

    # -- the steps -------------------------------------------------------------------------

    def _start(self, scope: Scope) -> None:
        self._started = True
        handlers = getattr(scope.get("app"), "exception_handlers", None) or {}
        self._app_renders = Refusal in handlers and AuthUnavailable in handlers
        if (isinstance(self.app, ExceptionMiddleware) and Refusal not in handlers
                and AuthUnavailable not in handlers):
            # Starlette's exception layer is right inside: it catches what the app raises
            # (and knows whether the response had started), so refusals raised by the app
            # are rendered by handlers registered there, not by watching every response.
            handler: Any = self._handle_raised  # for HTTP and WebSocket connections
            self.app.add_exception_handler(Refusal, handler)
            self.app.add_exception_handler(AuthUnavailable, handler)
            self._app_renders = True
        if self.guard.deny_by_default:
            warn_unprotected(self.app if find_routes(self.app) is not None
                             else scope.get("app"), self.guard)

    def _preflight_passes(self, scope: Scope, entry: RouteEntry) -> bool:
        """A CORS preflight skips authentication only where it cannot run a protected
        handler: a CORS layer inside answers it, or no route serves ``OPTIONS`` there."""
        return (scope["type"] == "http" and scope["method"] == "OPTIONS"
                and (self._cors_inside or not entry.serves) and _is_preflight(scope))

    def _request_id(self, scope: Scope) -> str:
        return request_id_of(scope["headers"], self._id_header)

    async def _refuse(self, scope: Scope, send: Send, exc: Refusal | AuthUnavailable,
                      plan: Plan, request_id: str) -> None:
        refusal = exc if isinstance(exc, Refusal) else unavailable(exc)
        await self.responder.refuse(scope, send, refusal, plan, request_id)

    async def _run(self, scope: Scope, receive: Receive, send: Send, plan: Plan) -> None:
        """Run the app; a refusal it raises before its response starts is rendered."""
        # Set by a requirement that must act once the decision is taken (payment
        # settlement): taken out of the scope, so that nothing further in runs it again.
        hook = scope.pop(RESPONSE_HOOK, None)
        if hook is not None:
            await self._run_hooked(scope, receive, send, plan, hook)
            return
        if self._app_renders:  # exception handlers (``install()``): nothing to watch
            await self.app(scope, receive, send if scope["type"] == "http"
                           else _marking(scope, send))
            return
        # Otherwise a refusal raised before the response starts is rendered here.
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
            await self._refuse_raised(scope, send, exc, plan)

    async def _run_hooked(self, scope: Scope, receive: Receive, send: Send, plan: Plan,
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
                        await self._refuse_raised(scope, send, exc, plan)
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
            await self._refuse_raised(scope, send, exc, plan)
        except BaseException:
            if not started:
                await _on_failure(hook)
            raise

    async def _handle_raised(self, conn: HTTPConnection, exc: Exception) -> Response | None:
        """The exception handler registered in the app's exception layer (see ``_start``):
        the refusal of the route the request was decided for."""
        if not isinstance(exc, Refusal | AuthUnavailable):  # registered for these only
            raise exc
        scope = conn.scope
        entry = scope.get(ROUTE_ENTRY)
        plan = (entry if isinstance(entry, RouteEntry) else self.routes.lookup(scope)).plan
        if scope["type"] != "http":  # a WebSocket: answered on it, nothing to return
            assert isinstance(conn, WebSocket)  # noqa: S101 - http or websocket only
            if scope.get(_ANSWERED):
                raise exc  # accepted (or closed): too late for a refusal, as for HTTP
            await self._refuse_raised(scope, conn.send, exc, plan)
            return None
        return _Raised(self, exc, plan)

    async def _refuse_raised(self, scope: Scope, send: Send, exc: Refusal | AuthUnavailable,
                             plan: Plan) -> None:
        """Render a refusal raised by the app (or the hook) before the response started,
        with the request id the app may have seen (else a new one)."""
        state = scope.get("authguard")
        request_id = (state.request_id if isinstance(state, AuthState) else None
                      ) or self._request_id(scope)
        await self._refuse(scope, send, exc, plan, request_id)


def _marking(scope: Scope, send: Send) -> Send:
    """``send`` that marks the scope once a WebSocket handshake has been answered."""

    async def marking_send(message: Message) -> None:
        if message["type"] in _START_TYPES:
            scope[_ANSWERED] = True
        await send(message)

    return marking_send


class _Raised(Response):
    """A refusal raised by the app, as the response its exception handler returns."""

    def __init__(self, owner: AuthGuardMiddleware, exc: Refusal | AuthUnavailable,
                 plan: Plan) -> None:
        super().__init__()
        self.owner, self.exc, self.plan = owner, exc, plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.owner._refuse_raised(scope, send, self.exc, self.plan)


def _wrapped(app: Any) -> list[Any]:
    """``app`` and the apps it wraps, down to the first that has routes."""
    chain: list[Any] = []
    while app is not None and len(chain) < 32:
        chain.append(app)
        if isinstance(getattr(app, "routes", None), list):
            break
        app = getattr(app, "app", None)
    return chain


def unavailable(exc: AuthUnavailable) -> Refusal:
    """The 503 ``auth_unavailable`` refusal for ``exc`` (logged; its message is not sent)."""
    log.warning("authguard: %s", safe_text(exc, 500))  # a store's message may quote input
    return Refusal(Reason.AUTH_UNAVAILABLE, headers={"Retry-After": str(exc.retry_after)})


def _is_preflight(scope: Scope) -> bool:
    has_origin = has_method = False
    for name, _ in scope["headers"]:
        if name == b"origin":
            has_origin = True
        elif name == b"access-control-request-method":
            has_method = True
    return has_origin and has_method


async def _on_failure(hook: Any) -> None:
    on_failure = getattr(hook, "on_failure", None)
    if on_failure is not None:
        try:
            await on_failure()
        except Exception:  # the original error is what matters; this one is logged
            log.warning("authguard: the response hook failed to clean up", exc_info=True)
