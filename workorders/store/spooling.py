"""The spool side: writes made while Redis is unreachable, and their replay.

Redis unreachable (refused, reset, timeout, loading): the write is appended to the spool
(``workorders.spool``) and the caller gets its result computed locally. A created order gets a
local id (``L`` + 15 hex digits) which it keeps in Redis after replay; if Redis turns out to
have the call's order already (the reply of a create was lost), the local id becomes an alias
of that order. The spool is replayed, in order and under a lock, before the next write or read
that finds Redis reachable again, and by ``replay_spool()`` which the service calls
periodically. Each write carries an operation id that Redis records with the write itself, so
a record replayed twice is applied once. A spooled update that Redis refuses on replay (the
order moved on elsewhere) goes to ``wo:spool-rejected`` with the reason: kept, not applied.

A write Redis acknowledged is not yet safe from a redis-server crash for a moment
(``core.UNSYNCED_WINDOW_S``): those of the last seconds are held, and when Redis fails they
go to the spool ahead of the write that found it failing, to be replayed (once) with it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from workorders import personal
from workorders.model import Event, WorkOrder, WorkOrderError, apply
from workorders.store.core import Held
from workorders.store.errors import UNREACHABLE, StoreUnavailable, UnknownWorkOrder
from workorders.store.transactions import StoreTransactions

log = logging.getLogger("workorders.store")

T = TypeVar("T")


class StoreSpooling(StoreTransactions):
    """Redis first, else the spool; the replay; reads that replay what waits first."""

    def _unreachable(self, now: float, exc: BaseException) -> None:
        super()._unreachable(now, exc)
        self._spool_unsynced()

    def _acknowledged(
        self, order_id: str, call_id: str, record: Callable[[], dict[str, Any]]
    ) -> None:
        """Redis acknowledged a write of ``order_id`` (a creation: for ``call_id``) whose spool
        record ``record()`` makes: held until ``_check_unsynced`` sees the same Redis up past
        the window after it."""
        self._unsynced.append(Held(time.monotonic(), order_id, call_id, record))

    def _lost_held(self, *, order_id: str = "", call_id: str = "") -> bool:
        """Whether Redis lost writes it acknowledged: it has no order ``order_id``, or none for
        the call ``call_id``, and a creation of it is held. Then every held write is spooled
        again (the replay applies those Redis lost, once). This catches a Redis restarted
        before ``_check_unsynced`` saw its new run id: a client that reconnected on its own
        reaches it, nothing fails, and the call's next change would find no order."""
        creations = (h for h in self._unsynced if h.call_id)
        if not any((order_id and h.order_id == order_id) or (call_id and h.call_id == call_id)
                   for h in creations):
            return False
        log.warning("redis has no trace of work order %s (call %s) it acknowledged: it lost "
                    "writes (a crash or failover)", order_id or "?", call_id or "?")
        self._spool_unsynced(everything=True)
        return True

    async def _check_unsynced(self) -> None:
        """Let go of the held writes the same Redis has kept past the window; spool them all
        again if Redis is another process than the one that acknowledged them (restarted
        between two writes, a failover): nothing failed to tell that it may have lost them."""
        checked = time.monotonic()
        runs = await self._timed(self._run_ids())
        if self._redis_runs is not None and runs != self._redis_runs and self._unsynced:
            log.warning("redis is not the process that acknowledged the last writes (run id "
                        "changed): they are spooled again")
            self._spool_unsynced(everything=True)
        horizon = checked - self._unsynced_window
        while self._unsynced and self._unsynced[0].at < horizon:
            self._unsynced.popleft()
        self._redis_runs = runs

    async def _run_ids(self) -> frozenset[str]:
        if self.buckets.cluster:  # every primary: one that restarted may have lost its part
            nodes = await self._redis.info("server", target_nodes="primaries")
            return frozenset(str(info["run_id"]) for info in nodes.values())
        return frozenset({str((await self._redis.info("server"))["run_id"])})

    def _acknowledged_create(self, op_id: str, draft: WorkOrder, order_id: str) -> None:
        """A creation: its replay needs the call's draft under the id Redis gave (for a
        repeat contact, the order it was linked to), made only if it is ever spooled."""
        self._acknowledged(order_id, draft.call_id,
                           lambda: _create_record(op_id, draft.with_id(order_id), self._cipher))

    def _acknowledged_update(
        self, op_id: str, order_id: str, now: float, event: Event, actor: str,
        changes: Mapping[str, Any],
    ) -> None:
        self._acknowledged(order_id, "", lambda: _update_record(
            op_id, order_id, now, event, actor, changes, self._cipher))

    def _spool_unsynced(self, *, everything: bool = False) -> None:
        """Redis failed (or restarted): the writes it acknowledged within the window (held
        writes of every age: ``everything``) go to the spool, oldest first, so that a crash
        that lost them loses nothing (replaying those it kept is a no-op by operation id)."""
        horizon = float("-inf") if everything else time.monotonic() - self._unsynced_window
        records = [held.record() for held in self._unsynced if held.at >= horizon]
        self._unsynced.clear()
        for record in records:
            self._append(record)
            if record["op"] == "update":
                self._spooled_ops.add(record["op_id"])
        if records:
            self._pending = True
            log.warning("%d work order writes Redis acknowledged in the last %.0f s spooled "
                        "again, in case its crash lost them", len(records),
                        self._unsynced_window)

    async def _write(
        self, now: float, direct: Callable[[], Awaitable[T]], spool: Callable[[], T]
    ) -> T:
        if not self._pending:
            try:
                return await self._timed(direct())
            except UNREACHABLE as exc:
                self._unreachable(now, exc)
        async with self._lock:
            if self._pending and now >= self._retry_at:
                try:
                    await self._replay_locked()
                except UNREACHABLE as exc:
                    self._unreachable(now, exc)
            if not self._pending and now >= self._retry_at:
                try:
                    return await self._timed(direct())
                except UNREACHABLE as exc:
                    self._unreachable(now, exc)
            return spool()

    async def replay_spool(self) -> int:
        """Apply every spooled write to Redis, oldest first; the number applied now.

        Safe to call at any time and repeatedly (what was applied is skipped). Raises
        ``StoreUnavailable`` when Redis is still unreachable; what was not applied stays.
        """
        async with self._lock:
            try:
                await self._check_unsynced()
                return await self._replay_locked()
            except UNREACHABLE as exc:
                self._spool_unsynced()
                raise StoreUnavailable(f"redis unreachable: {exc!r}") from exc

    def _spool_create(self, op_id: str, draft: WorkOrder) -> WorkOrder:
        existing = self._local_by_call(draft.call_id, missing_ok=True)
        if existing is not None:
            return existing
        # Its number in the caller's bucket: at replay it is created there, as a live call.
        bucket = self.buckets.of_new(self._cipher.blind_index(draft.caller_number), draft.call_id)
        order = replace(draft, id=self.buckets.local_id(bucket))
        self._append(_create_record(op_id, order, self._cipher))
        self._pending = True
        self._spooled[order.id] = order
        log.warning("work order %s for call %s spooled locally", order.id, order.call_id)
        return order

    def _spool_update(
        self,
        op_id: str,
        order_id: str,
        now: float,
        event: Event,
        actor: str,
        changes: Mapping[str, Any],
    ) -> WorkOrder | None:
        base = self._view(order_id)
        if op_id in self._spooled_ops:  # the same operation reported again: spooled once
            return base
        changed = apply(base, event, now, actor, self.policy, **changes) if base else None
        self._append(_update_record(op_id, order_id, now, event, actor, changes, self._cipher))
        self._spooled_ops.add(op_id)
        self._pending = True
        if changed is not None:
            self._spooled[changed.id] = changed  # the real id: see core's local view
        return changed

    def _append(self, record: dict[str, Any]) -> None:
        """To the spool; the spool's disk full, to memory (lost only if this process dies
        before Redis is back, instead of at once), and so every later write until the
        replay, which keeps them in order behind what the disk took."""
        if not self._held:
            try:
                self._spool.append(record)
                return
            except OSError as exc:
                log.error("work order spool refused a write (%s): held in memory until the "
                          "replay", exc)
        self._held.append(record)

    async def _replay_locked(self) -> int:
        applied = 0
        for batch in self._spool.rotate():
            for record in self._spool.records(batch):
                applied += await self._timed(self._replay_record(record))
            self._spool.done(batch)
        while self._held:
            applied += await self._timed(self._replay_record(self._held[0]))
            self._held.pop(0)
        self._pending = self._spool.pending()
        if not self._pending:
            for order in self._spooled.values():
                if order.id not in self._aliases:  # else its real order is remembered
                    self._remember(order)
            self._spooled.clear()
            self._spooled_ops.clear()
        if applied:
            log.warning("replayed %d spooled work order writes", applied)
        return applied

    async def _replay_record(self, record: Mapping[str, Any]) -> int:
        op_id = str(record.get("op_id", ""))
        try:
            if record.get("op") == "create":
                draft = WorkOrder.from_dict(personal.open_order(record["order"], self._cipher))
                order, created = await self._create_in_redis(
                    op_id, draft, proposed=draft.id, replayed=True
                )
                self._alias(draft.id, order.id)
                if created:
                    self._acknowledged(draft.id, draft.call_id, lambda: dict(record))
                return int(created)
            if record.get("op") == "update":
                _, applied = await self._update_in_redis(
                    op_id,
                    str(record["order_id"]),
                    float(record["now"]),
                    Event(record["event"]),
                    str(record["actor"]),
                    self._spooled_changes(record),
                    replayed=True,
                )
                if applied:
                    self._acknowledged(str(record["order_id"]), "", lambda: dict(record))
                return int(applied)
            raise WorkOrderError(f"unknown spool operation {record.get('op')!r}")
        except (WorkOrderError, UnknownWorkOrder, KeyError, TypeError, ValueError) as exc:
            await self._reject(op_id, record, exc)
            return 0

    async def _reject(self, op_id: str, record: Mapping[str, Any], exc: BaseException) -> None:
        """Keep a spooled write that Redis refuses, with the reason, instead of retrying it."""
        log.error("spooled work order write %s rejected on replay: %s", op_id, exc)
        if op_id:
            # Marked rejected (in the op id's bucket) before it is listed: of two replays
            # rejecting it at the same moment, one lists it.
            bucket = self._op_bucket(record)
            if not await self._redis.set(self.buckets.key(bucket, "wo:op:" + op_id), "rejected",
                                         ex=self._op_ttl, nx=True):
                return
        await self._redis.rpush(
            self._key("wo:spool-rejected"),
            json.dumps({"record": record, "reason": str(exc)}, ensure_ascii=True),
        )

    def _op_bucket(self, record: Mapping[str, Any]) -> int:
        """The bucket where the spooled write's operation id is recorded."""
        if record.get("op") == "update":
            return self.buckets.of_id(str(record.get("order_id", "")))
        order = record.get("order")
        if isinstance(order, Mapping) and order.get("id"):
            return self.buckets.of_id(str(order["id"]))
        return 0

    async def _read(
        self, key: str, read: Callable[[], Awaitable[T]], local: Callable[[str], T]
    ) -> T:
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            return await self._timed(read())
        except UNREACHABLE:
            self._spool_unsynced()
            return local(key)


def _create_record(op_id: str, order: WorkOrder, cipher: personal.FieldCipher) -> dict[str, Any]:
    """The spool record of a creation (the order's personal fields sealed, as in Redis)."""
    return {"op_id": op_id, "op": "create",
            "order": personal.seal_order(order.to_dict(), cipher)}


def _update_record(
    op_id: str, order_id: str, now: float, event: Event, actor: str,
    changes: Mapping[str, Any], cipher: personal.FieldCipher,
) -> dict[str, Any]:
    """The spool record of an update (its personal details sealed, as in Redis)."""
    return {
        "op_id": op_id,
        "op": "update",
        "order_id": order_id,
        "now": now,
        "event": event.value,
        "actor": actor,
        "changes": personal.seal_details(_json_changes(changes), op_id, cipher),
    }


def _json_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v.value if hasattr(v, "value") else list(v) if isinstance(v, tuple) else v)
        for k, v in changes.items()
    }
