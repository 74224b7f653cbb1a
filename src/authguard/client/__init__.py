"""The client side of authguard: read refusals, raise typed exceptions, refresh tokens.

Needs the ``client`` extra (``pip install 'authguard[client]'``: httpx and rich).

* :func:`parse_www_authenticate` — the strict RFC 9110 §11 challenge parser (shared with
  the server side); :class:`Challenge` has ``scheme``, ``params`` (case-insensitive) and
  ``token68``.
* :class:`Problem` — a refusal read from status, headers and body, from authguard or not.
* :class:`AuthError` and its subclasses — one exception per fix (see
  :mod:`authguard.client.errors` for the tree).
* :func:`raise_for_auth`, :func:`araise_for_auth`, :class:`BearerAuth`, :class:`BasicAuth`,
  :class:`APIKeyAuth` — httpx integration.
* :func:`pay_and_retry`, :func:`apay_and_retry` — on a 402, pay through a callback and
  retry once (:mod:`authguard.client.payments`).
* ``authguard explain URL`` — :mod:`authguard.client.explain`.
"""

from ..challenges import Challenge, ChallengeParseError, Params, parse_www_authenticate
from .errors import (
    AuthenticationRequired,
    AuthError,
    AuthUnavailable,
    CredentialsRevoked,
    Forbidden,
    InsufficientScope,
    InvalidAuthRequest,
    InvalidCredentials,
    PaymentProviderFailed,
    PaymentRequired,
    SessionExpired,
    StepUpRequired,
    TokenExpired,
    TokenNotYetValid,
    TooManyAttempts,
    error_class,
    error_for,
)
from .httpx_auth import BearerAuth, araise_for_auth, raise_for_auth
from .httpx_credentials import APIKeyAuth, BasicAuth
from .payments import PayCallback, apay_and_retry, pay_and_retry
from .problem import Problem, ReasonSource, parse_retry_after

__all__ = [
    "AuthError",
    "AuthUnavailable",
    "AuthenticationRequired",
    "APIKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "Challenge",
    "ChallengeParseError",
    "CredentialsRevoked",
    "Forbidden",
    "InsufficientScope",
    "InvalidAuthRequest",
    "InvalidCredentials",
    "Params",
    "PayCallback",
    "PaymentProviderFailed",
    "PaymentRequired",
    "Problem",
    "ReasonSource",
    "SessionExpired",
    "StepUpRequired",
    "TokenExpired",
    "TokenNotYetValid",
    "TooManyAttempts",
    "apay_and_retry",
    "araise_for_auth",
    "error_class",
    "error_for",
    "parse_retry_after",
    "parse_www_authenticate",
    "pay_and_retry",
    "raise_for_auth",
]
