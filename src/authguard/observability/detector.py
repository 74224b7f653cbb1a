"""The systemic-cause detector: names the cause when one kind of refusal becomes a pattern.

It watches the events over a sliding window (``window`` seconds, on the events' own
clock: the guard's ``clock``, which tests inject) and raises a :class:`~.events.Finding`
once when a pattern crosses its threshold; the same finding for the same key is raised
again only after a whole window without it. Each replica runs its own detector over its
own traffic and exports the same ``authguard.findings`` metric: alert on their sum (no
shared state). The thresholds are documented in ``docs/observability.md``.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar

from ..errors import ConfigurationError
from .events import AuthEvent, Finding, median

__all__ = ["FIXES", "Detector"]

# The fix of each finding, in the words of docs/troubleshooting.md.
FIXES: dict[str, str] = {
    "clock_skew": "Synchronise the clocks of the token issuer, the server and the client "
                  "with NTP (timedatectl set-ntp true, chronyc tracking, Windows Time). A "
                  "server may tolerate a few seconds (BearerAuthenticator(leeway=...)), "
                  "never minutes.",
    "authorization_stripped": "A reverse proxy, a redirect or a CDN may have removed the "
                              "header; authguard explain against the server directly shows "
                              "what arrives. Configure the proxy to pass the Authorization "
                              "field through.",
    "wrong_audience": "The token was issued for another API: request a token for this "
                      "resource (RFC 8707 resource indicator, the audience this server "
                      "expects).",
    "unknown_kid": "The issuer signs with a key this server does not know (a key "
                   "rotation): let the server fetch the issuer's JWKS (JWKSKeys) or add the "
                   "new key; tokens signed with the old key stop working once it is gone.",
    "auth_unavailable": "Something the server needs to check credentials - a JWKS endpoint, "
                        "Redis, a user store - could not be reached. The server fails "
                        "closed: bring the backend back; clients retry after Retry-After.",
    "credential_stuffing": "Too many failed attempts for accounts or from addresses: the "
                           "brute-force guard is refusing them. Scripts that loop on a wrong "
                           "password lock their own account; a run across many accounts is "
                           "an attack - block its addresses upstream.",
}

_SKEW_REASONS = frozenset({"token_not_yet_valid", "token_expired"})
# The reasons a refusal can add to a series for (see ``Detector._keys``); a 401 through a
# proxy always can (``authorization_stripped``).
_WATCHED = _SKEW_REASONS | {"token_wrong_audience", "credentials_invalid", "auth_unavailable",
                            "too_many_attempts"}
# Memory is bounded whatever the traffic (keys such as a token's client id are chosen by
# the sender): at most _MAX_KEYS series of at most _MAX_SERIES events; the oldest key goes
# first. A flood of made-up keys can push a real one out; it cannot grow the detector.
_MAX_KEYS = 1024
_MAX_SERIES = 100


class _Series:
    """One pattern's events on one key within the window, with the tallies its test reads:
    the requests among them that carried credentials (``authorization_stripped``) and the
    clients they came from (``clock_skew`` of an issuer)."""

    __slots__ = ("carried", "clients", "events")

    def __init__(self) -> None:
        self.events: deque[tuple[float, AuthEvent]] = deque()
        self.carried = 0
        self.clients: Counter[str | None] = Counter()

    def __len__(self) -> int:
        return len(self.events)

    def add(self, now: float, event: AuthEvent) -> None:
        self.events.append((now, event))
        self.carried += _carried(event)
        self.clients[event.client_id or event.client] += 1

    def drop(self) -> None:
        """Drop the oldest event."""
        _, event = self.events.popleft()
        self.carried -= _carried(event)
        client = event.client_id or event.client
        left = self.clients[client] - 1
        if left:
            self.clients[client] = left
        else:
            del self.clients[client]


def _carried(event: AuthEvent) -> bool:
    """Whether the request carried credentials: allowed, refused for what it sent, or a
    ``credentials_missing`` with an ``Authorization`` field of a scheme not accepted here
    (which shows the field got through)."""
    return event.reason != "credentials_missing" or event.offered_scheme is not None


@dataclass(kw_only=True)
class Detector:
    """Finds the systemic cause behind a run of refusals.

    Attributes:
        window: The sliding window, in seconds.
        min_count: Refusals of one pattern, on one key, within the window that make a
            finding (``clock_skew``, ``wrong_audience``, ``unknown_kid``,
            ``auth_unavailable``).
        max_skew: Largest clock skew (seconds) still taken for a wrong clock rather than
            a stale token.
        min_stripped: Requests through one proxy without credentials (none through it
            with credentials) that make ``authorization_stripped``.
        min_blocked: ``too_many_attempts`` refusals that make ``credential_stuffing``.
    """

    window: float = 300.0
    min_count: int = 5
    max_skew: float = 600.0
    min_stripped: int = 10
    min_blocked: int = 20
    _series: dict[tuple[str, str], _Series] = field(default_factory=dict, init=False,
                                                    repr=False)
    _raised: dict[tuple[str, str], float] = field(default_factory=dict, init=False,
                                                  repr=False)

    def __post_init__(self) -> None:
        if self.window <= 0:
            raise ConfigurationError("Detector.window: must be positive")
        for name in ("min_count", "min_stripped", "min_blocked"):
            if not 1 <= getattr(self, name) <= _MAX_SERIES:
                raise ConfigurationError(
                    f"Detector.{name}: must be between 1 and {_MAX_SERIES}")

    @staticmethod
    def watches(reason: str, status: int, via: str | None) -> bool:
        """Whether a refusal for ``reason`` with ``status`` (``via``: the proxy it came
        through, or ``None``) can count towards a finding: the others need no event."""
        return reason in _WATCHED or (via is not None and status == 401)

    def observe(self, event: AuthEvent) -> list[Finding]:
        """Take one event in; the findings it completes (usually none)."""
        found: list[Finding] = []
        for name, key in self._keys(event):
            finding = self._add(name, key, event)
            if finding is not None:
                found.append(finding)
        return found

    # -- which series an event belongs to ------------------------------------------------

    def _keys(self, e: AuthEvent) -> list[tuple[str, str]]:
        if e.event == "allowed":
            return [("authorization_stripped", f"proxy {e.via}")] if e.via else []
        reason = e.reason
        if reason in _SKEW_REASONS:
            if e.skew_seconds is None or abs(e.skew_seconds) > self.max_skew:
                return []
            keys = [("clock_skew", f"client {e.client_id or e.client}")]
            if e.issuer:
                keys.append(("clock_skew", f"issuer {e.issuer}"))
            return keys
        if e.via and e.status == 401:  # any 401 through a proxy: with or without credentials
            keys = [("authorization_stripped", f"proxy {e.via}")]
        else:
            keys = []
        if reason == "token_wrong_audience" or (
                reason == "credentials_invalid" and e.audience_accepted is False):
            keys.append(("wrong_audience", f"client {e.client_id or e.client}"))
        elif reason == "credentials_invalid" and e.kid_known is False:
            keys.append(("unknown_kid", f"kid {e.kid}"))
        elif reason == "auth_unavailable":
            keys.append(("auth_unavailable", "backend"))
        elif reason == "too_many_attempts":
            keys.append(("credential_stuffing", "brute-force guard"))
        return keys

    # -- the window ----------------------------------------------------------------------

    def _add(self, name: str, key: str, event: AuthEvent) -> Finding | None:
        """Add ``event`` to its series; the finding, once per episode. The work per event
        is constant: the series keeps the tallies its pattern's test reads, and the
        finding (medians, counts over the events) is made only when it is raised."""
        now = event.time
        series = self._series.get((name, key))
        if series is None:
            if len(self._series) >= _MAX_KEYS:
                self._series.pop(next(iter(self._series)))
            series = self._series[(name, key)] = _Series()
        events = series.events
        if len(events) >= _MAX_SERIES:
            series.drop()
        series.add(now, event)
        while events and events[0][0] <= now - self.window:
            series.drop()
        if not self._holds(name, key, series):
            return None
        last = self._raised.get((name, key))
        self._raised[(name, key)] = now
        if last is not None and now - last < self.window:
            return None  # still the same episode: raised once
        if len(self._raised) > _MAX_KEYS:
            self._raised.pop(next(iter(self._raised)))
        return self._patterns[name](self, key, [e for _, e in events], now)

    def _holds(self, name: str, key: str, series: _Series) -> bool:
        """Whether the pattern holds, from the series' tallies."""
        n = len(series.events)
        if name == "authorization_stripped":
            return series.carried == 0 and n >= self.min_stripped
        if name == "credential_stuffing":
            return n >= self.min_blocked
        if name == "clock_skew" and key.startswith("issuer "):
            return n >= self.min_count and len(series.clients) >= 2  # one: its own key
        return n >= self.min_count

    _patterns: ClassVar[dict[str, Callable[..., Finding | None]]] = {}

    def _make(self, name: str, key: str, now: float, count: int, message: str,
              **measured: object) -> Finding:
        return Finding(finding=name, key=key, time=now, count=count,
                       window_seconds=self.window, message=message, fix=FIXES[name],
                       measured=measured)

    # -- the patterns --------------------------------------------------------------------

    def _clock_skew(self, key: str, events: list[AuthEvent], now: float) -> Finding | None:
        skews = [e.skew_seconds for e in events if e.skew_seconds is not None]
        skew = median(skews)
        ahead = Counter(e.reason for e in events).most_common(1)[0][0]
        direction = (f"nbf/iat lie {skew:.1f} s in the server's future"
                     if ahead == "token_not_yet_valid"
                     else f"tokens expired {skew:.1f} s before they arrived")
        return self._make("clock_skew", key, now, len(events),
                          f"{len(events)} refusals for {key} in {self.window:g} s with a "
                          f"small clock skew: {direction} (median).",
                          skew_seconds=skew, reason=ahead)

    def _authorization_stripped(self, key: str, events: list[AuthEvent],
                                now: float) -> Finding | None:
        # all of them credentials_missing without an Authorization field (``_holds``)
        routes = Counter(e.route for e in events).most_common(3)
        return self._make("authorization_stripped", key, now, len(events),
                          f"{len(events)} requests through {key} in {self.window:g} s "
                          f"reached protected routes with no Authorization field, and none "
                          f"through it carried credentials: the proxy drops the field.",
                          routes=[r for r, _ in routes])

    def _wrong_audience(self, key: str, events: list[AuthEvent],
                        now: float) -> Finding | None:
        aud, _ = Counter(e.audience for e in events).most_common(1)[0]
        issuer, _ = Counter(e.issuer for e in events).most_common(1)[0]
        what = f"aud={aud}" if aud is not None else "no aud at all"
        return self._make("wrong_audience", key, now, len(events),
                          f"{len(events)} tokens from {key} in {self.window:g} s were not "
                          f"issued for this API ({what}, iss={issuer}).",
                          audience=aud, issuer=issuer)

    def _unknown_kid(self, key: str, events: list[AuthEvent], now: float) -> Finding | None:
        issuer, _ = Counter(e.issuer for e in events).most_common(1)[0]
        return self._make("unknown_kid", key, now, len(events),
                          f"{len(events)} tokens signed with {key} (iss={issuer}) in "
                          f"{self.window:g} s were refused: a key this server does not "
                          f"know.", kid=key.removeprefix("kid "), issuer=issuer)

    def _auth_unavailable(self, key: str, events: list[AuthEvent],
                          now: float) -> Finding | None:
        routes = Counter(e.route for e in events).most_common(3)
        return self._make("auth_unavailable", key, now, len(events),
                          f"{len(events)} requests answered 503 auth_unavailable in "
                          f"{self.window:g} s: an authentication backend is down.",
                          routes=[r for r, _ in routes])

    def _credential_stuffing(self, key: str, events: list[AuthEvent],
                             now: float) -> Finding | None:
        clients = Counter(e.client for e in events)
        top, top_count = clients.most_common(1)[0]
        return self._make("credential_stuffing", key, now, len(events),
                          f"{len(events)} requests refused as too_many_attempts in "
                          f"{self.window:g} s from {len(clients)} addresses (most from "
                          f"{top}: {top_count}).",
                          clients=len(clients), top_client=top)


Detector._patterns.update({
    "clock_skew": Detector._clock_skew,
    "authorization_stripped": Detector._authorization_stripped,
    "wrong_audience": Detector._wrong_audience,
    "unknown_kid": Detector._unknown_kid,
    "auth_unavailable": Detector._auth_unavailable,
    "credential_stuffing": Detector._credential_stuffing,
})
