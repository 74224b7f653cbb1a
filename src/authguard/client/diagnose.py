"""What a refusal means for a person: challenges, clock skew, the token sent, what to do.

Pure functions over a :class:`~authguard.client.Problem`; ``authguard explain`` renders
their result. The token is decoded **without verifying its signature** — only to compare
its claims with the server's answer; nothing here trusts it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jwt

from ..challenges import Challenge
from ..reasons import Reason
from .problem import Problem

__all__ = ["ClockReport", "TokenReport", "check_token", "clock_report", "describe_challenge",
           "how_to_send", "next_steps"]

SKEW_TOLERANCE = 5.0
"""Seconds of disagreement that ``Date`` (one-second resolution) and latency can explain."""
NOT_YET_SLACK = 2.0
"""Seconds an ``nbf``/``iat`` may lie past ``Date`` unremarked when the server said
``token_not_yet_valid``: ``Date`` is truncated to the second and refreshed once a second."""

_SCHEMES: dict[str, str] = {
    "basic": "Basic (RFC 7617): send 'Authorization: Basic base64(user:password)' "
             "(authguard explain: -u user:password).",
    "bearer": "Bearer (RFC 6750): send 'Authorization: Bearer <access token>' obtained from "
              "the token issuer.",
    "digest": "Digest (RFC 7616): a hashed password exchange; most HTTP clients do it for you "
              "when given the user name and password.",
    "negotiate": "Negotiate (RFC 4559): Kerberos/SPNEGO; needs a Kerberos ticket (kinit) or a "
                 "domain-joined machine.",
    "ntlm": "NTLM: Windows integrated authentication (legacy); needs Windows credentials and "
            "a client that speaks NTLM.",
    "apikey": "ApiKey: send the API key where the 'in' and 'name' parameters say (e.g. the "
              "X-API-Key header).",
    "cookie": "Cookie: sign in (at 'form-action' if given) to get a session cookie, then send "
              "it back.",
    "payment": "Payment: pay the offer named in the challenge, then retry with the proof in "
               "'Authorization: Payment …'.",
    "dpop": "DPoP (RFC 9449): a token bound to a key; send 'Authorization: DPoP <token>' and a "
            "'DPoP' proof header.",
    "aws4-hmac-sha256": "AWS Signature Version 4: sign the request with an AWS access key.",
    "mutual": "Mutual (RFC 8120): password-based mutual authentication.",
    "hoba": "HOBA (RFC 7486): origin-bound key authentication.",
    "privatetoken": "PrivateToken (RFC 9577): present a Privacy Pass token.",
    "scram-sha-1": "SCRAM-SHA-1 (RFC 7804): a salted challenge-response password exchange.",
    "scram-sha-256": "SCRAM-SHA-256 (RFC 7804): a salted challenge-response password exchange.",
}
_BEARER_ERRORS = {
    "invalid_token": "the token was refused: expired, revoked, malformed or not valid here",
    "insufficient_scope": "the token lacks scopes: get one with the 'scope' listed",
    "invalid_request": "the request is malformed: e.g. the token sent twice or in two ways",
    "insufficient_user_authentication": "sign in again, more strongly (acr_values) or more "
                                        "recently (max_age) — RFC 9470",
    "use_dpop_nonce": "retry with the nonce from the 'DPoP-Nonce' header in the DPoP proof",
}


def describe_challenge(challenge: Challenge) -> str:
    """One or two sentences on what a challenge asks the client to do."""
    scheme = challenge.scheme.lower()
    text = _SCHEMES.get(scheme, f"{challenge.scheme}: a scheme this tool does not know.")
    params = challenge.params
    extra: list[str] = []
    if params.get("realm"):
        extra.append(f"realm {params['realm']!r}")
    if scheme == "bearer" and "service" in params and params.get("realm", "").startswith(
            "http"):
        extra.append("a registry-style token service: GET the realm URL with 'service' and "
                     "'scope' to get a token")
    if "error" in params:
        meaning = _BEARER_ERRORS.get(params["error"], "")
        extra.append(f"error {params['error']!r}" + (f" ({meaning})" if meaning else ""))
    if "error_description" in params:
        extra.append(f"the server says: {params['error_description']!r}")
    if "scope" in params:
        extra.append(f"scope needed: {params['scope']}")
    if "acr_values" in params:
        extra.append(f"authentication context needed: {params['acr_values']}")
    if "max_age" in params:
        extra.append(f"signed in at most {params['max_age']} s ago")
    if "resource_metadata" in params:
        extra.append(f"OAuth resource metadata (RFC 9728): {params['resource_metadata']}")
    if "authorization_uri" in params:
        extra.append(f"sign in at {params['authorization_uri']}")
    if challenge.token68 is not None:
        extra.append("carries a token68 value (a continuation of a handshake)")
    return text + (" — " + "; ".join(extra) if extra else "")


@dataclass(frozen=True, slots=True)
class ClockReport:
    """The server's clock against the local one.

    Attributes:
        server_time: The response's ``Date`` (POSIX seconds).
        local_time: The local clock when the answer was read.
        skew: ``local_time - server_time``: positive means the local clock is ahead.
        significant: Whether ``|skew|`` is more than ``Date``'s resolution and latency explain.
    """

    server_time: float
    local_time: float
    skew: float
    significant: bool

    def sentence(self) -> str:
        """The skew in words."""
        if not self.significant:
            return f"The clocks agree (within {SKEW_TOLERANCE:.0f} s)."
        side = "ahead of" if self.skew > 0 else "behind"
        return f"Your clock is {abs(self.skew):.0f} s {side} the server's clock."


def clock_report(problem: Problem, *, now: float | None = None) -> ClockReport | None:
    """Compare the response's ``Date`` with the local clock; ``None`` without a ``Date``."""
    if problem.server_date is None:
        return None
    local = time.time() if now is None else now
    skew = local - problem.server_date
    return ClockReport(problem.server_date, local, skew, abs(skew) > SKEW_TOLERANCE)


@dataclass(frozen=True, slots=True)
class TokenReport:
    """The claims of a JWT that was sent, decoded without verification, and what is off.

    Attributes:
        decoded: Whether the token is a JWT that could be decoded.
        header: The JOSE header (``alg``, ``kid``, ``typ``).
        claims: The registered claims worth showing (``iss``, ``aud``, ``sub``, ``exp``,
            ``nbf``, ``iat``, ``scope``, ``acr``, ``auth_time``) — never the token itself.
        findings: Sentences pointing at a claim that explains the refusal.
    """

    decoded: bool
    header: Mapping[str, Any] = field(default_factory=dict)
    claims: Mapping[str, Any] = field(default_factory=dict)
    findings: tuple[str, ...] = ()


_SHOWN_CLAIMS = ("iss", "aud", "sub", "exp", "nbf", "iat", "scope", "scp", "acr", "auth_time",
                 "jti")
_SHOWN_HEADER = ("alg", "kid", "typ")


def _ago(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def _number(value: Any) -> float | None:
    """A NumericDate as a float; ``None`` for anything else (a string, NaN, an integer too
    large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def check_token(
    token: str,
    problem: Problem,
    *,
    now: float | None = None,
    audience: str | None = None,
    issuer: str | None = None,
) -> TokenReport:
    """Decode ``token`` without verifying it and point at the claim behind the refusal.

    Times are compared with the server's ``Date`` when there is one (that is the clock that
    decided), and with the local clock otherwise. ``audience`` and ``issuer`` are the values
    the caller expects the server to require; without them ``aud``/``iss`` are only shown.
    """
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return TokenReport(False, findings=(
            "The token is not a JWT this tool can decode (an opaque token): only its issuer "
            "can tell whether it is valid.",))
    local = time.time() if now is None else now
    ref = problem.server_date if problem.server_date is not None else local
    ref_name = "the server's clock" if problem.server_date is not None else "your clock"
    findings: list[str] = []
    alg = header.get("alg")
    if isinstance(alg, str) and alg.lower() == "none":
        findings.append("alg is 'none': the token is unsigned; no careful server accepts it.")
    exp, nbf, iat = (_number(claims.get(n)) for n in ("exp", "nbf", "iat"))
    if exp is not None and exp <= ref:
        text = f"exp: the token expired {_ago(ref - exp)} ago by {ref_name}."
        if exp > local:
            text += " By your clock it is still valid: the clocks disagree."
        findings.append(text + " Get a new token (refresh it or sign in again).")
    elif exp is None and "exp" in claims:
        findings.append("exp is not a number.")
    # ``Date`` has one-second resolution and servers refresh it about once a second, so a
    # fresh token's nbf/iat may lie up to two seconds past it. A server that said "not yet
    # valid" is believed for a smaller gap than a server that did not.
    slack = NOT_YET_SLACK if problem.known_reason is Reason.TOKEN_NOT_YET_VALID \
        else SKEW_TOLERANCE
    clocks = ("the issuer's clock is ahead of the server's (or the server's is behind): "
              "synchronise the clocks (NTP)")
    if nbf is not None and nbf > ref + slack:
        findings.append(f"nbf: the token becomes valid only in {_ago(nbf - ref)} by "
                        f"{ref_name}: {clocks}, or wait.")
    if iat is not None and iat > ref + slack:
        findings.append(f"iat: the token says it was issued {_ago(iat - ref)} from now by "
                        f"{ref_name}: {clocks}.")
    aud = claims.get("aud")
    auds = [aud] if isinstance(aud, str) else [a for a in aud if isinstance(a, str)] \
        if isinstance(aud, list) else []
    if audience is not None and audience not in auds:
        findings.append(f"aud: the token is for {auds or 'no audience'}, not {audience!r}: "
                        "request a token for this API's audience.")
    elif aud is None:
        findings.append("aud: the token names no audience; servers that require one "
                        "refuse it.")
    iss = claims.get("iss")
    if issuer is not None and iss != issuer:
        findings.append(f"iss: the token was issued by {iss!r}, not {issuer!r}: get one from "
                        "the issuer this server trusts.")
    if problem.required_scopes:
        have = set(str(claims.get("scope", "")).split()) | set(
            claims.get("scp", []) if isinstance(claims.get("scp"), list)
            else str(claims.get("scp", "")).split())
        missing = [s for s in problem.required_scopes if s not in have]
        if missing:
            findings.append(f"scope: the token lacks {' '.join(missing)}; request a token with "
                            "these scopes.")
    if problem.acr_values is not None:
        acr = claims.get("acr")
        if acr not in problem.acr_values.split():
            findings.append(f"acr: the token says {acr!r}, the server asks for "
                            f"{problem.acr_values!r}: sign in with that method.")
    auth_time = _number(claims.get("auth_time"))
    if problem.max_age is not None and auth_time is not None and ref - auth_time > \
            problem.max_age:
        findings.append(f"auth_time: you signed in {_ago(ref - auth_time)} ago; the server "
                        f"accepts at most {problem.max_age} s: sign in again.")
    typ = header.get("typ")
    if isinstance(typ, str) and typ.lower().removeprefix("application/") not in ("jwt",
                                                                                 "at+jwt"):
        findings.append(f"typ: the token says it is a {typ!r}, not an access token "
                        "('at+jwt' or 'JWT'): send the access token, not this one.")
    if problem.known_reason is Reason.TOKEN_WRONG_AUDIENCE and not any(
            f.startswith(("aud:", "iss:")) for f in findings):
        findings.append(f"The server says this token is not for it: the token is for "
                        f"{auds or 'no audience'}, issued by {iss!r}. Get a token for this "
                        "API: ask its authorization server with the 'resource' parameter "
                        "(RFC 8707) set to this API's resource URI.")
    if problem.known_reason is Reason.CREDENTIALS_INVALID and not findings:
        findings.append("Nothing in the claims explains the refusal: the signature, the key "
                        "(kid), the issuer or the audience may not be the ones this server "
                        "trusts — check iss and aud with --issuer/--audience.")
        if audience is None and auds:
            findings.append(f"aud is {' '.join(map(repr, auds))}: is that this API's "
                            "audience? (check with --audience)")
    shown = {k: claims[k] for k in _SHOWN_CLAIMS if k in claims}
    head = {k: header[k] for k in _SHOWN_HEADER if k in header}
    return TokenReport(True, head, shown, tuple(findings))


_STEPS: dict[str, tuple[str, ...]] = {
    Reason.CREDENTIALS_MISSING: (
        "Send credentials in one of the schemes offered above (e.g. -u user:password for "
        "Basic, -H 'Authorization: Bearer <token>' for Bearer).",
        "If you did send them, a proxy or redirect may have dropped the Authorization header.",
    ),
    Reason.CREDENTIALS_MALFORMED: (
        "Fix the format of the Authorization header for its scheme (no quotes, one space "
        "after the scheme name, valid base64).",),
    Reason.CREDENTIALS_INVALID: (
        "Check the user name and password, key or token; get a new one if it was replaced.",),
    Reason.TOKEN_WRONG_AUDIENCE: (
        "Get a token for this API: ask the authorization server for it with the 'resource' "
        "parameter (RFC 8707) set to this API's resource URI (its resource_metadata "
        "document names it, if the challenge points to one).",
        "The detail says which claim did not match: 'aud' (a token for another API) or "
        "'iss' (another issuer); check the token with --audience and --issuer.",),
    Reason.TOKEN_EXPIRED: ("Get a new token: refresh it or sign in again.",
                           "If a new token expires at once too, compare the clocks of the "
                           "issuer, the server and this machine (see the clock report)."),
    Reason.TOKEN_NOT_YET_VALID: ("Synchronise the clocks of the issuer and the server (NTP), "
                                 "or wait until the token's nbf.",),
    Reason.CREDENTIALS_REVOKED: ("Sign in again: these credentials were revoked.",),
    Reason.SESSION_EXPIRED: ("Sign in again; the server removed the stale cookie.",),
    Reason.SESSION_INVALID: ("Sign in again; the server removed the stale cookie.",),
    Reason.STEP_UP_REQUIRED: ("Sign in again with the method in acr_values, within max_age "
                              "seconds.",),
    Reason.INSUFFICIENT_SCOPE: ("Request a token that carries the scopes listed.",),
    Reason.FORBIDDEN: ("Ask an administrator for the role or permission; signing in again "
                       "as the same user will not help.",),
    Reason.ORIGIN_REJECTED: ("Send the request from the application's own origin, or use a "
                             "token instead of the cookie.",),
    Reason.NETWORK_BLOCKED: ("Connect from an allowed network (VPN, office).",),
    Reason.INSECURE_TRANSPORT: ("Use the https:// URL, and rotate the credentials you sent "
                                "over plain http.",),
    Reason.PAYMENT_REQUIRED: ("Pay with one of the offers, or upgrade the plan, then retry "
                              "with the proof.",),
    Reason.PAYMENT_INVALID: ("Get a fresh payment challenge and pay again; proofs are "
                             "single-use.",),
    Reason.PAYMENT_PROVIDER_ERROR: ("Retry later with the same payment proof; do not pay "
                                    "again.",),
    Reason.TOO_MANY_ATTEMPTS: ("Stop retrying; wait Retry-After seconds, then use the right "
                               "credentials.",),
    Reason.AUTH_UNAVAILABLE: ("Retry after Retry-After seconds; nothing is wrong with your "
                              "credentials.",),
    Reason.INVALID_REQUEST: ("Send the token by exactly one method, once.",),
    Reason.DPOP_PROOF_MISSING: (
        "The token is bound to a key (DPoP): send -H 'Authorization: DPoP <token>' and -H "
        "'DPoP: <proof>', a fresh proof signed by that key; never send it as Bearer.",),
    Reason.DPOP_PROOF_INVALID: (
        "Sign a new proof for this method and URL with the token's key; add -H 'DPoP: "
        "<proof>' here to see which check it fails.",),
    Reason.DPOP_PROOF_REPLAYED: ("Sign a new proof (a new jti) for every request.",),
    Reason.DPOP_NONCE_REQUIRED: (
        "Sign a new proof whose 'nonce' is the DPoP-Nonce header of this answer, and retry.",),
}
_STATUS_STEPS: dict[int, tuple[str, ...]] = {
    401: ("Send credentials in one of the schemes offered; if you did, they were refused.",),
    402: ("The server wants a payment or a plan; see its body or documentation.",),
    403: ("You are not allowed; other credentials (another user, role or scope) may be.",),
    407: ("A proxy wants credentials (Proxy-Authorization), not the server.",),
    429: ("Slow down; wait Retry-After seconds.",),
    503: ("The server is unavailable; retry later.",),
}


def how_to_send(challenge: Challenge) -> str:
    """How to send credentials for ``challenge`` with ``authguard explain`` (or curl)."""
    scheme = challenge.scheme.lower()
    if scheme == "basic":
        return "-u user:password (Basic)"
    if scheme == "bearer":
        return "-H 'Authorization: Bearer <token>' (Bearer)"
    if scheme == "dpop":
        return "-H 'Authorization: DPoP <token>' -H 'DPoP: <proof>' (DPoP)"
    if scheme == "apikey":
        where, name = challenge.params.get("in"), challenge.params.get("name")
        if where == "header" and name:
            return f"-H '{name}: <key>' (an API key)"
        if where == "query" and name:
            return f"?{name}=<key> in the URL (an API key)"
        if where == "cookie" and name:
            return f"-H 'Cookie: {name}=<key>' (an API key)"
        return "an API key where its challenge says"
    if scheme == "cookie":
        action = challenge.params.get("form-action")
        return f"a session cookie (log in{' at ' + action if action else ''} first)"
    return f"credentials of the {challenge.scheme} scheme"


def next_steps(problem: Problem) -> tuple[str, ...]:
    """What to do next, for the reason (or, from a server that is not authguard, status)."""
    steps: Sequence[str] = _STEPS.get(problem.reason or "", ()) or _STATUS_STEPS.get(
        problem.status, ())
    if problem.reason == Reason.CREDENTIALS_MISSING and problem.offered_scheme is not None:
        # Credentials were sent, of a scheme this route does not take: what it does take,
        # not "-u user:password" nor a stripped header.
        ways = list(dict.fromkeys(how_to_send(c) for c in problem.challenges))
        steps = (f"This route does not accept the {problem.offered_scheme} credentials you "
                 "sent (they were not checked). Send "
                 + (" or ".join(ways) if ways else "credentials of a scheme it accepts")
                 + " instead.",)
    payment = problem.payment
    if (problem.reason == Reason.PAYMENT_REQUIRED and payment is not None
            and payment.get("expired_at") is not None):
        # A lapsed plan is renewed; the request is then sent again as it is, no proof.
        checkout = payment.get("checkout")
        where = f" at {checkout}" if isinstance(checkout, str) and checkout else ""
        steps = (f"Your plan has ended: renew it{where}, then send the request again as it "
                 "is (an active plan needs no payment proof).",
                 "Or pay one of the offers above, if there is one.")
    out = list(steps)
    if problem.status == 401 and not problem.challenges and problem.challenge_errors:
        out.append("This 401 offers no challenge that can be read, only malformed ones: "
                   "the server's documentation must say which credentials it wants.")
    elif problem.status == 401 and not problem.challenges:
        out.append("This 401 carries no WWW-Authenticate challenge (RFC 9110 requires one): "
                   "the server's documentation must say which credentials it wants.")
    if problem.challenge_errors:
        out.append("A WWW-Authenticate field does not follow RFC 9110 §11; some clients will "
                   "not understand it.")
    return tuple(out)
