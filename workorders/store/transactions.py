"""Writes to Redis, each one atomic step: the create script, an update, a merge, a reindex.

Atomicity: creation is one Lua script (``workorders.store.scripts``: look up the call,
allocate the id, write hash, history, index, op id and event), so many concurrent creations
for one call make one order. An update reads the order under WATCH, applies the pure model
(``workorders.model.apply``) and writes hash, history, op id and event in one MULTI/EXEC,
retried if the order changed meanwhile.

Merge (``merge``) of two orders of one bucket reads both under WATCH and writes both in one
MULTI/EXEC; of two buckets (two hash slots), two idempotent steps (``_merge_across``).
``reindex`` writes the index memberships of orders written before an index existed.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from redis import exceptions as redis_errors
from redis.typing import EncodableT

import events
from hotline.text import as_text
from workorders import indexes, personal
from workorders.model import (
    Event,
    HistoryEntry,
    Status,
    WorkOrder,
    WorkOrderError,
    absorb_changes,
    apply,
    iso,
    merge_orders,
)
from workorders.store.core import StoreCore
from workorders.store.errors import UnknownWorkOrder
from workorders.store.hashes import to_hash
from workorders.store.scripts import CREATED, LINKED

log = logging.getLogger("workorders.store")

#: Work order event kinds on the ``hotline:events`` stream, queue_log style.
WORK_ORDER_KINDS: dict[str, str] = {
    "create": "WOCREATE",
    **{event.value: "WO" + event.value.upper() for event in Event},
}


def new_op_id() -> str:
    """A fresh operation id: Redis records it with the write, so a replay applies it once."""
    return uuid.uuid4().hex


def _create_body(
    fields: Mapping[str, str], scores: Mapping[str, float], event: Mapping[str, str]
) -> str:
    """The create script's last argument: hash field/value pairs, index scores (in the order
    of their keys) and event field/value pairs, as one JSON array of strings.

    One argument instead of some seventy: redis-py encodes and frames each argument in
    Python, which cost more client CPU than anything else in a creation. Scores go as text
    (``repr``, what redis-py sent as arguments): ZADD gets the same bytes as before."""
    return _BODY.encode([
        [item for pair in fields.items() for item in pair],
        [repr(score) for score in scores.values()],
        [item for pair in event.items() for item in pair],
    ])


# One encoder for every creation: json.dumps with options builds a new one each call. Text
# beyond ASCII goes as UTF-8, which the script's cjson passes through as it is.
_BODY = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class StoreTransactions(StoreCore):
    """The atomic writes to Redis behind every public write of ``WorkOrderStore``."""

    async def _create_in_redis(
        self, op_id: str, draft: WorkOrder, *, proposed: str, replayed: bool
    ) -> tuple[WorkOrder, bool]:
        """Run the create script: the call's order, and whether this operation wrote it (a
        new order, or the call linked to the caller's open order as a repeat contact)."""
        owner = draft.call_id
        fields = personal.seal_hash(to_hash(draft), owner, self._cipher)
        fields.pop("id", None)
        details = personal.public_details(draft.history[0].details if draft.history else {})
        entry = events.event_fields(
            WORK_ORDER_KINDS["create"],
            draft.created_at.timestamp(),
            call_id=draft.call_id,
            queue=draft.queue,
            actor=draft.history[0].actor if draft.history else None,
            status=draft.status.value,
            details=dict(details),
            replayed="1" if replayed else None,
        )
        index = self._cipher.blind_index(draft.caller_number)
        bucket = self.buckets.of_new(index, draft.call_id)
        if proposed:
            # A spooled order keeps its local id, drawn in the caller's bucket; one spooled
            # before buckets existed lands where its id says, without repeat linking.
            local = self.buckets.of_id(proposed)
            index, bucket = (index if local == bucket else None), local
        sets = indexes.index_changes(None, draft, self.indexers).add
        key = self.buckets.key
        keys = [
            key(bucket, "wo:by-call:" + draft.call_id),
            key(bucket, "wo:seq"),
            key(bucket, "wo:op:" + op_id),
            key(bucket, "wo:index"),
            self.buckets.events_key(bucket),
            *(key(bucket, name) for name in sets),
            *(
                [key(bucket, "wo:by-caller:" + index),
                 key(bucket, f"wo:repeat:{index}:{draft.category.value}")]
                if index else []
            ),
        ]
        args: list[EncodableT] = [
            self.buckets.base(bucket),
            proposed,
            self._op_ttl,
            draft.created_at.timestamp(),
            self._history_json(draft.history[0], owner) if draft.history else "{}",
            self._maxlen,
            self._repeat_link(draft, replayed) if index else "",
            self.buckets.count,
            bucket,
            _create_body(fields, sets, entry),
        ]
        result = await (
            self._creations.call(keys, args) if self._creations
            else self._create_script(keys=keys, args=args)
        )
        order_id, outcome = as_text(result[0]), int(result[1])
        if outcome == CREATED:
            order = draft.with_id(order_id)
            self._remember(order)
            return order, True
        existing = await self._read_order(order_id)
        if existing is None:  # only if someone deleted it between the two commands
            raise UnknownWorkOrder(order_id)
        if outcome == LINKED:
            log.info("call %s linked to work order %s as a repeat contact (%d contacts)",
                     draft.call_id, order_id, existing.contacts)
        return existing, outcome == LINKED

    def _repeat_link(self, draft: WorkOrder, replayed: bool) -> str:
        """The create script's repeat-contact argument: what it needs to link the call to the
        caller's open order of the same category (history entry, event), '' when off."""
        window = self.repeat_contact_window
        if window <= 0:
            return ""
        actor = draft.history[0].actor if draft.history else "ivr"
        entry = HistoryEntry(draft.created_at, Event.REPEAT.value, actor,
                             {"call_id": draft.call_id})
        event = events.event_fields(
            WORK_ORDER_KINDS[Event.REPEAT.value],
            draft.created_at.timestamp(),
            call_id=draft.call_id,
            actor=actor,
            details=dict(entry.details),
            replayed="1" if replayed else None,
        )
        return json.dumps(
            {
                "window": window,
                "ttl": int(window) + 86400,  # only tidies up: the window is checked on `at`
                "category": draft.category.value,
                "open": {status.value: True for status in indexes.OPEN},
                "updated_at": iso(draft.updated_at),  # as to_dict spells it
                "entry": self._history_json(entry, draft.call_id),
                "event": [item for pair in event.items() for item in pair],
            },
            ensure_ascii=True,
        )

    async def _update_in_redis(
        self,
        op_id: str,
        order_id: str,
        now: float,
        event: Event,
        actor: str,
        changes: Mapping[str, Any],
        *,
        replayed: bool,
        only_if: Callable[[WorkOrder], bool] | None = None,
    ) -> tuple[WorkOrder | None, bool]:
        """The order after the event, and whether it was applied now (False: op seen before,
        or ``only_if`` refused the order as it was read under WATCH)."""
        order_id = await self._resolve(order_id)
        hash_key, history_key = self.buckets.order_key(order_id), self.buckets.history_key(order_id)
        op_key = self.buckets.order_name(order_id, "wo:op:" + op_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(hash_key, op_key)
                    # GET, not EXISTS: a cluster pipeline drops EXISTS between WATCH and MULTI.
                    if await pipe.get(op_key) is not None:
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        return await self._read_order(order_id), False
                    fields = await pipe.hgetall(hash_key)
                    if not fields:
                        raise UnknownWorkOrder(order_id)
                    order = self._from_hash(fields, await pipe.lrange(history_key, 0, -1))
                    if only_if is not None and not only_if(order):
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        return order, False
                    try:
                        changed = apply(order, event, now, actor, self.policy, **changes)
                    except WorkOrderError:
                        # The order may have been read after this very operation was applied
                        # by another process (its op id checked just before): then it is a
                        # repeat, not a refusal.
                        if await pipe.get(op_key) is not None:
                            await pipe.reset()  # type: ignore[no-untyped-call]  # no hints
                            return await self._read_order(order_id), False
                        raise
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    await self._stage(pipe, order, changed, now, actor, replayed=replayed)
                    pipe.set(op_key, order_id, ex=self._op_ttl)
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                self._remember(changed)
                return changed, True

    async def _stage(
        self, pipe: Any, order: WorkOrder, changed: WorkOrder, now: float, actor: str,
        *, replayed: bool = False,
    ) -> None:
        """Queue in ``pipe`` (in MULTI) what changes ``order`` into ``changed``: hash fields,
        index sets, the new history entries and the event of the last one."""
        order_id = changed.id
        hash_key, history_key = self.buckets.order_key(order_id), self.buckets.history_key(order_id)
        old, new = to_hash(order), to_hash(changed)
        # Compared in plaintext (sealing is randomized), then sealed.
        sealed = personal.seal_hash(
            {k: v for k, v in new.items() if old.get(k) != v}, changed.call_id, self._cipher
        )
        updates: dict[EncodableT, EncodableT] = {k: v for k, v in sealed.items()}
        if updates:
            pipe.hset(hash_key, mapping=updates)
        removed = [k for k in old if k not in new]
        if removed:
            pipe.hdel(hash_key, *removed)
        sets = indexes.index_changes(order, changed, self.indexers)
        for name in sets.remove:
            pipe.zrem(self.buckets.order_name(order_id, name), order_id)
        for name, score in sets.add.items():
            pipe.zadd(self.buckets.order_name(order_id, name), {order_id: score})
        pipe.rpush(
            history_key,
            *(self._history_json(e, changed.call_id) for e in changed.history[len(order.history):]),
        )
        last = changed.history[-1]
        entry = events.event_fields(
            WORK_ORDER_KINDS[last.event],
            now,
            order_id=order_id,
            call_id=changed.call_id,
            queue=changed.queue,
            agent=changed.agent,
            actor=actor,
            status=changed.status.value,
            details=personal.public_details(last.details),
            replayed="1" if replayed else None,
        )
        pipe.xadd(self.buckets.events_key(self.buckets.of_id(order_id)), entry,
                  maxlen=self._maxlen, approximate=True)

    async def _merge_in_redis(
        self, survivor_id: str, merged_id: str, now: float, actor: str
    ) -> tuple[WorkOrder, WorkOrder]:
        ids = (await self._resolve(survivor_id), await self._resolve(merged_id))
        if self.buckets.of_id(ids[0]) != self.buckets.of_id(ids[1]):
            return await self._merge_across(*ids, now, actor)
        keys = [k for i in ids for k in (self.buckets.order_key(i), self.buckets.history_key(i))]
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    orders = []
                    for order_id in ids:
                        fields = await pipe.hgetall(self.buckets.order_key(order_id))
                        if not fields:
                            raise UnknownWorkOrder(order_id)
                        history = await pipe.lrange(self.buckets.history_key(order_id), 0, -1)
                        orders.append(self._from_hash(fields, history))
                    survivor, merged = orders
                    kept, folded = merge_orders(survivor, merged, now, actor, self.policy)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    await self._stage(pipe, survivor, kept, now, actor)
                    await self._stage(pipe, merged, folded, now, actor)
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                self._remember(kept)
                self._remember(folded)
                return kept, folded

    async def _merge_across(
        self, survivor_id: str, merged_id: str, now: float, actor: str
    ) -> tuple[WorkOrder, WorkOrder]:
        """A merge of orders in two buckets (two hash slots): no one atomic step can write
        both, so it is two idempotent steps, the survivor's ``absorb`` first, then the merged
        order's ``merge``, each an update with an operation id of the merge. Run again after
        an interruption between them, the first is skipped and the second applied; run again
        after both, it returns the orders as they are."""
        survivor, merged = await self._read_order(survivor_id), await self._read_order(merged_id)
        if survivor is None:
            raise UnknownWorkOrder(survivor_id)
        if merged is None:
            raise UnknownWorkOrder(merged_id)
        if merged.merged_into == survivor.id and merged.status is Status.CLOSED:
            return survivor, merged  # both steps done before
        merge_orders(survivor, merged, now, actor, self.policy)  # refused as a whole, or not
        # The merged order's history length names this merge: a merge again after a reopen
        # is a new one, a rerun of this one finds its steps applied.
        step = f"merge:{survivor.id}:{merged.id}:{len(merged.history)}"
        kept, _ = await self._update_in_redis(
            step + ":absorb", survivor.id, now, Event.ABSORB, actor, absorb_changes(merged),
            replayed=False,
        )
        folded, _ = await self._update_in_redis(
            step + ":merge", merged.id, now, Event.MERGE, actor, {"into": survivor.id},
            replayed=False,
        )
        if kept is None or folded is None:  # only if deleted between the steps
            raise UnknownWorkOrder(survivor_id if kept is None else merged_id)
        return kept, folded

    async def _reindex_batch(self, ids: list[str]) -> int:
        """Index ``ids``, all of one bucket (one hash slot for the WATCH)."""
        keys = [k for i in ids for k in (self.buckets.order_key(i), self.buckets.history_key(i))]
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    # Read on another connection after the WATCH: a change landing after this
                    # read fails the EXEC below, one landing before it is in the read.
                    orders = await self._read_orders(ids)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    for order in orders:
                        for name, score in indexes.memberships(order, self.indexers).items():
                            pipe.zadd(self.buckets.order_name(order.id, name), {order.id: score})
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                return len(orders)
