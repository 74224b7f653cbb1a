"""Signed session cookies (itsdangerous) backed by server-side session records.

The cookie carries a random session id and the subject, signed and timestamped with
itsdangerous; the newest of ``secret_keys`` signs, every listed key verifies (rotation).
The record in a :class:`~authguard.stores.SessionStore` makes logout real: a copied
cookie stops working once its session ends, on every replica that shares the store.

Refusals: a cookie past ``max_age`` → ``session_expired``; a bad signature or an unknown
shape → ``session_invalid``; a session that ended on the server → ``session_expired``;
one issued before the subject's last security change → ``credentials_revoked``. Each
deletes the stale cookie. Cookie-authenticated unsafe requests (POST, PUT, PATCH, DELETE)
and websocket handshakes from an origin that is not allowed → 403 ``origin_rejected``.

The challenge: ``Cookie realm="…", form-action="/login", cookie-name="…"`` — it names the
login form that sets the cookie and the cookie's name, so every 401 carries a challenge.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from hashlib import sha256
from typing import Literal, cast
from urllib.parse import urlsplit

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from starlette.requests import HTTPConnection, cookie_parser
from starlette.responses import Response

from ..challenges import Challenge, checked_setting
from ..errors import ConfigurationError, Refusal
from ..identity import Identity
from ..reasons import Reason
from ..stores.base import RevocationStore, SessionRecord, SessionStore
from ..stores.memory import MemorySessionStore

__all__ = ["SessionAuthenticator"]

# Whether Starlette's ``conn.cookies`` reads every ``Cookie`` field (newer Starlette) or the
# first one only: the session authenticator reads the cookie the app's ``request.cookies``
# sees, whichever Starlette the app runs on.
_EVERY_COOKIE_FIELD = HTTPConnection({"type": "http", "headers": [
    (b"cookie", b"a=1"), (b"cookie", b"a=2")]}).cookies.get("a") == "2"

_SCHEME = "Cookie"
# Methods whose cookie-authenticated requests must come from an allowed origin.
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_MIN_KEY_BYTES = 32
_VERIFIED_MAX = 4096  # verified cookies remembered (oldest dropped first)
# (session id, subject, signed at, signed at as itsdangerous' whole seconds, credential id)
_Verified = tuple[str, str, float, int, str]


class SessionAuthenticator:
    """Session cookies.

    Args:
        secret_keys: Signing keys, newest first; each at least 32 bytes. The first signs,
            all verify — add a new key in front, drop the old one after ``max_age``.
        store: Server-side session records (in-memory by default; Redis for replicas).
        revocations: Per-subject "not before" times: sessions created earlier are void.
        cookie_name: Name of the cookie.
        max_age: Seconds a session lives after login.
        path: Cookie ``Path``.
        domain: Cookie ``Domain`` (unset: host-only, the safer default).
        same_site: Cookie ``SameSite`` (``lax`` by default).
        secure: ``Secure`` attribute: ``None`` sets it whenever the request came over https.
        allowed_origins: Origins (``https://app.example``) besides the app's own that may
            send cookie-authenticated unsafe requests and open websockets.
        login_url: The login form's action, named in the challenge.
        realm: Named in the challenge.
        max_cookie_bytes: Larger cookies are refused before any decoding.
        clock: Current time, in seconds.
        claims: What :meth:`login` may put in a session besides its sign-in time, of
            ``"roles"``, ``"scopes"``, ``"acr"`` (all three by default). Name only what
            your login gives (``claims=["roles"]``): OpenAPI then does not offer the
            cookie on routes that need scopes or an ``acr``, and :meth:`login` refuses
            the others.
    """

    def __init__(
        self,
        *,
        secret_keys: Sequence[str | bytes],
        store: SessionStore | None = None,
        revocations: RevocationStore | None = None,
        cookie_name: str = "authguard_session",
        max_age: int = 8 * 3600,
        path: str = "/",
        domain: str | None = None,
        same_site: Literal["lax", "strict", "none"] = "lax",
        secure: bool | None = None,
        allowed_origins: Sequence[str] = (),
        login_url: str = "/login",
        realm: str = "authguard",
        max_cookie_bytes: int = 4096,
        clock: Callable[[], float] | None = None,
        claims: Sequence[str] = ("roles", "scopes", "acr"),
    ) -> None:
        if isinstance(secret_keys, str | bytes) or not secret_keys:
            raise ConfigurationError("secret_keys: give a list of keys, newest first")
        keys: list[bytes] = []
        for i, key in enumerate(secret_keys):
            raw = key.encode("utf-8") if isinstance(key, str) else bytes(key)
            if len(raw) < _MIN_KEY_BYTES:
                raise ConfigurationError(
                    f"secret_keys[{i}]: a session key needs at least {_MIN_KEY_BYTES} bytes "
                    f"(got {len(raw)})")
            keys.append(raw)
        if not cookie_name or not cookie_name.isascii() or any(
            c in cookie_name for c in ' \t;,="()<>@:\\/[]?{}'
        ):
            raise ConfigurationError(f"cookie_name: {cookie_name!r} is not a cookie name")
        if max_age <= 0:
            raise ConfigurationError("max_age: must be positive")
        if same_site not in ("lax", "strict", "none"):
            raise ConfigurationError("same_site: one of 'lax', 'strict', 'none'")
        if same_site == "none" and secure is False:
            raise ConfigurationError("same_site: 'none' needs Secure cookies")
        for origin in allowed_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                raise ConfigurationError(
                    f"allowed_origins: {origin!r} is not an origin like https://app.example")
        checked_setting(realm, "realm")
        checked_setting(login_url, "login_url")
        if isinstance(claims, str) or not set(claims) <= {"roles", "scopes", "acr"}:
            raise ConfigurationError(
                "claims: a list of 'roles', 'scopes', 'acr' (what login() may store)")
        self.claims = frozenset(claims)
        # itsdangerous signs with the last key and verifies with all.
        self._serializer = URLSafeTimedSerializer(list(reversed(keys)),
                                                  salt="authguard.session")
        # itsdangerous' clock (``TimestampSigner.get_timestamp``), for remembered cookies
        self._serializer_clock = cast(TimestampSigner, self._serializer.make_signer()
                                      ).get_timestamp
        # keyed by SHA-256 of the cookie: no credential is kept
        self._verified: dict[bytes, _Verified] = {}
        self._identities: dict[str, tuple[tuple[object, ...], Identity]] = {}
        self.store: SessionStore = store if store is not None else MemorySessionStore()
        self.revocations = revocations
        self.cookie_name = cookie_name
        self.max_age = max_age
        self.path = path
        self.domain = domain
        self.same_site = same_site
        self.secure = secure
        self.allowed_origins = frozenset(o.lower().rstrip("/") for o in allowed_origins)
        self.login_url = login_url
        self.realm = realm
        self.max_cookie_bytes = max_cookie_bytes
        self._clock = clock
        self._name_eq = cookie_name.encode("latin-1") + b"="
        self._challenge = Challenge(_SCHEME, {"realm": realm, "form-action": login_url,
                                              "cookie-name": cookie_name})

    # -- the protocol ----------------------------------------------------------------------

    @property
    def scheme(self) -> str:
        """``Cookie``."""
        return _SCHEME

    def has_credentials(self, conn: HTTPConnection) -> bool:
        """Whether the session cookie is present."""
        for name, value in conn.scope["headers"]:
            if name == b"cookie" and self._name_eq in value:
                return self._cookie(conn) is not None
        return False

    def _cookie(self, conn: HTTPConnection) -> str | None:
        """``conn.cookies.get(cookie_name)``, without building a ``Headers`` object: the
        ``Cookie`` fields parsed as the installed Starlette parses them (every field, later
        names winning; the first field only on older Starlette, 0.40 for one), and left on the
        connection where ``conn.cookies`` keeps its own parse, so that ``has_credentials``
        and ``authenticate`` parse once between them."""
        parsed: dict[str, str] | None = getattr(conn, "_cookies", None)
        if parsed is None:
            parsed = {}
            for name, value in conn.scope["headers"]:
                if name == b"cookie":
                    parsed.update(cookie_parser(value.decode("latin-1")))
                    if not _EVERY_COOKIE_FIELD:
                        break
            setattr(conn, "_cookies", parsed)  # noqa: B010 - Starlette's own cache
        return parsed.get(self.cookie_name)

    def account(self, conn: HTTPConnection) -> str | None:
        """Session cookies claim no account name (a bad one is a signature failure)."""
        return None

    def challenge(self, reason: Reason | None = None,
                  params: dict[str, str] | None = None) -> Challenge:
        """``Cookie realm="…", form-action="/login", cookie-name="…"``."""
        return self._challenge

    async def authenticate(self, conn: HTTPConnection) -> Identity | None:
        """Verify the cookie and its server-side session; ``None`` without a cookie."""
        value = self._cookie(conn)
        if value is None:
            return None
        # the URL's scheme, without building the URL
        secure = str(conn.scope.get("scheme", "http")).lower() in ("https", "wss")
        if len(value) > self.max_cookie_bytes:
            raise self._stale(Reason.SESSION_INVALID, secure, "The session cookie is too large.")
        record, credential_id = await self._record(value, secure)
        now = self._now()
        if record.expires_at <= now:
            raise self._stale(Reason.SESSION_EXPIRED, secure)
        data = record.data or {}
        if conn.scope["type"] == "websocket" or conn.scope["method"] in UNSAFE_METHODS:
            # A websocket is not under CORS: a cookie must not open one for another site.
            self._check_origin(conn)
        # The identity is made from these values only: made once while they stay the same
        # (the cache holds them and the identity, never the session id).
        auth_time = data.get("auth_time")
        source = (record.subject, record.created_at, data.get("roles", ""),
                  data.get("scopes", ""), data.get("acr"), auth_time)
        made = self._identities.get(credential_id)
        if made is not None and made[0] == source:
            return made[1]
        identity = Identity(
            subject=record.subject,
            scheme=_SCHEME,
            roles=frozenset(data.get("roles", "").split()),
            scopes=frozenset(data.get("scopes", "").split()),
            acr=data.get("acr") or None,
            auth_time=float(auth_time) if auth_time else record.created_at,
            issued_at=record.created_at,
            credential_id=credential_id,
        )
        if len(self._identities) >= _VERIFIED_MAX:
            self._identities.pop(next(iter(self._identities)))
        self._identities[credential_id] = (source, identity)
        return identity

    @property
    def identity_claims(self) -> frozenset[str]:
        """What its identities can carry: its ``claims`` and the sign-in time."""
        return self.claims | {"auth_time"}

    # -- login and logout ----------------------------------------------------------------

    async def login(
        self,
        conn: HTTPConnection,
        response: Response,
        subject: str,
        *,
        roles: Sequence[str] = (),
        scopes: Sequence[str] = (),
        acr: str | None = None,
        data: Mapping[str, str] | None = None,
    ) -> SessionRecord:
        """Start a new session for ``subject`` and set its cookie on ``response``.

        A new random session id every time (no session fixation); an earlier session of
        this browser, if its cookie is still valid, is ended.
        """
        for name, given in (("roles", roles), ("scopes", scopes), ("acr", acr)):
            if given and name not in self.claims:
                raise ConfigurationError(
                    f"login({name}=...): this authenticator's claims do not include "
                    f"{name!r} (SessionAuthenticator(claims=...))")
        await self.logout(conn, None)
        now = self._now()
        fields = dict(data or {})
        fields.update({"roles": " ".join(roles), "scopes": " ".join(scopes),
                       "acr": acr or "", "auth_time": repr(now)})
        record = SessionRecord(
            session_id=secrets.token_urlsafe(32), subject=subject, created_at=now,
            expires_at=now + self.max_age, data=fields,
        )
        await self.store.create(record)
        value = self._serializer.dumps([record.session_id, subject])
        response.set_cookie(
            self.cookie_name, value, max_age=self.max_age, path=self.path, domain=self.domain,
            secure=self._secure(conn), httponly=True, samesite=self.same_site,
        )
        return record

    async def logout(self, conn: HTTPConnection, response: Response | None) -> bool:
        """End the request's session on the server and delete its cookie; ``True`` if a
        session was ended."""
        ended = False
        value = conn.cookies.get(self.cookie_name)
        if value is not None and len(value) <= self.max_cookie_bytes:
            try:
                session_id, _, _ = self._decode(value)
            except BadData:
                pass
            else:
                ended = await self.store.get(session_id) is not None
                await self.store.delete(session_id)
        if response is not None:
            response.delete_cookie(self.cookie_name, path=self.path, domain=self.domain,
                                   secure=self._secure(conn), httponly=True,
                                   samesite=self.same_site)
        return ended

    async def end_sessions(self, subject: str) -> None:
        """End every session of ``subject`` (e.g. after a password change)."""
        await self.store.delete_subject(subject)

    # -- internals -----------------------------------------------------------------------

    def _now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    def _secure(self, conn: HTTPConnection) -> bool:
        return self.secure if self.secure is not None else conn.url.scheme in ("https", "wss")

    def _decode(self, value: str) -> tuple[str, str, float]:
        payload, signed_at = self._serializer.loads(value, max_age=self.max_age,
                                                    return_timestamp=True)
        if (not isinstance(payload, list) or len(payload) != 2
                or not all(isinstance(p, str) for p in payload)):
            raise BadData("unexpected session payload")
        return payload[0], payload[1], signed_at.timestamp()

    def _verify_cookie(self, value: str, secure: bool) -> _Verified:
        """The cookie's session id, subject, signing time and credential id.

        A cookie whose signature verified is remembered (bounded, by SHA-256 of its value):
        itsdangerous' key derivation, HMAC, base64 and JSON run once per cookie, not once
        per request. Its age is checked on every use, on itsdangerous' own clock (whole
        seconds), so a remembered cookie expires exactly when a fresh verification would
        say so; the server-side session is looked up on every request all the same.
        """
        key = sha256(value.encode("utf-8", "surrogatepass")).digest()
        hit = self._verified.get(key)
        if hit is not None:
            age = self._serializer_clock() - hit[3]
            if 0 <= age <= self.max_age:
                return hit
            del self._verified[key]
        try:
            session_id, subject, signed_at = self._decode(value)
        except SignatureExpired:
            raise self._stale(Reason.SESSION_EXPIRED, secure) from None
        except (BadData, ValueError, TypeError):
            raise self._stale(Reason.SESSION_INVALID, secure) from None
        entry = (session_id, subject, signed_at, int(signed_at),
                 hashlib.sha256(session_id.encode()).hexdigest()[:16])
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.pop(next(iter(self._verified)))
        self._verified[key] = entry
        return entry

    async def _record(self, value: str, secure: bool) -> tuple[SessionRecord, str]:
        session_id, subject, signed_at, _, credential_id = self._verify_cookie(value, secure)
        record = await self.store.get(session_id)
        if self.revocations is not None:
            # A session started before the subject's last security change is void. The
            # record's start is exact; without a record, the cookie's signing time (whole
            # seconds) stands in for it.
            not_before = await self.revocations.subject_not_before(subject)
            started = record.created_at if record is not None else signed_at
            if not_before is not None and started < not_before:
                await self.store.delete(session_id)
                raise self._stale(Reason.CREDENTIALS_REVOKED, secure,
                                  "Sessions started before the account's last security "
                                  "change were ended.")
        if record is None:
            raise self._stale(Reason.SESSION_EXPIRED, secure,
                              "The session has ended (signed out, or expired); the stale "
                              "cookie was removed.")
        if record.subject != subject:
            raise self._stale(Reason.SESSION_INVALID, secure)
        return record, credential_id

    def _stale(self, reason: Reason, secure: bool, detail: str | None = None) -> Refusal:
        attrs = [f'{self.cookie_name}=""', f"Path={self.path}", "Max-Age=0",
                 "Expires=Thu, 01 Jan 1970 00:00:00 GMT", "HttpOnly",
                 f"SameSite={self.same_site.capitalize()}"]
        if self.domain:
            attrs.append(f"Domain={self.domain}")
        if self.secure if self.secure is not None else secure:
            attrs.append("Secure")
        return Refusal(reason, detail, scheme=_SCHEME, delete_cookies=["; ".join(attrs)])

    def _check_origin(self, conn: HTTPConnection) -> None:
        headers = conn.headers
        origin = headers.get("origin")
        if origin is None:
            referer = headers.get("referer")
            if referer is not None:
                try:
                    parts = urlsplit(referer)
                except ValueError:  # "http://[bad": not a URL, not an allowed origin
                    raise _origin_rejected() from None
                origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else "null"
        if origin is None:
            # No Origin and no Referer: not a browser's cross-site request, unless the
            # browser says so itself.
            if headers.get("sec-fetch-site", "").lower() == "cross-site":
                raise _origin_rejected()
            return
        origin = origin.strip().lower().rstrip("/")
        if origin in self.allowed_origins:
            return
        try:
            parts = urlsplit(origin)
        except ValueError:
            raise _origin_rejected() from None
        host = headers.get("host", "").lower()
        if parts.scheme in ("http", "https") and parts.netloc and parts.netloc == host:
            return
        raise _origin_rejected()


def _origin_rejected() -> Refusal:
    return Refusal(Reason.ORIGIN_REJECTED,
                   "A cookie-authenticated request that changes state (or opens a "
                   "websocket) came from another origin.", scheme=_SCHEME)
