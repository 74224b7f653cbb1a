"""Exceptions of authguard.

    Exception
    ├── Refusal              a decided refusal; rendered by the middleware from its Reason
    ├── AuthUnavailable      a backend (JWKS, store, user database) cannot be reached → 503
    └── ValueError
        ├── ConfigurationError   a setting is unsafe or inconsistent; raised at start-up
        │   └── HeaderSettingError   a configured string cannot go into a header
        └── HeaderValueError     (authguard.challenges) a value cannot go into a header
                                 (HeaderSettingError is one too)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from .challenges import Challenge, HeaderValueError
from .reasons import Reason

__all__ = ["AuthUnavailable", "ConfigurationError", "Refusal"]


class ConfigurationError(ValueError):
    """A setting is unsafe or inconsistent; the message names the setting."""


class HeaderSettingError(ConfigurationError, HeaderValueError):
    """A configured string (realm, login URL…) cannot be sent in a header field."""


class AuthUnavailable(Exception):
    """A dependency needed for the decision is unavailable: answered with 503.

    Args:
        message: What was unavailable (logged, never sent to the client).
        retry_after: Seconds the client should wait before retrying.
    """

    def __init__(self, message: str = "authentication backend unavailable", *,
                 retry_after: int = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Refusal(Exception):
    """A refusal, raised by an authenticator, a requirement or application code.

    The middleware renders it as ``application/problem+json`` from the Reason table, with the
    challenges that the reason's rule calls for.

    Args:
        reason: The cause (a row of the Reason table).
        detail: A safe, human explanation for this occurrence; defaults to the table's.
        scheme: The scheme of the authenticator that rejected the credentials (picks the
            challenge for reasons whose rule is ``scheme``).
        challenge_params: Extra auth-params for that challenge (e.g. ``scope``,
            ``acr_values``, ``max_age``, ``error_description``).
        challenges: Explicit challenges, added to the ones the rule calls for.
        headers: Extra response headers (e.g. ``Retry-After``, ``PAYMENT-REQUIRED``).
        extensions: Extra members of the problem body (e.g. ``required_scopes``).
        delete_cookies: Cookies that the response deletes: names (deleted with ``Path=/``), or
            complete ``Set-Cookie`` values that delete them with their own attributes.
        account: The account name the credentials claimed (for the brute-force guard; never
            rendered).
        hints: Hints for this occurrence, replacing the table's (which depend on the
            scheme: see :meth:`~authguard.reasons.ReasonSpec.hints_for`).
    """

    def __init__(
        self,
        reason: Reason,
        detail: str | None = None,
        *,
        scheme: str | None = None,
        challenge_params: Mapping[str, str] | None = None,
        challenges: Sequence[Challenge] = (),
        headers: Mapping[str, str] | None = None,
        extensions: Mapping[str, Any] | None = None,
        delete_cookies: Sequence[str] = (),
        account: str | None = None,
        hints: Sequence[str] | None = None,
    ) -> None:
        super().__init__(reason.value)
        put = object.__setattr__
        put(self, "reason", reason)
        put(self, "detail", detail)
        put(self, "scheme", scheme)
        put(self, "challenge_params", _frozen(challenge_params))
        put(self, "challenges", tuple(challenges))
        put(self, "headers", _frozen(headers))
        put(self, "extensions", _frozen(extensions))
        put(self, "delete_cookies", tuple(delete_cookies))
        put(self, "account", account)
        put(self, "hints", None if hints is None else tuple(str(h) for h in hints))

    # The fields, read-only: one Refusal may be raised for many requests (a shared
    # constant), so a copy is made to vary it (:meth:`with_scheme`, :meth:`replace`).
    reason: Reason
    detail: str | None
    scheme: str | None
    challenge_params: Mapping[str, str]
    challenges: tuple[Challenge, ...]
    headers: Mapping[str, str]
    extensions: Mapping[str, Any]
    delete_cookies: tuple[str, ...]
    account: str | None
    hints: tuple[str, ...] | None

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _FIELDS:
            raise AttributeError(f"Refusal.{name} is read-only; use Refusal.replace()")
        super().__setattr__(name, value)

    def replace(self, **changes: Any) -> Refusal:
        """A copy of this refusal with ``changes`` (the constructor's keyword arguments)."""
        fields: dict[str, Any] = {name: getattr(self, name) for name in _FIELDS}
        fields.update(changes)
        return Refusal(fields.pop("reason"), fields.pop("detail"), **fields)

    def with_scheme(self, scheme: str) -> Refusal:
        """This refusal naming ``scheme`` (itself when it already names a scheme)."""
        return self if self.scheme is not None else self.replace(scheme=scheme)

    @property
    def status(self) -> int:
        """The HTTP status for this refusal's reason."""
        return self.reason.status

    def __repr__(self) -> str:
        return f"Refusal({self.reason.value!r}, scheme={self.scheme!r})"


_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if value else _EMPTY


_FIELDS = ("reason", "detail", "scheme", "challenge_params", "challenges", "headers",
           "extensions", "delete_cookies", "account", "hints")
