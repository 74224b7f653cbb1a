"""FastAPI integration: policies as dependencies, the current identity, and OpenAPI.

* ``Depends(require(HasRoles("admin")))`` — on a route, in ``APIRouter(dependencies=...)``
  or in ``app.include_router(..., dependencies=...)``. The middleware finds these
  declarations before the app runs (see :mod:`authguard.routing`) and refuses with the
  right answer; the dependency itself re-checks only what the middleware did not.
* ``Security(require(Authenticated("Bearer")), scopes=["reports:read"])`` — the scopes
  of FastAPI's ``SecurityScopes`` become a :class:`~authguard.HasScopes` requirement.
* ``who: CurrentIdentity`` / ``who: OptionalIdentity`` — the typed identity.
* :func:`install` — security schemes and documented refusals in the OpenAPI document,
  and enforcement for apps (or routes) that the middleware does not cover.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, overload

from fastapi import Depends, FastAPI
from fastapi.security import SecurityScopes
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from .composition import RESPONSE_HOOK
from .errors import AuthUnavailable, ConfigurationError, Refusal
from .guard import AuthGuard
from .identity import AuthContext, Identity
from .middleware import AuthGuardMiddleware, AuthState, unavailable
from .openapi import NEEDS_IDENTITY, add_security
from .overrides import IDENTITY_DEPENDENCY
from .policy import (
    AllOf,
    Anyone,
    Context,
    HasScopes,
    Policy,
    Public,
    Requirement,
    attach_policy,
    decided_under,
    policy_of,
    protect,
)
from .reasons import Reason
from .requirements import Authenticated, HasRoles, StepUp

__all__ = [
    "CurrentIdentity",
    "OptionalIdentity",
    "current_identity",
    "install",
    "optional_identity",
    "require",
]

_ENGINE = "authguard_engine"


async def _no_app(scope: Scope, receive: Receive, send: Send) -> None:  # pragma: no cover
    raise RuntimeError("authguard's dependency engine never runs an app")


def _has_engine(conn: HTTPConnection) -> bool:
    app = conn.scope.get("app")
    return isinstance(getattr(getattr(app, "state", None), _ENGINE, None), AuthGuardMiddleware)


def _engine(conn: HTTPConnection) -> AuthGuardMiddleware:
    app = conn.scope.get("app")
    engine = getattr(getattr(app, "state", None), _ENGINE, None)
    if not isinstance(engine, AuthGuardMiddleware):
        raise ConfigurationError(
            "guard: this route is not covered by AuthGuardMiddleware; add the middleware "
            "or call authguard.fastapi.install(app, guard)"
        )
    return engine


def _covered(state: AuthState, requirement: Requirement) -> bool:
    """Whether the middleware already checked ``requirement`` for this request."""
    done = state.policy.requirement
    return done is not None and any(r == requirement for r in done.walk())


# Requirements that refuse without an identity: their dependency returns ``Identity``.
_NEEDS_IDENTITY = (Authenticated, HasRoles, HasScopes, StepUp)


@overload
def require(
    requirement: Authenticated | HasRoles | HasScopes | StepUp,
    *,
    conceal: bool = False,
    login_url: str | None = None,
) -> Callable[..., Awaitable[Identity]]: ...


@overload
def require(
    requirement: Requirement | Policy | None,
    *,
    conceal: bool = False,
    login_url: str | None = None,
) -> Callable[..., Awaitable[Identity | None]]: ...


def require(
    requirement: Requirement | Policy | None,
    *,
    conceal: bool = False,
    login_url: str | None = None,
) -> Callable[..., Awaitable[Identity | None]]:
    """A dependency that enforces ``requirement`` and returns the identity (if any).

    Use ``Depends(require(...))`` or ``Security(require(...), scopes=[...])``. The returned
    callable carries the policy, so :mod:`authguard.routing` sees it before the app runs.
    With ``Authenticated``, ``HasRoles``, ``HasScopes`` or ``StepUp`` it is typed to return
    an :class:`~authguard.Identity` (never ``None``).
    """
    policy = (requirement if isinstance(requirement, Policy)
              else Policy(requirement, conceal=conceal, login_url=login_url))
    needs_identity = isinstance(requirement, _NEEDS_IDENTITY)

    async def dependency(conn: HTTPConnection, security_scopes: SecurityScopes,
                         response: Response) -> Identity | None:
        identity = await check(conn, security_scopes)
        if identity is None and needs_identity:  # what the requirement answers anonymously
            raise Refusal(Reason.CREDENTIALS_MISSING)
        # A payment verified here (not by the middleware, which settles its own before the
        # app runs) is settled here, before the endpoint; the receipt goes on the response.
        # (Without the middleware, settle="on_success" cannot wait for the answer: it is
        # settled here too. The receipt rides on the endpoint's response only when the
        # endpoint returns a value, not a Response of its own.)
        hook = conn.scope.pop(RESPONSE_HOOK, None)
        if hook is not None:
            receipt = await hook.settle_now()
            if receipt:
                response.headers.update(receipt)
                response.headers["Cache-Control"] = "private"
                response.headers["Access-Control-Expose-Headers"] = ", ".join(receipt)
        return identity

    async def check(conn: HTTPConnection,
                    security_scopes: SecurityScopes) -> Identity | None:
        wanted: list[Requirement] = []
        if policy.requirement is not None:
            wanted.append(policy.requirement)
        if security_scopes.scopes:
            wanted.append(HasScopes(*security_scopes.scopes))
        state = conn.scope.get("authguard")
        if isinstance(state, AuthState):
            todo = [r for r in wanted if not _covered(state, r)]
            ctx = Context(conn=conn, identity=state.identity, now=state.guard.clock())
            for r in sorted(todo, key=lambda r: r.order):
                refusal = await r.check(ctx)
                if refusal is not None:
                    raise refusal
            return state.identity
        if not wanted:
            return None
        engine = _engine(conn)
        full = Policy(wanted[0] if len(wanted) == 1 else AllOf(*wanted),
                      conceal=policy.conceal, login_url=policy.login_url)
        identity = await engine.decide(conn, full)
        _remember(conn, engine.guard, full, identity)
        return identity

    dependency.__name__ = f"require({policy.describe()})"
    dependency.__qualname__ = dependency.__name__
    # no fail-closed wrapper: this dependency takes the decision itself
    return attach_policy(dependency, policy)


def _remember(conn: HTTPConnection, guard: AuthGuard, policy: Policy,
              identity: Identity | None) -> None:
    scope = conn.scope
    scope["authguard"] = AuthState(guard, policy, identity, None)
    decided_under(policy)  # protected endpoints of this request see the decision
    if identity is not None:
        scope["user"] = identity
        scope["auth"] = AuthContext(identity)


async def _identity(conn: HTTPConnection, *, optional: bool) -> Identity | None:
    state = conn.scope.get("authguard")
    if isinstance(state, AuthState):
        return state.identity
    if optional and not _has_engine(conn):
        return None  # a public route under the middleware: no authenticator runs
    engine = _engine(conn)
    # No decision was taken for this request (a public route, or no middleware): take one
    # that requires nothing, so offered credentials are still checked.
    policy = Policy(Anyone())
    identity = await engine.decide(conn, policy)
    _remember(conn, engine.guard, policy, identity)
    return identity


async def current_identity(conn: HTTPConnection) -> Identity:
    """The authenticated identity; 401 ``credentials_missing`` when there is none.

    This dependency declares no policy of its own: the route's policy (or the guard's rules
    and default) still applies. Use ``require(Authenticated())`` to declare one.
    """
    identity = await _identity(conn, optional=False)
    if identity is None:
        raise Refusal(Reason.CREDENTIALS_MISSING)
    return identity


setattr(current_identity, NEEDS_IDENTITY, True)  # documented with a 401 in OpenAPI
setattr(current_identity, IDENTITY_DEPENDENCY, True)  # dependency_overrides force an identity


async def optional_identity(conn: HTTPConnection) -> Identity | None:
    """The identity when the request carried good credentials, else ``None``.

    On a public route no authenticator runs (unless :func:`install` was called), so the
    answer there is ``None``.
    """
    return await _identity(conn, optional=True)


setattr(optional_identity, IDENTITY_DEPENDENCY, True)


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
"""``who: CurrentIdentity`` injects the :class:`~authguard.Identity` (401 without one)."""

OptionalIdentity = Annotated[Identity | None, Depends(optional_identity)]
"""``who: OptionalIdentity`` injects the :class:`~authguard.Identity` or ``None``."""


class _RefusalResponse(Response):
    """Renders a refusal raised inside the app through the middleware's one renderer."""

    def __init__(self, engine: AuthGuardMiddleware, refusal: Refusal) -> None:
        super().__init__()
        self.engine = engine
        self.refusal = refusal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("authguard")
        policy, request_id = self.engine.policy_for(scope), None
        if isinstance(state, AuthState):
            request_id = state.request_id
            if state.policy.requirement is not None:
                policy = state.policy
        await self.engine.refuse(HTTPConnection(scope), send, self.refusal, policy, request_id)


def install(app: FastAPI, guard: AuthGuard, *, openapi: bool = True,
            public_docs: bool = True) -> None:
    """Wire authguard into a FastAPI app, next to (or instead of) the middleware.

    * Refusals raised by dependencies and endpoints are rendered by authguard's renderer
      through the app's exception handlers (for :class:`~authguard.Refusal` and
      :class:`~authguard.AuthUnavailable`), with or without the middleware; the
      middleware then leaves the app's response alone.
    * Dependencies made by :func:`require` can decide on their own when the middleware is
      absent, using ``guard``.
    * With ``openapi=True``, ``app.openapi()`` declares one security scheme per
      authenticator, each operation's security requirements (with scopes) and its
      401/402/403 answers with the problem+json schema (see :mod:`authguard.openapi`).
    * With ``public_docs=True``, FastAPI's own documentation routes (``/openapi.json``,
      ``/docs``, ``/redoc``) are declared public, so Swagger UI loads without credentials.
    """
    engine = AuthGuardMiddleware(_no_app, guard)
    setattr(app.state, _ENGINE, engine)
    if public_docs:
        docs = {app.openapi_url, app.docs_url, app.redoc_url, app.swagger_ui_oauth2_redirect_url}
        for route in app.routes:
            if getattr(route, "path", None) in docs and policy_of(route) is None:
                protect(Public)(route)

    async def handle(request: Request, exc: Exception) -> Response:
        if isinstance(exc, AuthUnavailable):
            return _RefusalResponse(engine, unavailable(exc))
        assert isinstance(exc, Refusal)  # noqa: S101 - registered for these two only
        return _RefusalResponse(engine, exc)

    # With these handlers the app renders its own refusals, and the middleware runs it
    # without watching its response.
    app.add_exception_handler(Refusal, handle)
    app.add_exception_handler(AuthUnavailable, handle)
    if not openapi:
        return
    original = app.openapi
    done: list[dict[str, Any]] = []

    def patched() -> dict[str, Any]:
        if done and app.openapi_schema is done[0]:
            return done[0]
        schema = original()
        add_security(schema, app, guard)
        app.openapi_schema = schema
        done[:] = [schema]
        return schema

    app.openapi = patched  # type: ignore[method-assign]
