"""BasicAuthenticator (RFC 7617): parsing, UTF-8, equal work for unknown users."""

from __future__ import annotations

import base64

import pytest
from starlette.requests import HTTPConnection

from authguard import (
    BasicAuthenticator,
    ConfigurationError,
    HeaderValueError,
    Identity,
    PBKDF2Hasher,
    Reason,
    Refusal,
    StaticPasswords,
)
from authguard.challenges import format_challenge


class CountingHasher(PBKDF2Hasher):
    """A real PBKDF2 hasher that counts verify calls."""

    def __init__(self) -> None:
        super().__init__(iterations=1000)
        self.verifies = 0

    def verify(self, encoded: str, password: str) -> bool:
        self.verifies += 1
        return super().verify(encoded, password)


def conn(*auth: bytes) -> HTTPConnection:
    return HTTPConnection({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                           "headers": [(b"authorization", a) for a in auth]})


def encode(raw: bytes) -> bytes:
    return b"Basic " + base64.b64encode(raw)


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def basic(hasher: CountingHasher) -> BasicAuthenticator:
    users = StaticPasswords.from_plaintext(
        {"alice": ("wonderland", ["user"]), "zoë": ("pässwörd:with:colons", [])},
        hasher=hasher,
    )
    return BasicAuthenticator(verifier=users, realm='the "demo" realm')


async def test_good_credentials(basic: BasicAuthenticator) -> None:
    identity = await basic.authenticate(conn(encode(b"alice:wonderland")))
    assert identity == Identity(subject="alice", scheme="Basic", roles=frozenset({"user"}))


async def test_utf8_user_id_and_password_with_colons(basic: BasicAuthenticator) -> None:
    raw = "zoë:pässwörd:with:colons".encode()
    identity = await basic.authenticate(conn(encode(raw)))
    assert identity is not None and identity.subject == "zoë"


async def test_scheme_name_is_case_insensitive(basic: BasicAuthenticator) -> None:
    value = b"bAsIc " + base64.b64encode(b"alice:wonderland")
    assert await basic.authenticate(conn(value)) is not None


async def test_not_basic_is_not_my_business(basic: BasicAuthenticator) -> None:
    assert await basic.authenticate(conn(b"Bearer abc")) is None
    assert await basic.authenticate(conn()) is None
    assert not basic.has_credentials(conn(b"Basically"))


@pytest.mark.parametrize(
    "value",
    [
        b"Basic !!!notbase64",
        b"Basic YWxpY2U",  # bad padding
        b"Basic " + base64.b64encode(b"no-colon-here"),
        b"Basic " + base64.b64encode(b"\xff\xfe:latin1"),  # not UTF-8
        b"Basic " + base64.b64encode(b"ali\x00ce:pw"),  # control character
        b"Basic " + base64.b64encode(b"alice:pw\r\n"),
        b"Basic ",
        b"Basic",
        b"Basic " + b"QUFB" * 2000,  # huge
    ],
)
async def test_malformed_headers_are_401_malformed(basic: BasicAuthenticator,
                                                   value: bytes) -> None:
    with pytest.raises(Refusal) as info:
        await basic.authenticate(conn(value))
    assert info.value.reason is Reason.CREDENTIALS_MALFORMED
    assert info.value.status == 401


async def test_two_authorization_headers_are_malformed(basic: BasicAuthenticator) -> None:
    with pytest.raises(Refusal) as info:
        await basic.authenticate(conn(encode(b"alice:wonderland"), encode(b"alice:x")))
    assert info.value.reason is Reason.CREDENTIALS_MALFORMED


async def test_unknown_user_costs_one_hash_like_a_known_one(
    basic: BasicAuthenticator, hasher: CountingHasher
) -> None:
    hasher.verifies = 0
    with pytest.raises(Refusal) as wrong:
        await basic.authenticate(conn(encode(b"alice:nope")))
    known = hasher.verifies
    with pytest.raises(Refusal) as unknown:
        await basic.authenticate(conn(encode(b"mallory:nope")))
    assert known == 1
    assert hasher.verifies - known == 1, "an unknown user is verified against a dummy hash"
    assert wrong.value.reason is unknown.value.reason is Reason.CREDENTIALS_INVALID
    assert wrong.value.detail == unknown.value.detail


async def test_refusal_names_the_account_for_the_brute_force_guard(
    basic: BasicAuthenticator,
) -> None:
    with pytest.raises(Refusal) as info:
        await basic.authenticate(conn(encode(b"alice:nope")))
    assert info.value.account == "alice"
    assert "alice" not in str(info.value)


def test_challenge_has_realm_and_charset_escaped(basic: BasicAuthenticator) -> None:
    assert format_challenge(basic.challenge()) == (
        'Basic realm="the \\"demo\\" realm", charset="UTF-8"'
    )


def test_realm_with_crlf_is_refused_at_construction(hasher: CountingHasher) -> None:
    users = StaticPasswords({}, hasher=hasher)
    with pytest.raises(HeaderValueError):
        BasicAuthenticator(verifier=users, realm="evil\r\nSet-Cookie: x=1")


def test_tiny_max_length_is_a_configuration_error(hasher: CountingHasher) -> None:
    with pytest.raises(ConfigurationError, match="max_length"):
        BasicAuthenticator(verifier=StaticPasswords({}, hasher=hasher), max_length=3)


def test_argon2_hasher_round_trip() -> None:
    from authguard import Argon2Hasher

    h = Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1)
    encoded = h.hash("s3cret")
    assert encoded.startswith("$argon2id$")
    assert h.verify(encoded, "s3cret")
    assert not h.verify(encoded, "S3cret")
    assert not h.verify("not-a-hash", "s3cret")


def test_pbkdf2_rejects_garbage_hashes() -> None:
    h = PBKDF2Hasher(iterations=1000)
    assert not h.verify("garbage", "x")
    assert not h.verify("md5$1$abc$def", "x")
    with pytest.raises(ConfigurationError, match="iterations"):
        PBKDF2Hasher(iterations=10)
