"""Where a work order's keys live: B buckets, each in one Redis Cluster hash slot.

Redis Cluster runs an atomic step (a Lua script, a MULTI/EXEC) only over keys of one hash
slot. Orders therefore live in ``B`` buckets (``workorders.yaml`` ``store.buckets``, 16 by
default, fixed once data exists): every key of bucket ``b`` carries the hash tag ``{wo<b>}``
(``<p>wo:{wo3}:19``, ``<p>wo:{wo3}:19:history``, ``<p>wo:{wo3}:status:pending``...), so an
order, its history, its call's pointer, its operation ids and the bucket's indexes, counter
and event outbox are one slot, and every write to an order stays one atomic step. Standalone
Redis uses the same keys: one code path.

- A new order's bucket: the caller's (a hash of the number's blind index), so that a caller's
  orders share a bucket and the repeat-contact check stays atomic; without a caller number,
  the call's (a hash of the call id).
- Ids stay numeric and tell their bucket: the bucket's counter ``seq`` makes id
  ``seq * B + b``, so ``bucket(id) = id % B``; for every id, old ones too (the migration moves
  their keys into the tagged names, ``workorders.migrate``). A local id of the spool
  (``L`` + 15 hex digits) is drawn so that its number is in the caller's bucket too.
- Lists, KPIs, the due clock, the back office and retention read every bucket and merge.

Keys outside any bucket: ``<p>wo:spool-rejected``, ``<p>wo:purge-day:<date>``,
``<p>wo:buckets`` (the bucket count the orders were written with, :func:`claim_count`),
``<p>wo:index-version`` and ``<p>wo:reindex-lock`` (``workorders.upgrade``) (one-key
writes), and ``<p>events`` (standalone) where the outboxes of the buckets are relayed to in
cluster mode (``events.relay``).
"""

from __future__ import annotations

import logging
import math
import secrets
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

import events
from hotline.redisclient import RedisTarget, is_cluster_client, sync_redis

log = logging.getLogger(__name__)

#: Buckets of a store nobody configured (``workorders.yaml`` ``store.buckets``).
DEFAULT_BUCKETS = 16

_LOCAL_SPAN = 16**15  # local ids: "L" + 15 hex digits


@dataclass(frozen=True)
class Buckets:
    """The bucket layout of one store: how many, the key prefix, cluster or not."""

    count: int = DEFAULT_BUCKETS
    prefix: str = "hotline:"
    cluster: bool = False

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"work order buckets: at least 1, got {self.count}")

    @classmethod
    def of(cls, redis: Redis, count: int = DEFAULT_BUCKETS, prefix: str = "hotline:"
           ) -> Buckets:
        """The layout for the client ``redis`` (cluster or not)."""
        return cls(count, prefix, is_cluster_client(redis))

    # -- which bucket -------------------------------------------------------------------

    def of_id(self, order_id: str) -> int:
        """The bucket of an order id: ``id % B``; a local id by its hex number."""
        if order_id.startswith("L"):
            try:
                return int(order_id[1:], 16) % self.count
            except ValueError:
                return _hashed(order_id) % self.count
        if order_id.isdigit():
            return int(order_id) % self.count
        return _hashed(order_id) % self.count  # not an id this store made (tests, imports)

    def of_new(self, blind_index: str | None, call_id: str) -> int:
        """The bucket of a new order: its caller's, else its call's."""
        return _hashed(blind_index or "call:" + call_id) % self.count

    def local_id(self, bucket: int) -> str:
        """A fresh local id (``L`` + 15 hex digits) whose number is in ``bucket``."""
        number = secrets.randbelow(_LOCAL_SPAN)
        number += bucket - number % self.count
        if number >= _LOCAL_SPAN:
            number -= self.count
        return f"L{number:015x}"

    def all(self) -> range:
        return range(self.count)

    # -- keys ---------------------------------------------------------------------------

    def tag(self, bucket: int) -> str:
        return f"wo{bucket}"

    def tags(self) -> list[str]:
        """The hash tags of every bucket: the outboxes the relay must empty (cluster)."""
        return [self.tag(b) for b in self.all()]

    def base(self, bucket: int) -> str:
        """What every key of the bucket starts with: ``<p>wo:{wo<b>}:``."""
        if 0 <= bucket < self.count:
            return self._bases[bucket]
        return f"{self.prefix}wo:{{wo{bucket}}}:"

    @cached_property
    def _bases(self) -> tuple[str, ...]:
        # Built once: a creation names some fifteen keys of its bucket.
        return tuple(f"{self.prefix}wo:{{wo{b}}}:" for b in self.all())

    def key(self, bucket: int, name: str) -> str:
        """The bucket's key for ``name`` as the rest of the code spells it (``wo:open``,
        ``wo:status:pending``, ``wo:19:history``): ``<p>wo:{wo<b>}:open``..."""
        return self.base(bucket) + (name[3:] if name.startswith("wo:") else name)

    def keys(self, name: str) -> list[str]:
        """``name`` in every bucket."""
        return [self.key(b, name) for b in self.all()]

    def order_key(self, order_id: str) -> str:
        return self.key(self.of_id(order_id), "wo:" + order_id)

    def history_key(self, order_id: str) -> str:
        return self.key(self.of_id(order_id), f"wo:{order_id}:history")

    def order_name(self, order_id: str, name: str) -> str:
        """``name`` in the bucket of ``order_id`` (its op ids, its index sets)."""
        return self.key(self.of_id(order_id), name)

    def events_key(self, bucket: int) -> str:
        """Where an atomic step in ``bucket`` writes its events."""
        return events.events_key_for(self.tag(bucket), cluster=self.cluster, prefix=self.prefix)


async def lowest_up_to(
    redis: Redis, keys: Iterable[str], bound: float, offset: int, count: int
) -> list[str]:
    """Members ``offset`` to ``offset + count`` of several buckets' sorted sets, scores up to
    ``bound``, lowest score first: each bucket read for the first ``offset + count`` (the
    page can take no more from one bucket), then merged (:func:`scored`)."""
    if count <= 0:
        return []
    async with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.zrangebyscore(key, "-inf", bound, start=0, num=offset + count,
                               withscores=True)
        replies = await pipe.execute()
    return [member for _, member in scored(replies)[offset:offset + count]]


def scored(replies: Iterable[Iterable[tuple[bytes | str, float]]]) -> list[tuple[float, str]]:
    """The (score, member) pairs of several buckets' ``ZRANGE ... WITHSCORES`` replies, as
    one list sorted by score, then member (a merge of the buckets' sets)."""
    return sorted(
        (float(score), member.decode() if isinstance(member, bytes) else member)
        for reply in replies for member, score in reply
    )


def read_share(size: int, keys: int) -> int:
    """How many members to read from each of ``keys`` even keys for ``size`` in all: the even
    share plus three standard deviations of how unevenly they hold the newest ``size``
    (binomial), so that one round usually fills the batch."""
    even = size / keys
    return max(4, math.ceil(even + 3 * math.sqrt(even) + 2))


def count_at_or_above(newest_first: list[tuple[float, str]], floor: tuple[float, str]) -> int:
    """How many candidates of a newest-first list are at or above ``floor`` (a bisection)."""
    lo, hi = 0, len(newest_first)
    while lo < hi:
        mid = (lo + hi) // 2
        if newest_first[mid] >= floor:
            lo = mid + 1
        else:
            hi = mid
    return lo


#: Outside any bucket: the bucket count the orders in Redis were written with.
COUNT_KEY = "wo:buckets"


class CountStore(Protocol):
    """What :func:`claim_count` needs of a blocking Redis client (``redis.Redis``)."""

    def set(self, name: str, value: str, *, nx: bool) -> object: ...

    def get(self, name: str) -> object: ...


def claim_count(redis: CountStore, count: int, prefix: str = "hotline:") -> str | None:
    """Record ``count`` as the bucket count of the orders in Redis, unless one is recorded
    already (``SET NX``: the first service to start claims it); the problem, naming the file
    and key, when the recorded count is another one (``ivr serve`` refuses to start: with
    another count every id and caller would be looked for in the wrong bucket), else None."""
    key = prefix + COUNT_KEY
    redis.set(key, str(count), nx=True)
    stored = redis.get(key)
    text = stored.decode() if isinstance(stored, bytes) else stored
    return count_problem(text if isinstance(text, str) else None, count, key)


def check_count(target: RedisTarget, count: int, prefix: str = "hotline:") -> str | None:
    """:func:`claim_count` against the service's Redis (``service.yaml`` ``redis``), for
    ``ivr serve`` before it starts. Redis unreachable: no problem (the service starts and
    spools, as it always has), a warning in the log."""
    try:
        client = sync_redis(target, socket_timeout=2.0, socket_connect_timeout=2.0)
        try:
            return claim_count(client, count, prefix)
        finally:
            client.close()
    except (RedisError, OSError) as exc:
        log.warning("work order buckets: not checked against Redis (%s)", exc)
        return None


def count_problem(stored: str | None, count: int, key: str) -> str | None:
    """The problem when the recorded bucket count ``stored`` (of ``key``) is not ``count``."""
    if stored is None or stored == str(count):
        return None
    return (f"workorders.yaml: store.buckets is {count}, but the work orders in Redis were "
            f"written with {stored} buckets ({key}); set store.buckets back to {stored} "
            "(changing it once orders exist loses them)")


def _hashed(text: str) -> int:
    return zlib.crc32(text.encode())
