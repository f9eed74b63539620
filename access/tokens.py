"""Bearer tokens kept in Redis: created random, shown once, stored only as a keyed hash.

A token reads ``hlt_<id>_<secret>``: ``id`` (16 hex digits) names the record and is safe to
print, log and revoke by; ``secret`` is 256 random bits (43 url-safe characters) from
:mod:`secrets`. Redis holds only ``HMAC-SHA256(server key, token)``, so a copy of Redis (a
backup, a replica) lets nobody in; the server key is passed in as bytes (the service derives it
from its data keys).

Keys (``P`` = key prefix, default ``hotline:``):

=============================  ==================================================================
``P access:token:<id>``        hash: ``hash`` (hex HMAC), ``user``, ``role``, ``team``,
                               ``created``, ``expires``, ``revoked`` (epoch seconds; ``revoked``
                               empty while in force); the key itself expires a week after the
                               token, so ``list`` still shows recently expired tokens
``P access:tokens``            set of token ids (for ``list``; ids whose hash is gone are dropped)
=============================  ==================================================================

Redis is the truth and nothing is cached: every :meth:`TokenStore.authenticate` reads the
token's hash (one HGETALL), so a revocation holds at once on every instance sharing Redis.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from redis.asyncio import Redis

from access.authentication import Unauthenticated
from access.roles import Identity, Role
from hotline.text import as_text

TOKEN_PREFIX: Final = "hlt_"
DAY: Final = 86400.0
DEFAULT_EXPIRES_S: Final = 30 * DAY
MAX_EXPIRES_S: Final = 365 * DAY
KEEP_AFTER_EXPIRY_S: Final = 7 * DAY
MIN_KEY_BYTES: Final = 32

_TOKEN = re.compile(r"hlt_([0-9a-f]{16})_([A-Za-z0-9_-]{43})\Z")
_TOKEN_ID = re.compile(r"[0-9a-f]{16}\Z")
_USER = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
_TEAM = re.compile(r"[a-z][a-z0-9_-]{0,63}\Z")  # agents.yaml's team names
_DURATION = re.compile(r"([1-9][0-9]{0,5})([dhm])\Z")
_UNITS: Final = {"d": DAY, "h": 3600.0, "m": 60.0}

# Set ``revoked`` only on a token that exists (HSET would create a stray hash) and only once.
_REVOKE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'revoked') == '' then
  redis.call('HSET', KEYS[1], 'revoked', ARGV[1])
end
return 1
"""


class UnknownToken(KeyError):
    """No token with that id (never created, or gone a week after it expired)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown token"


@dataclass(frozen=True)
class TokenInfo:
    """What may be shown about a token: everything but the secret and its hash."""

    token_id: str
    user: str
    role: Role
    team: str | None
    created: float
    expires: float
    revoked: float | None = None

    def status(self, now: float) -> str:
        """``revoked``, ``expired`` or ``active``."""
        if self.revoked is not None:
            return "revoked"
        return "expired" if now >= self.expires else "active"

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "id": self.token_id, "user": self.user, "role": str(self.role), "team": self.team,
            "created": iso(self.created), "expires": iso(self.expires),
            "revoked": iso(self.revoked) if self.revoked is not None else None,
            "status": self.status(now),
        }


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_expires(text: str) -> float:
    """``30d``, ``12h``, ``90m`` as seconds; at most :data:`MAX_EXPIRES_S`. ValueError else."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30d, 12h or 90m")
    seconds = int(m.group(1)) * _UNITS[m.group(2)]
    if seconds > MAX_EXPIRES_S:
        raise ValueError(f"{text!r} is longer than the maximum, {int(MAX_EXPIRES_S // DAY)}d")
    return seconds


def check_subject(user: str, role: str, team: str | None) -> Role:
    """The role of a well-formed token subject; ValueError naming what is wrong."""
    if not _USER.match(user):
        raise ValueError(
            f"user {user!r} must be 1-64 letters, digits, '.', '_', '@' or '-' "
            "(starting with a letter or digit)"
        )
    try:
        parsed = Role(role)
    except ValueError:
        raise ValueError(
            f"unknown role {role!r}; one of {', '.join(r.value for r in Role)}"
        ) from None
    if parsed is Role.SUPERVISOR:
        if team is None:
            raise ValueError("a supervisor token needs a team")
        if not _TEAM.match(team):
            raise ValueError(f"team {team!r} must be lowercase letters, digits, '-' or '_'")
    elif team is not None:
        raise ValueError(f"a team applies to supervisor tokens only, not to role {parsed}")
    return parsed


class TokenStore:
    """The tokens of one key prefix in one Redis; the service's :class:`Authenticator`."""

    def __init__(self, redis: Redis, key: bytes, *, prefix: str = "hotline:") -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"the token key must be at least {MIN_KEY_BYTES} bytes")
        self.redis = redis
        self.prefix = prefix
        self._key = key
        self._revoke = redis.register_script(_REVOKE)

    def _record_key(self, token_id: str) -> str:
        return f"{self.prefix}access:token:{token_id}"

    @property
    def _index_key(self) -> str:
        return f"{self.prefix}access:tokens"

    def _digest(self, token: str) -> str:
        return hmac.new(self._key, token.encode(), hashlib.sha256).hexdigest()

    async def create(
        self, user: str, role: str, team: str | None = None, *,
        expires_s: float = DEFAULT_EXPIRES_S, now: float,
    ) -> tuple[str, TokenInfo]:
        """A new token (returned once, kept nowhere) and what may be shown about it."""
        parsed = check_subject(user, role, team)
        if not 0 < expires_s <= MAX_EXPIRES_S:
            raise ValueError(f"expiry must be more than 0 and at most {MAX_EXPIRES_S:.0f} s")
        token_id = secrets.token_hex(8)
        token = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        info = TokenInfo(token_id, user, parsed, team, now, now + expires_s)
        key = self._record_key(token_id)
        # The index first, then the token in one step on its own key: two slots on a Redis
        # Cluster. An id indexed without a token (a crash between) is dropped by list().
        await self.redis.sadd(self._index_key, token_id)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={
                "hash": self._digest(token), "user": user, "role": parsed.value,
                "team": team or "", "created": repr(now), "expires": repr(info.expires),
                "revoked": "",
            })
            pipe.expire(key, int(expires_s + KEEP_AFTER_EXPIRY_S))
            await pipe.execute()
        return token, info

    async def authenticate(self, authorization: str | None, now: float) -> Identity:
        """The identity of ``Bearer <token>``; :class:`Unauthenticated` otherwise."""
        if not authorization:
            raise Unauthenticated("no Authorization header: send 'Bearer <token>'")
        scheme, _, credential = authorization.strip().partition(" ")
        if scheme.lower() != "bearer":
            raise Unauthenticated("the Authorization header is not 'Bearer <token>'")
        m = _TOKEN.match(credential.strip())
        if not m:
            raise Unauthenticated("malformed token: not hlt_<id>_<secret>")
        token_id = m.group(1)
        fields = await self._fields(token_id)
        # One answer for "no such id" and "wrong secret": an id alone opens nothing.
        if not fields or not hmac.compare_digest(
            fields.get("hash", ""), self._digest(credential.strip())
        ):
            raise Unauthenticated(f"unknown token {token_id}")
        info = _info(token_id, fields)
        _check_in_force(info, now)
        return Identity(info.user, info.role, info.team, token_id)

    async def check(self, token_id: str, now: float) -> TokenInfo:
        """The token if it is still in force (for sessions made from it); Unauthenticated
        if it was revoked, expired or is gone."""
        try:
            info = await self.get(token_id)
        except UnknownToken:
            raise Unauthenticated(f"unknown token {token_id}") from None
        _check_in_force(info, now)
        return info

    async def get(self, token_id: str) -> TokenInfo:
        fields = await self._fields(token_id) if _TOKEN_ID.match(token_id) else {}
        if not fields:
            raise UnknownToken(f"no token {token_id!r}")
        return _info(token_id, fields)

    async def revoke(self, token_id: str, now: float) -> TokenInfo:
        """Revoke at once (a second revoke keeps the first time); UnknownToken if none."""
        if not _TOKEN_ID.match(token_id) or not await self._revoke(
            keys=[self._record_key(token_id)], args=[repr(now)]
        ):
            raise UnknownToken(f"no token {token_id!r}")
        return await self.get(token_id)

    async def list(self) -> tuple[TokenInfo, ...]:
        """Every token still kept, oldest first (never a secret or a hash)."""
        ids = sorted(as_text(i) for i in await self.redis.smembers(self._index_key))
        async with self.redis.pipeline(transaction=False) as pipe:
            for token_id in ids:
                pipe.hgetall(self._record_key(token_id))
            rows = await pipe.execute()
        found, gone = [], []
        for token_id, raw in zip(ids, rows, strict=True):
            if raw:
                found.append(_info(token_id, decoded(raw)))
            else:
                gone.append(token_id)
        if gone:
            await self.redis.srem(self._index_key, *gone)
        return tuple(sorted(found, key=lambda i: (i.created, i.token_id)))

    async def _fields(self, token_id: str) -> dict[str, str]:
        return decoded(await self.redis.hgetall(self._record_key(token_id)))


def decoded(raw: Mapping[bytes | str, bytes | str]) -> dict[str, str]:
    """A Redis hash reply as text."""
    return {as_text(k): as_text(v) for k, v in raw.items()}


def _info(token_id: str, fields: dict[str, str]) -> TokenInfo:
    return TokenInfo(
        token_id=token_id, user=fields["user"], role=Role(fields["role"]),
        team=fields.get("team") or None, created=float(fields["created"]),
        expires=float(fields["expires"]),
        revoked=float(fields["revoked"]) if fields.get("revoked") else None,
    )


def _check_in_force(info: TokenInfo, now: float) -> None:
    if info.revoked is not None:
        raise Unauthenticated(f"token {info.token_id} was revoked at {iso(info.revoked)}")
    if now >= info.expires:
        raise Unauthenticated(f"token {info.token_id} expired at {iso(info.expires)}")
