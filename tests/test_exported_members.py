"""The public API: everything in ``authguard.__all__`` exists, and nothing slips in unseen.

Adding a public name means adding it here too.
"""

from __future__ import annotations

import authguard

EXPECTED = {
    "APIKeyAuthenticator", "APIKeyStore", "AllOf", "AnyOf", "Anyone", "Argon2Hasher",
    "AuthContext", "AuthGuard", "AuthGuardMiddleware", "AuthState", "AuthUnavailable",
    "Authenticated", "Authenticator", "BasicAuthenticator", "BearerAuthenticator",
    "JWKSKeys", "JWTKey", "KeySource", "SessionAuthenticator", "StaticKeys",
    "BruteForceGuard", "Challenge",
    "ChallengeParseError", "parse_www_authenticate",
    "ConfigurationError", "Context", "DenyAll", "HasRoles", "HasScopes", "HeaderValueError",
    "Identity", "NetworkPolicy", "Not", "PBKDF2Hasher", "PROBLEM_CONTENT_TYPE",
    "PasswordHasher", "PasswordVerifier", "Permission", "Policy", "Public", "Reason",
    "ReasonSpec", "Refusal", "Requirement", "StaticAPIKeys", "StaticPasswords", "StepUp",
    "User", "__version__", "hash_api_key", "policy_of", "problem_body", "problem_schema",
    "protect",
    "Entitlement", "EntitlementStore", "EntitlementVerifier", "MemoryEntitlementStore",
    "Offer", "Payment", "PaymentContext", "PaymentProviderError", "PaymentRejected",
    "PaymentVerifier", "Price", "ReceiptVerifier",
    "DPoPAuthenticator", "DPoPNonces", "TokenVerifier",
    "BearerIssuers", "IssuerKeys", "MetadataSigner", "ProtectedResource", "install_metadata",
    "Observability",
}


def test_all_is_pinned() -> None:
    assert set(authguard.__all__) == EXPECTED


def test_every_exported_name_exists_and_is_documented() -> None:
    for name in authguard.__all__:
        obj = getattr(authguard, name)
        if callable(obj) and not name.isupper():
            assert obj.__doc__, f"authguard.{name} needs a docstring"


def test_no_duplicates_in_all() -> None:
    assert len(authguard.__all__) == len(set(authguard.__all__))
