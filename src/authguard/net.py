"""The client's address and scheme, trusting forwarding headers only from trusted proxies.

``Forwarded`` (RFC 7239) and ``X-Forwarded-For``/``X-Forwarded-Proto`` are read only when the
peer that connected is one of the configured trusted proxies; the client is then the
right-most address that is not itself a trusted proxy.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from starlette.types import Scope

from .errors import ConfigurationError

__all__ = ["NetworkPolicy", "client_address", "request_scheme"]

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
    """

    allow: Sequence[str] = ()
    deny: Sequence[str] = ()
    trusted_proxies: Sequence[str] = ()
    use_forwarded: bool = False
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


def _forwarded_chain(scope: Scope) -> tuple[list[str], str | None]:
    fwd: list[str] = []
    proto: str | None = None
    xff: list[str] = []
    xproto: str | None = None
    for name, value in scope.get("headers", ()):
        if name == b"forwarded":
            for element in value.decode("latin-1").split(","):
                for pair in element.split(";"):
                    k, _, v = pair.strip().partition("=")
                    if k.lower() == "for":
                        fwd.append(v)
                    elif k.lower() == "proto":
                        proto = v.strip('"').lower()
        elif name == b"x-forwarded-for":
            xff.extend(value.decode("latin-1").split(","))
        elif name == b"x-forwarded-proto":
            xproto = value.decode("latin-1").split(",")[-1].strip().lower()
    return (fwd or xff), (proto or xproto)


def client_address(scope: Scope, policy: NetworkPolicy | None) -> str | None:
    """The client's address: the peer, or (through trusted proxies) the forwarded one."""
    client = scope.get("client")
    peer = client[0] if client else None
    if policy is None or not policy.use_forwarded or not policy._is_trusted(_ip(peer or "")):
        return peer
    chain, _ = _forwarded_chain(scope)
    for hop in reversed(chain):
        ip = _ip(hop)
        if ip is None:
            return peer  # garbage in a forwarding header: do not guess
        if not policy._is_trusted(ip):
            return str(ip)
    return peer


def request_scheme(scope: Scope, policy: NetworkPolicy | None) -> str:
    """``http``/``https`` (or ``ws``/``wss``), with ``proto`` believed only from trusted
    proxies."""
    scheme: str = scope.get("scheme", "http")
    client = scope.get("client")
    peer = client[0] if client else ""
    if policy is not None and policy.use_forwarded and policy._is_trusted(_ip(peer)):
        _, proto = _forwarded_chain(scope)
        if proto in ("http", "https", "ws", "wss"):
            return proto
    return scheme
