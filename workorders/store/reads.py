"""The public reads: one order, a call's, a caller's, lists and filters, and ``reindex``.

Lists and filters (``find``) read the index sets (``workorders.query``); ``reindex`` writes
the index memberships of orders written before an index existed.

Reads while Redis is unreachable, chosen: ``get``/``get_by_call`` answer from this process's
local view (orders in the spool with their spooled updates, else the last state this process
wrote or read, possibly stale), and raise ``StoreUnavailable`` for an order it does not know;
``list_recent`` and ``find`` raise ``StoreUnavailable`` (a partial list would mislead a
supervisor).
Reads do not back off like writes: against a blackholed Redis each read waits the timeout.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from hotline.text import as_text
from workorders import query
from workorders.model import WorkOrder
from workorders.store.errors import UNREACHABLE, StoreUnavailable
from workorders.store.spooling import StoreSpooling


class OrderReads(StoreSpooling):
    """Read work orders (``WorkOrderStore``'s reads)."""

    async def get(self, order_id: str) -> WorkOrder | None:
        """The order, or None if there is none (see the module docstring when Redis is down)."""
        return await self._read(order_id, lambda: self._read_order(order_id), self._local)

    async def get_by_call(self, call_id: str) -> WorkOrder | None:
        """The order created for the call with this unique id, or None."""

        async def read() -> WorkOrder | None:
            order_id = await self._call_order_id(call_id)
            if not order_id and self._lost_held(call_id=call_id):
                return self._local_by_call(call_id, missing_ok=True)  # spooled again
            return await self._read_order(order_id) if order_id else None

        return await self._read(call_id, read, self._local_by_call)

    async def by_caller(self, number: str) -> list[WorkOrder]:
        """Every order from this caller number (spelled in any way that has the same digits),
        oldest first: repeat-contact detection. Orders written before encryption are not in
        the index. A number without digits (anonymous) finds nothing."""
        index = self._cipher.blind_index(number)
        if index is None:
            return []

        async def read() -> list[WorkOrder]:
            bucket = self.buckets.of_new(index, "")
            ids: set[bytes | str] = await self._redis.smembers(
                self.buckets.key(bucket, "wo:by-caller:" + index)
            )
            orders = [await self._read_order(as_text(i)) for i in ids]
            return sorted((o for o in orders if o is not None), key=_creation)

        def local(_: str) -> list[WorkOrder]:
            views = {**self._known, **self._spooled}.values()
            found = [o for o in views if self._cipher.blind_index(o.caller_number) == index]
            return sorted(found, key=_creation)

        return await self._read(number, read, local)

    async def list_recent(self, n: int) -> list[WorkOrder]:
        """The ``n`` most recently created orders, newest first."""

        async def read() -> list[WorkOrder]:
            if n <= 0:
                return []
            # Each bucket's newest n, merged: the newest n of all.
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self.buckets.keys("wo:index"):
                    pipe.zrevrange(key, 0, n - 1, withscores=True)
                replies = await pipe.execute()
            ids = [i for _, i in newest_first(replies)][:n]
            orders = [await self._read_order(i) for i in ids]
            return [order for order in orders if order is not None]

        def unavailable(_: str) -> list[WorkOrder]:
            raise StoreUnavailable("redis unreachable: no listing from the local view")

        return await self._read("", read, unavailable)

    async def created_between(self, start: float, end: float, *, batch: int = 500
                              ) -> list[WorkOrder]:
        """Every order created in ``[start, end)`` (``wo:index``), oldest first: the KPIs'
        read. Orders are read ``batch`` at a time, one round trip per batch."""

        async def read() -> list[WorkOrder]:
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in self.buckets.keys("wo:index"):
                    pipe.zrangebyscore(key, start, f"({end}", withscores=True)
                replies = await pipe.execute()
            ids = [i for _, i in reversed(newest_first(replies))]
            orders: list[WorkOrder] = []
            for first in range(0, len(ids), batch):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for order_id in ids[first:first + batch]:
                        pipe.hgetall(self.buckets.order_key(order_id))
                        pipe.lrange(self.buckets.history_key(order_id), 0, -1)
                    replies = await pipe.execute()
                for fields, history in zip(replies[::2], replies[1::2], strict=True):
                    if fields:  # purged between the two reads
                        orders.append(self._from_hash(fields, history))
            return orders

        def unavailable(_: str) -> list[WorkOrder]:
            raise StoreUnavailable("redis unreachable: no KPIs from the local view")

        # No per-operation timeout here: a month of orders is many round trips.
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            return await read()
        except UNREACHABLE:
            return unavailable("")

    async def orders_of(self, ids: Sequence[str], *, batch: int = 500) -> list[WorkOrder]:
        """The orders of ``ids`` that exist, with their history, ``batch`` per round trip:
        the live KPIs' read of the orders that changed. Not kept in the local view: a reader
        of every changed order would crowd out the orders of calls in progress."""
        try:
            found: list[WorkOrder] = []
            for first in range(0, len(ids), batch):
                found += await self._read_orders(list(ids[first:first + batch]))
            return found
        except UNREACHABLE as exc:
            raise StoreUnavailable("redis unreachable: no changed orders to count") from exc

    async def find(
        self,
        f: query.OrderFilter,
        now: float,
        *,
        limit: int = query.DEFAULT_PAGE,
        after: query.Cursor | None = None,
        history: bool = True,
    ) -> tuple[list[WorkOrder], query.Cursor | None]:
        """One page of the orders matching ``f``, newest first, and the cursor of the next
        (``workorders.query``). ``history=False`` leaves the histories out (a list's rows).
        Raises ``StoreUnavailable`` while Redis is unreachable, like ``list_recent``."""

        async def read() -> tuple[list[WorkOrder], query.Cursor | None]:
            ids, following = await query.find_ids(
                self._redis, self.prefix, f, now=now, limit=limit, after=after,
                blind_index=self._cipher.blind_index, buckets=self.buckets,
            )
            return await self._read_orders(ids, history=history), following

        def unavailable(_: str) -> tuple[list[WorkOrder], query.Cursor | None]:
            raise StoreUnavailable("redis unreachable: no listing from the local view")

        return await self._read("", read, unavailable)

    async def reindex(
        self, *, batch: int = 500,
        after_batch: Callable[[int], Awaitable[object]] | None = None,
    ) -> int:
        """Write every order's index memberships (``workorders.indexes.INDEXERS``) from its
        current state; the number of orders seen. For orders written before an index existed
        (an update only writes the sets whose membership it changes). Safe while the service
        runs: each batch is read after WATCH on its orders and written in one MULTI/EXEC,
        again if one of them changed meanwhile. It adds memberships; leaving a set is the
        updates' job. ``after_batch`` is awaited with the orders seen so far after each batch
        (``ivr serve``'s rebuild keeps its lock and gives calls their turn there)."""
        done = 0
        for bucket in self.buckets.all():
            start = 0
            while True:
                found: list[bytes | str] = await self._redis.zrange(  # type: ignore[assignment]
                    self.buckets.key(bucket, "wo:index"), start, start + batch - 1
                )
                if not found:
                    break
                done += await self._reindex_batch([as_text(i) for i in found])
                start += batch
                if after_batch is not None:
                    await after_batch(done)
        return done

    async def _call_order_id(self, call_id: str) -> str | None:
        """The id of the call's order: its ``wo:by-call`` pointer is in the bucket of the
        call's caller, which the call id alone does not tell, so every bucket is asked in one
        pipelined round trip (no pointer outside the bucket: creation stays one step)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for key in self.buckets.keys("wo:by-call:" + call_id):
                pipe.get(key)
            found = [as_text(r) for r in await pipe.execute() if r]
        return found[0] if found else None


def newest_first(replies: list[Any]) -> list[tuple[float, str]]:
    """The (score, id) pairs of ZRANGE ... WITHSCORES replies of several buckets, merged
    newest first; equal scores by id, as Redis orders one set (the reverse)."""
    rows = [(float(score), as_text(member)) for reply in replies for member, score in reply]
    return sorted(rows, key=query.descending)


def _creation(order: WorkOrder) -> tuple[float, str]:
    return order.created_at.timestamp(), order.id
