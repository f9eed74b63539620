"""Legal holds and the purge of orders past their retention (``workorders.retention``).

Neither is ever spooled: a hold is never believed set while it is not, and a purge checks the
order under WATCH so that a reopen, a hold or any change made meanwhile wins.
"""

from __future__ import annotations

from redis import exceptions as redis_errors
from redis.typing import EncodableT

import events
from hotline.text import as_text
from workorders import indexes, retention
from workorders.buckets import lowest_up_to
from workorders.model import Event, WorkOrder
from workorders.store.errors import UNREACHABLE, StoreUnavailable, UnknownWorkOrder
from workorders.store.spooling import StoreSpooling
from workorders.store.transactions import new_op_id


class OrderRetention(StoreSpooling):
    """Legal holds, what is past its retention, the purge (``WorkOrderStore``'s)."""

    async def set_legal_hold(
        self, order_id: str, held: bool, now: float, actor: str, reason: str
    ) -> WorkOrder:
        """Set (``held``) or release the order's legal hold: a ``legal_hold`` event through
        the update path (history, event, indexes: a held order leaves ``wo:retain``). Not
        spooled: with Redis unreachable it raises ``StoreUnavailable``, so a hold is never
        believed set while it is not."""
        changes = {"legal_hold": held, "reason": reason}
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            order, _ = await self._timed(self._update_in_redis(
                new_op_id(), order_id, now, Event.LEGAL_HOLD, actor, changes, replayed=False
            ))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis unreachable: legal hold not changed: {exc!r}") from exc
        if order is None:  # only if the order was deleted between the two commands
            raise UnknownWorkOrder(order_id)
        return order

    async def retained_past(self, now: float, offset: int, count: int) -> list[str]:
        """Ids of closed orders not under a legal hold whose ``retain_until`` is at or before
        ``now`` (``wo:retain``), oldest date first, ``count`` from ``offset``."""
        return await lowest_up_to(self._redis, self.buckets.keys(retention.RETAIN_SET), now,
                                  offset, count)

    async def purge_order(
        self, order_id: str, now: float, reason: str = retention.REASON_EXPIRED
    ) -> retention.DeletionRecord | None:
        """Delete the order with every key and index membership if it is still past its
        retention at ``now`` (checked under WATCH, so a reopen, a hold or any change made
        meanwhile wins); its deletion record and a ``WOPURGE`` event are written in the same
        MULTI/EXEC. The record, or None when the order stays (or is gone already)."""
        hash_key, history_key = self.buckets.order_key(order_id), self.buckets.history_key(order_id)
        bucket = self.buckets.of_id(order_id)
        key = self.buckets.key
        caller_set: str | None = None  # the caller's set, when in another bucket
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(hash_key)
                    fields = await pipe.hgetall(hash_key)
                    if not fields:
                        pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        pipe.zrem(key(bucket, retention.RETAIN_SET), order_id)
                        await pipe.execute()
                        return None
                    order = self._from_hash(fields, await pipe.lrange(history_key, 0, -1))
                    if not retention.expired(order, now):
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        return None
                    by_call = key(bucket, "wo:by-call:" + order.call_id)
                    owns_call = as_text(await pipe.get(by_call) or b"") == order_id
                    index = self._cipher.blind_index(order.caller_number)
                    record = retention.DeletionRecord.of(order, now, reason)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    pipe.delete(hash_key, history_key)
                    if owns_call:
                        pipe.delete(by_call)
                    if index:
                        # An order older than the buckets may be in another bucket than its
                        # caller's set: that membership is dropped after, a step of its own.
                        caller_set = key(self.buckets.of_new(index, ""), "wo:by-caller:" + index)
                        if self.buckets.of_new(index, "") == bucket:
                            pipe.srem(caller_set, order_id)
                            caller_set = None
                    pipe.zrem(key(bucket, "wo:index"), order_id)
                    for name in indexes.memberships(order, self.indexers):
                        pipe.zrem(key(bucket, name), order_id)
                    pipe.rpush(key(bucket, retention.DELETIONS), record.to_json())
                    # No personal data: the id and the dates only (no call id either).
                    kind = events.event_fields(
                        retention.PURGE_KIND, now, order_id=order_id, actor="retention",
                        details=record.to_dict(),
                    )
                    entry: dict[EncodableT, EncodableT] = {k: v for k, v in kind.items()}
                    pipe.xadd(self.buckets.events_key(bucket), entry, maxlen=self._maxlen,
                              approximate=True)
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                if caller_set is not None:
                    await self._redis.srem(caller_set, order_id)  # reads skip it meanwhile
                self._known.pop(order_id, None)
                return record
