"""The desk's "my open orders" on a real redis-server: an agent's open orders sit in several
work-order buckets (``workorders.buckets``: a bucket per caller), and the desk lists them all,
newest first, without the ones closed or taken by someone else."""

from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from screens.wiring import OpenOrders
from workorders.store import WorkOrderStore

CIPHER = random_field_cipher()
T0 = 1_800_000_000.0


@on_asyncio
async def test_my_open_orders_merge_every_bucket_newest_first(redis_server, tmp_path) -> None:
    """Six callers' orders answered by one agent land in more than one bucket; the desk
    shows the five still open, newest first, and not another agent's order."""
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(redis_server.url, socket_timeout=2)
    store = WorkOrderStore(client, tmp_path / "spool", prefix=prefix, cipher=CIPHER)
    mine = []
    for n in range(6):
        order = await store.create_for_call(f"call-{n}", f"+8210555{n:04d}", "", T0 + n,
                                            category="fault", urgency="normal")
        await store.answered(f"call-{n}", "a1", T0 + n + 1)
        mine.append(order.id)
    other = await store.create_for_call("call-x", "+82109990000", "", T0 + 9,
                                        category="fault", urgency="normal")
    await store.answered("call-x", "a2", T0 + 10)
    assert len({store.buckets.of_id(i) for i in mine}) > 1
    await store.update(mine[2], T0 + 20, "resolve", "a1", outcome="fixed")

    listed = await OpenOrders(client, store, prefix)("a1")

    assert [o.id for o in listed] == [mine[5], mine[4], mine[3], mine[1], mine[0]]
    assert other.id not in {o.id for o in listed}
    await client.aclose()
