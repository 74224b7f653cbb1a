"""Pluggable authenticators: each small, each knows its own challenge."""

from .apikey import APIKeyAuthenticator, APIKeyStore, StaticAPIKeys, hash_api_key
from .base import Authenticator
from .basic import BasicAuthenticator, PasswordVerifier, StaticPasswords, User
from .bearer import BearerAuthenticator
from .dpop import DPoPAuthenticator, TokenVerifier
from .dpop_nonce import DPoPNonces
from .keys import JWKSKeys, JWTKey, KeySource, StaticKeys
from .session import SessionAuthenticator

__all__ = [
    "APIKeyAuthenticator",
    "APIKeyStore",
    "Authenticator",
    "BasicAuthenticator",
    "BearerAuthenticator",
    "DPoPAuthenticator",
    "DPoPNonces",
    "JWKSKeys",
    "JWTKey",
    "KeySource",
    "PasswordVerifier",
    "SessionAuthenticator",
    "StaticAPIKeys",
    "StaticKeys",
    "StaticPasswords",
    "TokenVerifier",
    "User",
    "hash_api_key",
]
