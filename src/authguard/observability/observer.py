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
from dataclasses import dataclass, field
from time import perf_counter
from typing import TYPE_CHECKING, Any

from starlette.types import Scope

from ..identity import Identity
from ..reasons import Reason
from ..routing import ROUTE_ENTRY
from .detector import Detector
from .events import AuthEvent, Finding, build_event, via_proxy
from .metrics import FOLD_AT, AuthMetrics
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

    # Read on every request, so kept as plain attributes, derived from the fields above
    # (again whenever one of them is set): the metrics' counts and lists, and whether
    # anything besides the log consumes events.
    _refused: dict[str, dict[str | None, dict[str, int]]] | None = field(
        default=None, init=False, repr=False)
    _refused_times: list[float] | None = field(default=None, init=False, repr=False)
    _allowed: dict[str | None, list[float]] | None = field(default=None, init=False,
                                                           repr=False)
    _consumes: bool = field(default=False, init=False, repr=False)
    _allowed_consumed: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._derive()

    def __setattr__(self, name: str, value: Any) -> None:
        super().__setattr__(name, value)
        if name in ("metrics", "on_event", "detector", "allowed_events"):
            # (while __init__ runs, the fields not set yet read as their class defaults)
            self._derive()

    def _derive(self) -> None:
        set_ = super().__setattr__
        set_("_consumes", self.on_event is not None or self.detector is not None)
        set_("_allowed_consumed", self.allowed_events or self.detector is not None)
        metrics = self.metrics
        if metrics is None or not metrics.enabled:  # (no OpenTelemetry API: no counting)
            for name in ("_refused", "_refused_times", "_allowed"):
                set_(name, None)
            return
        timed = metrics.tallied or metrics.timed
        set_("_refused", metrics.refused)
        set_("_refused_times", metrics.refused_times if timed and metrics.time_refusals
             else None)
        set_("_allowed", metrics.allowed)

    def _fold(self) -> None:  # a list of the metrics is full
        if self.metrics is not None:
            self.metrics.fold()

    def _count_refusal(self, reason: Reason, scheme: str | None, route: str) -> None:
        if self.metrics is not None:  # the first refusal of its kind
            self.metrics.count_refusal(reason, scheme, route)

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


def record_refusal(guard: AuthGuard, scope: Scope, reason: Reason, status: int,
                   scheme: str | None, request_id: str | None,
                   started: float | None = None) -> None:
    """Report one refusal (called by the middleware as it renders it): count it, and make
    its event if anything consumes one.

    Args:
        started: ``time.perf_counter()`` when the decision began (``None`` for a refusal
            the app raised: its time is not the decision's).
    """
    obs = guard.observability
    if obs is None:
        if not log.isEnabledFor(logging.INFO):
            return  # the usual case without observability: nothing to do
        obs = _PLAIN
    counts = obs._refused
    if counts is not None:  # counted in place (AuthMetrics.refused)
        try:
            route = scope[ROUTE_ENTRY].template  # the route's, found by the middleware
        except KeyError:  # rendered without the middleware (an integration)
            route = scope_route(scope)
        try:
            counts[route][scheme][reason] += 1  # (the member: it is its value, a str)
        except KeyError:
            obs._count_refusal(reason, scheme, route)
        times = obs._refused_times
        if times is not None and started is not None:  # time_refusals
            times.append(perf_counter() - started)
            if len(times) >= FOLD_AT:
                obs._fold()
    if not (obs.log_events and log.isEnabledFor(logging.INFO)):
        if not obs._consumes:
            return  # counted, and nothing else wants it
        detector = obs.detector
        if obs.on_event is None and (detector is None or not detector.watches(
                reason._value_, status, via_proxy(scope))):
            return
    ended = perf_counter()
    obs.emit(build_event("refused", scope, now=guard.clock(), network=guard.network,
                         reason=reason, status=status, scheme=scheme, request_id=request_id,
                         decision_ms=None if started is None else (ended - started) * 1000,
                         authenticators=guard.authenticators))


def record_allowed(guard: AuthGuard, scope: Scope, identity: Identity | None,
                   started: float) -> None:
    """Report one allowed request on a protected route (``started``: the
    ``time.perf_counter()`` of the decision's start). Nothing happens unless metrics, the
    detector or allowed events are on."""
    obs = guard.observability
    if obs is None:
        return
    allowed = obs._allowed
    if allowed is not None:  # counted by appending its time to its scheme's list
        times = allowed[identity.scheme if identity is not None else None]
        times.append(perf_counter() - started)
        if len(times) >= FOLD_AT:
            obs._fold()
    # The detector alone needs only requests that came through a proxy (to tell whether
    # the proxy passes credentials): the others cost nothing more.
    if obs._allowed_consumed and (obs.allowed_events or via_proxy(scope) is not None):
        obs.emit(build_event("allowed", scope, now=guard.clock(), network=guard.network,
                             identity=identity,
                             decision_ms=(perf_counter() - started) * 1000))
