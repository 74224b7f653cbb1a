"""Typed exceptions for refusals, one per client-side fix.

    Exception
    └── AuthError                 any refusal; .problem, .status, .reason, .response
        ├── AuthenticationRequired    401 credentials_missing; any other 401
        │   ├── InvalidCredentials    credentials_invalid, credentials_malformed
        │   │   └── TokenWrongAudience    token_wrong_audience (a token for another API)
        │   ├── TokenExpired          token_expired
        │   ├── TokenNotYetValid      token_not_yet_valid (a clock skew)
        │   ├── CredentialsRevoked    credentials_revoked
        │   ├── SessionExpired        session_expired, session_invalid
        │   ├── StepUpRequired        step_up_required (.acr_values, .max_age)
        │   ├── DPoPProofRequired     dpop_proof_missing (a DPoP-bound token needs a proof)
        │   ├── InvalidDPoPProof      invalid_dpop_proof (.check: which check failed)
        │   │   └── DPoPProofReplayed dpop_proof_replayed
        │   └── DPoPNonceRequired     use_dpop_nonce (.nonce: the server's DPoP-Nonce)
        ├── Forbidden                 403 forbidden, origin_rejected, network_blocked,
        │   │                         insecure_transport; any other 403
        │   └── InsufficientScope     insufficient_scope (.required_scopes)
        ├── PaymentRequired           402 payment_required, payment_invalid (.payment)
        ├── TooManyAttempts           429 too_many_attempts (.retry_after)
        ├── AuthUnavailable           503 auth_unavailable (.retry_after)
        ├── PaymentProviderFailed     502 payment_provider_error (retry with the same proof)
        └── InvalidAuthRequest        400 invalid_request

A reason this version does not know falls back to the class of its status, so a newer
server never breaks an older client: ``except AuthenticationRequired`` catches every 401.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..reasons import Reason
from .problem import Problem

__all__ = [
    "AuthError",
    "AuthUnavailable",
    "AuthenticationRequired",
    "CredentialsRevoked",
    "DPoPNonceRequired",
    "DPoPProofReplayed",
    "DPoPProofRequired",
    "Forbidden",
    "InsufficientScope",
    "InvalidAuthRequest",
    "InvalidCredentials",
    "InvalidDPoPProof",
    "PaymentProviderFailed",
    "PaymentRequired",
    "SessionExpired",
    "StepUpRequired",
    "TokenExpired",
    "TokenNotYetValid",
    "TokenWrongAudience",
    "TooManyAttempts",
    "error_class",
    "error_for",
]


class AuthError(Exception):
    """A refused request. Base of every client-side refusal exception.

    Attributes:
        problem: The parsed refusal (:class:`~authguard.client.Problem`).
        response: The ``httpx.Response`` it came from, when raised by the httpx integration.
    """

    def __init__(self, problem: Problem, response: Any = None) -> None:
        self.problem = problem
        self.response = response
        text = f"{problem.status} {problem.reason or problem.title}"
        if problem.detail:
            text += f": {problem.detail}"
        super().__init__(text)

    @property
    def status(self) -> int:
        """The HTTP status code."""
        return self.problem.status

    @property
    def reason(self) -> str | None:
        """The reason code (see :attr:`Problem.reason`)."""
        return self.problem.reason

    @property
    def hints(self) -> tuple[str, ...]:
        """Short fixes a person can apply."""
        return self.problem.hints

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before retrying, if the server said."""
        return self.problem.retry_after


class AuthenticationRequired(AuthError):
    """401: send credentials (or a 401 whose reason this version does not know)."""


class InvalidCredentials(AuthenticationRequired):
    """401: the credentials were wrong or unreadable; fix them, do not retry as they are."""


class TokenWrongAudience(InvalidCredentials):
    """401: a genuine token, but issued for another API (``aud``) or by an issuer the server
    does not trust (``iss``); get a token for this API (OAuth: its ``resource``, RFC 8707)."""


class TokenExpired(AuthenticationRequired):
    """401: the token expired; refresh it or sign in again."""


class TokenNotYetValid(AuthenticationRequired):
    """401: the token's ``nbf``/``iat`` is in the server's future; the clocks disagree."""


class CredentialsRevoked(AuthenticationRequired):
    """401: the credentials were revoked; sign in again."""


class SessionExpired(AuthenticationRequired):
    """401: the session cookie expired or is invalid (the server deleted it); sign in again."""


class StepUpRequired(AuthenticationRequired):
    """401: authenticate again, more strongly or more recently (RFC 9470)."""

    @property
    def acr_values(self) -> str | None:
        """The authentication context class(es) the server asks for."""
        return self.problem.acr_values

    @property
    def max_age(self) -> int | None:
        """The most seconds since sign-in that the server accepts."""
        return self.problem.max_age


class DPoPProofRequired(AuthenticationRequired):
    """401: the token is bound to a key (DPoP); send it as ``DPoP`` with a proof."""


class InvalidDPoPProof(AuthenticationRequired):
    """401: the DPoP proof failed a check (RFC 9449 §4.3); sign a correct one."""

    @property
    def check(self) -> str | None:
        """The failed check (``htm``, ``htu``, ``iat``, ``ath``, ``jkt``…), if the server
        named it (the body's ``dpop_check``)."""
        value = (self.problem.body or {}).get("dpop_check")
        return value if isinstance(value, str) else None


class DPoPProofReplayed(InvalidDPoPProof):
    """401: the DPoP proof was used before; sign a new one for every request."""


class DPoPNonceRequired(AuthenticationRequired):
    """401: sign a new proof with the server's nonce (RFC 9449 §9) and retry."""

    @property
    def nonce(self) -> str | None:
        """The ``DPoP-Nonce`` header of the response, when raised from one."""
        headers = getattr(self.response, "headers", None)
        value = headers.get("dpop-nonce") if headers is not None else None
        return value if isinstance(value, str) else None


class Forbidden(AuthError):
    """403: authenticated, but not allowed; new credentials of the same user will not help."""


class InsufficientScope(Forbidden):
    """403: the token lacks scopes; ask for a token with :attr:`required_scopes`."""

    @property
    def required_scopes(self) -> tuple[str, ...]:
        """The scopes the server asks for."""
        return self.problem.required_scopes


class PaymentRequired(AuthError):
    """402: the resource needs a payment or a plan; the offers are in :attr:`payment`."""

    @property
    def payment(self) -> Mapping[str, Any] | None:
        """What to pay, how and where (the body's ``payment`` member)."""
        return self.problem.payment

    @property
    def payment_required(self) -> Mapping[str, Any] | None:
        """The decoded x402 ``PAYMENT-REQUIRED`` header, if the server sent one."""
        return self.problem.payment_required


class TooManyAttempts(AuthError):
    """429: too many failed attempts; wait :attr:`retry_after` seconds."""


class AuthUnavailable(AuthError):
    """503: the server could not check credentials right now; retry after :attr:`retry_after`."""


class PaymentProviderFailed(AuthError):
    """502: the server's payment provider answered something unreadable; nothing was
    served. Retry later with the same proof: do not pay again."""


class InvalidAuthRequest(AuthError):
    """400: credentials were sent in a way that is not allowed (e.g. by two methods)."""


_BY_REASON: dict[str, type[AuthError]] = {
    Reason.CREDENTIALS_MISSING: AuthenticationRequired,
    Reason.CREDENTIALS_MALFORMED: InvalidCredentials,
    Reason.CREDENTIALS_INVALID: InvalidCredentials,
    Reason.TOKEN_WRONG_AUDIENCE: TokenWrongAudience,
    Reason.TOKEN_EXPIRED: TokenExpired,
    Reason.TOKEN_NOT_YET_VALID: TokenNotYetValid,
    Reason.CREDENTIALS_REVOKED: CredentialsRevoked,
    Reason.SESSION_EXPIRED: SessionExpired,
    Reason.SESSION_INVALID: SessionExpired,
    Reason.STEP_UP_REQUIRED: StepUpRequired,
    Reason.INSUFFICIENT_SCOPE: InsufficientScope,
    Reason.FORBIDDEN: Forbidden,
    Reason.ORIGIN_REJECTED: Forbidden,
    Reason.NETWORK_BLOCKED: Forbidden,
    Reason.INSECURE_TRANSPORT: Forbidden,
    Reason.PAYMENT_REQUIRED: PaymentRequired,
    Reason.PAYMENT_INVALID: PaymentRequired,
    Reason.PAYMENT_PROVIDER_ERROR: PaymentProviderFailed,
    Reason.TOO_MANY_ATTEMPTS: TooManyAttempts,
    Reason.AUTH_UNAVAILABLE: AuthUnavailable,
    Reason.INVALID_REQUEST: InvalidAuthRequest,
    Reason.DPOP_PROOF_MISSING: DPoPProofRequired,
    Reason.DPOP_PROOF_INVALID: InvalidDPoPProof,
    Reason.DPOP_PROOF_REPLAYED: DPoPProofReplayed,
    Reason.DPOP_NONCE_REQUIRED: DPoPNonceRequired,
}
_BY_STATUS: dict[int, type[AuthError]] = {
    400: InvalidAuthRequest,
    401: AuthenticationRequired,
    402: PaymentRequired,
    403: Forbidden,
    429: TooManyAttempts,
    502: PaymentProviderFailed,
    503: AuthUnavailable,
}
assert set(_BY_REASON) == set(Reason), "every Reason needs a client exception"  # noqa: S101


def error_class(problem: Problem) -> type[AuthError] | None:
    """The exception class for ``problem``; ``None`` when it is not a refusal.

    The reason picks the class when this version knows it and its status agrees; otherwise
    the status does (401, 402, 403 always; 400, 429, 502 and 503 only with a ``reason`` or a
    challenge, since a bare 502 or 503 is usually not about authentication).
    """
    cls = _BY_REASON.get(problem.reason or "")
    if cls is not None and _BY_STATUS.get(problem.status) in cls.__mro__:
        return cls
    if problem.status in (401, 402, 403):
        return _BY_STATUS[problem.status]
    if problem.status in _BY_STATUS and (problem.reason is not None or problem.challenges):
        return _BY_STATUS[problem.status]
    return None


def error_for(problem: Problem, response: Any = None) -> AuthError | None:
    """The exception to raise for ``problem``, or ``None`` when it is not a refusal."""
    cls = error_class(problem)
    return cls(problem, response) if cls is not None else None
