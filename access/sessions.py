"""Web sessions for the screens: a login with a token yields a session cookie and a CSRF token.

The cookie carries only a random session id (256 bits). It is ``HttpOnly`` (no script reads
it), ``Secure`` and ``SameSite=Strict`` (sent only by pages of this site), named with the
``__Host-`` prefix (so no subdomain can set or widen it). Redis keeps the session under a keyed
hash of its id, like tokens, with an expiry: the sooner of the session's lifetime and the
token's. Each use checks the token again, so revoking the token ends its sessions at once.

CSRF: a synchronizer token derived from the session id with the server key
(``HMAC-SHA256(key, "csrf" || session id)``). The page gets it at login and sends it back in a
header with every change; :func:`csrf_valid` recomputes it, so nothing more is stored and a
token from one session is worthless in another.

Keys (``P`` = key prefix): ``P access:session:<hex HMAC of the session id>``, hash: ``user``,
``role``, ``team``, ``token_id``, ``created``, ``expires``; the key expires with the session.

The HTTP routes that use this (login form, logout, the CSRF header check) are the screens'
(:mod:`screens.app`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Final, Protocol

from redis.asyncio import Redis

from access.authentication import Unauthenticated
from access.roles import Identity, Role
from access.tokens import MIN_KEY_BYTES, TokenInfo, decoded

COOKIE_NAME: Final = "__Host-hotline-session"
CSRF_HEADER: Final = "X-CSRF-Token"
DEFAULT_SESSION_S: Final = 8 * 3600.0
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}\Z")


class TokenAuthority(Protocol):
    """What sessions need from the tokens (:class:`access.tokens.TokenStore` is one)."""

    async def authenticate(self, authorization: str | None, now: float) -> Identity: ...

    async def check(self, token_id: str, now: float) -> TokenInfo: ...


@dataclass(frozen=True)
class Session:
    """A fresh login: ``session_id`` goes into the cookie, ``csrf`` into the page."""

    session_id: str
    identity: Identity
    csrf: str
    expires: float


def _subkey(key: bytes, purpose: bytes) -> bytes:
    """One key per use (session ids, CSRF), both from the one server key."""
    return hmac.new(key, b"hotline-access:" + purpose, hashlib.sha256).digest()


def csrf_token(key: bytes, session_id: str) -> str:
    """The CSRF token of a session (url-safe base64, no padding)."""
    mac = hmac.new(_subkey(key, b"csrf"), session_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def csrf_valid(key: bytes, session_id: str, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant-time compare)."""
    if not presented:
        return False
    return hmac.compare_digest(csrf_token(key, session_id).encode(), presented.encode())


def session_cookie(session_id: str, max_age_s: float) -> str:
    """The ``Set-Cookie`` value that hands the browser its session."""
    return (
        f"{COOKIE_NAME}={session_id}; Path=/; Max-Age={max(0, int(max_age_s))}; "
        "HttpOnly; Secure; SameSite=Strict"
    )


def cleared_session_cookie() -> str:
    """The ``Set-Cookie`` value that makes the browser forget its session (logout)."""
    return session_cookie("", 0)


def session_id_from_cookies(cookie_header: str | None) -> str | None:
    """The session id in a request's ``Cookie`` header, if one of the right shape is there."""
    for part in (cookie_header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE_NAME and _SESSION_ID.match(value):
            return value
    return None


class SessionStore:
    """Sessions of one key prefix in one Redis, made from the tokens of ``tokens``."""

    def __init__(
        self, redis: Redis, key: bytes, tokens: TokenAuthority, *,
        prefix: str = "hotline:", lifetime_s: float = DEFAULT_SESSION_S,
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the session key must be at least {MIN_KEY_BYTES} bytes")
        self.redis = redis
        self.tokens = tokens
        self.prefix = prefix
        self.lifetime_s = lifetime_s
        self._key = key
        self._id_key = _subkey(key, b"session-id")

    def _record_key(self, session_id: str) -> str:
        digest = hmac.new(self._id_key, session_id.encode(), hashlib.sha256).hexdigest()
        return f"{self.prefix}access:session:{digest}"

    async def login(self, token: str, now: float) -> Session:
        """A session for a valid token (as typed into the login form); Unauthenticated else."""
        identity = await self.tokens.authenticate(f"Bearer {token.strip()}", now)
        info = await self.tokens.check(identity.token_id, now)
        expires = min(now + self.lifetime_s, info.expires)
        session_id = secrets.token_urlsafe(32)
        key = self._record_key(session_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "user": identity.user, "role": identity.role.value, "team": identity.team or "",
                "token_id": identity.token_id, "created": repr(now), "expires": repr(expires),
            })
            pipe.pexpire(key, max(1, int((expires - now) * 1000)))
            await pipe.execute()
        return Session(session_id, identity, csrf_token(self._key, session_id), expires)

    async def identity(self, session_id: str | None, now: float) -> Identity:
        """Who the session is; Unauthenticated if it is unknown, over, or its token is."""
        if not session_id or not _SESSION_ID.match(session_id):
            raise Unauthenticated("no session: log in first")
        fields = decoded(await self.redis.hgetall(self._record_key(session_id)))
        if not fields or now >= float(fields["expires"]):
            raise Unauthenticated("the session is over (expired or logged out): log in again")
        await self.tokens.check(fields["token_id"], now)
        return Identity(
            fields["user"], Role(fields["role"]), fields["team"] or None, fields["token_id"]
        )

    def csrf(self, session_id: str) -> str:
        """The session's CSRF token, for each page rendered (the login gave it once)."""
        return csrf_token(self._key, session_id)

    def csrf_valid(self, session_id: str, presented: str | None) -> bool:
        return csrf_valid(self._key, session_id, presented)

    async def logout(self, session_id: str) -> None:
        if _SESSION_ID.match(session_id):
            await self.redis.delete(self._record_key(session_id))
