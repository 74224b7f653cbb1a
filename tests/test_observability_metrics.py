"""The OpenTelemetry instruments, read back with the SDK's in-memory metric reader."""

from __future__ import annotations

import base64
import math
import random
from bisect import bisect_left
from collections.abc import Iterator
from itertools import accumulate
from typing import Any

import jwt
import pytest
import time_machine
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from authguard import BruteForceGuard, Reason
from authguard.observability import AuthMetrics, Detector, Observability
from authguard.observability.metrics import BUCKETS
from obs_app import AUDIENCE, ISSUER, PASSWORD, SECRET, make_app
from rawasgi import http

NOW = 1_900_000_000.0


@pytest.fixture(autouse=True)
def _system_clock() -> Iterator[None]:
    """pyjwt checks the tokens against the system clock: hold it at NOW."""
    with time_machine.travel(NOW, tick=False):
        yield


def _points(reader: InMemoryMetricReader) -> dict[str, list[Any]]:
    data = reader.get_metrics_data()
    out: dict[str, list[Any]] = {}
    if data is None:
        return out
    for rm in data.resource_metrics:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                out[metric.name] = list(metric.data.data_points)
    return out


def _by_attrs(points: list[Any]) -> dict[tuple[tuple[str, Any], ...], Any]:
    return {tuple(sorted(p.attributes.items())): p for p in points}


@pytest.fixture
def reader() -> InMemoryMetricReader:
    return InMemoryMetricReader()


def _app(reader: InMemoryMetricReader, decision_time: Any = True, *,
         time_refusals: bool = False, **kw: Any) -> Any:
    metrics = AuthMetrics(MeterProvider(metric_readers=[reader]), decision_time=decision_time,
                          time_refusals=time_refusals)
    app = make_app(Observability(metrics=metrics, **kw), clock=lambda: NOW,
                   brute_force=BruteForceGuard(per_account=2, per_client=100))
    app.state.metrics = metrics
    return app


def _token(**claims: Any) -> bytes:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "exp": NOW + 60, **claims}
    return b"Bearer " + jwt.encode(payload, SECRET, algorithm="HS256").encode()


def _basic(password: str) -> bytes:
    return b"Basic " + base64.b64encode(f"alice:{password}".encode())


def test_tallied_decision_time_buckets_are_cumulative_and_le_inclusive() -> None:
    metrics = AuthMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    for seconds in (0.00005, 0.00006, 0.003, 0.003, 9.0):
        metrics.allowed["Bearer"].append(seconds)
    cumulative, count, total = metrics.decision_times()["allowed"]
    by_le = dict(zip(BUCKETS, cumulative, strict=True))
    assert by_le[0.00005] == 1  # a value on a bound counts in that bound's bucket (le)
    assert by_le[0.0001] == 2 and by_le[0.0025] == 2 and by_le[0.005] == 4
    assert by_le[2.5] == 4 and count == 5  # 9 s: only in +Inf
    assert total == pytest.approx(9.00611)
    assert metrics.decision_times()["refused"] == ([0] * len(BUCKETS), 0, 0.0)


@pytest.mark.parametrize("batches", [
    # times in every bucket, on every bound, just above each, and above the last
    "spread",
    # at speed: all but a few under the first bound, the slowest in a middle bucket
    "fast",
    # one time, then one on a bound
    "single",
])
def test_tallied_buckets_match_each_time_placed_by_its_bound(batches: str) -> None:
    rng = random.Random(7)
    if batches == "spread":
        times = [*BUCKETS, *(b * 1.000001 for b in BUCKETS),
                 *(10 ** rng.uniform(-6, 1) for _ in range(5000))]
        rng.shuffle(times)
        split = [times[start:start + 1000] for start in range(0, len(times), 1000)]
    elif batches == "fast":
        times = [rng.uniform(5e-6, 5e-5) for _ in range(4000)] + [0.00007, 0.0003, 0.0007]
        rng.shuffle(times)
        split = [times]
    else:
        split = [[0.0003], [0.001]]
    metrics = AuthMetrics(MeterProvider(metric_readers=[InMemoryMetricReader()]))
    for batch in split:  # several folds add up
        metrics.allowed[None].extend(batch)
        metrics.fold()
    per_bucket = [0] * (len(BUCKETS) + 1)  # the reference: a bisect per time
    for seconds in (t for batch in split for t in batch):
        per_bucket[bisect_left(BUCKETS, seconds)] += 1
    cumulative, count, total = metrics.decision_times()["allowed"]
    assert cumulative == list(accumulate(per_bucket))[:-1]
    assert count == sum(map(len, split))
    assert total == pytest.approx(math.fsum(t for batch in split for t in batch))


@pytest.mark.parametrize("decision_time", [True, "sdk"])
async def test_refusals_are_counted_by_reason_status_scheme_and_route_template(
        reader: InMemoryMetricReader, decision_time: Any) -> None:
    app = _app(reader, decision_time, time_refusals=True)
    for path in ("/items/1", "/items/2", "/items/%0Aevil"):
        assert (await http(app, "GET", path)).status == 401
    assert (await http(app, "GET", "/api/things/7",
                       [(b"authorization", _token(exp=NOW - 100))])).status == 401
    assert (await http(app, "GET", "/items/3",
                       [(b"authorization", _token())])).status == 200
    assert (await http(app, "GET", "/items/3",
                       [(b"authorization", _basic(PASSWORD))])).status == 200
    points = _points(reader)
    refusals = _by_attrs(points["authguard.refusals"])
    key = (("reason", "credentials_missing"), ("route", "/items/{item_id}"),
           ("scheme", "none"), ("status", "401"))
    assert refusals[key].value == 3  # three paths, one template
    expired = (("reason", "token_expired"), ("route", "/api/things/{thing_id:int}"),
               ("scheme", "Bearer"), ("status", "401"))
    assert refusals[expired].value == 1
    assert len(refusals) == 2  # bounded: no path, no client, no subject
    allowed = _by_attrs(points["authguard.allowed"])
    assert allowed[(("scheme", "Bearer"),)].value == 1
    assert allowed[(("scheme", "Basic"),)].value == 1
    if decision_time == "sdk":  # an OpenTelemetry histogram
        durations = _by_attrs(points["authguard.decision.duration"])
        assert durations[(("outcome", "refused"),)].count == 4
        assert durations[(("outcome", "allowed"),)].count == 2
        assert 0 < durations[(("outcome", "allowed"),)].sum < 1.0  # seconds
    else:  # tallied in process, for the Prometheus collector; no SDK histogram
        assert "authguard.decision.duration" not in points
        metrics = app.state.metrics
        times = metrics.decision_times()
        assert times["refused"][1] == 4 and times["allowed"][1] == 2
        assert 0 < times["allowed"][2] < 1.0  # seconds
        cumulative = times["allowed"][0]
        assert cumulative == sorted(cumulative) and cumulative[-1] <= 2
    sizes = _by_attrs(points["authguard.cache.size"])
    assert sizes[(("scheme", "Bearer"),)].value == 1  # one verified token remembered
    assert sizes[(("scheme", "Basic"),)].value == 1


@pytest.mark.parametrize("decision_time", [True, "sdk"])
async def test_refusals_are_counted_but_not_timed_unless_asked(
        reader: InMemoryMetricReader, decision_time: Any) -> None:
    app = _app(reader, decision_time)
    assert (await http(app, "GET", "/items/1")).status == 401
    assert (await http(app, "GET", "/items/3", [(b"authorization", _token())])).status == 200
    points = _points(reader)
    assert [p.value for p in points["authguard.refusals"]] == [1]
    if decision_time == "sdk":
        durations = _by_attrs(points["authguard.decision.duration"])
        assert (("outcome", "refused"),) not in durations
        assert durations[(("outcome", "allowed"),)].count == 1
    else:
        times = app.state.metrics.decision_times()
        assert times["refused"][1] == 0 and times["allowed"][1] == 1


@pytest.mark.parametrize("decision_time", [False, "sdk"])
async def test_allowed_requests_are_counted_whatever_the_histogram(
        reader: InMemoryMetricReader, decision_time: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from authguard.observability import observer

    monkeypatch.setattr(observer, "FOLD_AT", 16)
    app = _app(reader, decision_time)
    metrics = app.state.metrics
    for headers in ([(b"authorization", _token())], [(b"authorization", _basic(PASSWORD))]):
        for _ in range(16 + 2):  # across a fold
            assert (await http(app, "GET", "/items/3", headers)).status == 200
    assert len(metrics.allowed["Basic"]) == 2  # folded as the list filled
    assert metrics.allowed_counts() == {"Bearer": 18, "Basic": 18}
    assert all(not times for times in metrics.allowed.values())  # folded: emptied
    points = _points(reader)
    assert {p.attributes["scheme"]: p.value for p in points["authguard.allowed"]} == {
        "Bearer": 18, "Basic": 18}
    assert metrics.decision_times()["allowed"][1] == 0  # nothing tallied in process
    if decision_time == "sdk":  # every time recorded once, in the SDK's histogram
        durations = _by_attrs(points["authguard.decision.duration"])
        assert durations[(("outcome", "allowed"),)].count == 2 * 18
    else:
        assert "authguard.decision.duration" not in points


async def test_the_middleware_folds_its_lists_when_one_fills(
        reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch) -> None:
    from authguard.observability import observer

    monkeypatch.setattr(observer, "FOLD_AT", 10)  # ten decision times per list
    app = _app(reader, time_refusals=True)
    metrics = app.state.metrics
    token = [(b"authorization", _token())]
    for _ in range(10 + 3):  # bounded without a read: folded as the list filled
        assert (await http(app, "GET", "/items/1")).status == 401
    assert len(metrics.refused_times) == 3
    # counted in place, by route, scheme and reason: nothing to fold
    assert metrics.refused == {"/items/{item_id}": {None: {"credentials_missing": 10 + 3}}}
    for _ in range(10 + 3):
        assert (await http(app, "GET", "/items/1", token)).status == 200
    assert len(metrics.allowed["Bearer"]) == 3
    assert metrics.refusal_counts() == {
        ("credentials_missing", 401, "none", "/items/{item_id}"): 10 + 3}
    assert metrics.allowed_counts() == {"Bearer": 10 + 3}
    assert [type(reason) for reason, *_ in metrics.refusal_counts()] == [str]  # plain
    assert metrics.decision_times()["refused"][1] == 10 + 3


async def test_metrics_set_after_the_observability_is_made_count(
        reader: InMemoryMetricReader) -> None:
    """What the request path reads is derived again when a field is set later."""
    obs = Observability(log_events=False)
    app = make_app(obs, clock=lambda: NOW)
    assert (await http(app, "GET", "/items/1")).status == 401
    metrics = obs.metrics = AuthMetrics(MeterProvider(metric_readers=[reader]))
    assert (await http(app, "GET", "/items/1")).status == 401
    assert list(metrics.refusal_counts().values()) == [1]
    obs.metrics = None
    assert (await http(app, "GET", "/items/1")).status == 401
    assert list(metrics.refusal_counts().values()) == [1]


async def test_allowed_events_on_or_off_even_when_set_after_the_fact() -> None:
    events: list[Any] = []
    obs = Observability(log_events=False, on_event=events.append)
    app = make_app(obs, clock=lambda: NOW)
    token = [(b"authorization", _token())]
    assert (await http(app, "GET", "/items/1", token)).status == 200
    assert events == []  # off by default
    obs.allowed_events = True
    assert (await http(app, "GET", "/items/1", token)).status == 200
    assert [e.event for e in events] == ["allowed"]
    obs.allowed_events = False
    assert (await http(app, "GET", "/items/1", token)).status == 200
    assert len(events) == 1


async def test_blocked_keys_gauge_and_findings_counter(reader: InMemoryMetricReader) -> None:
    app = _app(reader, detector=Detector(min_blocked=3))
    statuses = []
    for _ in range(6):
        answer = await http(app, "POST", "/items/1",
                            [(b"authorization", _basic("wrong"))], client=("192.0.2.1", 1))
        statuses.append(answer.status)
    assert statuses == [401, 401, 429, 429, 429, 429]
    points = _points(reader)
    assert points["authguard.bruteforce.blocked"][0].value == 1
    findings = _by_attrs(points["authguard.findings"])
    assert findings[(("finding", "credential_stuffing"),)].value == 1  # raised once


async def test_blocked_gauge_forgets_a_client_after_the_window_and_is_bounded(
        reader: InMemoryMetricReader, monkeypatch: pytest.MonkeyPatch) -> None:
    import authguard.bruteforce as bruteforce

    monkeypatch.setattr(bruteforce, "_MAX_REFUSED", 2)
    bf = BruteForceGuard(per_pair=1, per_account=100, per_client=100, window=60)
    app = make_app(Observability(metrics=AuthMetrics(MeterProvider(metric_readers=[reader]))),
                   clock=lambda: NOW, brute_force=bf)
    steps = [("192.0.2.1", [401, 429]), ("192.0.2.2", [401, 429]), ("192.0.2.3", [401, 429]),
             ("192.0.2.2", [429, 429]), ("192.0.2.4", [401, 429])]  # 429 after one failure
    for client, expected in steps:
        answers = [(await http(app, "POST", "/items/1", [(b"authorization", _basic("no"))],
                               client=(client, 1))).status for _ in range(2)]
        assert answers == expected
    # at most two remembered, those refused last (.2 again after .3, then .4)
    assert sorted(bf._refused) == ["192.0.2.2", "192.0.2.4"]
    assert _points(reader)["authguard.bruteforce.blocked"][0].value == 2
    assert bf.refused_clients(NOW + 59) == 2
    assert bf.refused_clients(NOW + 60) == 0  # out of the window


async def test_without_metrics_nothing_is_recorded(reader: InMemoryMetricReader) -> None:
    MeterProvider(metric_readers=[reader])  # a provider nobody gave the guard
    app = make_app(Observability())
    assert (await http(app, "GET", "/items/1")).status == 401
    assert _points(reader) == {}


def test_observability_api_is_pinned() -> None:
    import authguard.observability as obs

    assert set(obs.__all__) == {
        "FIXES", "AuthEvent", "AuthMetrics", "Detector", "EventFormatter", "EventHook",
        "Finding", "Observability", "TokenFacts", "record_allowed", "record_refusal",
        "route_template", "safe_text"}
    for name in obs.__all__:
        assert getattr(obs, name) is not None


async def test_without_the_opentelemetry_api_metrics_are_no_ops(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import authguard.observability.metrics as module

    monkeypatch.setattr(module, "_otel", None)
    metrics = AuthMetrics()
    assert not metrics.enabled and not metrics.timed
    app = make_app(Observability(metrics=metrics))
    assert (await http(app, "GET", "/items/1")).status == 401
    assert (await http(app, "GET", "/items/1", [(b"authorization", _token())])).status == 200
    assert metrics.refused == {} and not metrics.allowed  # nothing kept


async def test_the_hook_gets_events_and_its_errors_never_break_a_response(
        caplog: pytest.LogCaptureFixture) -> None:
    from authguard.observability import AuthEvent

    seen: list[AuthEvent] = []

    def hook(item: Any) -> None:
        seen.append(item)
        raise RuntimeError("sink down\nforged")

    app = make_app(Observability(on_event=hook))
    import logging
    with caplog.at_level(logging.WARNING, logger="authguard"):
        answer = await http(app, "GET", "/items/9", [(b"x-request-id", b"abc-1")])
    assert answer.status == 401
    (event,) = seen
    assert (event.event, event.reason, event.route, event.request_id) == (
        "refused", "credentials_missing", "/items/{item_id}", "abc-1")
    assert event.decision_ms is not None and event.decision_ms >= 0
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.getMessage() == "authguard: the on_event hook failed: RuntimeError"


async def test_cache_hit_ratio_and_lookups(reader: InMemoryMetricReader) -> None:
    """The verified-credential caches report their hits and misses: a token sent three
    times is verified once (1 miss, 2 hits); so is a password (Basic)."""
    app = _app(reader)
    token = _token()
    for _ in range(3):
        assert (await http(app, "GET", "/items/1", [(b"authorization", token)])).status == 200
        assert (await http(app, "GET", "/items/1",
                           [(b"authorization", _basic(PASSWORD))])).status == 200
    points = _points(reader)
    ratios = _by_attrs(points["authguard.cache.hit_ratio"])
    assert ratios[(("scheme", "Bearer"),)].value == pytest.approx(2 / 3)
    assert ratios[(("scheme", "Basic"),)].value == pytest.approx(2 / 3)
    lookups = _by_attrs(points["authguard.cache.lookups"])
    assert lookups[(("result", "hit"), ("scheme", "Bearer"))].value == 2
    assert lookups[(("result", "miss"), ("scheme", "Bearer"))].value == 1
    assert lookups[(("result", "hit"), ("scheme", "Basic"))].value == 2


def test_counts_survive_folding_and_reads_from_the_exporters_thread(
        reader: InMemoryMetricReader) -> None:
    """Refusals are counted in place and allowed requests appended (a fold adds the lists
    to the totals, when a list fills and before every read). An exporter reading in its
    own thread meanwhile loses nothing; nor do threads counting at once."""
    import sys
    import threading

    from authguard.observability.metrics import FOLD_AT

    metrics = AuthMetrics(MeterProvider(metric_readers=[reader]), time_refusals=True)
    total = 5 * FOLD_AT + 7
    stop = threading.Event()

    def export() -> None:
        while not stop.is_set():
            reader.collect()
            metrics.decision_times()

    def refuse(route: str) -> None:  # what the middleware does per refusal (observer.py)
        for _ in range(total):
            try:
                metrics.refused[route]["Bearer"][Reason.TOKEN_EXPIRED] += 1
            except KeyError:
                metrics.count_refusal(Reason.TOKEN_EXPIRED, "Bearer", route)

    exporter = threading.Thread(target=export)
    others = [threading.Thread(target=refuse, args=("/other",)) for _ in range(2)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    exporter.start()
    for thread in others:
        thread.start()
    try:
        for i in range(total):  # what the middleware does per request (observer.py)
            try:
                metrics.refused["/items/{id}"]["Bearer"][Reason.TOKEN_EXPIRED] += 1
            except KeyError:
                metrics.count_refusal(Reason.TOKEN_EXPIRED, "Bearer", "/items/{id}")
            metrics.refused_times.append(0.0003)
            metrics.allowed["Bearer" if i % 2 else None].append(0.00004)
            if len(metrics.refused_times) >= FOLD_AT:
                metrics.fold()
    finally:
        for thread in others:
            thread.join()
        stop.set()
        exporter.join()
        sys.setswitchinterval(switch)
    assert len(metrics.refused_times) < FOLD_AT  # folded as it filled: bounded
    assert metrics.refusal_counts() == {
        ("token_expired", 401, "Bearer", "/items/{id}"): total,
        ("token_expired", 401, "Bearer", "/other"): 2 * total}
    assert metrics.allowed_counts() == {"Bearer": total // 2, "none": total - total // 2}
    times = metrics.decision_times()
    assert times["refused"][1] == times["allowed"][1] == total
    assert dict(zip(BUCKETS, times["refused"][0], strict=True))[0.00025] == 0
    assert dict(zip(BUCKETS, times["refused"][0], strict=True))[0.0005] == total
    assert times["refused"][2] == pytest.approx(total * 0.0003)
    refusals = _by_attrs(_points(reader)["authguard.refusals"])
    key = (("reason", "token_expired"), ("route", "/items/{id}"), ("scheme", "Bearer"),
           ("status", "401"))
    assert refusals[key].value == total


def test_threads_refusing_at_once_lose_no_count(reader: InMemoryMetricReader) -> None:
    """Threads refusing at once, through the middleware's recorder (in place; the first
    of a kind makes its entry) and through ``count_refusal`` (public, a ``setdefault`` per
    level): nothing is lost, on routes none has seen as on one they share."""
    import sys
    import threading
    from types import SimpleNamespace

    from authguard.observability import record_refusal
    from authguard.routing import ROUTE_ENTRY

    metrics = AuthMetrics(MeterProvider(metric_readers=[reader]))
    guard: Any = SimpleNamespace(observability=Observability(metrics=metrics,
                                                             log_events=False))
    routes = [f"/r{i}" for i in range(50)] + ["/shared"] * 1500
    per_route = 200
    start = threading.Barrier(3)

    def middleware() -> None:
        scopes = [{ROUTE_ENTRY: SimpleNamespace(template=route)} for route in routes]
        start.wait()
        for scope in scopes:
            for _ in range(per_route):
                record_refusal(guard, scope, Reason.TOKEN_EXPIRED, 401, "Bearer", None)

    def by_hand() -> None:
        start.wait()
        for route in routes:
            for _ in range(per_route):
                metrics.count_refusal("token_expired", "Bearer", route)  # (its value)

    threads = [threading.Thread(target=f) for f in (middleware, middleware, by_hand)]
    switch = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(switch)
    counted = {route: by_scheme["Bearer"]["token_expired"]
               for route, by_scheme in metrics.refused.items()}
    expected = {route: 3 * per_route for route in routes[:50]}
    expected["/shared"] = 3 * per_route * 1500
    assert counted == expected


def test_a_scheme_named_by_app_code_is_escaped_when_exported(
        reader: InMemoryMetricReader) -> None:
    metrics = AuthMetrics(MeterProvider(metric_readers=[reader]))
    metrics.count_refusal(Reason.FORBIDDEN, "Evil\r\nX: y", "/admin")
    metrics.count_refusal("forbidden", None, "/admin")
    [(_, _, forged, _), (_, _, none, _)] = sorted(metrics.refusal_counts(), key=str)
    assert "\n" not in forged and "\r" not in forged and forged.startswith("Evil")
    assert none == "none"


def test_values_counted_by_hand_do_not_break_the_counts(
        reader: InMemoryMetricReader) -> None:
    metrics = AuthMetrics(MeterProvider(metric_readers=[reader]))
    metrics.count_refusal(Reason.TOKEN_EXPIRED, "Bearer", "/a")
    metrics.count_refusal("token_expired", "Bearer", "/a")  # a Reason's value: the same
    metrics.count_refusal("not-a-reason", None, "/a")
    metrics.allowed["Bearer"].append(0.001)
    assert metrics.refused["/a"]["Bearer"] == {"token_expired": 2}
    assert metrics.refusal_counts() == {("token_expired", 401, "Bearer", "/a"): 2}
    assert metrics.allowed_counts() == {"Bearer": 1}
