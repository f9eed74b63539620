"""The outbox relay: on a Redis Cluster, moves events from the slots' outboxes to the stream.

On a cluster an atomic step (a Lua script, a MULTI/EXEC) may only touch keys of one hash slot,
so it cannot XADD to ``hotline:events``; it XADDs the same entry to its slot's outbox
(``events.outbox_key``, e.g. ``hotline:outbox:{rt}``) instead. The relay, run by ``ivr serve``
in cluster mode only, copies each outbox entry to ``hotline:events`` unchanged plus
``outbox_id=<tag>/<entry id>``, then acknowledges and deletes it. Consumers keep reading one
stream with one schema.

Delivery is at least once: the copy is written before the acknowledgement, so a relay that dies
between the two leaves the entry pending in the consumer group ``relay``; after ``claim_s`` any
relay (another instance, or this one restarted) claims it with XAUTOCLAIM and copies it again.
A consumer that must not count an event twice keeps the ``outbox_id`` values it has seen.

One relay at a time drains an outbox, so its entries reach the stream in their order: each
round renews a lease (``<outbox>:relay``, the holder's name, expiring after ``claim_s``) in
the outbox's slot, and a relay that does not hold it skips that outbox. A dead holder's lease
runs out, and the next relay to take it first claims the entries the dead one had read.
Order is kept within one outbox (one slot), not across outboxes.

Which outboxes exist is known by the features that write them: each contributes its hash tags
to :class:`OutboxTags` (routing ``rt``, work orders one per bucket...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from redis.exceptions import ResponseError

from events import DEFAULT_MAXLEN, outbox_key, stream_key
from hotline.text import as_text

__all__ = ["GROUP", "OutboxRelay", "OutboxTags"]

#: The consumer group every relay reads the outboxes through.
GROUP = "relay"

# KEYS: the lease; ARGV: this relay's name, the lease's lifetime (ms). 1: held (taken or
# renewed), 0: another relay holds it.
_LEASE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""


class OutboxTags:
    """The hash tags whose outboxes the relay drains: fixed tags (``add``) and sources asked
    on every round (``add_source``, for tags that follow the config, e.g. work-order buckets)."""

    def __init__(self, *tags: str) -> None:
        self._tags: list[str] = list(tags)
        self._sources: list[Callable[[], Iterable[str]]] = []

    def add(self, *tags: str) -> None:
        self._tags.extend(tags)

    def add_source(self, source: Callable[[], Iterable[str]]) -> None:
        self._sources.append(source)

    def __call__(self) -> list[str]:
        """Every tag once, in the order first contributed."""
        every = [*self._tags, *(tag for source in self._sources for tag in source())]
        return list(dict.fromkeys(every))


class OutboxRelay:
    """Copies outbox entries to the events stream, one round per :meth:`run_once`.

    ``redis`` is a ``redis.asyncio`` (cluster) client; ``consumer`` names this relay in the
    group (the instance name), so its pending entries are its own until ``claim_s`` passes.
    """

    def __init__(
        self,
        redis: Any,
        tags: OutboxTags | Sequence[str],
        *,
        consumer: str,
        prefix: str = "hotline:",
        claim_s: float = 30.0,
        batch: int = 200,
        maxlen: int = DEFAULT_MAXLEN,
    ) -> None:
        self.redis = redis
        self.tags = tags if isinstance(tags, OutboxTags) else OutboxTags(*tags)
        self.consumer = consumer
        self.prefix = prefix
        self.claim_ms = int(claim_s * 1000)
        self.batch = batch
        self.maxlen = maxlen
        self._grouped: set[str] = set()  # outboxes whose group this relay made sure of
        self._lease = redis.register_script(_LEASE)

    async def run_once(self) -> int:
        """One round over every outbox: entries pending longer than ``claim_s`` (a dead
        relay's) first, then new ones; returns how many were copied."""
        copied = 0
        for tag in self.tags():
            copied += await self._drain(tag)
        return copied

    async def _drain(self, tag: str) -> int:
        outbox = outbox_key(tag, self.prefix)
        lease = [self.consumer, max(1, self.claim_ms)]
        if not await self._lease(keys=[f"{outbox}:relay"], args=lease):
            return 0
        await self._ensure_group(outbox)
        copied = 0
        claimed = await self.redis.xautoclaim(
            outbox, GROUP, self.consumer, self.claim_ms, start_id="0-0", count=self.batch)
        copied += await self._copy(tag, outbox, claimed[1])
        while True:
            reply = await self.redis.xreadgroup(
                GROUP, self.consumer, {outbox: ">"}, count=self.batch)
            entries = reply[0][1] if reply else []
            copied += await self._copy(tag, outbox, entries)
            if len(entries) < self.batch:
                return copied

    async def _ensure_group(self, outbox: str) -> None:
        if outbox in self._grouped:
            return
        try:
            await self.redis.xgroup_create(outbox, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped.add(outbox)

    async def _copy(self, tag: str, outbox: str, entries: Sequence[Any]) -> int:
        """Each entry to the stream (written first: at least once), then acknowledged and
        deleted from its outbox in one MULTI on the outbox's slot."""
        done: list[str] = []
        for entry_id, fields in entries:
            if fields is None:  # deleted while pending (XAUTOCLAIM reports it): nothing to copy
                continue
            entry_id = as_text(entry_id)
            row = {as_text(k): as_text(v) for k, v in fields.items()}
            row["outbox_id"] = f"{tag}/{entry_id}"
            await self.redis.xadd(stream_key(self.prefix), row, maxlen=self.maxlen,
                                  approximate=True)
            done.append(entry_id)
        if done:
            async with self.redis.pipeline(transaction=True) as tx:
                tx.xack(outbox, GROUP, *done)
                tx.xdel(outbox, *done)
                await tx.execute()
        return len(done)
