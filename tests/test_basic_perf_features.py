"""Basic: the verified-credential cache and password hashing off the event loop.

Behaviour only: how many hashes run, in which thread, what is served from memory and
when it stops being served. No timing assertions.
"""

from __future__ import annotations

import base64
import hmac
import threading

import anyio
import pytest
from starlette.applications import Starlette
from starlette.requests import HTTPConnection, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from authguard import (
    Authenticated,
    AuthGuard,
    AuthGuardMiddleware,
    BasicAuthenticator,
    ConfigurationError,
    Identity,
    PBKDF2Hasher,
    Public,
    Reason,
    Refusal,
    StaticPasswords,
    User,
    protect,
)
from authguard.stores.memory import MemoryRevocationStore
from helpers import asgi_client


class CountingHasher(PBKDF2Hasher):
    """A real PBKDF2 hasher that counts verify calls and records their threads."""

    def __init__(self) -> None:
        super().__init__(iterations=1000)
        self.verifies = 0
        self.threads: list[int] = []

    def verify(self, encoded: str, password: str) -> bool:
        self.verifies += 1
        self.threads.append(threading.get_ident())
        return super().verify(encoded, password)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def conn(user: str, password: str) -> HTTPConnection:
    value = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
    return HTTPConnection({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                           "headers": [(b"authorization", value)]})


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def users(hasher: CountingHasher) -> StaticPasswords:
    return StaticPasswords.from_plaintext(
        {"alice": ("wonderland", ["user"]), "bob": ("builder", []), "carol": ("c", [])},
        hasher=hasher,
    )


@pytest.fixture
def basic(users: StaticPasswords, clock: Clock) -> BasicAuthenticator:
    return BasicAuthenticator(verifier=users, cache_ttl=30, clock=clock)


async def refused(basic: BasicAuthenticator, user: str, password: str) -> Reason:
    with pytest.raises(Refusal) as info:
        await basic.authenticate(conn(user, password))
    return info.value.reason


# -- the cache -------------------------------------------------------------------------

async def test_repeated_credentials_hash_once(basic: BasicAuthenticator,
                                              hasher: CountingHasher) -> None:
    hasher.verifies = 0
    first = await basic.authenticate(conn("alice", "wonderland"))
    for _ in range(5):
        assert await basic.authenticate(conn("alice", "wonderland")) == first
    assert first == Identity(subject="alice", scheme="Basic", roles=frozenset({"user"}))
    assert hasher.verifies == 1


async def test_wrong_passwords_are_never_remembered(basic: BasicAuthenticator,
                                                    hasher: CountingHasher) -> None:
    await basic.authenticate(conn("alice", "wonderland"))
    hasher.verifies = 0
    for _ in range(3):
        assert await refused(basic, "alice", "wonderlanD") is Reason.CREDENTIALS_INVALID
        assert await refused(basic, "mallory", "x") is Reason.CREDENTIALS_INVALID
    assert hasher.verifies == 6, "every failure pays a full hash, known user or not"


async def test_user_and_password_boundary_is_unambiguous(hasher: CountingHasher) -> None:
    users = StaticPasswords.from_plaintext({"ab": ("c", []), "a": ("bc", [])}, hasher=hasher)
    basic = BasicAuthenticator(verifier=users)
    assert (await basic.authenticate(conn("ab", "c"))).subject == "ab"  # type: ignore[union-attr]
    assert (await basic.authenticate(conn("a", "bc"))).subject == "a"  # type: ignore[union-attr]
    assert await refused(basic, "a", "c") is Reason.CREDENTIALS_INVALID


async def test_entries_expire_after_the_ttl(basic: BasicAuthenticator, hasher: CountingHasher,
                                            clock: Clock) -> None:
    hasher.verifies = 0
    await basic.authenticate(conn("alice", "wonderland"))
    clock.now += 29
    await basic.authenticate(conn("alice", "wonderland"))
    assert hasher.verifies == 1
    clock.now += 1
    await basic.authenticate(conn("alice", "wonderland"))
    assert hasher.verifies == 2


async def test_cache_is_bounded_least_recently_used_first(users: StaticPasswords,
                                                          hasher: CountingHasher) -> None:
    basic = BasicAuthenticator(verifier=users, cache_size=2)
    await basic.authenticate(conn("alice", "wonderland"))
    await basic.authenticate(conn("bob", "builder"))
    await basic.authenticate(conn("alice", "wonderland"))  # alice is now the most recent
    await basic.authenticate(conn("carol", "c"))  # evicts bob
    assert basic._cache is not None and len(basic._cache) == 2
    hasher.verifies = 0
    await basic.authenticate(conn("alice", "wonderland"))
    await basic.authenticate(conn("carol", "c"))
    assert hasher.verifies == 0
    await basic.authenticate(conn("bob", "builder"))
    assert hasher.verifies == 1


async def test_password_change_drops_remembered_credentials_at_once(
    basic: BasicAuthenticator, users: StaticPasswords, hasher: CountingHasher
) -> None:
    await basic.authenticate(conn("alice", "wonderland"))
    users.set_user("alice", User(hasher.hash("looking-glass"), ("user",)))
    assert await refused(basic, "alice", "wonderland") is Reason.CREDENTIALS_INVALID
    identity = await basic.authenticate(conn("alice", "looking-glass"))
    assert identity is not None and identity.roles == {"user"}


async def test_removed_user_is_refused_at_once(basic: BasicAuthenticator,
                                               users: StaticPasswords) -> None:
    await basic.authenticate(conn("bob", "builder"))
    users.remove_user("bob")
    assert await refused(basic, "bob", "builder") is Reason.CREDENTIALS_INVALID


async def test_role_change_is_seen_at_once(basic: BasicAuthenticator, users: StaticPasswords,
                                           hasher: CountingHasher) -> None:
    await basic.authenticate(conn("bob", "builder"))
    users.set_user("bob", User(hasher.hash("builder"), ("admin",)))
    identity = await basic.authenticate(conn("bob", "builder"))
    assert identity is not None and identity.roles == {"admin"}


class DictVerifier:
    """A verifier of one's own, without ``on_change``: plain constant-time comparison."""

    def __init__(self, passwords: dict[str, str]) -> None:
        self.passwords = passwords
        self.calls = 0

    async def verify(self, username: str, password: str) -> Identity | None:
        self.calls += 1
        want = self.passwords.get(username, "\x00")
        if hmac.compare_digest(want.encode(), password.encode()) and username in self.passwords:
            return Identity(subject=username, scheme="Basic")
        return None


async def test_forget_serves_verifiers_of_ones_own() -> None:
    verifier = DictVerifier({"dora": "explorer"})
    basic = BasicAuthenticator(verifier=verifier)
    await basic.authenticate(conn("dora", "explorer"))
    await basic.authenticate(conn("dora", "explorer"))
    assert verifier.calls == 1
    verifier.passwords["dora"] = "map"
    basic.forget("dora")
    assert await refused(basic, "dora", "explorer") is Reason.CREDENTIALS_INVALID
    basic.forget("nobody")  # harmless


async def test_revoking_the_subject_drops_the_entry(users: StaticPasswords,
                                                    hasher: CountingHasher,
                                                    clock: Clock) -> None:
    revocations = MemoryRevocationStore(clock=clock)
    basic = BasicAuthenticator(verifier=users, revocations=revocations, clock=clock)
    await basic.authenticate(conn("alice", "wonderland"))
    await basic.authenticate(conn("bob", "builder"))
    hasher.verifies = 0
    clock.now += 1
    await revocations.revoke_subject("alice", clock.now, ttl=60)
    clock.now += 1
    await basic.authenticate(conn("alice", "wonderland"))  # verified anew, not remembered
    await basic.authenticate(conn("bob", "builder"))  # bob is unaffected
    assert hasher.verifies == 1
    clock.now += 1
    await basic.authenticate(conn("alice", "wonderland"))  # verified after the revocation
    assert hasher.verifies == 1


async def test_cache_off(users: StaticPasswords, hasher: CountingHasher) -> None:
    basic = BasicAuthenticator(verifier=users, cache_ttl=0)
    hasher.verifies = 0
    for _ in range(3):
        await basic.authenticate(conn("alice", "wonderland"))
    assert hasher.verifies == 3
    basic.forget("alice")


async def test_keys_are_keyed_hashes_random_per_instance(users: StaticPasswords) -> None:
    a = BasicAuthenticator(verifier=users)
    b = BasicAuthenticator(verifier=users)
    await a.authenticate(conn("alice", "wonderland"))
    assert a._cache is not None and b._cache is not None
    encoded = base64.b64encode(b"alice:wonderland")
    digest = a._cache.digest(encoded)
    assert digest == hmac.new(a._cache._key, encoded, "sha256").digest()
    assert digest != b._cache.digest(encoded)
    assert list(a._cache._entries) == [digest]
    assert not any(b"wonderland" in key or encoded in key for key in a._cache._entries)


@pytest.mark.parametrize("kwargs", [{"cache_ttl": -1}, {"cache_size": -1},
                                    {"cache_ttl": 86400}])
def test_cache_settings_are_checked(users: StaticPasswords, kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError, match="cache_"):
        BasicAuthenticator(verifier=users, **kwargs)  # type: ignore[arg-type]


def test_max_concurrency_is_checked(hasher: CountingHasher) -> None:
    with pytest.raises(ConfigurationError, match="max_concurrency"):
        StaticPasswords({}, hasher=hasher, max_concurrency=0)


# -- hashing off the event loop ----------------------------------------------------------

async def test_hash_runs_in_a_worker_thread(basic: BasicAuthenticator,
                                            hasher: CountingHasher) -> None:
    hasher.threads.clear()
    await basic.authenticate(conn("alice", "wonderland"))
    await refused(basic, "mallory", "nope")
    assert len(hasher.threads) == 2
    assert threading.get_ident() not in hasher.threads


class GateHasher(PBKDF2Hasher):
    """Blocks every verify until the gate opens; counts verifies running at once."""

    def __init__(self) -> None:
        super().__init__(iterations=1000)
        self.gate = threading.Event()
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0

    def verify(self, encoded: str, password: str) -> bool:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            assert self.gate.wait(10)
            return super().verify(encoded, password)
        finally:
            with self.lock:
                self.running -= 1


async def test_other_requests_are_served_while_a_hash_runs() -> None:
    hasher = GateHasher()
    users = StaticPasswords({"alice": hasher.hash("wonderland")}, hasher=hasher)

    @protect(Authenticated())
    async def private_page(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"hello {request.user.display_name}")

    @protect(Public)
    async def public_page(request: Request) -> PlainTextResponse:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/private", private_page), Route("/public", public_page)])
    guard = AuthGuard(authenticators=[BasicAuthenticator(verifier=users)])
    app.add_middleware(AuthGuardMiddleware, guard=guard)
    results: dict[str, str] = {}
    async with asgi_client(app) as client:

        async def private() -> None:
            r = await client.get("/private", auth=("alice", "wonderland"))
            results["private"] = r.text

        async with anyio.create_task_group() as tg:
            tg.start_soon(private)
            with anyio.fail_after(10):
                while hasher.running == 0:  # the hash has started, in its thread
                    await anyio.sleep(0.001)
            for _ in range(3):
                r = await client.get("/public")
                assert r.status_code == 200
            assert "private" not in results, "the hash is still blocked"
            hasher.gate.set()
    assert results["private"] == "hello alice"


async def test_hashes_at_once_are_bounded_by_max_concurrency() -> None:
    hasher = GateHasher()
    users = StaticPasswords({"alice": hasher.hash("wonderland")}, hasher=hasher,
                            max_concurrency=2)
    basic = BasicAuthenticator(verifier=users, cache_ttl=0)

    async def login() -> None:
        await basic.authenticate(conn("alice", "wonderland"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(login)
        with anyio.fail_after(10):
            while hasher.running < 2:
                await anyio.sleep(0.001)
        for _ in range(20):
            await anyio.sleep(0.001)
        assert hasher.running == 2
        hasher.gate.set()
    assert hasher.most == 2
