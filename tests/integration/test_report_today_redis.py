"""Today's work-order KPIs read incrementally from a real redis-server: the store's events on
``hotline:events`` name the orders to read again, the figures equal the full read's, a second
instance (its own reader) shows the same, and a trimmed stream reads the day again."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import redis.asyncio as aioredis

from hotline.report.orders import today_report
from hotline.report.today import TodayKpis
from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders.clocks import ClockPolicy
from workorders.model import Event
from workorders.store import WorkOrderStore

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
CLOCKS = ClockPolicy()


class Settings:
    def clock_policy(self) -> ClockPolicy:
        return CLOCKS


@on_asyncio
async def test_incremental_reads_follow_the_stores_events(redis_server, tmp_path):
    """Creations, updates (one order twice between reads), a repeat call linked to an open
    order and a clock breached by time: after each, the incremental figures equal
    ``today_report``'s, for two readers alike, each having read the day whole once; after
    the stream is trimmed past the last entry read, the day is read whole and still right."""
    prefix = f"t{uuid.uuid4().hex[:6]}:"
    client = aioredis.Redis.from_url(redis_server.url)
    store = WorkOrderStore(client, tmp_path / "spool", prefix=prefix,
                           cipher=random_field_cipher(), repeat_contact_window=86400.0)
    settings = Settings()
    readers = [TodayKpis(store, lambda: settings), TodayKpis(store, lambda: settings)]

    async def same_as_full(now: float) -> None:
        full = (await today_report(store, CLOCKS, now)).as_dict()
        for reader in readers:
            assert (await reader.report(now)).as_dict() == full

    first = await store.create_for_call("c1", "+4930555010", "Kim Lee", T0, queue="faults",
                                        category="fault")
    await same_as_full(T0 + 10)
    await store.update(first.id, T0 + 600, Event.ASSIGN, "agent101", agent="agent101")
    await store.update(first.id, T0 + 700, Event.START, "agent101")
    second = await store.create_for_call("c2", "+4930555011", "Lee Kim", T0 + 800,
                                         queue="billing", category="inquiry")
    await same_as_full(T0 + 900)
    await store.update(first.id, T0 + 3600, Event.RESOLVE, "agent101")
    await store.update(first.id, T0 + 4000, Event.UPDATE, "survey", csat=5, nps=9)
    await store.create_for_call("c3", "+4930555011", "Lee Kim", T0 + 4100, category="inquiry")
    await same_as_full(T0 + 4200)
    linked = await store.get(second.id)
    assert linked is not None and linked.contacts == 2  # the repeat call, linked
    await same_as_full(T0 + 4 * 3600)  # the second order's assignment breached by time
    assert all(r.full_reads == 1 for r in readers)

    await client.xtrim(f"{prefix}events", maxlen=0)
    await store.update(second.id, T0 + 5 * 3600, Event.ASSIGN, "agent102", agent="agent102")
    await same_as_full(T0 + 5 * 3600 + 60)
    assert all(r.full_reads == 2 for r in readers)
    await client.aclose()
