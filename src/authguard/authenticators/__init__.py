"""Pluggable authenticators: each small, each knows its own challenge."""

from .apikey import APIKeyAuthenticator, APIKeyStore, StaticAPIKeys, hash_api_key
from .base import Authenticator
from .basic import BasicAuthenticator, PasswordVerifier, StaticPasswords, User
from .bearer import BearerAuthenticator
from .keys import JWKSKeys, JWTKey, KeySource, StaticKeys
from .session import SessionAuthenticator

__all__ = [
    "APIKeyAuthenticator",
    "APIKeyStore",
    "Authenticator",
    "BasicAuthenticator",
    "BearerAuthenticator",
    "JWKSKeys",
    "JWTKey",
    "KeySource",
    "PasswordVerifier",
    "SessionAuthenticator",
    "StaticAPIKeys",
    "StaticKeys",
    "StaticPasswords",
    "User",
    "hash_api_key",
]
