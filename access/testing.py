"""Fakes for the unit tests of packages that use access (the API, the CLI), shipped here so
they follow the real seams."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from access.authentication import Unauthenticated
from access.roles import Identity


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
        self.entries.append({
            "user": user, "role": role, "action": action, "obj": obj, "address": address,
            "now": now, "reason": reason, "details": dict(details or {}),
        })
        return str(len(self.entries))
