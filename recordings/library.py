"""Audited access to recordings: list, metadata, decrypted audio, legal hold.

Every operation names who asks (an :class:`access.Identity`), from where, and why (a stated
reason, required), and is written to the audit log before anything is handed out; an audit
log that cannot take the entry refuses the access (``AuditUnavailable`` from the log).

Who may: ``recordings:read`` (``access.roles``): quality and ops any recording, a supervisor
the recordings of their team's agents; agents none (they can neither list nor fetch other
agents' calls). ``recordings:hold``: ops. A recording is opened only after the SHA-256 of the
stored object matches its metadata and both GCM tags check (``recordings.crypto``): a
tampered object, a wrong key or a wrong id is a clear error, and no byte of audio is returned
before that. The audio is decrypted in memory and handed out in chunks; nothing is written.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from access import Identity, Permission, Scope, authorize
from access.roles import permits
from recordings.catalog import Catalog
from recordings.crypto import RecordingKeyError, RecordingVault
from recordings.metadata import RecordingMeta
from recordings.pipeline import RunBlocking
from recordings.storage import RecordingNotStored, RecordingStorage

__all__ = [
    "AuditRecorder",
    "Playback",
    "RecordingLibrary",
    "RecordingNotFound",
    "RecordingUnreadable",
    "Requester",
]

CHUNK = 64 * 1024


class RecordingNotFound(LookupError):
    """No recording with this id."""


class RecordingUnreadable(Exception):
    """The stored recording does not open: altered, its object missing, or a wrong key."""


@dataclass(frozen=True)
class Requester:
    """Who asks, from which address (``local`` for the command line), when, and why."""

    identity: Identity
    address: str
    now: float
    reason: str


class AuditRecorder(Protocol):
    """The audit log's ``record`` (``audit.log.AuditLog``, ``api.AuditTrail``)."""

    async def record(
        self, *, user: str, role: str, action: str, obj: str, address: str, now: float,
        reason: str | None = None, details: Mapping[str, str] | None = None,
    ) -> str: ...


@dataclass(frozen=True)
class Playback:
    """A decrypted recording, in memory."""

    meta: RecordingMeta
    audio: bytes

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        view = memoryview(self.audio)
        for start in range(0, len(view), size):
            yield bytes(view[start:start + size])


class RecordingLibrary:
    """``teams``: an agent's team (agents.yaml); ``members``: a team's agents."""

    def __init__(
        self, *, catalog: Catalog, storage: RecordingStorage,
        vault: Callable[[], RecordingVault], audit: AuditRecorder,
        teams: Callable[[str], str | None], members: Callable[[str], Sequence[str]],
        run_blocking: RunBlocking = asyncio.to_thread,
    ) -> None:
        self.catalog = catalog
        self.storage = storage
        self.vault = vault
        self.audit = audit
        self.teams = teams
        self.members = members
        self._run = run_blocking

    async def list(self, who: Requester, *, agent: str | None = None,
                   call_id: str | None = None, limit: int = 50,
                   order_id: str | None = None) -> list[RecordingMeta]:
        """The newest recordings ``who`` may see: all of them (quality, ops), their team's
        (a supervisor), or one agent's (``agent``, if ``who`` may see that agent's)."""
        _reason(who)
        if agent is not None:
            self._authorize(who, Permission.RECORDINGS_READ, agent)
            agents: list[str] | None = [agent]
        elif permits(who.identity, Permission.RECORDINGS_READ, None):
            agents = None
        else:
            team = who.identity.team
            authorize(who.identity, Permission.RECORDINGS_READ, Scope(team=team))
            agents = list(self.members(team)) if team else []
        await self._audit(who, "recording.list", "recordings",
                          {k: v for k, v in (("agent", agent), ("call_id", call_id),
                                             ("work_order_id", order_id)) if v})
        return await self.catalog.newest(agents=agents, call_id=call_id, limit=limit,
                                         order_id=order_id)

    async def metadata(self, who: Requester, recording_id: str) -> RecordingMeta:
        meta = await self._readable(who, recording_id)
        await self._audit(who, "recording.read", f"recording:{recording_id}")
        return meta

    async def open(self, who: Requester, recording_id: str) -> Playback:
        """The decrypted audio, once checksum and GCM tags are checked (module docstring)."""
        meta = await self._readable(who, recording_id)
        await self._audit(who, "recording.play", f"recording:{recording_id}")
        return Playback(meta, await self._run(self._decrypt, meta))

    def _decrypt(self, meta: RecordingMeta) -> bytes:
        rid = meta.recording_id
        try:
            stored = self.storage.get(rid)
        except RecordingNotStored:
            raise RecordingUnreadable(f"recording {rid}: its stored object is missing") from None
        if hashlib.sha256(stored).hexdigest() != meta.sha256:
            raise RecordingUnreadable(
                f"recording {rid}: the stored object does not match its checksum (altered)")
        try:
            return self.vault().open(meta.sealed(stored))
        except RecordingKeyError as exc:
            raise RecordingUnreadable(str(exc)) from None

    async def hold(self, who: Requester, recording_id: str) -> RecordingMeta:
        """Legal hold: no deletion until released."""
        return await self._set_hold(who, recording_id, True)

    async def release(self, who: Requester, recording_id: str) -> RecordingMeta:
        return await self._set_hold(who, recording_id, False)

    async def _set_hold(self, who: Requester, recording_id: str, held: bool) -> RecordingMeta:
        _reason(who)
        authorize(who.identity, Permission.RECORDINGS_HOLD)
        meta = await self.catalog.get(recording_id)
        if meta is None:
            raise RecordingNotFound(f"no recording {recording_id}")
        await self._audit(who, "recording.hold" if held else "recording.release",
                          f"recording:{recording_id}")
        await self.catalog.set_hold(recording_id, held, who.reason if held else "")
        found = await self.catalog.get(recording_id)
        if found is None:
            raise RecordingNotFound(f"no recording {recording_id}")
        return found

    async def _readable(self, who: Requester, recording_id: str) -> RecordingMeta:
        _reason(who)
        # A role that may read no recording learns nothing, not even that one is absent.
        own = who.identity
        if not permits(own, Permission.RECORDINGS_READ, None):
            authorize(own, Permission.RECORDINGS_READ, Scope(agent=own.user, team=own.team))
        meta = await self.catalog.get(recording_id)
        if meta is None:
            raise RecordingNotFound(f"no recording {recording_id}")
        self._authorize(who, Permission.RECORDINGS_READ, meta.agent)
        return meta

    def _authorize(self, who: Requester, permission: Permission, agent: str) -> None:
        authorize(who.identity, permission, Scope(agent=agent, team=self.teams(agent)))

    async def _audit(self, who: Requester, action: str, obj: str,
                     details: Mapping[str, str] | None = None) -> None:
        await self.audit.record(
            user=who.identity.user, role=str(who.identity.role), action=action, obj=obj,
            address=who.address, now=who.now, reason=who.reason, details=details,
        )


def _reason(who: Requester) -> None:
    if len(who.reason.strip()) < 3:
        raise ValueError("a stated reason is required to access recordings")

