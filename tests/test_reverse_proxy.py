"""Behind a real reverse proxy: Debian's nginx on loopback in front of the example app.

With ``trusted_proxies`` naming the proxy, the per-client limits see the real client
addresses (two clients behind one proxy do not share a limit), a client cannot choose its
address by sending ``X-Forwarded-For`` through the proxy (the right-most hop that is not a
trusted proxy counts), and the proxy's ``X-Forwarded-Proto: https`` satisfies
``require_https`` while the same header sent straight to uvicorn does not. Without
``trusted_proxies``, every client behind the proxy shares one limit, and the app says so
in a warning.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from helpers import check_refusal
from nginx_server import PROXY_ADDRESS, App, Listener, example_app, run_nginx

pytestmark = pytest.mark.e2e

LIMIT = 3
ATTACKER, BOB, DIRECT = "127.0.0.2", "127.0.0.3", "127.0.0.4"


@dataclass
class Deployment:
    trusted: App  # trusted_proxies = the proxy's address, require_https on
    untrusted: App  # no trusted_proxies
    https: str  # nginx https → trusted
    http: str  # nginx http → trusted
    plain: str  # nginx http → untrusted
    rfc7239_https: str  # nginx https → an app reading only Forwarded (RFC 7239)
    rfc7239_http: str  # nginx http → the same


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    tmp = tmp_path_factory.mktemp("proxy")
    limit = {"AUTHGUARD_DEMO_FAILURE_LIMIT": str(LIMIT)}
    with contextlib.ExitStack() as stack:
        trusted = stack.enter_context(example_app(tmp / "trusted.log", {
            **limit, "AUTHGUARD_DEMO_TRUSTED_PROXIES": PROXY_ADDRESS,
            "AUTHGUARD_DEMO_REQUIRE_HTTPS": "1"}))
        untrusted = stack.enter_context(example_app(tmp / "untrusted.log", limit))
        rfc7239 = stack.enter_context(example_app(tmp / "rfc7239.log", {
            **limit, "AUTHGUARD_DEMO_TRUSTED_PROXIES": PROXY_ADDRESS,
            "AUTHGUARD_DEMO_REQUIRE_HTTPS": "1", "AUTHGUARD_DEMO_FORWARDED_HEADER": "forwarded"}))
        https, http, plain, f_https, f_http = stack.enter_context(run_nginx(tmp / "nginx", [
            Listener(trusted.upstream, tls=True), Listener(trusted.upstream),
            Listener(untrusted.upstream), Listener(rfc7239.upstream, tls=True),
            Listener(rfc7239.upstream)]))
        yield Deployment(trusted, untrusted, https.url, http.url, plain.url, f_https.url,
                         f_http.url)


def client(base: str, address: str) -> httpx.Client:
    """A client whose connections leave from ``address``; every refusal is checked. The
    proxy's certificate is self-signed: these tests are about what the proxy forwards."""
    transport = httpx.HTTPTransport(local_address=address, verify=False)
    return httpx.Client(base_url=base, transport=transport, timeout=10,
                        event_hooks={"response": [check_refusal]})


def guess(c: httpx.Client, times: int, **headers: str) -> list[int]:
    return [c.get("/me", auth=("bob", f"guess-{i}"), headers=headers).status_code
            for i in range(times)]


def test_two_clients_behind_the_proxy_do_not_share_a_limit(deployment: Deployment) -> None:
    with client(deployment.https, ATTACKER) as attacker, client(deployment.https, BOB) as bob:
        assert guess(attacker, LIMIT + 1) == [401] * LIMIT + [429]
        r = attacker.get("/me", auth=("bob", "builder"))
        assert r.status_code == 429 and r.json()["reason"] == "too_many_attempts"
        r = bob.get("/me", auth=("bob", "builder"))
        assert r.status_code == 200 and r.json()["subject"] == "bob"


def test_a_spoofed_forwarded_for_through_the_proxy_does_not_choose_the_address(
        deployment: Deployment) -> None:
    with client(deployment.https, ATTACKER) as attacker, client(deployment.https, BOB) as bob:
        # each guess claims another address, bob's and the proxy's among them: nginx
        # appends the address it saw, and that right-most untrusted hop is the one counted
        spoofed = [BOB, PROXY_ADDRESS, "203.0.113.9", f"{BOB}, {PROXY_ADDRESS}"]
        answers = [attacker.get("/me", auth=("carol", f"guess-{i}"),
                                headers={"X-Forwarded-For": spoofed[i % 4]}).status_code
                   for i in range(LIMIT + 1)]
        assert answers == [401] * LIMIT + [429]
        r = attacker.get("/me", auth=("carol", "rainbow"),
                         headers={"X-Forwarded-For": "198.51.100.1"})
        assert r.status_code == 429
        # bob's address was claimed, not charged: had those failures been counted against
        # (bob's address, carol), this would be a 429
        assert bob.get("/me", auth=("carol", "rainbow")).status_code == 200


def test_forwarded_proto_https_counts_only_from_the_proxy(deployment: Deployment) -> None:
    alice = ("alice", "wonderland")
    with client(deployment.https, DIRECT) as c:  # TLS to nginx: X-Forwarded-Proto https
        r = c.get("/me", auth=alice)
        assert r.status_code == 200 and r.json()["subject"] == "alice"
    with client(deployment.http, DIRECT) as c:  # plain http to nginx, whatever it claims
        r = c.get("/me", auth=alice, headers={"X-Forwarded-Proto": "https"})
        assert r.status_code == 403 and r.json()["reason"] == "insecure_transport"
    with client(deployment.trusted.url, DIRECT) as c:  # straight to uvicorn
        for headers in ({"X-Forwarded-Proto": "https"},
                        {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"},
                        {"Forwarded": "for=203.0.113.9;proto=https"}):
            r = c.get("/me", auth=alice, headers=headers)
            assert r.status_code == 403 and r.json()["reason"] == "insecure_transport"
        assert c.get("/public").status_code == 200  # no credentials: nothing to refuse


def test_without_trusted_proxies_every_client_shares_one_limit_and_a_warning_says_so(
        deployment: Deployment) -> None:
    assert "trusted_proxies" not in deployment.untrusted.output()
    with client(deployment.plain, ATTACKER) as attacker, client(deployment.plain, BOB) as bob:
        assert guess(attacker, LIMIT) == [401] * LIMIT
        # bob is another client, but the app sees the proxy's address for both
        r = bob.get("/me", auth=("bob", "builder"))
        assert r.status_code == 429
    output = deployment.untrusted.output()
    assert output.count("network.trusted_proxies") == 1, output
    assert f"a request from {PROXY_ADDRESS} carries forwarding headers" in output
    assert "every client behind it shares one client address" in output
    # the app behind a trusted proxy had nothing to warn about
    assert "trusted_proxies" not in deployment.trusted.output()


def test_the_forwarded_header_read_instead(deployment: Deployment) -> None:
    """An app reading only RFC 7239 ``Forwarded`` (which this nginx sets afresh) behind the
    same proxy: the same guarantees, and the ``X-Forwarded-*`` a client sends are inert."""
    with client(deployment.rfc7239_https, ATTACKER) as attacker, \
            client(deployment.rfc7239_https, BOB) as bob:
        answers = [attacker.get("/me", auth=("alice", f"guess-{i}"), headers={
            "X-Forwarded-For": BOB, "Forwarded": f"for={BOB};proto=https"}).status_code
            for i in range(LIMIT + 1)]
        assert answers == [401] * LIMIT + [429]
        assert bob.get("/me", auth=("alice", "wonderland")).status_code == 200
    with client(deployment.rfc7239_http, DIRECT) as c:
        for headers in ({"Forwarded": "for=203.0.113.9;proto=https"},
                        {"X-Forwarded-Proto": "https"}):
            r = c.get("/me", auth=("alice", "wonderland"), headers=headers)
            assert r.status_code == 403 and r.json()["reason"] == "insecure_transport"
