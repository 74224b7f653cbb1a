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
* :class:`DPoPAuth`, :class:`DPoPKey` — DPoP proofs (RFC 9449) with one retry on
  ``use_dpop_nonce`` (:mod:`authguard.client.dpop`).
* :func:`pay_and_retry`, :func:`apay_and_retry` — on a 402, pay through a callback and
  retry once; :func:`payment_credential` and :func:`read_payment_receipt` for the IETF
  ``Payment`` scheme (:mod:`authguard.client.payments`).
* ``authguard explain URL`` — :mod:`authguard.client.explain`.
"""

from ..challenges import Challenge, ChallengeParseError, Params, parse_www_authenticate
from .dpop import DPoPAuth, DPoPKey, ProofCheck, check_proof
from .errors import (
    AuthenticationRequired,
    AuthError,
    AuthUnavailable,
    CredentialsRevoked,
    DPoPNonceRequired,
    DPoPProofReplayed,
    DPoPProofRequired,
    Forbidden,
    InsufficientScope,
    InvalidAuthRequest,
    InvalidCredentials,
    InvalidDPoPProof,
    PaymentProviderFailed,
    PaymentRequired,
    SessionExpired,
    StepUpRequired,
    TokenExpired,
    TokenNotYetValid,
    TokenWrongAudience,
    TooManyAttempts,
    error_class,
    error_for,
)
from .httpx_auth import BearerAuth, araise_for_auth, raise_for_auth
from .httpx_credentials import APIKeyAuth, BasicAuth
from .payments import (
    ChallengeNotPayable,
    PayCallback,
    PaymentReceipt,
    apay_and_retry,
    pay_and_retry,
    payment_credential,
    read_payment_receipt,
)
from .problem import Problem, ReasonSource, parse_retry_after

__all__ = [
    "AuthError",
    "AuthUnavailable",
    "AuthenticationRequired",
    "APIKeyAuth",
    "BasicAuth",
    "BearerAuth",
    "Challenge",
    "ChallengeNotPayable",
    "ChallengeParseError",
    "CredentialsRevoked",
    "DPoPAuth",
    "DPoPKey",
    "DPoPNonceRequired",
    "DPoPProofReplayed",
    "DPoPProofRequired",
    "Forbidden",
    "InsufficientScope",
    "InvalidAuthRequest",
    "InvalidCredentials",
    "InvalidDPoPProof",
    "Params",
    "PayCallback",
    "PaymentProviderFailed",
    "PaymentReceipt",
    "PaymentRequired",
    "Problem",
    "ProofCheck",
    "ReasonSource",
    "SessionExpired",
    "StepUpRequired",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenWrongAudience",
    "TooManyAttempts",
    "apay_and_retry",
    "araise_for_auth",
    "check_proof",
    "error_class",
    "error_for",
    "parse_retry_after",
    "parse_www_authenticate",
    "pay_and_retry",
    "payment_credential",
    "raise_for_auth",
    "read_payment_receipt",
]
