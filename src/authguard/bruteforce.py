"""The brute-force guard: rate-limit guessing without locking out the innocent.

Following NIST SP 800-63B §5.2.2 ("rate limiting", not account lock-out) and OWASP ASVS 5
V6.3, failures are counted in a sliding window under three keys:

- the pair (account, client address): past ``per_pair`` failures that client is refused
  (429) for that account, even with the right password: the guessing client waits, nobody
  else does;
- the client address, per authentication scheme: past ``per_client`` failures that client
  is refused for that scheme only (bad API keys do not block the same client's valid
  Bearer token: a correct token is not a guess);
- the account, from every client: past ``per_account`` failures the account is
  *throttled*, never locked: a client that has failed on it must wait a delay that doubles
  with every further failure (``base_delay`` up to ``max_delay``) before its next try,
  unless the app's ``challenge_solved`` hook (a CAPTCHA, a proof of work) says the request
  passed. A client that has not failed on the account is never refused because of it, so
  the right password from the account's owner still gets in during an attack.

The answers are the same whether or not the account exists (account names are compared
case-folded), and the checks run before the credentials are verified.
"""

from __future__ import annotations

import hashlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from starlette.requests import HTTPConnection
from starlette.types import Scope

from .errors import AuthUnavailable, ConfigurationError
from .net import NetworkPolicy, client_address, forwarded_by_untrusted
from .stores.base import AttemptStore
from .stores.memory import MemoryAttemptStore

__all__ = ["Attempt", "BruteForceGuard"]

log = logging.getLogger("authguard")

_UNKNOWN_CLIENT = "-"  # no address (a proxy said "unknown"): all such clients share a count
_MAX_WARNED_PEERS = 8  # then no more looking: a client can send those headers itself
_MAX_DOUBLINGS = 40  # 2**40 times base_delay is beyond any sensible max_delay
_MAX_REFUSED = 10_000  # client addresses remembered for refused_clients()
_MAX_NAME_BYTES = 64  # longer account names are counted by their SHA-256


def _name(account: str) -> str:
    """The account as counted: case-folded, and a name longer than 64 bytes replaced by
    ``#`` and its SHA-256 (65 characters, so no name kept as it is looks the same): keys
    stay small whatever a client claims."""
    folded = account.casefold()
    raw = folded.encode("utf-8", "surrogatepass")
    if len(raw) <= _MAX_NAME_BYTES:
        return folded
    return "#" + hashlib.sha256(raw).hexdigest()


class Attempt(NamedTuple):
    """What :meth:`BruteForceGuard.allowed` found out, handed back to ``failed`` /
    ``succeeded`` so that they need no second look-up."""

    scheme: str
    client: str
    account: str | None
    pair_failures: int
    retry_after: int | None
    """Seconds to wait (the request is refused with 429), or ``None``: go ahead."""


@dataclass(kw_only=True)
class BruteForceGuard:
    """Limits failed authentication attempts (see the module docstring for the model).

    Attributes:
        per_pair: Failures one client may make on one account within ``window``; past it
            that client gets 429 for that account until the oldest failure leaves the
            window.
        per_client: Failures one client may make with one scheme within ``window``; past it
            that client gets 429 for that scheme.
        per_account: Failures on one account, from all clients, within ``window`` after
            which clients that have failed on it are throttled (never a lock-out).
        window: Sliding window, in seconds.
        base_delay: The throttling delay at ``per_account`` failures, in seconds; it doubles
            with each further failure on the account.
        max_delay: The longest throttling delay, in seconds.
        challenge_solved: Optional ``async (conn, account) -> bool``: whether a throttled
            request carries a solved challenge (a CAPTCHA, a proof of work) checked by the
            app; such a request is let through without waiting. It is asked only about
            requests that would otherwise wait.
        store: Where counters live (in-memory by default; Redis for many replicas).
        fail_open: If the store is down, let requests through unguarded instead of 503.
            This trades brute-force protection for availability: an attacker who can make
            the store unavailable gets unlimited guesses. Off by default.
    """

    per_pair: int = 5
    per_client: int = 200
    per_account: int = 10
    window: float = 300.0
    base_delay: float = 1.0
    max_delay: float = 60.0
    challenge_solved: Callable[[HTTPConnection, str], Awaitable[bool]] | None = None
    store: AttemptStore = field(default_factory=MemoryAttemptStore)
    fail_open: bool = False
    _warned_peers: set[str] = field(default_factory=set, init=False, repr=False,
                                    compare=False)
    # client address -> when this process last refused it (for the metrics' gauge)
    _refused: dict[str, float] = field(default_factory=dict, init=False, repr=False,
                                       compare=False)

    def __post_init__(self) -> None:
        for name in ("per_pair", "per_client", "per_account"):
            if getattr(self, name) < 1:
                raise ConfigurationError(f"{name}: must be at least 1")
        if self.window <= 0:
            raise ConfigurationError("window: must be positive")
        if self.base_delay <= 0:
            raise ConfigurationError("base_delay: must be positive")
        if self.max_delay < self.base_delay:
            raise ConfigurationError("max_delay: must be at least base_delay")

    # -- keys -----------------------------------------------------------------------------

    @staticmethod
    def _client_key(scheme: str, client: str) -> str:
        return f"c:{scheme.lower()}:{client}"

    @staticmethod
    def _pair_key(client: str, account: str) -> str:
        # the account last: it is the only part a client chooses freely
        return f"p:{client}|{_name(account)}"

    @staticmethod
    def _account_key(account: str) -> str:
        return "a:" + _name(account)

    def delay(self, account_failures: int) -> float:
        """The throttling delay of an account with ``account_failures`` failures."""
        excess = min(max(0, account_failures - self.per_account), _MAX_DOUBLINGS)
        return min(self.max_delay, self.base_delay * 2.0 ** excess)

    # -- the three verbs ------------------------------------------------------------------

    async def allowed(self, conn: HTTPConnection, *, scheme: str, account: str | None,
                      now: float, network: NetworkPolicy | None = None) -> Attempt:
        """Whether ``conn`` may try credentials of ``scheme`` claiming ``account`` now.

        One store round trip. The client address is read through ``network``'s trusted
        proxies. Raises :class:`~authguard.AuthUnavailable` when the store is down (unless
        ``fail_open``).
        """
        scope = conn.scope
        if len(self._warned_peers) < _MAX_WARNED_PEERS:
            self._warn_if_proxied(scope, network)
        client = client_address(scope, network) or _UNKNOWN_CLIENT
        keys = [self._client_key(scheme, client)]
        if account:
            keys += [self._pair_key(client, account), self._account_key(account)]
        try:
            windows = await self.store.failures(keys, now, self.window)
        except AuthUnavailable:
            if self.fail_open:
                log.warning("authguard: attempt store unavailable; brute-force guard open")
                return Attempt(scheme, client, account, 0, None)
            raise
        wait = 0.0
        by_client = windows[0]
        if by_client.count >= self.per_client and by_client.oldest is not None:
            wait = by_client.oldest + self.window - now
        pair_failures = 0
        if account:
            pair, whole = windows[1], windows[2]
            pair_failures = pair.count
            if pair.count >= self.per_pair and pair.oldest is not None:
                wait = max(wait, pair.oldest + self.window - now)
            elif pair.newest is not None and whole.count >= self.per_account:
                # Throttled: the account is being guessed at and this client has failed on
                # it. Wait from this client's latest failure (RFC 9110 §10.2.3 Retry-After).
                throttled = pair.newest + self.delay(whole.count) - now
                if throttled > 0 and not await self._solved(conn, account):
                    wait = max(wait, throttled)
        if wait <= 0:
            return Attempt(scheme, client, account, pair_failures, None)
        refused = self._refused
        if refused.pop(client, None) is None and len(refused) >= _MAX_REFUSED:
            del refused[next(iter(refused))]  # the one refused longest ago
        refused[client] = now
        return Attempt(scheme, client, account, pair_failures, max(1, math.ceil(wait)))

    async def failed(self, attempt: Attempt, now: float, account: str | None = None) -> None:
        """Record a failed attempt (``account``: the one the refusal named, if it differs
        from the one read before verification)."""
        account = account or attempt.account
        keys = {self._client_key(attempt.scheme, attempt.client): self.per_client}
        if account:
            keys[self._pair_key(attempt.client, account)] = self.per_pair
            keys[self._account_key(account)] = self.per_account
        try:
            await self.store.add_failures(keys, now, self.window)
        except AuthUnavailable:
            if not self.fail_open:
                raise

    async def succeeded(self, attempt: Attempt) -> None:
        """The client got in: forget its failures on that account (only the pair's; the
        client's and the account's counts stand, so that a success cannot reset them)."""
        if not attempt.pair_failures or not attempt.account:
            return  # the usual case: nothing to forget, no store call
        try:
            await self.store.clear(self._pair_key(attempt.client, attempt.account))
        except AuthUnavailable:
            if not self.fail_open:
                raise

    def refused_clients(self, now: float) -> int:
        """How many client addresses this process refused (429) within ``window`` before
        ``now`` (at most 10,000 are remembered): the ``authguard.bruteforce.blocked``
        gauge."""
        refused = self._refused
        for client, at in list(refused.items()):
            if at <= now - self.window:
                refused.pop(client, None)
        return len(refused)

    # -- helpers --------------------------------------------------------------------------

    async def _solved(self, conn: HTTPConnection, account: str) -> bool:
        hook = self.challenge_solved
        return hook is not None and bool(await hook(conn, account))

    def _warn_if_proxied(self, scope: Scope, network: NetworkPolicy | None) -> None:
        """Once per peer: a request came through a proxy whose forwarding headers are not believed,
        so every client behind it shares one address and one set of limits."""
        peer = forwarded_by_untrusted(scope, network)
        if peer is None or peer in self._warned_peers:
            return
        self._warned_peers.add(peer)
        log.warning(
            "authguard: a request from %s carries forwarding headers, but %s is not in "
            "network.trusted_proxies (with use_forwarded=True): if it is a reverse proxy, "
            "every client behind it shares one client address, so one brute-force limit "
            "(and one network policy). List the proxy in trusted_proxies.", peer, peer)
