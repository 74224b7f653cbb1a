"""Where an event goes: the ``authguard`` logger, the ``on_event`` hook, the metrics and
the detector.

The middleware calls :func:`record_refusal` for every refusal it renders and
:func:`record_allowed` for every allowed request on a protected route. Without
``AuthGuard(observability=...)`` a refusal is logged and nothing else is done (an allowed
request costs one attribute read).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from time import perf_counter
from typing import TYPE_CHECKING

from starlette.types import Scope

from ..identity import Identity
from ..net import client_address
from ..reasons import Reason
from .detector import Detector
from .events import AuthEvent, Finding, build_event, via_proxy
from .metrics import AuthMetrics
from .safety import safe_text, scope_route

if TYPE_CHECKING:
    from ..guard import AuthGuard

__all__ = ["EventFormatter", "EventHook", "Observability", "record_allowed", "record_refusal"]

log = logging.getLogger("authguard")

EventHook = Callable[[AuthEvent | Finding], None]
"""The ``on_event`` hook: called with every event and finding, in the request's task."""


@dataclass(kw_only=True, eq=False)
class Observability:
    """What authguard reports, and where (``AuthGuard(observability=...)``).

    Attributes:
        log_events: Log each refusal (INFO) and finding (WARNING) on the ``authguard``
            logger, the event's fields in the record's ``authguard`` attribute.
        allowed_events: Make an event for each allowed request too (logged at INFO, sent
            to ``on_event``, fed to the detector). Off by default: it costs time.
        on_event: Called with every :class:`AuthEvent` and :class:`Finding` (send them to a
            queue, a SIEM, an event bus). It must not block; errors it raises are logged.
        metrics: The OpenTelemetry instruments (``AuthMetrics()`` for the global meter
            provider), or ``None``.
        detector: The systemic-cause detector, or ``None``.
    """

    log_events: bool = True
    allowed_events: bool = False
    on_event: EventHook | None = None
    metrics: AuthMetrics | None = None
    detector: Detector | None = None

    def bind(self, guard: AuthGuard) -> None:
        """Called by :class:`~authguard.AuthGuard` with itself (for the metrics' gauges)."""
        if self.metrics is not None:
            self.metrics.bind(guard)

    def emit(self, item: AuthEvent | Finding) -> None:
        """Send ``item`` to the log, the hook, the detector and the metrics."""
        if isinstance(item, Finding):
            if self.log_events:
                log.warning("finding %s on %s: %s Fix: %s", item.finding, safe_text(item.key),
                            safe_text(item.message, 1000), item.fix,
                            extra={"authguard": item.as_dict()})
            if self.metrics is not None:
                self.metrics.finding(item.finding)
        elif (self.log_events and (item.event == "refused" or self.allowed_events)
              and log.isEnabledFor(logging.INFO)):
            log.info("%s %s %s: %s %s", item.event, item.method, item.route,
                     item.status if item.status is not None else "", item.reason or "",
                     extra={"authguard": item.as_dict()})
        if self.on_event is not None and (isinstance(item, Finding) or item.event != "allowed"
                                          or self.allowed_events):
            try:
                self.on_event(item)
            except Exception as exc:
                log.warning("authguard: the on_event hook failed: %s",
                            safe_text(type(exc).__name__))
        if self.detector is not None and isinstance(item, AuthEvent):
            for finding in self.detector.observe(item):
                self.emit(finding)


class EventFormatter(logging.Formatter):
    """Formats a record of the ``authguard`` logger as one JSON line: the event's fields
    (what ``authguard report`` reads). Records without an event keep their message, in a
    ``message`` member."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a JSON line (``ensure_ascii``: no control character survives)."""
        event = getattr(record, "authguard", None)
        if not isinstance(event, dict):
            event = {"level": record.levelname, "message": record.getMessage()}
        return json.dumps(event, ensure_ascii=True, default=str, separators=(",", ":"))


_PLAIN = Observability()  # when the guard has none: refusals are logged, that is all


_TOO_MANY_ATTEMPTS = Reason.TOO_MANY_ATTEMPTS
def record_refusal(guard: AuthGuard, scope: Scope, reason: Reason, status: int,
                   scheme: str | None, request_id: str | None,
                   started: float | None = None) -> None:
    """Report one refusal (called by the middleware as it renders it).

    Args:
        started: ``time.perf_counter()`` when the decision began (``None`` for a refusal
            the app raised: its time is not the decision's).
    """
    obs = guard.observability
    if obs is None:
        if not log.isEnabledFor(logging.INFO):
            return  # the usual case without observability: nothing to do
        obs = _PLAIN
    metrics = obs.metrics
    logged = obs.log_events and log.isEnabledFor(logging.INFO)
    elapsed = None if started is None else perf_counter() - started
    detector = obs.detector
    value: str = reason._value_  # an enum's .value and Reason.X are slow descriptor reads
    if not (logged or obs.on_event is not None or (
            detector is not None and detector.watches(value, status, via_proxy(scope)))):
        if metrics is not None:  # counted only: a key from values at hand, no event
            metrics.count_refused(value, status, scheme, scope_route(scope), elapsed)
            if reason is _TOO_MANY_ATTEMPTS:
                metrics.blocked(client_address(scope, guard.network), guard.clock())
        return
    event = build_event("refused", scope, now=guard.clock(), network=guard.network,
                        reason=reason, status=status, scheme=scheme, request_id=request_id,
                        decision_ms=None if elapsed is None else elapsed * 1000,
                        authenticators=guard.authenticators)
    if metrics is not None:
        metrics.count_refused(value, status, scheme, event.route or "", elapsed)
        if reason is Reason.TOO_MANY_ATTEMPTS:
            metrics.blocked(event.client, event.time)
    obs.emit(event)


def record_allowed(guard: AuthGuard, scope: Scope, identity: Identity | None,
                   elapsed: float) -> None:
    """Report one allowed request on a protected route (``elapsed``: the decision's
    time, in seconds). Nothing happens unless metrics, the detector or allowed events
    are on."""
    obs = guard.observability
    if obs is None:
        return
    metrics = obs.metrics
    if metrics is not None:
        metrics.count_allowed(identity.scheme if identity is not None else None, elapsed)
    # The detector alone needs only requests that came through a proxy (to tell whether
    # the proxy passes credentials): the others cost nothing more.
    if obs.allowed_events or (obs.detector is not None and via_proxy(scope) is not None):
        obs.emit(build_event("allowed", scope, now=guard.clock(), network=guard.network,
                             identity=identity, decision_ms=elapsed * 1000))
