"""The client's address and scheme, trusting forwarding headers only from trusted proxies.

``Forwarded`` (RFC 7239) or ``X-Forwarded-For``/``X-Forwarded-Proto`` (one of them, as
configured) are read only when the peer that connected is one of the configured trusted
proxies; the client is then the right-most address that is not itself a trusted proxy, and
its scheme the one recorded in that hop. A hop that is not an address (``unknown``, an
obfuscated identifier) leaves the client unknown: an allow list then refuses it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from starlette.types import Scope

from .errors import ConfigurationError

__all__ = ["NetworkPolicy", "client_address", "forwarded_by_untrusted", "request_scheme"]

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _networks(values: Iterable[str], setting: str) -> tuple[Network, ...]:
    out = []
    for v in values:
        try:
            out.append(ipaddress.ip_network(v, strict=False))
        except ValueError as exc:
            raise ConfigurationError(f"{setting}: {v!r} is not an address or CIDR") from exc
    return tuple(out)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:].split("]", 1)[0]
    elif value.count(":") == 1:
        value = value.split(":", 1)[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


@dataclass(frozen=True, kw_only=True)
class NetworkPolicy:
    """Client address allow/deny lists and the proxies trusted to report the client.

    Attributes:
        allow: If set, only these networks (CIDR) may call protected routes.
        deny: These networks are refused (checked before ``allow``).
        trusted_proxies: Peers whose ``Forwarded``/``X-Forwarded-*`` headers are believed.
        use_forwarded: Read forwarding headers at all (requires ``trusted_proxies``).
        forwarded_header: The one header the proxies set: ``"x-forwarded-for"`` (with
            ``X-Forwarded-Proto``) or ``"forwarded"`` (RFC 7239). The other is ignored, so a
            client cannot choose its address by sending the header its proxy passes through.
    """

    allow: Sequence[str] = ()
    deny: Sequence[str] = ()
    trusted_proxies: Sequence[str] = ()
    use_forwarded: bool = False
    forwarded_header: Literal["x-forwarded-for", "forwarded"] = "x-forwarded-for"
    _allow: tuple[Network, ...] = field(init=False, repr=False)
    _deny: tuple[Network, ...] = field(init=False, repr=False)
    _trusted: tuple[Network, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_allow", _networks(self.allow, "allow"))
        object.__setattr__(self, "_deny", _networks(self.deny, "deny"))
        object.__setattr__(self, "_trusted", _networks(self.trusted_proxies, "trusted_proxies"))
        if self.use_forwarded and not self._trusted:
            raise ConfigurationError(
                "trusted_proxies: must be set when use_forwarded is on; otherwise any client "
                "could choose its own address"
            )
        if self.forwarded_header not in ("x-forwarded-for", "forwarded"):
            raise ConfigurationError(
                "forwarded_header: must be 'x-forwarded-for' or 'forwarded'"
            )

    def _is_trusted(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in n for n in self._trusted)

    def client(self, scope: Scope) -> str | None:
        """The client address, through trusted proxies only."""
        return client_address(scope, self)

    def is_allowed(self, address: str | None) -> bool:
        """Whether ``address`` passes the deny and allow lists."""
        if not self._allow and not self._deny:
            return True
        ip = _ip(address) if address else None
        if ip is None:
            return not self._allow
        if any(ip in n for n in self._deny):
            return False
        return not self._allow or any(ip in n for n in self._allow)

    @property
    def active(self) -> bool:
        """Whether allow/deny lists are configured."""
        return bool(self._allow or self._deny)


def _hops(scope: Scope, header: str) -> tuple[list[tuple[str, str | None]], str | None]:
    """``(for, proto)`` per hop, left to right, from the one configured header only, and the
    ``X-Forwarded-Proto`` a proxy sent without any address.

    Reading both ``Forwarded`` and ``X-Forwarded-For`` would let a client send the one its
    proxy does not overwrite and choose its own address.
    """
    hops: list[tuple[str, str | None]] = []
    if header == "forwarded":
        for name, value in scope.get("headers", ()):
            if name != b"forwarded":
                continue
            for element in value.decode("latin-1").split(","):
                addr, proto = "", None
                for pair in element.split(";"):
                    k, _, v = pair.strip().partition("=")
                    if k.lower() == "for":
                        addr = v
                    elif k.lower() == "proto":
                        proto = v.strip().strip('"').lower()
                hops.append((addr, proto))
        return hops, None
    xproto: str | None = None
    for name, value in scope.get("headers", ()):
        if name == b"x-forwarded-for":
            hops.extend((v, None) for v in value.decode("latin-1").split(","))
        elif name == b"x-forwarded-proto":
            xproto = value.decode("latin-1").split(",")[-1].strip().lower()
    # X-Forwarded-Proto is set by the nearest proxy: it speaks for the client's hop.
    return [(a, xproto) for a, _ in hops], xproto


def _resolve(scope: Scope, policy: NetworkPolicy | None) -> tuple[str | None, str | None]:
    """The client address and the scheme it used (``None``: the connection's own)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if policy is None or not policy.use_forwarded or not policy._is_trusted(_ip(peer or "")):
        return peer, None
    hops, proto_only = _hops(scope, policy.forwarded_header)
    # Right to left: each hop was written by the trusted proxy on its right; the first
    # address that is not a trusted proxy is the client, and its hop carries its scheme.
    for addr, proto in reversed(hops):
        ip = _ip(addr)
        if ip is None:
            return None, proto  # "unknown", obfuscated, absent or garbage: client unknown
        if not policy._is_trusted(ip):
            return str(ip), proto
    return peer, (proto_only if not hops else None)


def client_address(scope: Scope, policy: NetworkPolicy | None) -> str | None:
    """The client's address: the peer, or (through trusted proxies) the forwarded one.

    ``None`` when a trusted proxy forwarded an address that is not one (``unknown``, an
    obfuscated identifier): an allow list then refuses the request.
    """
    return _resolve(scope, policy)[0]


def request_scheme(scope: Scope, policy: NetworkPolicy | None) -> str:
    """``http``/``https`` (or ``ws``/``wss``), with the forwarded ``proto`` believed only
    from trusted proxies, and only the one recorded for the client's hop."""
    scheme: str = scope.get("scheme", "http")
    _, proto = _resolve(scope, policy)
    if proto in ("http", "https"):
        if scope.get("type") == "websocket":
            return "wss" if proto == "https" else "ws"
        return proto
    if proto in ("ws", "wss"):
        return proto
    return scheme


_FORWARDING = frozenset({b"forwarded", b"x-forwarded-for", b"x-forwarded-proto"})


def forwarded_by_untrusted(scope: Scope, policy: NetworkPolicy | None) -> str | None:
    """The peer's address when the request carries forwarding headers that are not
    believed (no ``use_forwarded``, or a peer outside ``trusted_proxies``), else ``None``.

    Such a peer is likely a reverse proxy that the configuration does not name: every
    client behind it then has the proxy's address (and shares its per-client limits).
    """
    client = scope.get("client")
    peer = client[0] if client else None
    if peer is None:
        return None
    if policy is not None and policy.use_forwarded and policy._is_trusted(_ip(peer)):
        return None
    if any(name in _FORWARDING for name, _ in scope.get("headers", ())):
        return str(peer)
    return None
