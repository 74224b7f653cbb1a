"""The decision: one routine for every request, over a plan worked out up front.

DESIGN §1, steps 2 to 6, in order: the network policy (403 ``network_blocked``), the size
of credentials, the transport policy (403 ``insecure_transport``), authentication (the
first authenticator that finds its credentials decides, behind the brute-force guard),
then the route's requirements. The answer is the identity (``None`` for an anonymous
request a route lets through), or a raised :class:`~authguard.Refusal`. Public routes and
preflights never get here (see :mod:`authguard.middleware`).
"""

from __future__ import annotations

from typing import NamedTuple

from starlette.requests import HTTPConnection
from starlette.types import Scope

from .authenticators.base import Authenticator
from .composition import Context
from .errors import Refusal
from .guard import AuthGuard
from .identity import Identity
from .net import client_address, request_scheme
from .overrides import has_overrides, overridden
from .plans import Plan, passes
from .reasons import Reason

__all__ = ["Decider", "Outcome"]


class Outcome(NamedTuple):
    """The decision: the identity (``None``: anonymous, where the route allows it), or the
    refusal of the route's requirement. (Authenticators and the checks before them raise
    theirs.)"""

    identity: Identity | None
    refusal: Refusal | None

class Decider:
    """Takes the decision for a guard; what the configuration settles is read once here."""

    def __init__(self, guard: AuthGuard) -> None:
        self.guard = guard
        network = guard.network
        self._network = network if network is not None and network.active else None
        self._max_bytes = guard.max_credentials_bytes

    async def decide(self, conn: HTTPConnection, plan: Plan) -> Outcome:
        """The decision for ``conn`` under ``plan``."""
        guard = self.guard
        scope = conn.scope
        if has_overrides(scope):  # tests: FastAPI's dependency_overrides of authguard's
            decided = await overridden(conn, plan.policy, guard.clock)
            if decided is not None:
                return Outcome(*decided)
        client: str | None = None  # worked out only when a policy needs it
        if self._network is not None:
            client = client_address(scope, self._network)
            if not self._network.is_allowed(client):
                raise Refusal(Reason.NETWORK_BLOCKED)
        limit = self._max_bytes
        for _, value in scope["headers"]:
            if len(value) > limit:  # before any authenticator parses or decodes
                check_sizes(guard, scope)
                break
        if guard.require_https and request_scheme(scope, guard.network) in ("http", "ws"):
            if any(a.has_credentials(conn) for a in guard.authenticators):
                raise Refusal(Reason.INSECURE_TRANSPORT)
        identity: Identity | None = None
        for authenticator in plan.accepted:
            if authenticator.has_credentials(conn):
                if guard.brute_force is not None:
                    identity = await self.authenticate(conn, authenticator)
                else:  # nothing counts failures: the authenticator itself, no wrapper
                    try:
                        identity = await authenticator.authenticate(conn)
                    except Refusal as exc:
                        raise exc.with_scheme(authenticator.scheme) from None
                if identity is not None:
                    break
        if plan.checks is not None:  # the built-in requirements: no context, no await
            if passes(plan.checks, identity):
                return Outcome(identity, None)
            if identity is None:  # what each of them answers without an identity
                return Outcome(None, Refusal(Reason.CREDENTIALS_MISSING))
        requirement = plan.policy.requirement
        if requirement is None:
            return Outcome(identity, None)
        refusal = await requirement.check(
            Context(conn=conn, identity=identity, now=guard.clock()))
        return Outcome(None if refusal is not None else identity, refusal)

    async def authenticate(self, conn: HTTPConnection,
                           authenticator: Authenticator) -> Identity | None:
        """One authenticator that found its credentials, behind the brute-force guard (its
        failures count per scheme: see :class:`~authguard.BruteForceGuard`); its refusals
        name its scheme."""
        guard = self.guard
        bf = guard.brute_force
        if bf is None:  # (decide() calls the authenticator itself then)
            try:
                return await authenticator.authenticate(conn)
            except Refusal as refusal:
                raise refusal.with_scheme(authenticator.scheme) from None
        attempt = await bf.allowed(conn, scheme=authenticator.scheme,
                                   account=authenticator.account(conn), now=guard.clock(),
                                   network=guard.network)
        if attempt.retry_after is not None:
            raise Refusal(Reason.TOO_MANY_ATTEMPTS,
                          headers={"Retry-After": str(attempt.retry_after)})
        try:
            identity = await authenticator.authenticate(conn)
        except Refusal as refusal:
            if refusal.reason in (Reason.CREDENTIALS_INVALID, Reason.CREDENTIALS_MALFORMED):
                await bf.failed(attempt, guard.clock(), refusal.account)
            raise refusal.with_scheme(authenticator.scheme) from None
        if identity is not None:
            await bf.succeeded(attempt)
        return identity


def check_sizes(guard: AuthGuard, scope: Scope) -> None:
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
            if value[:8].lower() == b"payment ":
                # Its verifier refuses it with 402 and a fresh challenge, undecoded
                # (draft-httpauth-payment §Status Codes), never a 401 for other schemes.
                continue
            claimed = guard.authenticator(value.split(b" ", 1)[0].decode("latin-1"))
            what, scheme = "The Authorization header", claimed.scheme if claimed else None
        else:
            what, scheme = "A credentials header", None
        raise Refusal(Reason.CREDENTIALS_MALFORMED, f"{what} is longer than {limit} bytes.",
                      scheme=scheme)
