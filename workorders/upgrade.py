"""Index sets after an upgrade: ``ivr serve`` rebuilds what the orders stored before lack.

A new index set (``workorders.indexes``) is written by every creation and update from then
on, but the orders stored before are in it only once something writes their memberships:
``WorkOrderStore.reindex``. Rather than ask the operator to run ``ivr orders reindex`` after
each upgrade, each instance checks at start:

- ``<p>wo:index-version`` (beside ``<p>wo:buckets``, outside the buckets) holds the
  :data:`~workorders.indexes.INDEX_VERSION` the stored orders are indexed for. Current (or
  newer: a rolled-back instance leaves it alone, with a warning): nothing to do.
- Absent with no order stored (a fresh Redis): the version is recorded at once.
- Older, or absent while orders exist: one instance takes ``<p>wo:reindex-lock``
  (``SET NX`` with an expiry, renewed after each batch), rebuilds in batches on the service's
  loop (calls go on between the batches), records the version, writes a ``WOREINDEX`` event
  (``orders``, ``version``, ``instance``, ``took_s``) and logs it. The others find the lock
  taken and look again one period later, finding the version recorded.

A crash half-way leaves the version as it was and the lock to expire: the next round (of any
instance) redoes it, and ``reindex`` is idempotent. Orders still in the layout before buckets
(``<p>wo:index``, ``<p>wo:seq``) are not moved here: that takes ``ivr orders reindex`` with the
service stopped (README "Upgrading"); until then nothing is recorded and a warning is logged.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from redis.asyncio import Redis

import events
from workorders.buckets import Buckets
from workorders.indexes import INDEX_VERSION

log = logging.getLogger(__name__)

#: Outside any bucket (one-key writes): the index version the stored orders are indexed for,
#: and the lock of the instance rebuilding them.
VERSION_KEY = "wo:index-version"
LOCK_KEY = "wo:reindex-lock"

#: The event on ``<p>events`` when an instance has rebuilt the indexes.
REINDEX_KIND = "WOREINDEX"

# Extend the lock only while it is still ours (its value is this round's token).
_KEEP_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE_LOCK = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class IndexedStore(Protocol):
    """What the upgrade needs of ``WorkOrderStore``."""

    @property
    def redis(self) -> Redis: ...

    @property
    def buckets(self) -> Buckets: ...

    def reindex(self, *, batch: int = 500,
                after_batch: Callable[[int], Awaitable[object]] | None = None,
                ) -> Awaitable[int]: ...


class LockLost(Exception):
    """The rebuild's lock expired and another instance holds it now: this one stops (the
    other rebuilds; reindex is idempotent)."""


@dataclass(frozen=True)
class Outcome:
    """What one round found and did. ``state``: ``current`` (nothing to do), ``fresh`` (no
    order stored: version recorded), ``rebuilt`` (``orders`` reindexed, version recorded),
    ``elsewhere`` (another instance holds the lock), ``old-layout`` (keys before buckets)."""

    state: str
    orders: int = 0

    @property
    def done(self) -> bool:
        """Whether this instance need not look again."""
        return self.state in ("current", "fresh", "rebuilt")


class IndexUpgrade:
    """The start-up check of one instance, a round of its job (``hotline.startup``) until
    the version is recorded."""

    def __init__(
        self, store: IndexedStore, *, instance: str, clock: Callable[[], float],
        version: int = INDEX_VERSION, batch: int = 200, lock_ttl_s: float = 60.0,
        pause_s: float = 0.0,
    ) -> None:
        self.store = store
        self.instance = instance
        self.clock = clock  # event times (the reactor's seconds)
        self.version = version
        self.batch = batch  # orders per MULTI/EXEC: the loop's turn comes between them
        self.lock_ttl_ms = max(1, int(lock_ttl_s * 1000))
        self.pause_s = pause_s  # between batches, for a gentler rebuild on a busy box
        self.done = False
        self._warned_layout = False
        prefix = store.buckets.prefix
        self.version_key = prefix + VERSION_KEY
        self.lock_key = prefix + LOCK_KEY

    def round(self) -> Coroutine[Any, Any, Outcome] | None:
        """The job's round: None once this instance is done."""
        return None if self.done else self.run()

    async def run(self) -> Outcome:
        """Check the version; rebuild and record it if this instance gets the lock."""
        outcome = await self._run()
        self.done = outcome.done
        return outcome

    async def _run(self) -> Outcome:
        redis = self.store.redis
        stored = await self._stored_version()
        if stored is not None and stored >= self.version:
            if stored > self.version:
                log.warning("work order indexes: Redis is indexed for version %d, this code "
                            "knows %d (an older release?): left as it is", stored, self.version)
            return Outcome("current")
        if stored is None and not await self._orders_stored():
            if await self._old_layout():
                if not self._warned_layout:
                    log.warning("work order keys of the layout before buckets are in Redis: "
                                "run `ivr orders reindex` with the service stopped")
                    self._warned_layout = True
                return Outcome("old-layout")
            await redis.set(self.version_key, str(self.version), nx=True)
            log.info("work order indexes: no order stored, version %d recorded", self.version)
            return Outcome("fresh")
        token = f"{self.instance}:{secrets.token_hex(8)}"
        if not await redis.set(self.lock_key, token, nx=True, px=self.lock_ttl_ms):
            log.info("work order indexes: another instance is rebuilding them")
            return Outcome("elsewhere")
        try:
            # Another instance may have finished between the first read and the lock.
            stored = await self._stored_version()
            if stored is not None and stored >= self.version:
                return Outcome("current")
            return await self._rebuild(stored, token)
        finally:
            await redis.eval(_RELEASE_LOCK, 1, self.lock_key, token)

    async def _rebuild(self, stored: int | None, token: str) -> Outcome:
        redis = self.store.redis
        started = self.clock()
        log.info("work order indexes: rebuilding for version %d (stored: %s), in batches of %d",
                 self.version, "none" if stored is None else stored, self.batch)

        async def keep_lock(_: int) -> None:
            kept = await redis.eval(
                _KEEP_LOCK, 1, self.lock_key, token, str(self.lock_ttl_ms)
            )
            if not kept:
                raise LockLost("work order indexes: the rebuild's lock expired; "
                               "another instance takes over")
            await asyncio.sleep(self.pause_s)  # calls get their turn between batches

        orders = await self.store.reindex(batch=self.batch, after_batch=keep_lock)
        await redis.set(self.version_key, str(self.version))
        took = round(self.clock() - started, 3)
        await events.emit(redis, REINDEX_KIND, self.clock(), prefix=self.store.buckets.prefix,
                          orders=orders, version=self.version, instance=self.instance,
                          took_s=took)
        log.info("work order indexes: %d orders reindexed for version %d in %.1f s",
                 orders, self.version, took)
        return Outcome("rebuilt", orders)

    async def _stored_version(self) -> int | None:
        raw = await self.store.redis.get(self.version_key)
        if raw is None:
            return None
        try:
            return int(raw)
        except ValueError:
            return 0  # unreadable: older than any

    async def _orders_stored(self) -> bool:
        redis = self.store.redis
        async with redis.pipeline(transaction=False) as pipe:
            for key in self.store.buckets.keys("wo:index"):
                pipe.zcard(key)
            counts = await pipe.execute()
        return any(counts)

    async def _old_layout(self) -> bool:
        prefix = self.store.buckets.prefix
        # One key per EXISTS: on a Cluster the two are in different slots.
        return any([await self.store.redis.exists(prefix + "wo:" + name)
                    for name in ("index", "seq")])
