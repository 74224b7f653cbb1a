"""Network and transport policy: CIDR allow/deny lists, trusted proxies, https required.

The client address and scheme come from ``Forwarded``/``X-Forwarded-*`` only when the peer
is a configured trusted proxy, and only from the one header the proxies are said to set.
"""

from __future__ import annotations

import base64

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    ConfigurationError,
    NetworkPolicy,
    PBKDF2Hasher,
    Public,
    StaticPasswords,
    protect,
)
from authguard.net import client_address, request_scheme
from helpers import check_refusal

PASSWORD = "net-test-password-1"
GOOD = "Basic " + base64.b64encode(f"alice:{PASSWORD}".encode()).decode()


def make_app(network: NetworkPolicy | None, *, require_https: bool = False) -> Starlette:
    users = StaticPasswords.from_plaintext({"alice": (PASSWORD, [])},
                                           hasher=PBKDF2Hasher(iterations=1000))
    guard = AuthGuard(authenticators=[BasicAuthenticator(verifier=users)], network=network,
                      require_https=require_https)

    @protect(Authenticated())
    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"subject": request.user.subject})

    @protect(Public)
    async def public(request: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/me", me), Route("/public", public)],
                     middleware=[Middleware(AuthGuardMiddleware, guard=guard)])


async def call(app: Starlette, peer: str, headers: dict[str, str] | list[tuple[str, str]],
               *, path: str = "/me", base_url: str = "http://testserver") -> httpx.Response:
    transport = httpx.ASGITransport(app=app, client=(peer, 40000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as c:
        r = await c.get(path, headers=headers)
    check_refusal(r)
    return r


def scope(peer: str, headers: list[tuple[str, str]], scheme: str = "http",
          kind: str = "http") -> dict[str, object]:
    return {"type": kind, "scheme": scheme, "client": (peer, 1234),
            "headers": [(k.lower().encode(), v.encode("latin-1")) for k, v in headers]}


# -- allow / deny lists ----------------------------------------------------------------------

@pytest.mark.parametrize(("peer", "allowed"), [
    ("10.1.2.3", True), ("10.9.9.9", False), ("192.168.0.7", False), ("2001:db8::5", True),
    ("2001:db9::5", False),
])
async def test_allow_and_deny_lists_by_cidr(peer: str, allowed: bool) -> None:
    app = make_app(NetworkPolicy(allow=["10.0.0.0/8", "2001:db8::/32"], deny=["10.9.0.0/16"]))
    r = await call(app, peer, {"Authorization": GOOD})
    if allowed:
        assert r.status_code == 200, r.text
    else:
        assert r.status_code == 403
        assert r.json()["reason"] == "network_blocked"
        assert "www-authenticate" not in r.headers  # credentials would not help


async def test_network_blocked_comes_before_authentication() -> None:
    app = make_app(NetworkPolicy(deny=["203.0.113.0/24"]))
    r = await call(app, "203.0.113.9", {})  # no credentials: still 403, not 401
    assert (r.status_code, r.json()["reason"]) == (403, "network_blocked")
    assert (await call(app, "198.51.100.1", {})).json()["reason"] == "credentials_missing"


async def test_public_routes_are_not_subject_to_the_network_policy() -> None:
    app = make_app(NetworkPolicy(allow=["10.0.0.0/8"]))
    assert (await call(app, "203.0.113.9", {}, path="/public")).status_code == 200


def test_bad_cidr_names_the_setting() -> None:
    with pytest.raises(ConfigurationError, match=r"^allow:"):
        NetworkPolicy(allow=["10.0.0.0/33"])
    with pytest.raises(ConfigurationError, match=r"^deny:"):
        NetworkPolicy(deny=["not-an-address"])
    with pytest.raises(ConfigurationError, match=r"^trusted_proxies:"):
        NetworkPolicy(trusted_proxies=["proxy.example"], use_forwarded=True)


def test_forwarded_addresses_without_trusted_proxies_refuse_to_start() -> None:
    with pytest.raises(ConfigurationError, match=r"^trusted_proxies:.*use_forwarded"):
        NetworkPolicy(allow=["10.0.0.0/8"], use_forwarded=True)
    with pytest.raises(ConfigurationError, match=r"^forwarded_header:"):
        NetworkPolicy(trusted_proxies=["127.0.0.1"], use_forwarded=True,
                      forwarded_header="x-real-ip")  # type: ignore[arg-type]


# -- forwarded addresses through trusted proxies ---------------------------------------------

PROXIED = NetworkPolicy(allow=["10.0.0.0/8"], trusted_proxies=["192.0.2.0/24"],
                        use_forwarded=True)


async def test_x_forwarded_for_from_a_trusted_proxy_names_the_client() -> None:
    app = make_app(PROXIED)
    ok = await call(app, "192.0.2.1", {"Authorization": GOOD, "X-Forwarded-For": "10.1.1.1"})
    assert ok.status_code == 200
    blocked = await call(app, "192.0.2.1", {"Authorization": GOOD,
                                             "X-Forwarded-For": "203.0.113.5"})
    assert (blocked.status_code, blocked.json()["reason"]) == (403, "network_blocked")


async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    app = make_app(PROXIED)
    # A client outside the allow list claims an allowed address: it is not believed.
    r = await call(app, "203.0.113.5", {"Authorization": GOOD, "X-Forwarded-For": "10.1.1.1"})
    assert (r.status_code, r.json()["reason"]) == (403, "network_blocked")


async def test_spoofed_left_hops_do_not_matter() -> None:
    app = make_app(PROXIED)
    # The client sent "10.1.1.1" itself; the trusted proxy appended the real address.
    r = await call(app, "192.0.2.1", {"Authorization": GOOD,
                                       "X-Forwarded-For": "10.1.1.1, 203.0.113.5"})
    assert r.json()["reason"] == "network_blocked"
    # Through two trusted proxies, the right-most untrusted hop is the client.
    two = await call(app, "192.0.2.1", {"Authorization": GOOD,
                                         "X-Forwarded-For": "203.0.113.5, 10.1.1.1, 192.0.2.7"})
    assert two.status_code == 200


async def test_only_the_configured_forwarding_header_is_read() -> None:
    """A proxy that sets X-Forwarded-For passes a client's own ``Forwarded`` through."""
    app = make_app(PROXIED)
    r = await call(app, "192.0.2.1", [("Authorization", GOOD), ("Forwarded", "for=10.1.1.1"),
                                      ("X-Forwarded-For", "203.0.113.5")])
    assert r.json()["reason"] == "network_blocked"
    rfc = NetworkPolicy(allow=["10.0.0.0/8"], trusted_proxies=["192.0.2.0/24"],
                        use_forwarded=True, forwarded_header="forwarded")
    app2 = make_app(rfc)
    r2 = await call(app2, "192.0.2.1", [("Authorization", GOOD),
                                        ("X-Forwarded-For", "10.1.1.1"),
                                        ("Forwarded", 'for="203.0.113.5:4711"')])
    assert r2.json()["reason"] == "network_blocked"
    ok = await call(app2, "192.0.2.1", [("Authorization", GOOD),
                                        ("Forwarded", "for=10.2.2.2;proto=https")])
    assert ok.status_code == 200


@pytest.mark.parametrize("hop", ["unknown", "_hidden", "garbage", "", "999.1.1.1"])
async def test_an_unknown_forwarded_client_is_refused_by_an_allow_list(hop: str) -> None:
    app = make_app(PROXIED)
    # Not the proxy's own address (which may well sit inside the allow list).
    r = await call(app, "192.0.2.1", {"Authorization": GOOD, "X-Forwarded-For": hop})
    assert (r.status_code, r.json()["reason"]) == (403, "network_blocked")


@pytest.mark.parametrize(("value", "client"), [
    ('for=192.0.2.43', "192.0.2.43"),
    ('for="[2001:db8:cafe::17]:4711"', "2001:db8:cafe::17"),
    ('For="198.51.100.17:80";proto=http;by=203.0.113.43', "198.51.100.17"),
    ('for=198.51.100.1, for=198.51.100.2', "198.51.100.2"),
    ('for=unknown', None),
])
def test_rfc7239_forwarded_values(value: str, client: str | None) -> None:
    policy = NetworkPolicy(trusted_proxies=["127.0.0.1"], use_forwarded=True,
                           forwarded_header="forwarded")
    assert client_address(scope("127.0.0.1", [("Forwarded", value)]), policy) == client


def test_without_forwarding_headers_the_peer_is_the_client() -> None:
    assert client_address(scope("192.0.2.1", []), PROXIED) == "192.0.2.1"
    assert client_address(scope("192.0.2.1", [("X-Forwarded-For", "10.0.0.1")]), None) \
        == "192.0.2.1"
    assert client_address({"type": "http", "headers": []}, PROXIED) is None


# -- transport: https required ---------------------------------------------------------------

async def test_credentials_over_http_are_refused_when_https_is_required() -> None:
    app = make_app(None, require_https=True)
    r = await call(app, "198.51.100.1", {"Authorization": GOOD})
    assert (r.status_code, r.json()["reason"]) == (403, "insecure_transport")
    assert "www-authenticate" not in r.headers
    assert GOOD.split()[1] not in r.text and PASSWORD not in r.text
    # Without credentials nothing leaked yet: the usual 401 tells the client what to send.
    assert (await call(app, "198.51.100.1", {})).status_code == 401
    # Over https the same credentials are fine.
    ok = await call(app, "198.51.100.1", {"Authorization": GOOD},
                    base_url="https://testserver")
    assert ok.status_code == 200


async def test_even_bad_credentials_over_http_are_refused_as_insecure() -> None:
    app = make_app(None, require_https=True)
    r = await call(app, "198.51.100.1", {"Authorization": "Basic !!!"})
    assert r.json()["reason"] == "insecure_transport"


async def test_forwarded_proto_is_believed_only_from_trusted_proxies() -> None:
    policy = NetworkPolicy(trusted_proxies=["192.0.2.0/24"], use_forwarded=True)
    app = make_app(policy, require_https=True)
    via_proxy = await call(app, "192.0.2.1", {"Authorization": GOOD,
                                              "X-Forwarded-For": "203.0.113.5",
                                              "X-Forwarded-Proto": "https"})
    assert via_proxy.status_code == 200
    spoofed = await call(app, "203.0.113.5", {"Authorization": GOOD,
                                              "X-Forwarded-Proto": "https"})
    assert spoofed.json()["reason"] == "insecure_transport"
    # The proxy forwarded a plain-http request: refused.
    plain = await call(app, "192.0.2.1", {"Authorization": GOOD,
                                          "X-Forwarded-For": "203.0.113.5",
                                          "X-Forwarded-Proto": "http"})
    assert plain.json()["reason"] == "insecure_transport"


def test_proto_comes_from_the_client_hop_not_from_a_spoofed_element() -> None:
    policy = NetworkPolicy(trusted_proxies=["127.0.0.1"], use_forwarded=True,
                           forwarded_header="forwarded")
    # The client wrote the first element itself; the proxy appended one without proto.
    spoofed = scope("127.0.0.1", [("Forwarded", "for=10.0.0.1;proto=https, for=203.0.113.5")])
    assert request_scheme(spoofed, policy) == "http"
    honest = scope("127.0.0.1", [("Forwarded", "for=203.0.113.5;proto=https")])
    assert request_scheme(honest, policy) == "https"
    ws = scope("127.0.0.1", [("Forwarded", "for=203.0.113.5;proto=https")], scheme="ws",
               kind="websocket")
    assert request_scheme(ws, policy) == "wss"
    assert request_scheme(scope("127.0.0.1", [], scheme="https"), policy) == "https"
    assert request_scheme(scope("127.0.0.1", [("Forwarded", "for=203.0.113.5;proto=gopher")]),
                          policy) == "http"


def test_proto_alone_from_a_trusted_proxy() -> None:
    xff = NetworkPolicy(trusted_proxies=["127.0.0.1"], use_forwarded=True)
    only_proto = scope("127.0.0.1", [("X-Forwarded-Proto", "https")])
    assert request_scheme(only_proto, xff) == "https"
    assert client_address(only_proto, xff) == "127.0.0.1"
    assert request_scheme(scope("203.0.113.5", [("X-Forwarded-Proto", "https")]), xff) == "http"
    rfc = NetworkPolicy(trusted_proxies=["127.0.0.1"], use_forwarded=True,
                        forwarded_header="forwarded")
    no_for = scope("127.0.0.1", [("Forwarded", "proto=https")])
    assert request_scheme(no_for, rfc) == "https"
    assert client_address(no_for, rfc) is None  # the proxy did not say who the client is
