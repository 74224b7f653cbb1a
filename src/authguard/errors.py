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
    ) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.detail = detail
        self.scheme = scheme
        self.challenge_params = dict(challenge_params or {})
        self.challenges = list(challenges)
        self.headers = dict(headers or {})
        self.extensions = dict(extensions or {})
        self.delete_cookies = list(delete_cookies)
        self.account = account

    @property
    def status(self) -> int:
        """The HTTP status for this refusal's reason."""
        return self.reason.status

    def __repr__(self) -> str:
        return f"Refusal({self.reason.value!r}, scheme={self.scheme!r})"
