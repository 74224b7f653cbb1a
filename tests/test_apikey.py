"""APIKeyAuthenticator: header, opt-in query and cookie, hashed lookup."""

from __future__ import annotations

import pytest
from starlette.requests import HTTPConnection

from authguard import (
    APIKeyAuthenticator,
    ConfigurationError,
    Identity,
    Reason,
    Refusal,
    StaticAPIKeys,
    hash_api_key,
)
from authguard.challenges import format_challenge

KEY = "k-0123456789abcdef"
ALICE = Identity(subject="alice", scheme="ApiKey")


def conn(headers: list[tuple[bytes, bytes]] = (), qs: bytes = b"") -> HTTPConnection:  # type: ignore[assignment]
    return HTTPConnection({"type": "http", "method": "GET", "path": "/", "query_string": qs,
                           "headers": list(headers)})


@pytest.fixture
def store() -> StaticAPIKeys:
    return StaticAPIKeys({hash_api_key(KEY): ALICE})


def test_keys_are_stored_as_hashes(store: StaticAPIKeys) -> None:
    assert KEY not in repr(store._keys)
    assert hash_api_key(KEY) in store._keys
    assert len(hash_api_key(KEY)) == 64


async def test_header_key(store: StaticAPIKeys) -> None:
    a = APIKeyAuthenticator(store=store)
    assert await a.authenticate(conn([(b"x-api-key", KEY.encode())])) == ALICE
    assert await a.authenticate(conn()) is None


async def test_query_and_cookie_only_when_enabled(store: StaticAPIKeys) -> None:
    header_only = APIKeyAuthenticator(store=store)
    assert await header_only.authenticate(conn(qs=f"api_key={KEY}".encode())) is None
    q = APIKeyAuthenticator(store=store, header=None, query_param="api_key")
    assert await q.authenticate(conn(qs=f"api_key={KEY}".encode())) == ALICE
    c = APIKeyAuthenticator(store=store, header=None, cookie="key")
    assert await c.authenticate(conn([(b"cookie", f"key={KEY}".encode())])) == ALICE


async def test_key_sent_twice_is_invalid_request(store: StaticAPIKeys) -> None:
    a = APIKeyAuthenticator(store=store, query_param="api_key")
    with pytest.raises(Refusal) as info:
        await a.authenticate(conn([(b"x-api-key", KEY.encode())], qs=f"api_key={KEY}".encode()))
    assert info.value.reason is Reason.INVALID_REQUEST
    assert info.value.status == 400


@pytest.mark.parametrize("raw", [b"", b"   ", "ключ".encode(), b"a\x01b", b"x" * 600])
async def test_malformed_keys(store: StaticAPIKeys, raw: bytes) -> None:
    a = APIKeyAuthenticator(store=store)
    with pytest.raises(Refusal) as info:
        await a.authenticate(conn([(b"x-api-key", raw)]))
    assert info.value.reason is Reason.CREDENTIALS_MALFORMED


async def test_unknown_key_is_invalid(store: StaticAPIKeys) -> None:
    a = APIKeyAuthenticator(store=store)
    with pytest.raises(Refusal) as info:
        await a.authenticate(conn([(b"x-api-key", b"k-unknown-0000")]))
    assert info.value.reason is Reason.CREDENTIALS_INVALID


def test_challenge_names_where_the_key_goes(store: StaticAPIKeys) -> None:
    assert format_challenge(APIKeyAuthenticator(store=store, realm="r").challenge()) == (
        'ApiKey realm="r", in=header, name=X-API-Key'
    )
    q = APIKeyAuthenticator(store=store, header=None, query_param="k")
    assert format_challenge(q.challenge()) == 'ApiKey realm="authguard", in=query, name=k'


def test_nowhere_to_look_is_a_configuration_error(store: StaticAPIKeys) -> None:
    with pytest.raises(ConfigurationError, match="header"):
        APIKeyAuthenticator(store=store, header=None)
