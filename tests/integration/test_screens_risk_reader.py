"""The screens' reader of order clocks at risk (screens.risk.RiskReader) against a real
redis-server and the real work-order store and escalation watch: it finds the orders due
within the hour through ``wo:due``, the breached ones through the escalation list once the
watch fired their breach (they leave ``wo:due`` then), leaves resolved work out, and reads
an order again only when a work-order event names it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from screens.board import FeedEntry
from screens.risk import RiskReader
from workorders.clocks import ClockKind, ClockPolicy
from workorders.escalation import EscalationPolicy
from workorders.model import Event, WorkOrder
from workorders.store import WorkOrderStore
from workorders.watch import EscalationWatch

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
H = 3600.0


class CountingStore:
    """The store, counting the orders read through it."""

    def __init__(self, store: WorkOrderStore) -> None:
        self.store = store
        self.read: list[str] = []

    async def get(self, order_id: str) -> WorkOrder | None:
        self.read.append(order_id)
        return await self.store.get(order_id)


@pytest.fixture
def world(redis_server, tmp_path):
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=5)
    store = WorkOrderStore(client, tmp_path / "spool", prefix=prefix,
                           cipher=random_field_cipher())
    watch = EscalationWatch(client, store, clocks=ClockPolicy(), policy=EscalationPolicy())
    counting = CountingStore(store)
    reader = RiskReader(client, counting, ClockPolicy, prefix=prefix, warning_s=H,
                        refresh_s=5.0)
    return store, watch, counting, reader


async def _taken(store: WorkOrderStore, n: int, urgency: str) -> WorkOrder:
    order = await store.create_for_call(f"call-{n}", "+4930555", "Kim", T0, urgency=urgency,
                                        category="fault", queue="faults")
    await store.update(order.id, T0 + 60, Event.ASSIGN, "router", agent="agent101")
    changed = await store.update(order.id, T0 + 61, Event.START, "agent101")
    assert changed is not None
    return changed


@on_asyncio
async def test_due_soon_through_the_due_index_breached_through_the_escalation_list(world):
    """Half an hour after creation the urgent order's response (due at one hour) is at risk
    (warn), the normal one's clocks are not, the resolved one is left out; once the watch
    fired the breach, the order is found through the escalation list (alarm)."""
    store, watch, _counting, reader = world
    urgent = await _taken(store, 1, "urgent")
    await _taken(store, 2, "normal")
    done = await _taken(store, 3, "urgent")
    await store.update(done.id, T0 + 120, Event.RESOLVE, "agent101", outcome="fixed")

    rows = await reader(T0 + 0.5 * H, [])
    assert [(r.order_id, r.clock, r.level) for r in rows] == [
        (urgent.id, ClockKind.RESPONSE, "warn")]
    assert (rows[0].agent, rows[0].queue, rows[0].category) == ("agent101", "faults", "fault")

    fired = await watch.sweep(T0 + 1.6 * H)
    assert {(e.order_id, e.clock) for e in fired} >= {(urgent.id, ClockKind.RESPONSE)}
    due = store.buckets.order_name(urgent.id, "wo:due")
    assert await store._redis.zscore(due, urgent.id) > T0 + 2.6 * H
    rows = await reader(T0 + 1.6 * H, [])
    assert [(r.order_id, r.clock, r.level) for r in rows] == [
        (urgent.id, ClockKind.RESPONSE, "alarm")]


@on_asyncio
async def test_orders_are_read_again_only_when_an_event_names_them(world):
    """The first read reads each candidate once; the next rounds read no order (only the
    candidates, every ``refresh_s``); a work-order event names an order: that one is read
    again; a resolved order leaves the candidates, and the list, without a read."""
    store, _watch, counting, reader = world
    first = await _taken(store, 1, "urgent")
    second = await _taken(store, 2, "urgent")
    assert len(await reader(T0 + 0.5 * H, [])) == 2
    assert sorted(counting.read) == sorted([first.id, second.id])
    counting.read.clear()
    assert len(await reader(T0 + 0.5 * H + 1, [])) == 2
    assert len(await reader(T0 + 0.5 * H + 10, [])) == 2
    assert counting.read == []

    await store.update(second.id, T0 + 0.6 * H, Event.NOTE, "agent101", text="called back")
    noted = FeedEntry("1-0", {"kind": "WONOTE", "order_id": second.id})
    assert len(await reader(T0 + 0.6 * H, [noted])) == 2
    assert counting.read == [second.id]
    counting.read.clear()
    await store.update(first.id, T0 + 0.7 * H, Event.RESOLVE, "agent101", outcome="fixed")
    resolved = FeedEntry("2-0", {"kind": "WORESOLVE", "order_id": first.id})
    rows = await reader(T0 + 0.7 * H, [resolved])
    assert [r.order_id for r in rows] == [second.id]
    assert counting.read == []  # it left the due index: not even read
