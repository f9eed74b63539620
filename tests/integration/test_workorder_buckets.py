"""Orders written before buckets (``<p>wo:<id>``...) are moved into them by
``workorders.migrate.move_into_buckets`` (``ivr orders reindex``): they keep their ids, are
found by id, by call, by caller and by every filter after the reindex, new ids never repeat
old ones, and a second run moves nothing."""

from __future__ import annotations

import json

import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders.migrate import move_into_buckets
from workorders.model import Policy, Status, create_order
from workorders.query import parse_filter
from workorders.store import WorkOrderStore, _to_hash

CIPHER = random_field_cipher()
T0 = 1_772_442_000.0


async def write_old_order(client: aioredis.Redis, prefix: str, order_id: str, call_id: str,
                          number: str, at: float) -> None:
    """One order as the store wrote it before buckets (plaintext, as before encryption)."""
    order = create_order(order_id, call_id, number, "Old", at, Policy(), "ivr")
    await client.hset(f"{prefix}wo:{order_id}", mapping=_to_hash(order))  # type: ignore[arg-type]
    await client.rpush(f"{prefix}wo:{order_id}:history",
                       json.dumps(order.history[0].to_dict()))
    await client.set(f"{prefix}wo:by-call:{call_id}", order_id)
    await client.sadd(f"{prefix}wo:by-caller:{CIPHER.blind_index(number)}", order_id)
    await client.zadd(f"{prefix}wo:index", {order_id: at})
    await client.zadd(f"{prefix}wo:status:pending", {order_id: at})
    await client.set(f"{prefix}wo:op:op-{order_id}", order_id, ex=3600)


@on_asyncio
async def test_old_keys_move_into_buckets_once_and_stay_findable(redis_server, tmp_path):
    """After the move and the reindex the old orders read as before, by id, call, caller and
    filter; the old keys are gone; the next order's id is above every old id; running the
    move again finds nothing to move."""
    prefix = "old:"
    client = aioredis.Redis.from_url(redis_server.url)
    for n in (3, 5, 7):
        await write_old_order(client, prefix, str(n), f"call-{n}", "+4930555000", T0 + n)
    await client.set(f"{prefix}wo:seq", 7)
    store = WorkOrderStore(client, tmp_path / "spool", prefix=prefix, cipher=CIPHER)

    moved = await move_into_buckets(client, store.buckets)
    assert moved["orders"] == 3 and moved["histories"] == 3 and moved["seq"] == 1
    assert await store.reindex() == 3
    assert [k async for k in client.scan_iter(match=f"{prefix}wo:[^{{]*")] == []
    for n in (3, 5, 7):
        order = await store.get(str(n))
        assert order is not None and order.call_id == f"call-{n}"
        assert (await store.get_by_call(f"call-{n}")).id == str(n)
        assert await client.get(store.buckets.order_name(str(n), f"wo:op:op-{n}")) == (
            str(n).encode()
        )
    assert [o.id for o in await store.by_caller("+4930555000")] == ["3", "5", "7"]
    pending, _ = await store.find(parse_filter({"status": "pending"}), T0 + 60)
    assert [o.id for o in pending] == ["7", "5", "3"]
    new = await store.create_for_call("call-new", "+4930555000", "New", T0 + 60)
    assert int(new.id) > 7 and new.status is Status.PENDING
    assert await move_into_buckets(client, store.buckets) == {}
    await client.aclose()
