"""Metrics through the OpenTelemetry API (``pip install 'authguard[otel]'``).

Instruments, on the meter ``authguard`` (Prometheus names in brackets):

- ``authguard.refusals`` [``authguard_refusals_total``]: counter of refusals, attributes
  ``reason``, ``status``, ``scheme``, ``route``.
- ``authguard.allowed`` [``authguard_allowed_total``]: counter of allowed requests on
  protected routes, attribute ``scheme``.
- ``authguard.decision.duration`` [``authguard_decision_duration_seconds``]: histogram of
  the decision's time, attribute ``outcome`` (``allowed`` / ``refused``). By default it is
  tallied in process (fixed buckets, :data:`BUCKETS`) and exported as a real Prometheus
  histogram by :meth:`AuthMetrics.prometheus_collector`; ``decision_time="sdk"`` records
  it in an OpenTelemetry histogram instead (every exporter, one SDK call per request).
- ``authguard.findings`` [``authguard_findings_total``]: counter of the detector's
  findings, attribute ``finding``.
- ``authguard.cache.size`` [``authguard_cache_size``]: gauge of the entries in each
  authenticator's verified-credential cache, attribute ``scheme``.
- ``authguard.cache.hit_ratio`` [``authguard_cache_hit_ratio``]: gauge of the share of
  that cache's lookups answered from it since start-up, attribute ``scheme``; with
  ``authguard.cache.lookups`` [``authguard_cache_lookups_total``], a counter of lookups
  by ``scheme`` and ``result`` (``hit`` / ``miss``), for a rate over any window.
- ``authguard.bruteforce.blocked`` [``authguard_bruteforce_blocked``]: gauge of the
  client addresses the brute-force guard refused within its window.

Attribute values are bounded: reasons and schemes come from the configuration, routes are
path templates (``"<unmatched>"`` for the rest); no subject, path or address is an
attribute. Without the ``opentelemetry-api`` package every call is a no-op; without an
SDK configured, the API's own no-op meter is used.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from operator import lt
from threading import Lock
from typing import TYPE_CHECKING, Any, Literal

from ..authenticators.base import CacheStats, ReportsCache
from ..reasons import Reason
from .safety import safe_text

if TYPE_CHECKING:
    from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation

    from ..guard import AuthGuard

try:
    from opentelemetry import metrics as _otel
except ImportError:  # the optional extra is not installed
    _otel = None  # type: ignore[assignment]

__all__ = ["FOLD_AT", "AuthMetrics", "BUCKETS"]

BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
           0.1, 0.25, 0.5, 1.0, 2.5)
"""Histogram bucket bounds of ``authguard.decision.duration``, in seconds."""
# the test of a time above the first bound (``bound < time``, called from C by ``filter``)
_ABOVE_FIRST: Callable[[float], bool] = partial(lt, BUCKETS[0])


class AuthMetrics:
    """The instruments; ``meter_provider`` defaults to the global one.

    Args:
        meter_provider: An OpenTelemetry ``MeterProvider`` (e.g. the SDK's, with a
            Prometheus or OTLP reader); ``None`` for the global provider.
        decision_time: The decision-time histogram. ``True`` (default): tallied in process
            (a time appended per request, tallied into the buckets per batch) and exported,
            as a Prometheus histogram, by the collector :meth:`prometheus_collector`
            returns (the OpenTelemetry API has no observable histogram). ``"sdk"``: an
            OpenTelemetry histogram, exported by every reader, at the cost of one SDK
            ``record`` per request (see ``benchmarks/observability.py``). ``False``: none.
        time_refusals: Time refused decisions too (``outcome="refused"``). Off by default:
            the histogram is of the time authentication adds to the requests it lets
            through; a refusal's time costs 1 to 2 % of a refusal (a second clock read,
            an append, its share of the fold), which the counters' 3 % budget on refusals
            does not leave room for.
    """

    def __init__(self, meter_provider: MeterProvider | None = None, *,
                 decision_time: bool | Literal["sdk"] = True,
                 time_refusals: bool = False) -> None:
        self.enabled = _otel is not None
        self.timed = self.enabled and decision_time == "sdk"
        self.tallied = self.enabled and decision_time is True
        self.time_refusals = time_refusals
        # The middleware counts a refusal in place (``observer.record_refusal``: three
        # dict lookups and an add) and an allowed request by appending its time to a list
        # (``record_allowed``); the lists are folded into the totals, by C-level passes
        # over a batch (a filter, a sort of the slow times), when one holds ``FOLD_AT``
        # values and before every read.
        self.refused: dict[str, dict[str | None, dict[str, int]]] = {}
        """Refusals counted so far: route template → scheme → reason (a
        :class:`~authguard.Reason`, or its value: the same key) → count. The middleware
        adds one in place; the first of its kind goes through :meth:`count_refusal`, which
        makes the entry."""
        # Decision times (seconds) since the last fold. With ``"sdk"`` each is also
        # recorded in the SDK's histogram as it comes (its ``record`` is too slow to make a
        # few hundred at once, on the time of the one request that folds).
        self.refused_times: list[float] = []
        """Decision times of refusals (with ``time_refusals``)."""
        self.allowed: defaultdict[str | None, list[float]] = defaultdict(
            lambda: self._times("allowed"))
        """Allowed requests since the last :meth:`fold`, by scheme (``None``: an anonymous
        identity): their decision times, one per request (its count is the list's
        length, so a request costs one append)."""
        self._allowed_n: Counter[str | None] = Counter()
        # per outcome: a count per bucket (the last one: above every bound), and the sum
        self._tally: dict[str, list[float]] = {
            outcome: [0] * (len(BUCKETS) + 1) + [0.0] for outcome in _OUTCOMES}
        self._folding = Lock()  # the exporter's thread reads while the app counts
        self._guards: list[AuthGuard] = []
        if _otel is None:
            return
        meter = (meter_provider or _otel.get_meter_provider()).get_meter("authguard")
        # The counters are counted here (in place, or an append folded in batches) and
        # read by the SDK when it collects: an OpenTelemetry ``add`` per request costs far
        # more.
        meter.create_observable_counter(
            "authguard.refusals", callbacks=[self._observe_refusals], unit="{refusal}",
            description="Refused requests, by reason, status, scheme and route template.")
        meter.create_observable_counter(
            "authguard.allowed", callbacks=[self._observe_allowed], unit="{request}",
            description="Allowed requests on protected routes, by scheme.")
        if self.timed:
            self._duration = meter.create_histogram(
                "authguard.decision.duration", unit="s", description=_DURATION_HELP,
                explicit_bucket_boundaries_advisory=list(BUCKETS))
            self.refused_times = self._times("refused")
        self._findings = meter.create_counter(
            "authguard.findings", unit="{finding}",
            description="Systemic causes named by the detector, by finding.")
        meter.create_observable_gauge(
            "authguard.cache.size", callbacks=[self._cache_sizes], unit="{entry}",
            description="Entries in the verified-credential caches, by scheme.")
        meter.create_observable_gauge(
            "authguard.cache.hit_ratio", callbacks=[self._cache_hit_ratios], unit="1",
            description="Share of verified-credential cache lookups answered from it.")
        meter.create_observable_counter(
            "authguard.cache.lookups", callbacks=[self._cache_lookups], unit="{lookup}",
            description="Verified-credential cache lookups, by scheme and result.")
        meter.create_observable_gauge(
            "authguard.bruteforce.blocked", callbacks=[self._blocked_keys], unit="{client}",
            description="Client addresses refused by the brute-force guard in its window.")

    def bind(self, guard: AuthGuard) -> None:
        """Watch ``guard``'s caches and brute-force guard for the gauges."""
        if guard not in self._guards:
            self._guards.append(guard)

    def fold(self) -> None:
        """Add what requests appended since the last fold to the totals (done by itself
        when a list fills and before the totals are read; without the
        ``opentelemetry-api`` package the lists are only emptied)."""
        with self._folding:
            self._fold()

    def _fold(self) -> None:  # with the lock held
        refused_times = _take(self.refused_times)
        # (``list`` of the items: one C-level step, while the app's thread may add a scheme)
        allowed = [(scheme, _take(times)) for scheme, times in list(self.allowed.items())]
        if not self.enabled:
            return
        for scheme, times in allowed:
            if times:
                self._allowed_n[scheme] += len(times)
                if self.tallied:
                    self._tally_times("allowed", times)
        if self.tallied and refused_times:
            self._tally_times("refused", refused_times)

    def _times(self, outcome: str) -> list[float]:
        """A list of decision times (with ``"sdk"``: one that records them as they come)."""
        return _Recorder(self._duration, outcome) if self.timed else []

    def _tally_times(self, outcome: str, times: list[float]) -> None:
        """Add ``times`` to the histogram: a C-level ``filter`` keeps the times above the
        first bound (at speed, almost every decision falls under it: that bucket is counted
        with one look at each time), then those are sorted and a bisect per bound places
        them. A fold costs a sort and one pass at most, however slow the decisions."""
        tally = self._tally[outcome]
        tally[-1] += sum(times)
        above = sorted(filter(_ABOVE_FIRST, times))  # le: a time on a bound counts in it
        tally[0] += len(times) - len(above)
        placed = 0
        for i in range(1, len(BUCKETS)):
            upto = bisect_right(above, BUCKETS[i])
            tally[i] += upto - placed
            placed = upto
        tally[len(BUCKETS)] += len(above) - placed

    def decision_times(self) -> dict[str, tuple[list[int], int, float]]:
        """The tallied decision-time histogram: per outcome, the cumulative count of each
        bucket of :data:`BUCKETS` (``le``), the total count and the sum (seconds)."""
        with self._folding:  # buckets, count and sum of the same requests
            self._fold()
            tallies = {outcome: list(tally) for outcome, tally in self._tally.items()}
        out: dict[str, tuple[list[int], int, float]] = {}
        for outcome, tally in tallies.items():
            counts = [int(n) for n in tally[:-1]]
            cumulative, running = [], 0
            for n in counts[:-1]:
                running += n
                cumulative.append(running)
            out[outcome] = (cumulative, running + counts[-1], tally[-1])
        return out

    def prometheus_collector(self) -> Any:
        """A ``prometheus_client`` collector of the tallied decision-time histogram,
        ``authguard_decision_duration_seconds`` (``_bucket{le=...}``, ``_sum``,
        ``_count``, label ``outcome``): ``registry.register(metrics.prometheus_collector())``
        next to OpenTelemetry's ``PrometheusMetricReader(registry=registry)``."""
        from prometheus_client.core import HistogramMetricFamily

        metrics = self

        class DecisionTimeCollector:
            def collect(self) -> Iterator[HistogramMetricFamily]:
                family = HistogramMetricFamily("authguard_decision_duration_seconds",
                                               _DURATION_HELP, labels=["outcome"])
                if metrics.tallied:
                    for outcome, (cumulative, count, total) in metrics.decision_times().items():
                        buckets = [(repr(le), n) for le, n in zip(BUCKETS, cumulative,
                                                                   strict=True)]
                        family.add_metric([outcome], [*buckets, ("+Inf", count)], total)
                yield family

        return DecisionTimeCollector()

    def finding(self, name: str) -> None:
        """Count one finding of the detector."""
        if self.enabled:
            self._findings.add(1, {"finding": name})

    # -- observable instruments ---------------------------------------------------------

    def count_refusal(self, reason: str, scheme: str | None, route: str) -> None:
        """Count one refusal (``reason``: a :class:`~authguard.Reason` or its value) in
        :attr:`refused`: what the middleware does for the first refusal of its kind."""
        # Each ``setdefault`` is one C-level step: an entry two threads make at once is
        # made once. The add is the middleware's: no thread switch falls inside it (a
        # read, a call and a store would let one in, losing an add made meanwhile).
        by_reason = self.refused.setdefault(route, {}).setdefault(scheme, {})
        by_reason.setdefault(reason, 0)
        by_reason[reason] += 1

    def refusal_counts(self) -> dict[tuple[str, int, str, str], int]:
        """The refusals counted so far, by (reason, status, scheme, route): the status is
        the reason's (the Reason table), the scheme escaped (``"none"`` when the refusal
        named none)."""
        out: Counter[tuple[str, int, str, str]] = Counter()
        # (each ``list`` of the items: one C-level step, while the app adds an entry)
        for route, by_scheme in list(self.refused.items()):
            for scheme, by_reason in list(by_scheme.items()):
                for reason, n in list(by_reason.items()):  # (a Reason is a str: made plain)
                    status = _STATUS.get(reason)
                    if status is not None:  # (not a reason: counted by hand, left out)
                        out[(str(reason), status, _scheme_text(scheme), route)] += n
        return dict(out)

    def allowed_counts(self) -> dict[str, int]:
        """The allowed requests counted so far, by scheme (``"none"`` for an anonymous
        identity)."""
        with self._folding:
            self._fold()
            counted = list(self._allowed_n.items())
        out: Counter[str] = Counter()
        for scheme, n in counted:
            out[_scheme_text(scheme)] += n
        return dict(out)

    def _observe_refusals(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel is not None  # noqa: S101 - only registered with the API present
        return [_otel.Observation(n, {"reason": reason, "status": str(status),
                                      "scheme": scheme, "route": route})
                for (reason, status, scheme, route), n in self.refusal_counts().items()]

    def _observe_allowed(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel is not None  # noqa: S101 - only registered with the API present
        return [_otel.Observation(n, {"scheme": scheme})
                for scheme, n in self.allowed_counts().items()]

    def _caches(self) -> list[tuple[str, CacheStats]]:
        return [(a.scheme, a.cache_stats()) for guard in self._guards
                for a in guard.authenticators if isinstance(a, ReportsCache)]

    def _cache_sizes(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel is not None  # noqa: S101 - only registered with the API present
        return [_otel.Observation(stats.size, {"scheme": scheme})
                for scheme, stats in self._caches()]

    def _cache_hit_ratios(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel is not None  # noqa: S101 - only registered with the API present
        return [_otel.Observation(stats.hits / (stats.hits + stats.misses), {"scheme": scheme})
                for scheme, stats in self._caches() if stats.hits + stats.misses]

    def _cache_lookups(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel is not None  # noqa: S101 - only registered with the API present
        out: list[Observation] = []
        for scheme, stats in self._caches():
            out.append(_otel.Observation(stats.hits, {"scheme": scheme, "result": "hit"}))
            out.append(_otel.Observation(stats.misses, {"scheme": scheme, "result": "miss"}))
        return out

    def _blocked_keys(self, options: CallbackOptions) -> Iterable[Observation]:
        assert _otel is not None  # noqa: S101 - only registered with the API present
        return [_otel.Observation(sum(guard.brute_force.refused_clients(guard.clock())
                                      for guard in self._guards
                                      if guard.brute_force is not None))]


class _Recorder(list[float]):
    """A list of decision times that records each one in the SDK's histogram as it is
    appended (``decision_time="sdk"``)."""

    __slots__ = ("attributes", "histogram")

    def __init__(self, histogram: Any, outcome: str) -> None:
        super().__init__()
        self.histogram, self.attributes = histogram, _OUTCOMES[outcome]

    def append(self, seconds: float) -> None:
        """Record ``seconds``, and keep it (to be counted at the next fold)."""
        self.histogram.record(seconds, self.attributes)
        super().append(seconds)


def _take(pending: list[Any]) -> list[Any]:
    """Empty ``pending`` and return what it held. Each step is one operation on the list:
    an append made meanwhile (by the app's thread) stays for the next fold."""
    n = len(pending)
    batch = pending[:n]
    del pending[:n]
    return batch


def _scheme_text(scheme: str | None) -> str:
    """A scheme as an attribute value (escaped and bounded; ``"none"`` for none)."""
    return "none" if scheme is None else safe_text(scheme, 32)


FOLD_AT = 4096
"""Decision times a list of :class:`AuthMetrics` holds before it is folded into the totals
(tallied into the histogram's buckets, counted). A fold's fixed part is paid once per fold,
so a few thousand requests make it a small share of each; a fold of a full list takes
about 150 µs (a few hundred when most decisions are slow), on one request in
thousands, when no exporter has read the totals meanwhile."""
_STATUS = {r.value: r.spec.status for r in Reason}
_DURATION_HELP = "Time taken by the authentication decision."
_OUTCOMES = {"allowed": {"outcome": "allowed"}, "refused": {"outcome": "refused"}}
