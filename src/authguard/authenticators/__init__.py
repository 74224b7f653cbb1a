"""Pluggable authenticators: each small, each knows its own challenge."""

from .apikey import APIKeyAuthenticator, APIKeyStore, StaticAPIKeys, hash_api_key
from .base import Authenticator
from .basic import BasicAuthenticator, PasswordVerifier, StaticPasswords, User

__all__ = [
    "APIKeyAuthenticator",
    "APIKeyStore",
    "Authenticator",
    "BasicAuthenticator",
    "PasswordVerifier",
    "StaticAPIKeys",
    "StaticPasswords",
    "User",
    "hash_api_key",
]
