"""The Reason table: every cause of a refusal, its status, title, hints and challenge rule.

This module is the one source of truth for DESIGN §1. A new cause is one row here (plus its
docs page); nothing elsewhere special-cases a reason.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal

__all__ = ["DEFAULT_TYPE_BASE", "Reason", "ReasonSpec", "spec"]

DEFAULT_TYPE_BASE = "https://authguard.dev/reasons/"
"""Default base of the problem ``type`` URIs; the reason code is appended."""

ChallengeRule = Literal["all", "scheme", "none", "optional"]


class Reason(enum.StrEnum):
    """Stable, machine-readable causes of a refusal (the ``reason`` member of the body)."""

    CREDENTIALS_MISSING = "credentials_missing"
    CREDENTIALS_MALFORMED = "credentials_malformed"
    INVALID_REQUEST = "invalid_request"
    CREDENTIALS_INVALID = "credentials_invalid"
    TOKEN_WRONG_AUDIENCE = "token_wrong_audience"  # noqa: S105 - a reason code
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 - a reason code
    TOKEN_NOT_YET_VALID = "token_not_yet_valid"  # noqa: S105
    CREDENTIALS_REVOKED = "credentials_revoked"
    SESSION_EXPIRED = "session_expired"
    SESSION_INVALID = "session_invalid"
    STEP_UP_REQUIRED = "step_up_required"
    INSUFFICIENT_SCOPE = "insufficient_scope"
    FORBIDDEN = "forbidden"
    ORIGIN_REJECTED = "origin_rejected"
    NETWORK_BLOCKED = "network_blocked"
    INSECURE_TRANSPORT = "insecure_transport"
    PAYMENT_REQUIRED = "payment_required"
    PAYMENT_INVALID = "payment_invalid"
    PAYMENT_PROVIDER_ERROR = "payment_provider_error"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    AUTH_UNAVAILABLE = "auth_unavailable"
    # DPoP, RFC 9449
    DPOP_PROOF_MISSING = "dpop_proof_missing"
    DPOP_PROOF_INVALID = "invalid_dpop_proof"
    DPOP_PROOF_REPLAYED = "dpop_proof_replayed"
    DPOP_NONCE_REQUIRED = "use_dpop_nonce"

    @property
    def spec(self) -> ReasonSpec:
        """The row of the table for this reason."""
        return _TABLE[self]

    @property
    def status(self) -> int:
        """The HTTP status code answered for this reason."""
        return _TABLE[self].status


@dataclass(frozen=True, slots=True)
class ReasonSpec:
    """One row of the Reason table.

    Attributes:
        status: HTTP status code.
        title: Short, fixed summary (RFC 9457 ``title``).
        detail: Default human explanation (RFC 9457 ``detail``).
        hints: Short fixes a person can apply.
        challenge: Which ``WWW-Authenticate`` challenges go out: ``all`` (every scheme the
            route accepts), ``scheme`` (the scheme that rejected the credentials), ``none``,
            or ``optional`` (only if the refusal brings its own, e.g. a payment challenge).
        bearer_error: The RFC 6750 / RFC 9470 ``error`` code for a Bearer challenge.
        scheme_hints: Hints that replace ``hints`` when the refusal names one of these
            schemes (keys lower-case: ``basic``, ``bearer``, ``apikey``, ``cookie``,
            ``dpop``): a rejected token is not fixed by checking a password.
    """

    status: int
    title: str
    detail: str
    hints: tuple[str, ...]
    challenge: ChallengeRule
    bearer_error: str | None = None
    scheme_hints: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: MappingProxyType({}), hash=False, compare=False)

    def hints_for(self, scheme: str | None) -> tuple[str, ...]:
        """The hints for a refusal naming ``scheme`` (the general ones for another
        scheme, or none)."""
        if scheme is None or not self.scheme_hints:
            return self.hints
        return self.scheme_hints.get(scheme.lower(), self.hints)


def spec(reason: Reason) -> ReasonSpec:
    """Return the table row for ``reason``."""
    return _TABLE[reason]


_TABLE: dict[Reason, ReasonSpec] = {
    Reason.CREDENTIALS_MISSING: ReasonSpec(
        401,
        "Authentication required",
        "This resource needs credentials, and none that it accepts were sent.",
        (
            "Send credentials in one of the schemes listed in WWW-Authenticate.",
            "Check that a proxy or client library did not strip the Authorization header.",
        ),
        "all",
    ),
    Reason.CREDENTIALS_MALFORMED: ReasonSpec(
        401,
        "Malformed credentials",
        "The credentials could not be parsed.",
        (
            "Check the header format for the scheme (e.g. 'Basic base64(user:password)').",
            "Do not wrap the value in quotes or add extra spaces.",
        ),
        "scheme",
        "invalid_token",
        MappingProxyType({
            "bearer": (
                "Send the token as 'Authorization: Bearer <token>': one space after "
                "'Bearer', no quotes, the token exactly as issued (RFC 6750 §2.1).",
                "Check that the token was not cut short or wrapped when it was copied.",
            ),
            "dpop": (
                "Send the token as 'Authorization: DPoP <token>' with its proof in the "
                "'DPoP' header, each exactly as issued or signed (RFC 9449 §7.1).",
            ),
            "apikey": (
                "Send the API key exactly as it was issued: no quotes, spaces or other "
                "characters around it.",
            ),
        }),
    ),
    Reason.INVALID_REQUEST: ReasonSpec(
        400,
        "Invalid authentication request",
        "The request carries credentials in a way that is not allowed.",
        ("Send the token by exactly one method, once.",),
        "scheme",
        "invalid_request",
    ),
    Reason.CREDENTIALS_INVALID: ReasonSpec(
        401,
        "Invalid credentials",
        "The credentials were not accepted.",
        (
            "Check the user name and password, or the key or token, and try again.",
            "Get a new token or key from the issuer if this one was replaced.",
        ),
        "scheme",
        "invalid_token",
        MappingProxyType({
            "basic": (
                "Check the user name and password, and try again.",
                "If the password was changed or reset, use the new one.",
            ),
            "bearer": (
                "The token was not accepted: its signature, its key (kid) or its issuer is "
                "not one this API trusts, or it is not a token this API can read.",
                "Get a new token from the issuer this API trusts, and send it unchanged.",
            ),
            "dpop": (
                "The DPoP-bound token was not accepted: its signature, its key (kid) or its "
                "issuer is not one this API trusts.",
                "Get a new token from the issuer this API trusts, bound to your DPoP key.",
            ),
            "apikey": (
                "Check the API key: it may be mistyped, revoked or replaced.",
                "Get a new key from whoever issues this API's keys.",
            ),
            "cookie": (
                "Log in again to get a new session.",
            ),
        }),
    ),
    Reason.TOKEN_WRONG_AUDIENCE: ReasonSpec(
        401,
        "Token for another audience",
        "The token was issued for another API (its 'aud') or by an issuer this API does not "
        "trust (its 'iss').",
        (
            "Get a token for this API: with OAuth, name this API in the 'resource' parameter "
            "of the authorization and token requests (RFC 8707).",
            "Check which authorization server this API trusts, and get the token there.",
        ),
        "scheme",
        "invalid_token",
    ),
    Reason.TOKEN_EXPIRED: ReasonSpec(
        401,
        "Token expired",
        "The token has expired.",
        ("Refresh the token or sign in again.", "Check that the client's clock is correct."),
        "scheme",
        "invalid_token",
    ),
    Reason.TOKEN_NOT_YET_VALID: ReasonSpec(
        401,
        "Token not yet valid",
        "The token is not valid yet; the clocks of the issuer and this server may disagree.",
        (
            "Compare the Date header of this response with the clock that issued the token.",
            "Synchronise clocks (NTP), or wait until the token's 'nbf' (or 'iat') time.",
        ),
        "scheme",
        "invalid_token",
    ),
    Reason.CREDENTIALS_REVOKED: ReasonSpec(
        401,
        "Credentials revoked",
        "These credentials were revoked.",
        ("Sign in again to get new credentials.",),
        "scheme",
        "invalid_token",
    ),
    Reason.SESSION_EXPIRED: ReasonSpec(
        401,
        "Session expired",
        "The session has expired; the stale cookie was removed.",
        ("Sign in again.",),
        "scheme",
    ),
    Reason.SESSION_INVALID: ReasonSpec(
        401,
        "Session invalid",
        "The session cookie is not valid; it was removed.",
        ("Sign in again.",),
        "scheme",
    ),
    Reason.STEP_UP_REQUIRED: ReasonSpec(
        401,
        "Stronger authentication required",
        "You are signed in, but this resource needs a stronger or more recent sign-in.",
        ("Authenticate again with the method named in acr_values, within max_age seconds.",),
        "scheme",
        "insufficient_user_authentication",
    ),
    Reason.INSUFFICIENT_SCOPE: ReasonSpec(
        403,
        "Insufficient scope",
        "The credentials do not carry the scopes this resource needs.",
        ("Request a token with the scopes listed in required_scopes.",),
        "scheme",
        "insufficient_scope",
    ),
    Reason.FORBIDDEN: ReasonSpec(
        403,
        "Forbidden",
        "You are authenticated, but not allowed to do this.",
        ("Ask an administrator for the needed role or permission.",),
        "none",
    ),
    Reason.ORIGIN_REJECTED: ReasonSpec(
        403,
        "Origin rejected",
        "A cookie-authenticated request that changes state came from an origin that is not "
        "allowed.",
        ("Send the request from the application's own origin, or use a token instead.",),
        "none",
    ),
    Reason.NETWORK_BLOCKED: ReasonSpec(
        403,
        "Network blocked",
        "Requests from this network address are not allowed.",
        ("Connect from an allowed network (e.g. the company VPN).",),
        "none",
    ),
    Reason.INSECURE_TRANSPORT: ReasonSpec(
        403,
        "HTTPS required",
        "Credentials must be sent over HTTPS; treat the ones just sent as exposed.",
        ("Use the https:// URL.", "Rotate the credentials that were sent over plain HTTP."),
        "none",
    ),
    Reason.PAYMENT_REQUIRED: ReasonSpec(
        402,
        "Payment required",
        "This resource needs a payment or an active plan.",
        ("Pay with one of the offers in 'payment' (its Payment challenge, or x402's "
         "PAYMENT-REQUIRED), then retry with the proof.",),
        "optional",
    ),
    Reason.PAYMENT_INVALID: ReasonSpec(
        402,
        "Payment invalid",
        "The payment proof was not accepted.",
        ("Pay the fresh challenge in this answer; proofs are single-use, and a Payment "
         "credential counts only in the field its challenge selected.",),
        "optional",
    ),
    Reason.PAYMENT_PROVIDER_ERROR: ReasonSpec(
        502,
        "Payment provider error",
        "The payment provider gave an answer that could not be read; nothing was served.",
        (
            "Retry later with the same payment proof; do not pay again.",
            "If this persists, contact the service with the request id.",
        ),
        "none",
    ),
    Reason.TOO_MANY_ATTEMPTS: ReasonSpec(
        429,
        "Too many attempts",
        "Too many failed authentication attempts.",
        ("Wait for the time in Retry-After before trying again.",),
        "none",
    ),
    Reason.AUTH_UNAVAILABLE: ReasonSpec(
        503,
        "Authentication unavailable",
        "A service needed to check credentials is unavailable; nothing was decided.",
        ("Retry after the time in Retry-After.",),
        "none",
    ),
    # DPoP, RFC 9449 (sender-constrained tokens): the DPoP challenge carries the error
    # (invalid_dpop_proof, use_dpop_nonce; §7.1, §9); on a Bearer challenge, invalid_token.
    Reason.DPOP_PROOF_MISSING: ReasonSpec(
        401,
        "DPoP proof required",
        "The access token is bound to a key (DPoP), and no proof of possession was sent.",
        (
            "Send the token as 'Authorization: DPoP <token>' with a 'DPoP' header holding a "
            "fresh proof signed by the token's key.",
            "A DPoP-bound token is never accepted as a Bearer token.",
        ),
        "scheme",
        "invalid_token",
    ),
    Reason.DPOP_PROOF_INVALID: ReasonSpec(
        401,
        "Invalid DPoP proof",
        "The DPoP proof was not accepted.",
        (
            "Sign a new proof for this request: 'htm' the method, 'htu' the URL without query "
            "and fragment, 'iat' now, 'ath' the hash of the access token.",
            "Sign with the key the token is bound to (its 'cnf.jkt'), using an algorithm "
            "from 'algs' in WWW-Authenticate.",
        ),
        "scheme",
    ),
    Reason.DPOP_PROOF_REPLAYED: ReasonSpec(
        401,
        "DPoP proof replayed",
        "This DPoP proof was used before; every request needs a proof of its own.",
        ("Sign a new proof, with a new 'jti', for each request (retries included).",),
        "scheme",
    ),
    Reason.DPOP_NONCE_REQUIRED: ReasonSpec(
        401,
        "DPoP nonce required",
        "The DPoP proof must carry the nonce this server issued; a new one is in the "
        "DPoP-Nonce header.",
        ("Sign a new proof with 'nonce' set to the DPoP-Nonce header's value, and retry.",),
        "scheme",
    ),
}

assert set(_TABLE) == set(Reason), "every Reason needs a row"  # noqa: S101
