"""Small helpers shared by authenticators (header access without building dicts)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

__all__ = ["header_values"]


def header_values(conn: HTTPConnection, name: bytes) -> list[bytes]:
    """Every raw value of header ``name`` (lower-case bytes), in order."""
    return [v for k, v in conn.scope["headers"] if k == name]


def authorization(conn: HTTPConnection) -> list[bytes]:
    """Every ``Authorization`` field value."""
    return header_values(conn, b"authorization")


def scheme_of(value: bytes) -> bytes:
    """The lower-cased auth-scheme of an ``Authorization`` value."""
    return value.split(b" ", 1)[0].lower()
