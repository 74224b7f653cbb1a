"""authguard as an OAuth 2.1 resource server.

* :mod:`~authguard.oauth.metadata` — Protected Resource Metadata (RFC 9728);
* :mod:`~authguard.oauth.discovery` — an issuer's keys from its metadata (RFC 8414);
* :mod:`~authguard.oauth.issuers` — tokens of several issuers behind one ``Bearer``;
* :mod:`~authguard.oauth.introspection` — opaque tokens (RFC 7662; needs ``httpx``,
  imported on first use of :class:`IntrospectionAuthenticator`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .discovery import IssuerKeys, metadata_urls
from .issuers import BearerIssuers
from .metadata import MetadataSigner, ProtectedResource, install_metadata

if TYPE_CHECKING:
    from .introspection import IntrospectionAuthenticator

__all__ = [
    "BearerIssuers",
    "IntrospectionAuthenticator",
    "IssuerKeys",
    "MetadataSigner",
    "ProtectedResource",
    "install_metadata",
    "metadata_urls",
]


def __getattr__(name: str) -> Any:
    if name == "IntrospectionAuthenticator":  # httpx is an optional dependency
        from .introspection import IntrospectionAuthenticator

        return IntrospectionAuthenticator
    raise AttributeError(f"module 'authguard.oauth' has no attribute {name!r}")
