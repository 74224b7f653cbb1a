"""authguard: every refused request answered with the right status, challenge and reason.

The public API is re-exported here; import from ``authguard`` only.
"""

from .authenticators import (
    APIKeyAuthenticator,
    APIKeyStore,
    Authenticator,
    BasicAuthenticator,
    BearerAuthenticator,
    JWKSKeys,
    JWTKey,
    KeySource,
    PasswordVerifier,
    SessionAuthenticator,
    StaticAPIKeys,
    StaticKeys,
    StaticPasswords,
    User,
    hash_api_key,
)
from .bruteforce import BruteForceGuard
from .challenges import Challenge, ChallengeParseError, HeaderValueError, parse_www_authenticate
from .errors import AuthUnavailable, ConfigurationError, Refusal
from .guard import AuthGuard
from .identity import AuthContext, Identity
from .middleware import AuthGuardMiddleware, AuthState
from .net import NetworkPolicy
from .observability import Observability
from .passwords import Argon2Hasher, PasswordHasher, PBKDF2Hasher
from .payments import (
    Entitlement,
    EntitlementStore,
    EntitlementVerifier,
    MemoryEntitlementStore,
    Offer,
    Payment,
    PaymentContext,
    PaymentProviderError,
    PaymentRejected,
    PaymentVerifier,
    Price,
    ReceiptVerifier,
)
from .policy import (
    AllOf,
    AnyOf,
    Anyone,
    Authenticated,
    Context,
    DenyAll,
    HasRoles,
    HasScopes,
    Not,
    Permission,
    Policy,
    Public,
    Requirement,
    StepUp,
    policy_of,
    protect,
)
from .problems import PROBLEM_CONTENT_TYPE, problem_body, problem_schema
from .reasons import Reason, ReasonSpec

__version__ = "0.1.0"

__all__ = [
    "APIKeyAuthenticator",
    "APIKeyStore",
    "AllOf",
    "AnyOf",
    "Anyone",
    "Argon2Hasher",
    "AuthContext",
    "AuthGuard",
    "AuthGuardMiddleware",
    "AuthState",
    "AuthUnavailable",
    "Authenticated",
    "Authenticator",
    "BasicAuthenticator",
    "BearerAuthenticator",
    "BruteForceGuard",
    "Challenge",
    "ChallengeParseError",
    "ConfigurationError",
    "Context",
    "DenyAll",
    "Entitlement",
    "EntitlementStore",
    "EntitlementVerifier",
    "HasRoles",
    "HasScopes",
    "HeaderValueError",
    "Identity",
    "JWKSKeys",
    "JWTKey",
    "KeySource",
    "MemoryEntitlementStore",
    "NetworkPolicy",
    "Observability",
    "Not",
    "Offer",
    "PBKDF2Hasher",
    "PROBLEM_CONTENT_TYPE",
    "PasswordHasher",
    "PasswordVerifier",
    "Payment",
    "PaymentContext",
    "PaymentProviderError",
    "PaymentRejected",
    "PaymentVerifier",
    "Permission",
    "Policy",
    "Price",
    "Public",
    "Reason",
    "ReasonSpec",
    "ReceiptVerifier",
    "Refusal",
    "Requirement",
    "SessionAuthenticator",
    "StaticAPIKeys",
    "StaticKeys",
    "StaticPasswords",
    "StepUp",
    "User",
    "__version__",
    "hash_api_key",
    "parse_www_authenticate",
    "policy_of",
    "problem_body",
    "problem_schema",
    "protect",
]
