"""The public writes: create for a call, lifecycle updates, the answer, the back office, merge.

A caller's write never fails for want of Redis: it goes to the spool (``spooling``). A
supervisor's or the back office's write waits for Redis instead (``StoreUnavailable``). Built
on the reads: the answer looks the call's order up first.
"""

from __future__ import annotations

import logging
from typing import Any

from workorders.model import (
    Event,
    Status,
    TransitionRefused,
    WorkOrder,
    WorkOrderError,
    back_office_reason,
    create_order,
)
from workorders.store.errors import UNREACHABLE, StoreUnavailable, UnknownWorkOrder
from workorders.store.reads import OrderReads
from workorders.store.transactions import new_op_id

log = logging.getLogger("workorders.store")


class OrderWrites(OrderReads):
    """Create and change work orders (``WorkOrderStore``'s writes)."""

    async def create_for_call(
        self,
        call_id: str,
        caller_number: str,
        caller_name: str,
        now: float,
        *,
        actor: str = "ivr",
        **fields: Any,
    ) -> WorkOrder:
        """The call's work order, created pending if the call has none yet.

        Idempotent on ``call_id``: every call with the same id returns the same order, also
        under concurrency and across a spool replay. ``fields``: category, urgency, queue,
        menu_path, transcript, confidence, engine. Invalid fields raise ``WorkOrderError``
        before anything is written.
        """
        draft = create_order(
            "", call_id, caller_number, caller_name, now, self.policy, actor, **fields
        )
        op_id = new_op_id()

        async def direct() -> WorkOrder:
            order, wrote = await self._create_in_redis(op_id, draft, proposed="", replayed=False)
            if wrote:
                self._acknowledged_create(op_id, draft, order.id)
            return order

        return await self._write(now, direct, lambda: self._spool_create(op_id, draft))

    async def update(
        self, order_id: str, now: float, event: Event | str, actor: str, **changes: Any
    ) -> WorkOrder | None:
        """Apply a lifecycle ``event`` (``model.Event``) with ``changes`` to the order.

        Returns the order as changed. Raises ``TransitionRefused``/``WorkOrderError`` when the
        model refuses, ``UnknownWorkOrder`` when there is no such order. With Redis
        unreachable the change is spooled and checked against the local view; returns None
        when this process has no view of the order (the change is applied, or rejected into
        ``wo:spool-rejected``, at replay).
        """
        return await self.update_once(new_op_id(), order_id, now, event, actor, **changes)

    async def update_once(
        self, op_id: str, order_id: str, now: float, event: Event | str, actor: str,
        **changes: Any,
    ) -> WorkOrder | None:
        """``update`` as the operation ``op_id``: applied once whoever reports it how often
        (an event several processes see, an idempotency key); a repeat returns the order as
        it is (or the local view while Redis is unreachable)."""
        event = _event(event)

        async def direct() -> WorkOrder | None:
            try:
                order, applied = await self._update_in_redis(
                    op_id, order_id, now, event, actor, changes, replayed=False
                )
            except UnknownWorkOrder:
                if ((self._pending and (order_id in self._spooled))
                        or self._lost_held(order_id=order_id)):
                    # Created in the spool and not replayed yet, or Redis lost its creation
                    # (spooled again): keep the order of writes.
                    return self._spool_update(op_id, order_id, now, event, actor, changes)
                raise
            if applied:
                self._acknowledged_update(op_id, order_id, now, event, actor, changes)
            return order

        return await self._write(
            now, direct, lambda: self._spool_update(op_id, order_id, now, event, actor, changes)
        )

    async def answered(self, call_id: str, agent: str, now: float) -> WorkOrder | None:
        """The agent who answered the call takes its order: ``assign``, then ``start`` unless
        the order is already being worked on (a repeat contact's order in progress or on
        hold). Reported twice by design (ARI's live ``Dial`` event at the answer, the call
        flow when Dial returns, possibly from two instances), so each step has an operation
        id of the call and agent: applied once. The order as it is then; None when the call
        has none, or its order no longer takes an assignment (resolved meanwhile)."""
        order = await self.get_by_call(call_id)
        if order is None:
            return None
        step = f"answer:{call_id}:{agent}"
        try:
            taken = await self.update_once(f"{step}:assign", order.id, now, Event.ASSIGN,
                                           "router", agent=agent)
            if taken is not None and taken.status is Status.ASSIGNED and taken.agent == agent:
                taken = await self.update_once(f"{step}:start", order.id, now, Event.START, agent)
        except TransitionRefused as exc:
            log.warning("call %s answered by %s: work order not assigned: %s",
                        call_id, agent, exc)
            return None
        return taken

    async def send_to_back_office(
        self,
        order_id: str,
        now: float,
        actor: str,
        reason: str = "needs-back-office",
        text: str | None = None,
    ) -> WorkOrder | None:
        """The agent (or an out-of-hours flow) hands the order to the back office: pending
        again, no agent, ``reason`` kept (``model.BACK_OFFICE_REASONS``); ``text`` goes to the
        history like a note. The back-office loop assigns it (``workorders.backoffice``)."""
        extra = {"text": text} if text else {}
        return await self.update(order_id, now, Event.BACK_OFFICE, actor, reason=reason,
                                 **extra)

    async def assign_back_office(
        self, order_id: str, agent: str, now: float, *, actor: str = "backoffice"
    ) -> WorkOrder | None:
        """Assign an order the back office owns, if it still does (``back_office_reason``).

        The check and the write are one WATCHed transaction: of two back-office loops racing
        for the order, or a supervisor assigning it meanwhile, exactly one assignment
        happens; the loser gets None. Never spooled (the back office waits for Redis rather
        than act on a stale view): raises ``StoreUnavailable`` while Redis is unreachable or
        the spool still waits for replay."""
        if self._pending:
            raise StoreUnavailable("work order writes wait in the spool: back office paused")
        try:
            order, applied = await self._timed(self._update_in_redis(
                new_op_id(), order_id, now, Event.ASSIGN, actor, {"agent": agent},
                replayed=False, only_if=_owned_by_back_office,
            ))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis unreachable: {exc!r}") from exc
        return order if applied else None

    async def merge(
        self, survivor_id: str, merged_id: str, now: float, actor: str
    ) -> tuple[WorkOrder, WorkOrder]:
        """Fold the order ``merged_id`` into ``survivor_id`` (``model.merge_orders``): the
        survivor and the merged order as written.

        Both orders are read under WATCH and written in one MULTI/EXEC (hashes, histories,
        indexes, a ``WOABSORB`` and a ``WOMERGE`` event): a change to either that lands
        meanwhile makes the merge start over on the new state, so neither is lost. Raises
        ``WorkOrderError`` (the same order twice), ``UnknownWorkOrder``, ``TransitionRefused``
        (already merged, closed survivor). A supervisor's action, not a caller's: with Redis
        unreachable it raises ``StoreUnavailable`` rather than spool.
        """
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            return await self._timed(self._merge_in_redis(survivor_id, merged_id, now, actor))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis unreachable, nothing merged: {exc!r}") from exc


def _event(event: Event | str) -> Event:
    try:
        return Event(event)
    except ValueError:
        raise WorkOrderError(
            f"unknown event {event!r}; events are {[e.value for e in Event]}"
        ) from None


def _owned_by_back_office(order: WorkOrder) -> bool:
    return back_office_reason(order) is not None
