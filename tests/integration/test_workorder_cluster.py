"""Work orders on a real 3-master Redis Cluster (the ``redis_cluster`` fixture): every atomic
step of the store runs in one bucket's hash slot, the buckets spread over all three nodes,
lists, filters, KPIs, the due clock, the back office's list and the purge merge them, repeat
contacts stay atomic, a merge across buckets is two idempotent steps, and every change reaches
``hotline:events`` through the relay once."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

import events
from events.relay import OutboxRelay
from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from testbed.redis import RedisCluster
from workorders import retention
from workorders.model import Event, Status
from workorders.query import OrderFilter, parse_filter
from workorders.store import WorkOrderStore
from workorders.watch import EscalationWatch, escalation_list

CIPHER = random_field_cipher()
T0 = 1_772_442_000.0  # 2026-03-02 09:00 UTC
H = 3600.0


def connect(cluster: RedisCluster) -> AsyncRedisCluster:
    return AsyncRedisCluster.from_url(cluster.url, socket_timeout=2, socket_connect_timeout=2)


def store_on(client: Any, prefix: str, spool: Path, **options: Any) -> WorkOrderStore:
    return WorkOrderStore(client, spool, prefix=prefix, cipher=CIPHER,
                          repeat_contact_window=24 * H, **options)


async def relayed(client: Any, store: WorkOrderStore) -> list[dict[str, str]]:
    """Run a relay round over the store's outboxes; every entry of ``hotline:events``."""
    relay = OutboxRelay(client, store.buckets.tags(), consumer="test", prefix=store.prefix)
    await relay.run_once()
    rows = await client.xrange(events.stream_key(store.prefix))
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in rows]


async def nodes_of(client: Any, keys: list[str]) -> set[str]:
    return {client.get_node_from_key(key).name for key in keys}


@on_asyncio
async def test_orders_spread_over_every_node_and_list_filter_and_count_as_one(
    redis_cluster, prefix, tmp_path
):
    """Sixty orders of sixty callers land in buckets on all three masters; a list is every
    order newest first, page after page with the cursor and none twice; a filter and the
    KPIs' read (``created_between``) see the orders of every bucket."""
    client = connect(redis_cluster)
    store = store_on(client, prefix, tmp_path / "spool")
    assert store.buckets.cluster
    made = [
        await store.create_for_call(f"call-{i}", f"+4930555{i:04d}", f"Caller {i}", T0 + i,
                                    category="fault" if i % 3 else "complaint")
        for i in range(60)
    ]
    buckets = {store.buckets.of_id(o.id) for o in made}
    assert len(buckets) > 8
    assert await nodes_of(client, [store.buckets.order_key(o.id) for o in made]) == {
        n.name for n in client.get_primaries()
    }
    newest_first = [o.id for o in sorted(made, key=lambda o: -o.created_at.timestamp())]
    assert [o.id for o in await store.list_recent(10)] == newest_first[:10]
    seen, cursor = [], None
    while True:
        page, cursor = await store.find(OrderFilter(), T0 + H, limit=7, after=cursor)
        seen += [o.id for o in page]
        if cursor is None:
            break
    assert seen == newest_first
    billing, _ = await store.find(parse_filter({"category": "complaint"}), T0 + H, limit=100)
    assert [o.id for o in billing] == [o.id for o in sorted(made, key=lambda o: -o.created_at
                                       .timestamp()) if o.category.value == "complaint"]
    window = await store.created_between(T0 + 10, T0 + 20)
    assert [o.id for o in window] == [o.id for o in made[10:20]]
    for order in made[:5]:
        assert (await store.get_by_call(order.call_id)).id == order.id
    await client.aclose()


@on_asyncio
async def test_every_change_reaches_the_stream_through_the_relay_once(
    redis_cluster, prefix, tmp_path
):
    """Creation and updates write their events to their bucket's outbox in the same atomic
    step; one relay round puts each on ``hotline:events`` once, in order per order."""
    client = connect(redis_cluster)
    store = store_on(client, prefix, tmp_path / "spool")
    orders = [await store.create_for_call(f"c-{i}", f"+4930{i}77", "N", T0 + i)
              for i in range(6)]
    for order in orders:
        await store.update(order.id, T0 + 60, Event.ASSIGN, "router", agent="a1")
        await store.update(order.id, T0 + 90, Event.START, "a1")
    rows = await relayed(client, store)
    assert len(rows) == 18 and len({r["outbox_id"] for r in rows}) == 18
    for order in orders:
        kinds = [r["kind"] for r in rows if r["order_id"] == order.id]
        assert kinds == ["WOCREATE", "WOASSIGN", "WOSTART"]
    assert await relayed(client, store) == rows  # nothing left to copy
    await client.aclose()


@on_asyncio
async def test_concurrent_repeat_calls_of_one_caller_make_one_order_on_a_cluster(
    redis_cluster, prefix, tmp_path
):
    """Ten concurrent calls of one caller about one category, from two instances, make one
    order with ten contacts: the caller's bucket holds the check and the write."""
    clients = [connect(redis_cluster), connect(redis_cluster)]
    stores = [store_on(c, prefix, tmp_path / f"s{i}") for i, c in enumerate(clients)]
    made = await asyncio.gather(*(
        stores[i % 2].create_for_call(f"rep-{i}", "+49 30 5550 1234", "Kim", T0 + i / 10,
                                      category="fault")
        for i in range(10)
    ))
    order = await stores[0].get(made[0].id)
    assert {o.id for o in made} == {order.id} and order.contacts == 10
    for i in range(10):
        assert (await stores[1].get_by_call(f"rep-{i}")).id == order.id
    for c in clients:
        await c.aclose()


def two_buckets(store: WorkOrderStore) -> tuple[str, str]:
    """Two caller numbers whose orders land in different buckets."""
    first = "+4930111000"
    bucket = store.buckets.of_new(CIPHER.blind_index(first), "")
    for n in range(100):
        other = f"+4930222{n:03d}"
        if store.buckets.of_new(CIPHER.blind_index(other), "") != bucket:
            return first, other
    raise AssertionError("no second bucket")


@on_asyncio
async def test_a_merge_across_buckets_is_two_steps_safe_to_run_again(
    redis_cluster, prefix, tmp_path, monkeypatch
):
    """Orders of two buckets merge in two steps: interrupted after the survivor's ``absorb``
    (the process died), the merge run again applies the ``merge`` once and the ``absorb`` not
    twice; run a third time it returns the orders as they are."""
    client = connect(redis_cluster)
    store = store_on(client, prefix, tmp_path / "spool")
    one, two = two_buckets(store)
    survivor = await store.create_for_call("m-1", one, "A", T0)
    merged = await store.create_for_call("m-2", two, "B", T0 + 5)
    assert store.buckets.of_id(survivor.id) != store.buckets.of_id(merged.id)
    real = store._update_in_redis
    calls = 0

    async def dies_after_the_first_step(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise ConnectionError("the process died between the two steps")
        return await real(*args, **kwargs)

    monkeypatch.setattr(store, "_update_in_redis", dies_after_the_first_step)
    with pytest.raises(Exception, match="died"):
        await store.merge(survivor.id, merged.id, T0 + 60, "sup")
    monkeypatch.setattr(store, "_update_in_redis", real)
    half = await store.get(merged.id)
    assert half.merged_into is None
    kept, folded = await store.merge(survivor.id, merged.id, T0 + 61, "sup")
    assert [h.event for h in kept.history] == ["create", "absorb"]
    assert folded.merged_into == survivor.id and folded.status is Status.CLOSED
    again = await store.merge(survivor.id, merged.id, T0 + 62, "sup")
    assert again == (kept, folded)
    kinds = [r["kind"] for r in await relayed(client, store)]
    assert kinds.count("WOABSORB") == 1 and kinds.count("WOMERGE") == 1
    await client.aclose()


@on_asyncio
async def test_the_watch_and_the_purge_run_on_a_cluster(redis_cluster, prefix, tmp_path):
    """The escalation sweep finds due orders in every bucket and settles each in its slot
    (the supervisor's list merges the buckets); the purge deletes an expired order of any
    bucket with its deletion record in that bucket."""
    client = connect(redis_cluster)
    store = store_on(client, prefix, tmp_path / "spool")
    watch = EscalationWatch(client, store, clocks=_clocks(), policy=_escalations())
    orders = [await store.create_for_call(f"w-{i}", f"+4930{i}99", "N", T0, urgency="urgent")
              for i in range(4)]
    fired = await watch.sweep(T0 + 3 * H)
    assert {e.order_id for e in fired} == {o.id for o in orders}
    listed = await escalation_list(client, prefix=prefix, buckets=store.buckets)
    assert {e.order_id for e in listed} == {o.id for o in orders}
    closed = orders[0]
    for event, changes in ((Event.ASSIGN, {"agent": "a1"}), (Event.START, {}),
                           (Event.RESOLVE, {"outcome": "ok"}), (Event.CLOSE, {})):
        await store.update(closed.id, T0 + 4 * H, event, "a1", **changes)
    later = T0 + 4 * 366 * 86400
    report = await retention.purge(store, later, dry_run=False)
    assert [r.id for r in report.deleted] == [closed.id]
    assert await store.get(closed.id) is None
    deletions = store.buckets.order_name(closed.id, retention.DELETIONS)
    assert await client.llen(deletions) == 1
    await client.aclose()


def _clocks() -> Any:
    from workorders.schema import WorkOrdersConfig

    return WorkOrdersConfig().clock_policy()


def _escalations() -> Any:
    from workorders.schema import WorkOrdersConfig

    return WorkOrdersConfig().escalation.policy()
