"""Each finding of the systemic-cause detector, produced by traffic through the middleware,
with its numbers; raised once; and not raised by traffic that does not make the pattern."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Iterator, Sequence
from typing import Any

import jwt
import pytest
import time_machine

from authguard import AuthUnavailable, BruteForceGuard, ConfigurationError
from authguard.authenticators.keys import JWTKey
from authguard.observability import FIXES, AuthEvent, Detector, Finding, Observability
from obs_app import AUDIENCE, ISSUER, SECRET, make_app
from rawasgi import http

_START = 1_900_000_000.0
_traveller: Any = None


@pytest.fixture(autouse=True)
def _system_clock() -> Iterator[None]:
    """pyjwt reads the system clock: the tests move it (and the guard's clock with it)."""
    global _traveller
    with time_machine.travel(_START, tick=False) as traveller:
        _traveller = traveller
        yield
    _traveller = None


class Clock:
    """The guard's and the tokens' clock (the system clock, moved by the test)."""

    @property
    def now(self) -> float:
        return time.time()

    @now.setter
    def now(self, value: float) -> None:
        _traveller.move_to(value)

    def __call__(self) -> float:
        return self.now


class DownKeys:
    """A key source whose backend is down."""

    async def keys_for(self, kid: str | None, algorithm: str) -> Sequence[JWTKey]:
        raise AuthUnavailable("JWKS endpoint unreachable")


def _setup(**kw: Any) -> tuple[Any, Clock, list[Finding]]:
    clock = Clock()
    found: list[Finding] = []

    def hook(item: AuthEvent | Finding) -> None:
        if isinstance(item, Finding):
            found.append(item)

    detector = Detector(window=60)
    app = make_app(Observability(detector=detector, on_event=hook), clock=clock, **kw)
    return app, clock, found


def _token(clock: Clock, headers: dict[str, str] | None = None, **claims: Any) -> bytes:
    payload = {"iss": ISSUER, "aud": AUDIENCE, "sub": "alice", "iat": clock.now,
               "exp": clock.now + 300, **claims}
    payload = {k: v for k, v in payload.items() if v is not None}
    return b"Bearer " + jwt.encode(payload, SECRET, algorithm="HS256",
                                   headers=headers).encode()


async def _send(app: Any, n: int, token: bytes | None, *, client: str = "203.0.113.5",
                path: str = "/items/1", extra: Sequence[tuple[bytes, bytes]] = (),
                clock: Clock | None = None, step: float = 1.0) -> list[int]:
    statuses = []
    for _ in range(n):
        headers = [(b"authorization", token)] if token else []
        answer = await http(app, "GET", path, [*headers, *extra], client=(client, 4000))
        statuses.append(answer.status)
        if clock is not None:
            clock.now += step
    return statuses


async def test_clock_skew_names_the_client_and_its_measured_skew(
        caplog: pytest.LogCaptureFixture) -> None:
    app, clock, found = _setup()
    ahead = _token(clock, nbf=clock.now + 45, iat=clock.now + 45, azp="mobile-app")
    with caplog.at_level(logging.WARNING, logger="authguard"):
        assert await _send(app, 4, ahead) == [401] * 4
        assert found == []  # below the threshold (5)
        assert await _send(app, 3, ahead) == [401] * 3
    (finding,) = found  # raised once, not on the 6th and 7th
    assert finding.finding == "clock_skew"
    assert finding.key == "client mobile-app"
    assert finding.count == 5
    assert finding.measured["skew_seconds"] == 45.0
    assert finding.measured["reason"] == "token_not_yet_valid"
    assert "45.0 s in the server's future" in finding.message
    assert finding.fix == FIXES["clock_skew"] and "NTP" in finding.fix
    (record,) = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert record.authguard["finding"] == "clock_skew"  # type: ignore[attr-defined]
    assert "Fix: Synchronise the clocks" in record.getMessage()


async def test_clock_skew_of_an_issuer_seen_by_many_clients() -> None:
    app, clock, found = _setup()
    for i in range(5):
        token = _token(clock, nbf=clock.now + 20, iat=clock.now + 20)
        await _send(app, 1, token, client=f"203.0.113.{i + 1}")
    assert [(f.finding, f.key, f.count, f.measured["skew_seconds"]) for f in found] == [
        ("clock_skew", f"issuer {ISSUER}", 5, 20.0)]


async def test_large_skews_are_stale_tokens_not_clocks() -> None:
    app, clock, found = _setup()
    stale = _token(clock, iat=clock.now - 7200, exp=clock.now - 3600)
    assert await _send(app, 10, stale) == [401] * 10
    assert found == []


async def test_the_window_slides() -> None:
    app, clock, found = _setup()
    ahead = _token(clock, nbf=clock.now + 400, iat=clock.now + 400)
    # one every 20 s: never 5 within 60 s
    assert await _send(app, 10, ahead, clock=clock, step=20) == [401] * 10
    assert found == []


async def test_authorization_stripped_by_one_proxy() -> None:
    app, _, found = _setup(trusted_proxies=("10.9.0.0/16",))
    via = [(b"x-forwarded-for", b"198.51.100.20")]
    assert await _send(app, 9, None, client="10.9.0.2", extra=via) == [401] * 9
    assert await _send(app, 5, None, client="10.9.0.3", extra=via) == [401] * 5  # another
    assert found == []
    assert await _send(app, 1, None, client="10.9.0.2", extra=via,
                       path="/api/things/3") == [401]
    (finding,) = found
    assert (finding.finding, finding.key, finding.count) == (
        "authorization_stripped", "proxy 10.9.0.2", 10)
    assert finding.measured["routes"] == ["/items/{item_id}", "/api/things/{thing_id:int}"]
    assert "Authorization" in finding.fix and "authguard explain" in finding.fix


async def test_no_stripping_when_credentials_come_through_the_proxy() -> None:
    app, clock, found = _setup(trusted_proxies=("10.9.0.0/16",))
    via = [(b"x-forwarded-for", b"198.51.100.20")]
    assert await _send(app, 1, _token(clock), client="10.9.0.2", extra=via) == [200]
    assert await _send(app, 12, None, client="10.9.0.2", extra=via) == [401] * 12
    assert found == []  # the proxy passes Authorization: these clients send none


async def test_missing_audience_names_the_client() -> None:
    app, clock, found = _setup()
    no_aud = _token(clock, aud=None, azp="reports-cli")
    assert await _send(app, 5, no_aud) == [401] * 5
    (finding,) = found
    assert (finding.finding, finding.key, finding.count) == (
        "wrong_audience", "client reports-cli", 5)
    assert finding.measured == {"audience": None, "issuer": ISSUER}
    assert "no aud at all" in finding.message
    assert "RFC 8707" in finding.fix


async def test_wrong_audience_from_one_client_address() -> None:
    app, clock, found = _setup()
    other = _token(clock, aud="billing-api")
    assert await _send(app, 5, other, client="198.51.100.77") == [401] * 5
    (finding,) = found
    assert (finding.key, finding.measured["audience"]) == (
        "client 198.51.100.77", "billing-api")


async def test_unknown_kid_after_a_rotation() -> None:
    app, clock, found = _setup()
    rotated = _token(clock, headers={"kid": "key-2"})
    bad_signature = _token(clock, headers={"kid": "key-1"})[:-4] + b"AAAA"
    assert await _send(app, 5, bad_signature) == [401] * 5  # a known kid: not a rotation
    assert found == []
    assert await _send(app, 5, rotated) == [401] * 5
    (finding,) = found
    assert (finding.finding, finding.key, finding.count) == ("unknown_kid", "kid key-2", 5)
    assert finding.measured == {"kid": "key-2", "issuer": ISSUER}


async def test_auth_unavailable_run() -> None:
    app, clock, found = _setup(keys=DownKeys())
    assert await _send(app, 5, _token(clock)) == [503] * 5
    (finding,) = found
    assert (finding.finding, finding.count) == ("auth_unavailable", 5)
    assert finding.measured["routes"] == ["/items/{item_id}"]
    assert "JWKS endpoint" in finding.fix


async def test_credential_stuffing_burst() -> None:
    app, _, found = _setup(brute_force=BruteForceGuard(per_account=1, per_client=1000))
    wrong = b"Basic " + base64.b64encode(b"alice:guess")
    # the first failure of each client is a 401; after it, each of them is throttled on
    # the account (429): 20 refusals of 429 from three clients
    for i in range(23):
        await _send(app, 1, wrong, client=f"192.0.2.{i % 3}")
    (finding,) = found
    assert (finding.finding, finding.count) == ("credential_stuffing", 20)
    assert finding.measured["clients"] == 3
    assert finding.measured["top_client"] in ("192.0.2.0", "192.0.2.1")  # 7 each, .2 has 6


async def test_raised_again_only_after_a_quiet_window() -> None:
    app, clock, found = _setup()
    no_aud = _token(clock, aud=None, azp="cli")
    await _send(app, 5, no_aud)
    clock.now += 30
    await _send(app, 5, no_aud)
    assert len(found) == 1
    clock.now += 61
    await _send(app, 5, no_aud)
    assert len(found) == 2


def test_detector_settings_are_checked() -> None:
    with pytest.raises(ConfigurationError, match="window"):
        Detector(window=0)
    with pytest.raises(ConfigurationError, match="min_count"):
        Detector(min_count=0)


def test_memory_is_bounded_whatever_keys_the_senders_choose() -> None:
    from authguard.observability.detector import _MAX_KEYS, _MAX_SERIES

    detector = Detector(min_count=_MAX_SERIES)
    for i in range(3 * _MAX_KEYS):
        for _ in range(3):
            detector.observe(AuthEvent(event="refused", time=1.0 * i, reason="token_wrong_"
                                       "audience", status=401, client_id=f"made-up-{i}"))
    assert len(detector._series) <= _MAX_KEYS
    assert all(len(s) <= _MAX_SERIES for s in detector._series.values())
    with pytest.raises(ConfigurationError, match="min_blocked"):
        Detector(min_blocked=_MAX_SERIES + 1)


def test_watches_agrees_with_the_series_an_event_joins() -> None:
    """``Detector.watches`` lets refusals that can make no finding skip the event: it must
    say yes for every refusal the detector would add to a series."""
    detector = Detector()
    reasons = ["credentials_missing", "credentials_invalid", "token_expired",
               "token_not_yet_valid", "token_wrong_audience", "forbidden",
               "auth_unavailable", "too_many_attempts", "insufficient_scope"]
    for reason in reasons:
        for status in (401, 403, 429, 503):
            for via in (None, "10.0.0.1"):
                event = AuthEvent(event="refused", time=_START, reason=reason, status=status,
                                  client="192.0.2.1", via=via, skew_seconds=5.0,
                                  audience_accepted=False, kid_known=False, kid="k1")
                if detector._keys(event):
                    assert Detector.watches(reason, status, via), (reason, status, via)
    assert not Detector.watches("credentials_missing", 401, None)
    assert not Detector.watches("forbidden", 403, "10.0.0.1")


async def test_refusals_the_detector_cannot_use_build_no_event(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from authguard.observability import observer

    built: list[Any] = []
    real = observer.build_event
    monkeypatch.setattr(observer, "build_event",
                        lambda *a, **kw: built.append(kw["reason"]) or real(*a, **kw))
    logging.getLogger("authguard").setLevel(logging.WARNING)  # no INFO log: no consumer
    try:
        app = make_app(Observability(detector=Detector()), clock=lambda: _START)
        assert (await http(app, "GET", "/items/1")).status == 401  # credentials_missing
        assert built == []
        token = jwt.encode({"iss": ISSUER, "aud": "another-api", "sub": "alice",
                            "exp": _START + 60}, SECRET, algorithm="HS256")
        assert (await http(app, "GET", "/items/1",
                           [(b"authorization", b"Bearer " + token.encode())])).status == 401
        assert [r.value for r in built] == ["token_wrong_audience"]
    finally:
        logging.getLogger("authguard").setLevel(logging.NOTSET)


@pytest.mark.parametrize("field", [b"Negotiate YIIBhwYGKwYBBQUCoIIBezCCAXeg",
                                   b"Digest username=\"alice\", nonce=\"n\""])
async def test_another_schemes_authorization_through_the_proxy_is_not_stripping(
        field: bytes) -> None:
    """A credentials_missing to an Authorization field of a scheme no authenticator takes
    shows the proxy passed the field: it counts against authorization_stripped."""
    app, _, found = _setup(trusted_proxies=("10.9.0.0/16",))
    via = [(b"x-forwarded-for", b"198.51.100.20")]
    events: list[AuthEvent] = []
    assert await _send(app, 12, field, client="10.9.0.2", extra=via) == [401] * 12
    assert found == []
    # mixed with requests that sent nothing, they still show the field gets through
    assert await _send(app, 12, None, client="10.9.0.2", extra=via) == [401] * 12
    assert found == []
    # the event names the scheme (never the credentials)
    detector = Detector()
    app2 = make_app(Observability(detector=detector, on_event=events.append),
                    trusted_proxies=("10.9.0.0/16",))
    await _send(app2, 1, field, client="10.9.0.2", extra=via)
    (event,) = [e for e in events if isinstance(e, AuthEvent)]
    assert event.offered_scheme == field.split(b" ")[0].decode()
    assert field.split(b" ", 1)[1].decode() not in str(event.as_dict())


async def test_a_lone_word_or_a_forged_scheme_is_never_named_in_an_event() -> None:
    events: list[Any] = []
    app = make_app(Observability(on_event=events.append))
    for field in (b"s3cr3t-bare-token", b"Evil\x1b[31m x", b"Ev\xffil x"):
        await _send(app, 1, field)
    assert [e.offered_scheme for e in events] == [None, None, None]


def test_an_episode_makes_its_finding_once_whatever_its_length(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The work per event is constant: the finding (medians, counts over the window) is
    made when it is raised, not re-made for every event of an ongoing episode, and a
    healthy proxy's traffic never makes one."""
    made: list[str] = []
    real = Detector._make

    def counting(self: Detector, name: str, *args: Any, **kw: Any) -> Finding:
        made.append(name)
        return real(self, name, *args, **kw)

    monkeypatch.setattr(Detector, "_make", counting)
    detector = Detector(window=60)
    found = []
    for i in range(1000):  # one client, one issuer, skewed: one long episode
        found += detector.observe(AuthEvent(
            event="refused", time=_START + i * 0.01, reason="token_expired", status=401,
            client="192.0.2.9", issuer="https://issuer.example", skew_seconds=4.0))
    assert [f.finding for f in found] == ["clock_skew"] and made == ["clock_skew"]
    made.clear()
    for i in range(1000):  # a healthy proxy: mostly allowed, now and then a 401
        t = _START + 100 + i * 0.01
        detector.observe(AuthEvent(event="allowed", time=t, via="10.0.0.1"))
        if i % 10 == 0:
            detector.observe(AuthEvent(event="refused", time=t, reason="credentials_missing",
                                       status=401, via="10.0.0.1", client="198.51.100.1"))
    assert made == []


def test_the_tallies_follow_the_window_and_the_series_bound() -> None:
    """Events leaving a series (by time or by its bound) leave its tallies too: a proxy
    whose one credentialed request has left the window is found stripping again."""
    from authguard.observability.detector import _MAX_SERIES

    detector = Detector(window=60, min_stripped=10)
    missing = {"event": "refused", "reason": "credentials_missing", "status": 401,
               "via": "10.0.0.1", "client": "198.51.100.1"}
    assert detector.observe(AuthEvent(event="allowed", time=_START, via="10.0.0.1")) == []
    found = []
    for i in range(_MAX_SERIES + 20):  # the allowed one leaves by the bound, not by time
        found += detector.observe(AuthEvent(time=_START + 1 + i * 0.01, **missing))
    (finding,) = found
    assert finding.finding == "authorization_stripped"
    assert finding.count == _MAX_SERIES
    series = detector._series[("authorization_stripped", "proxy 10.0.0.1")]
    assert len(series) == _MAX_SERIES and series.carried == 0
    detector2 = Detector(window=60, min_stripped=10)
    detector2.observe(AuthEvent(event="allowed", time=_START, via="10.0.0.1"))
    found = []
    for i in range(12):  # by time: the allowed request is 61 s old by the second one
        found += detector2.observe(AuthEvent(time=_START + 61 + i, **missing))
    assert [f.finding for f in found] == ["authorization_stripped"]
    assert found[0].count == 10  # raised as the tenth arrives
