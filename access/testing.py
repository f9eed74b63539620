"""Fakes for the unit tests of packages that use access (the API, the CLI), shipped here so
they follow the real seams."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, field

from redis.asyncio import Redis

from access.authentication import Unauthenticated
from access.cli import EXIT_UNAVAILABLE, KeySource, TokenAudit, TokenCommandError
from access.roles import Identity
from audit.chain import Action

TOKEN_KEY_ENV = "HOTLINE_TOKEN_KEY"


@dataclass
class StaticAuthenticator:
    """An :class:`access.Authenticator` over a fixed ``{token: identity}`` table."""

    identities: Mapping[str, Identity]

    async def authenticate(self, authorization: str | None, now: float) -> Identity:
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("no Authorization header: send 'Bearer <token>'")
        identity = self.identities.get(token.strip())
        if identity is None:
            raise Unauthenticated("unknown token")
        return identity


@dataclass
class RecordingAudit:
    """An audit log that keeps what it was asked to record, as dicts (``fail`` makes it raise
    instead, like an audit log that cannot write)."""

    entries: list[dict[str, object]] = field(default_factory=list)
    fail: Exception | None = None

    async def record(
        self, *, user: str, role: str, action: str, obj: str, address: str, now: float,
        reason: str | None = None, details: Mapping[str, str] | None = None,
    ) -> str:
        if self.fail is not None:
            raise self.fail
        Action(action)  # the audit log refuses an action it has no name for; so does this
        self.entries.append({
            "user": user, "role": role, "action": action, "obj": obj, "address": address,
            "now": now, "reason": reason, "details": dict(details or {}),
        })
        return str(len(self.entries))


def env_token_key(environ: Mapping[str, str]) -> KeySource:
    """A tokens' key for the command's tests, from ``environ[TOKEN_KEY_ENV]`` (base64 of 32
    bytes); the real command reads the service's (``hotline.keys.token_key_source``)."""

    async def key(redis: Redis, prefix: str) -> bytes:
        text = environ.get(TOKEN_KEY_ENV, "")
        if not text:
            raise TokenCommandError(
                f"no token key: set {TOKEN_KEY_ENV} (base64 of 32 random bytes, the "
                "service's)", EXIT_UNAVAILABLE,
            )
        try:
            raw = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise TokenCommandError(
                f"{TOKEN_KEY_ENV} is not base64 of 32 bytes", EXIT_UNAVAILABLE
            )
        return raw

    return key


def unwired_audit(redis: Redis, prefix: str) -> TokenAudit:
    """An audit source that cannot give an audit log: the command must then refuse token
    changes, never make them unrecorded."""
    raise TokenCommandError(
        "no audit log is wired into `ivr tokens`: tokens are only created or revoked when the "
        "audit log records it", EXIT_UNAVAILABLE,
    )
