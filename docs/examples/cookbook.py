"""The policy cookbook's recipes, as one app (docs/policy-cookbook.md)."""

from __future__ import annotations

import os
from decimal import Decimal

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    APIKeyAuthenticator,
    AuthGuard,
    AuthGuardMiddleware,
    HasRoles,
    HasScopes,
    Identity,
    Permission,
    Requirement,
    StaticAPIKeys,
    StepUp,
    hash_api_key,
    protect,
)
from authguard.payments import (
    Entitlement,
    EntitlementVerifier,
    MemoryEntitlementStore,
    Payment,
    PlanPurchase,
    Price,
    ReceiptVerifier,
)
from authguard.stores import MemoryNonceStore


def ident(subject: str, **kw: object) -> Identity:
    return Identity(subject=subject, scheme="ApiKey", **kw)  # type: ignore[arg-type]


keys = StaticAPIKeys({
    hash_api_key("key-alice-0123456789"): ident("alice", scopes=frozenset({"notes:read"})),
    hash_api_key("key-bob-0123456789"): ident("bob", roles=frozenset({"admin"})),
    hash_api_key("key-carol-0123456789"): ident(
        "carol", acr="mfa", scopes=frozenset({"notes:read"})),
})
guard = AuthGuard(authenticators=[APIKeyAuthenticator(store=keys)])


# --8<-- [start:owner]
def is_owner(request: HTTPConnection, identity: Identity) -> bool:
    """The user in the path is the caller."""
    return bool(request.path_params["user"] == identity.subject)


owner_only = Permission(is_owner, name="owner")
# --8<-- [end:owner]

# --8<-- [start:admin_or_owner]
admin_or_owner = HasRoles("admin") | owner_only
# --8<-- [end:admin_or_owner]

# --8<-- [start:scoped]
read_notes = HasScopes("notes:read")
read_or_admin = HasScopes("notes:read") | HasRoles("admin")
# --8<-- [end:scoped]


# --8<-- [start:paid]
plans = MemoryEntitlementStore({"carol": Entitlement(plan="pro")})  # a plan with no end
pro_plan = EntitlementVerifier(plans, plans=["pro"], checkout="/billing")
# The 402 sells the plan: its Payment challenge buys 30 days of "pro".
PAYMENT_SECRET = os.environ.get("COOKBOOK_PAYMENT_SECRET", "cookbook-0123456789abcdef-0123456789")
receipts = ReceiptVerifier(secret=PAYMENT_SECRET, nonces=MemoryNonceStore(), realm="cookbook")
buy_pro = PlanPurchase(receipts, plans, plan="pro", seconds=30 * 86_400,
                       price=Price(Decimal("9.00"), "USD", "pro, 30 days"))

# Payment is always decided last: a missing scope is a 403 before any price is shown.
premium = HasScopes("notes:read") & Payment(verifiers=[pro_plan, buy_pro])
# --8<-- [end:paid]

# --8<-- [start:step_up]
sensitive = StepUp("mfa")  # add max_age=300 for "signed in within 5 minutes"
# --8<-- [end:step_up]


async def ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True, **request.path_params})


def route(path: str, requirement: Requirement, *, conceal: bool = False) -> Route:
    return protect(requirement, conceal=conceal)(Route(path, ok))


app = Starlette(routes=[
    route("/users/{user}/diary", owner_only, conceal=True),
    route("/users/{user}/notes", admin_or_owner),
    route("/notes", read_notes),
    route("/notes-or-admin", read_or_admin),
    route("/premium", premium),
    route("/settings/password", sensitive),
], middleware=[Middleware(AuthGuardMiddleware, guard=guard)])

EXPECTED = [
    ("/users/alice/diary", "alice", 200),
    ("/users/alice/diary", "bob", 404),  # concealed: bob learns nothing
    ("/users/alice/diary", None, 401),
    ("/users/alice/notes", "bob", 200),  # admin
    ("/users/alice/notes", "carol", 403),
    ("/notes", "alice", 200),
    ("/notes", "bob", 403),  # insufficient_scope
    ("/notes-or-admin", "bob", 200),
    ("/premium", "alice", 402),
    ("/premium", "bob", 403),  # the scope is missing: 403 before 402
    ("/premium", "carol", 200),
    ("/settings/password", "alice", 401),  # step_up_required
    ("/settings/password", "carol", 200),
]
