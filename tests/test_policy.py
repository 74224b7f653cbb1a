"""Requirements: truth tables, precedence, short-circuiting, the most helpful refusal."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import pytest
from starlette.requests import HTTPConnection

from authguard import (
    AllOf,
    AnyOf,
    Anyone,
    Authenticated,
    Context,
    DenyAll,
    HasRoles,
    HasScopes,
    Identity,
    Not,
    Permission,
    Policy,
    Public,
    Reason,
    Refusal,
    Requirement,
    StepUp,
)

NOW = 1_700_000_000.0


def conn(path_params: dict[str, Any] | None = None) -> HTTPConnection:
    return HTTPConnection({"type": "http", "method": "GET", "path": "/", "headers": [],
                           "query_string": b"", "path_params": path_params or {}})


def ctx(identity: Identity | None = None, **params: Any) -> Context:
    return Context(conn=conn(params), identity=identity, now=NOW)


def who(subject: str = "alice", *, scheme: str = "Bearer", scopes: tuple[str, ...] = (),
        roles: tuple[str, ...] = (), acr: str | None = None,
        auth_time: float | None = None) -> Identity:
    return Identity(subject=subject, scheme=scheme, scopes=frozenset(scopes),
                    roles=frozenset(roles), acr=acr, auth_time=auth_time)


class Fixed(Requirement):
    """A requirement with a fixed outcome that records each call."""

    def __init__(self, name: str, refusal: Refusal | None, log: list[str],
                 order: int = 2) -> None:
        self.name, self.refusal, self.log, self._order = name, refusal, log, order

    @property  # type: ignore[override]
    def order(self) -> int:  # per-instance order for the tests
        return self._order

    async def check(self, ctx: Context) -> Refusal | None:
        self.log.append(self.name)
        return self.refusal


class Paid(Requirement):
    """Stands in for the payment requirement (order 3)."""

    order: ClassVar[int] = 3

    async def check(self, ctx: Context) -> Refusal | None:
        return Refusal(Reason.PAYMENT_REQUIRED)

    def describe(self) -> str:
        return "payment 0.01 USD"


def outcome(r: Refusal | None) -> int | None:
    return None if r is None else r.status


ALLOW, R401, R403, R402 = (None, Refusal(Reason.CREDENTIALS_MISSING),
                           Refusal(Reason.FORBIDDEN), Refusal(Reason.PAYMENT_REQUIRED))
OUTCOMES = [ALLOW, R401, R403, R402]


@pytest.mark.parametrize(("a", "b"), list(itertools.product(OUTCOMES, OUTCOMES)))
async def test_truth_tables(a: Refusal | None, b: Refusal | None) -> None:
    log: list[str] = []
    x, y = Fixed("x", a, log), Fixed("y", b, log)
    both = await (x & y).check(ctx())
    either = await (x | y).check(ctx())
    neither = await (~x).check(ctx())
    # AND: allowed only when both allow; else the first failure (in declaration order)
    assert outcome(both) == (outcome(a) if a is not None else outcome(b))
    # OR: allowed when one allows; else the most helpful: 401 (signing in may satisfy a
    # branch), then 402 (paying satisfies one), then 403 (nothing the client can do)
    if a is None or b is None:
        assert either is None
    else:
        rank = {401: 0, 402: 1, 403: 2}
        assert outcome(either) == min(outcome(a), outcome(b), key=lambda s: rank[s or 0])
    # NOT: passes exactly when the inner one fails; otherwise 403 forbidden
    assert (neither is None) == (a is not None)
    if neither is not None:
        assert neither.reason is Reason.FORBIDDEN


async def test_and_short_circuits() -> None:
    log: list[str] = []
    await (Fixed("x", R403, log) & Fixed("y", None, log)).check(ctx())
    assert log == ["x"]


async def test_or_short_circuits() -> None:
    log: list[str] = []
    assert await (Fixed("x", None, log) | Fixed("y", R403, log)).check(ctx()) is None
    assert log == ["x"]


async def test_precedence_follows_python() -> None:
    """``a | b & c`` is ``a | (b & c)``; ``~a & b`` is ``(~a) & b``."""
    log: list[str] = []
    a, b, c = Fixed("a", R403, log), Fixed("b", None, log), Fixed("c", None, log)
    expr = a | b & c
    assert isinstance(expr, AnyOf)
    assert expr.requirements[0] is a
    assert isinstance(expr.requirements[1], AllOf)
    assert await expr.check(ctx()) is None
    assert log == ["a", "b", "c"]
    inv = ~a & b
    assert isinstance(inv, AllOf) and isinstance(inv.requirements[0], Not)


async def test_and_checks_in_design_order() -> None:
    """Identity → step-up → permissions → payment, whatever the declaration order."""
    log: list[str] = []
    expr = (Fixed("pay", R402, log, order=3) & Fixed("perm", R403, log, order=2)
            & Fixed("step", None, log, order=1) & Fixed("id", None, log, order=0))
    refusal = await expr.check(ctx())
    assert log == ["id", "step", "perm"]
    assert outcome(refusal) == 403  # 403 before 402: permissions are decided first


async def test_flattening_and_equality() -> None:
    a, b, c = HasRoles("a"), HasRoles("b"), HasRoles("c")
    assert (a & b & c) == AllOf(a, b, c)
    assert (a | b | c) == AnyOf(a, b, c)
    assert len({a & b, AllOf(a, b)}) == 1
    assert ~a == Not(HasRoles("a"))


async def test_authenticated() -> None:
    r = await Authenticated().check(ctx())
    assert r is not None and r.reason is Reason.CREDENTIALS_MISSING
    assert await Authenticated().check(ctx(who())) is None
    only_basic = Authenticated("Basic")
    r = await only_basic.check(ctx(who(scheme="Bearer")))
    assert r is not None and r.status == 401  # another scheme could still succeed
    assert only_basic.schemes() == frozenset({"Basic"})
    assert await Anyone().check(ctx()) is None


async def test_scopes_all_and_any() -> None:
    two = HasScopes("a", "b")
    r = await two.check(ctx(who(scopes=("a",))))
    assert r is not None and r.reason is Reason.INSUFFICIENT_SCOPE
    assert r.challenge_params == {"scope": "a b"}  # RFC 6750 §3
    assert r.extensions["required_scopes"] == ["a", "b"]
    assert await two.check(ctx(who(scopes=("a", "b", "c")))) is None
    assert await HasScopes("a", "b", any=True).check(ctx(who(scopes=("b",)))) is None
    r = await two.check(ctx())
    assert r is not None and r.status == 401


async def test_roles_all_and_any() -> None:
    r = await HasRoles("admin", "ops").check(ctx(who(roles=("admin",))))
    assert r is not None and r.reason is Reason.FORBIDDEN
    assert await HasRoles("admin", "ops", any=True).check(ctx(who(roles=("ops",)))) is None
    assert (await HasRoles("admin").check(ctx())).status == 401  # type: ignore[union-attr]


async def test_step_up() -> None:
    req = StepUp("mfa", max_age=300)
    weak = await req.check(ctx(who(acr="pwd", auth_time=NOW)))
    assert weak is not None and weak.reason is Reason.STEP_UP_REQUIRED
    assert weak.challenge_params == {"acr_values": "mfa", "max_age": "300"}  # RFC 9470 §3
    old = await req.check(ctx(who(acr="mfa", auth_time=NOW - 301)))
    assert old is not None and "recent" in (old.detail or "")
    assert await req.check(ctx(who(acr="mfa", auth_time=NOW - 300))) is None
    no_time = await req.check(ctx(who(acr="mfa")))
    assert no_time is not None
    # a sign-in "in the future" is not recent; a minute of clock skew is tolerated
    assert await req.check(ctx(who(acr="mfa", auth_time=NOW + 60))) is None
    for future in (NOW + 61, 1e308):
        assert await req.check(ctx(who(acr="mfa", auth_time=future))) is not None


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_permission_sync_and_async(asynchronous: bool) -> None:
    seen: list[tuple[dict[str, Any], str]] = []

    def owns(request: HTTPConnection, identity: Identity) -> bool:
        seen.append((dict(request.path_params), identity.subject))
        return bool(request.path_params.get("owner") == identity.subject)

    async def owns_async(request: HTTPConnection, identity: Identity) -> bool:
        return owns(request, identity)

    req = Permission(owns_async if asynchronous else owns, name="owner")
    assert await req.check(ctx(who("alice"), owner="alice")) is None
    r = await req.check(ctx(who("alice"), owner="bob"))
    assert r is not None and r.reason is Reason.FORBIDDEN
    r = await req.check(ctx(None, owner="alice"))
    assert r is not None and r.status == 401  # never called without an identity
    assert seen == [({"owner": "alice"}, "alice"), ({"owner": "bob"}, "alice")]
    assert req.describe() == "permission owner"


async def test_admin_or_owner() -> None:
    rule = HasRoles("admin") | Permission(lambda r, w: r.path_params["owner"] == w.subject)
    assert await rule.check(ctx(who("bob", roles=("admin",)), owner="alice")) is None
    assert await rule.check(ctx(who("alice"), owner="alice")) is None
    r = await rule.check(ctx(who("carol"), owner="alice"))
    assert r is not None and r.reason is Reason.FORBIDDEN
    r = await rule.check(ctx(None, owner="alice"))
    assert r is not None and r.status == 401  # the most helpful answer


async def test_deny_all() -> None:
    assert (await DenyAll().check(ctx())).status == 401  # type: ignore[union-attr]
    assert (await DenyAll().check(ctx(who()))).status == 403  # type: ignore[union-attr]


async def test_most_helpful_with_payment() -> None:
    """When every branch of ``|`` fails: 401, then 402 (paying would let the client in),
    then 403; within ``&``, the order of DESIGN §1 (a 403 before any price)."""
    r = await (Paid() | HasRoles("admin")).check(ctx(who()))
    assert r is not None and r.status == 402
    r = await (HasRoles("admin") & Paid()).check(ctx(who()))
    assert r is not None and r.status == 403
    r = await (Paid() | HasRoles("admin")).check(ctx())
    assert r is not None and r.status == 401
    r = await (Authenticated() & Paid()).check(ctx(who()))
    assert r is not None and r.status == 402


def test_policy_summary_and_statuses() -> None:
    p = Policy(Authenticated("Bearer") & HasScopes("r:read") & HasRoles("x") & Paid(),
               conceal=True)
    assert p.schemes() == frozenset({"Bearer"})
    assert p.scopes() == ["r:read"]
    assert p.roles() == ["x"]
    assert p.payments() == ["payment 0.01 USD"]
    assert p.statuses() == frozenset({401, 402, 404})  # 403 concealed as 404
    summary = p.summary()
    assert summary["public"] is False and summary["conceal"] is True
    assert "403 concealed as 404" in summary["policy"]
    assert Public.statuses() == frozenset() and Public.summary()["public"] is True
    assert Policy(Anyone()).statuses() == frozenset()
    assert Policy(Anyone() | HasRoles("a")).statuses() == frozenset()
    assert Policy(StepUp("mfa")).statuses() == frozenset({401})
    assert Policy(~HasRoles("banned")).statuses() == frozenset({403})


def test_describe() -> None:
    expr = (HasRoles("admin") | HasScopes("a", any=True)) & StepUp("mfa", max_age=60)
    assert expr.describe() == "step-up (acr mfa, auth within 60s) & (roles admin | any scope of a)"


def test_a_protected_function_keeps_its_annotations_resolved_in_its_own_module() -> None:
    """Frameworks that read string annotations in the namespace of the function they are
    given (FastAPI 0.115) see the endpoint's types, not names missing from authguard."""
    import inspect

    from authguard import protect

    @protect(HasRoles("admin"))
    async def endpoint(conn: HTTPConnection, n: int = 1) -> None:
        return None

    params = inspect.signature(endpoint).parameters
    assert params["conn"].annotation is HTTPConnection
    assert params["n"].annotation is int and params["n"].default == 1
