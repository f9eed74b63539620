"""``AuditLog``: appends chained entries to ``<prefix>audit`` and mirrors them to a file.

Keys (prefix configurable, default ``hotline:``):

=======================  ==================================================================
``<p>audit``             stream of entries (``audit.chain``), oldest first, no MAXLEN
``<p>audit:head``        the hash of the newest entry: what the next entry's ``prev`` is
``<p>audit:ids``         hash audit id -> stream id: an entry is chained once, and found
=======================  ==================================================================

On a Redis Cluster ``<p>`` is ``<prefix>{audit}:`` (:func:`audit_prefix`): the three keys share
one hash slot, as the append step needs. One Redis keeps the names above.

Several instances write to the one chain. An append is ``append.lua``: it compares the
``prev`` the entry was hashed with to ``audit:head`` and, in the same step, XADDs the entry,
moves the head and indexes the audit id. When another instance came first the script answers
the new head; the entry is hashed again on it and retried, at most :data:`MAX_ATTEMPTS`
times (each lost race means another entry was chained, so the log as a whole moves on). Past
that bound the entry goes to the spool like an entry written while Redis is away, and is
chained at the next replay. Within one instance appends take turns (a lock), so instances
race only with each other.

Durability: ``record`` returns only once its entry is durably written somewhere: chained in
Redis and copied to the mirror file (``audit.mirror``), or, Redis being unreachable, appended
with fsync to the spool (``<audit dir>/spool``, ``workorders.spool.Spool``: the entry's
fields plus the marker ``pending`` with the cause). It raises :class:`AuditUnavailable` when
neither Redis nor the file could take the entry, and callers then refuse the access. Redis
took it but the mirror write failed: logged as an error, ``record`` still returns (the entry
is in the chain; ``ivr audit verify`` reads the chain).

Redis refusing the append (out of memory, a read-only replica) or the race lost
:data:`MAX_ATTEMPTS` times counts like Redis unreachable: the entry is spooled.

Spooled entries are chained, in the order written, before this instance's next entry and by
``replay_spool()`` (the service calls it periodically). Exactly once: ``audit:ids`` knows every
chained audit id, so an entry whose first attempt did reach Redis (a timeout whose reply was
lost) is not chained again. A replayed entry keeps its ``time`` (earlier than its neighbours'
in the stream) and carries ``replayed=1``.

Retention: nothing here deletes or trims. The audit log is kept as long as the data it refers
to; when retention removes that data, the same job removes the entries about it (stream and
``audit:ids``) and re-anchors the chain (README "Audit log").
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from typing import Any, Protocol, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from audit.chain import GENESIS, Fields, content_of, link, new_entry
from audit.mirror import SPOOL, Mirror
from hotline.text import as_text
from workorders.spool import Spool

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 16
"""Races lost to other instances before an entry is spooled instead (module docstring)."""

#: What "Redis is unreachable" means here: the entry is spooled instead.
UNREACHABLE = (
    redis_errors.ConnectionError,  # refused, reset, BusyLoadingError after a restart
    redis_errors.TimeoutError,
    TimeoutError,  # our own per-operation timeout
    OSError,
)

#: What makes an entry go to the spool instead: Redis unreachable, or refusing (out of
#: memory, read-only replica...), or the chain too contended. The file can still take it.
NOT_CHAINED = (redis_errors.RedisError, TimeoutError, OSError)

APPEND_LUA = resources.files("audit").joinpath("append.lua").read_text(encoding="utf-8")


class Appended(StrEnum):
    """``append.lua``'s answers."""

    APPENDED = "appended"
    MOVED = "moved"
    DUPLICATE = "duplicate"


class _AuditSettings(Protocol):
    @property
    def dir(self) -> str: ...


class _RedisSettings(Protocol):
    @property
    def key_prefix(self) -> str: ...

    @property
    def is_cluster(self) -> bool: ...


class ServiceSettings(Protocol):
    """What the audit log reads of ``service.yaml`` (``ivr.config.ServiceConfig``)."""

    @property
    def spool_dir(self) -> str: ...
    @property
    def audit(self) -> _AuditSettings: ...
    @property
    def redis(self) -> _RedisSettings: ...


class AuditUnavailable(Exception):
    """Neither Redis nor the audit file could take the entry: refuse the access."""


class ChainContended(Exception):
    """The entry lost :data:`MAX_ATTEMPTS` races in a row; it is spooled instead."""


@dataclass(frozen=True)
class Chained:
    """An entry in the chain: its stream id, its fields as stored (``None``: chained before
    and deleted since), and whether this append chained it (False: it was there already)."""

    stream_id: str
    fields: Fields | None
    new: bool


def new_audit_id() -> str:
    return uuid.uuid4().hex


def stream_key(prefix: str) -> str:
    return f"{prefix}audit"


def audit_prefix(key_prefix: str, *, cluster: bool) -> str:
    """What the audit keys start with: the key prefix on one Redis; on a cluster the prefix
    and the hash tag ``{audit}``, so the append step's keys share a slot."""
    return f"{key_prefix}{{audit}}:" if cluster else key_prefix


class AuditLog:
    """Records accesses and changes (see the module docstring).

    ``redis`` is a ``redis.asyncio.Redis``; call the coroutines from asyncio Tasks (under
    Twisted's asyncio reactor: ``ivr.aio.deferred``), as for the work order store.
    """

    def __init__(
        self,
        redis: Redis,
        directory: str | os.PathLike[str],
        *,
        prefix: str = "hotline:",
        timeout: float = 2.0,
        retry_after: float = 2.0,
        max_attempts: int = MAX_ATTEMPTS,
    ) -> None:
        self._redis = redis
        self.directory = directory
        self.prefix = prefix
        self._mirror = Mirror(directory)
        self._spool = Spool(os.path.join(directory, SPOOL))
        self._timeout = timeout
        # After a failed attempt, entries go straight to the spool for this long (of ``now``):
        # a blackholed Redis must not cost every audited access a full timeout.
        self._retry_after = retry_after
        self._retry_at = float("-inf")
        self._max_attempts = max_attempts
        self._script = redis.register_script(APPEND_LUA)
        self._head = GENESIS  # the last head seen; a guess, the script checks it
        self._lock = asyncio.Lock()  # this instance's appends take turns
        self._pending = self._spool.pending()

    @classmethod
    def from_config(cls, redis: Redis, service: ServiceSettings) -> AuditLog:
        """From ``service.yaml`` (``ivr.config.ServiceConfig``): ``audit.dir``, else
        ``<spool_dir>/audit``; the Redis key prefix (tagged on a cluster: :func:`audit_prefix`)."""
        directory = service.audit.dir or os.path.join(service.spool_dir, "audit")
        prefix = audit_prefix(service.redis.key_prefix, cluster=service.redis.is_cluster)
        return cls(redis, directory, prefix=prefix)

    @property
    def spool_pending(self) -> bool:
        """Whether entries written while Redis was away still wait to be chained."""
        return self._pending

    async def record(
        self,
        *,
        user: str,
        role: str,
        action: str,
        obj: str,
        address: str,
        now: float,
        reason: str | None = None,
        details: Mapping[str, str] | None = None,
    ) -> str:
        """Append one entry; its audit id once it is durably written (module docstring).

        Raises ``ValueError`` for an unknown action or a missing user, role or object, and
        :class:`AuditUnavailable` when nothing could take the entry.
        """
        entry = new_entry(
            entry_id=new_audit_id(), user=user, role=role, action=action, obj=obj,
            address=address, now=now, reason=reason, details=details,
        )
        async with self._lock:
            if self._pending and now >= self._retry_at:
                try:
                    await self._replay_locked()
                except (*NOT_CHAINED, ChainContended) as exc:
                    self._not_chained(now, exc)
            chained: Chained | None = None
            if not self._pending and now >= self._retry_at:
                try:
                    chained = await self._timed(self._append(entry, replayed=False))
                except (*NOT_CHAINED, ChainContended) as exc:
                    self._not_chained(now, exc)
            if chained is None:
                await self._spool_entry(entry)
                return entry["id"]
        await self._copy(chained)
        return entry["id"]

    async def replay_spool(self) -> int:
        """Chain every spooled entry, oldest first; the number chained now (an entry chained
        before is skipped). Raises a Redis error when Redis is still unreachable, or
        :class:`ChainContended`; what was not chained stays in the spool."""
        async with self._lock:
            return await self._replay_locked()

    # -- the chain ------------------------------------------------------------------------

    async def _append(self, content: Fields, *, replayed: bool) -> Chained:
        """Chain ``content``, or find it chained already."""
        keys = [stream_key(self.prefix), f"{self.prefix}audit:head", f"{self.prefix}audit:ids"]
        for _ in range(self._max_attempts):
            fields = link(content, self._head, replayed=replayed)
            pairs = [item for pair in fields.items() for item in pair]
            answer, value = await self._script(
                keys=keys, args=[fields["prev"], fields["id"], fields["hash"], GENESIS, *pairs]
            )
            verdict, value = Appended(as_text(answer)), as_text(value)
            if verdict is Appended.APPENDED:
                self._head = fields["hash"]
                return Chained(value, fields, new=True)
            if verdict is Appended.DUPLICATE:
                return Chained(value, await self._stored(value), new=False)
            self._head = value  # MOVED: another writer came first
        raise ChainContended(f"audit entry {content['id']}: {self._max_attempts} races lost")

    async def _stored(self, stream_id: str) -> Fields | None:
        return await stored_entry(self._redis, self.prefix, stream_id)

    async def _copy(self, chained: Chained) -> None:
        if chained.fields is None:
            return
        line = {**chained.fields, "stream_id": chained.stream_id}
        try:
            await asyncio.to_thread(self._mirror.append, line)
        except OSError as exc:
            # The entry is chained in Redis; the copy is what is missing.
            log.error("audit entry %s chained but not mirrored to %s: %r",
                      line.get("id"), self._mirror.current, exc)

    async def _timed(self, operation: Awaitable[T]) -> T:
        return await asyncio.wait_for(operation, self._timeout)

    def _not_chained(self, now: float, exc: BaseException) -> None:
        log.warning("audit chain not reachable (%r): entries go to the spool", exc)
        self._retry_at = now + self._retry_after

    # -- the spool --------------------------------------------------------------------------

    async def _spool_entry(self, content: Fields) -> None:
        record = {**content_of(content), "pending": "redis unreachable"}
        try:
            await asyncio.to_thread(self._spool.append, record)
        except OSError as exc:
            raise AuditUnavailable(
                f"audit entry for {content['action']} {content['object']}: Redis unreachable "
                f"and the spool in {self._spool.directory} refused it ({exc})"
            ) from exc
        self._pending = True
        log.warning("audit entry %s spooled locally", content["id"])

    async def _replay_locked(self) -> int:
        chained = 0
        for batch in self._spool.rotate():
            for record in self._spool.records(batch):
                replayed = await self._timed(self._append(content_of(record), replayed=True))
                await self._copy(replayed)
                chained += replayed.new
            self._spool.done(batch)
        self._pending = False
        if chained:
            log.info("audit: %d spooled entries chained", chained)
        return chained


async def stored_entry(redis: Redis, prefix: str, stream_id: str) -> Fields | None:
    """The entry at ``stream_id`` in ``<prefix>audit``, or ``None``."""
    rows = decode_rows(await redis.xrange(stream_key(prefix), min=stream_id, max=stream_id))
    return rows[0][1] if rows else None


def decode_rows(rows: Any) -> list[tuple[str, Fields]]:
    """XRANGE's reply as ``(stream id, fields)`` text (redis-py types it loosely)."""
    return [
        (as_text(stream_id), {as_text(k): as_text(v) for k, v in fields.items()})
        for stream_id, fields in rows or ()
    ]
