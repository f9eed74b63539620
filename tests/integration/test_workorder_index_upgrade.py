"""``ivr serve`` brings the work orders' index sets up to date by itself after an upgrade
(``workorders.upgrade``, started by ``hotline.startup.index_upgrade_job``), against a real
redis-server: orders stored without the newer sets get them, once across instances, and a
fresh Redis only records the version."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from hotline.startup import index_upgrade_job
from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from testbed.redis import connect
from workorders import indexes
from workorders.model import WorkOrder
from workorders.query import parse_filter
from workorders.store import WorkOrderStore
from workorders.upgrade import LOCK_KEY, REINDEX_KIND, VERSION_KEY, IndexUpgrade

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
CIPHER = random_field_cipher()
#: The sets this version added: the ones older orders lack.
NEW_SETS = ("wo:overdue-at", *(
    indexes.status_urgency(s, u)
    for s in ("pending", "assigned", "in_progress", "on_hold", "resolved", "closed")
    for u in ("urgent", "important", "normal")
))


def make_store(client: Any, prefix: str, tmp_path: Any, name: str = "spool") -> WorkOrderStore:
    return WorkOrderStore(client, tmp_path / name, cipher=CIPHER, prefix=prefix)


async def old_orders(store: WorkOrderStore, n: int) -> list[WorkOrder]:
    """``n`` orders as an older release left them: without the newer index sets and without
    an index version."""
    orders = []
    for i in range(n):
        order = await store.create_for_call(f"call-{i}", f"+1555{i:07d}", f"Caller {i}",
                                            T0 + i * 60, urgency=("urgent", "normal")[i % 2])
        if i % 3 == 0:
            order = await store.update(order.id, T0 + i * 60 + 1, "assign", "sam",
                                       agent="agent101")
        orders.append(order)
    keys = [k for name in NEW_SETS for k in store.buckets.keys(name)]
    await store.redis.delete(*keys)
    return orders


async def kinds(client: Any, prefix: str) -> list[dict[str, str]]:
    rows = await client.xrange(f"{prefix}events")
    return [{k.decode(): v.decode() for k, v in f.items()} for _, f in rows
            if f[b"kind"] == REINDEX_KIND.encode()]


async def overdue_and_urgent(store: WorkOrderStore) -> list[str]:
    found, _ = await store.find(parse_filter({"overdue": "true", "urgency": "urgent"}),
                                T0 + 30 * 86400, limit=200)
    return sorted(o.id for o in found)


@on_asyncio
async def test_service_start_rebuilds_the_sets_older_orders_lack(redis_server, prefix, tmp_path):
    """Orders stored before the overdue and status-urgency sets are found by neither filter;
    the first round of the start-up job rebuilds their memberships, records the version,
    writes one WOREINDEX event with the number of orders, and its later rounds do nothing."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    orders = await old_orders(store, 40)
    urgent_open = sorted(o.id for o in orders if o.urgency.value == "urgent")
    assert await overdue_and_urgent(store) == []
    job = index_upgrade_job(store, "hotline-a", lambda: T0)
    assert job.now and job.what == "index upgrade"
    first = job.round()
    assert first is not None
    outcome = await first
    assert outcome.state == "rebuilt" and outcome.orders == 40
    assert await overdue_and_urgent(store) == urgent_open
    for order in orders:
        for name, score in indexes.memberships(order, store.indexers).items():
            assert await client.zscore(store.buckets.order_name(order.id, name), order.id) \
                == score
    assert int(await client.get(prefix + VERSION_KEY)) == indexes.INDEX_VERSION
    assert not await client.exists(prefix + LOCK_KEY)
    [event] = await kinds(client, prefix)
    assert (event["orders"], event["instance"]) == ("40", "hotline-a")
    assert json.loads(event["version"]) == indexes.INDEX_VERSION
    assert job.round() is None
    await client.aclose()


class SlowStore:
    """A store whose reindex pauses between batches, so two starts overlap for certain."""

    def __init__(self, store: WorkOrderStore) -> None:
        self.store = store
        self.redis = store.redis
        self.buckets = store.buckets
        self.batches = 0

    async def reindex(self, *, batch: int = 500, after_batch: Any = None) -> int:
        async def pause(done: int) -> None:
            self.batches += 1
            await asyncio.sleep(0.01)
            if after_batch is not None:
                await after_batch(done)

        return await self.store.reindex(batch=batch, after_batch=pause)


@on_asyncio
async def test_two_instances_starting_together_rebuild_once(redis_server, prefix, tmp_path):
    """Two instances starting at the same moment over old orders: one takes the lock and
    rebuilds, the other finds it taken and rebuilds nothing; one WOREINDEX event. On its
    next round the other finds the version recorded and is done too."""
    client_a, client_b = connect(redis_server.url), connect(redis_server.url)
    store_a = SlowStore(make_store(client_a, prefix, tmp_path, "a"))
    store_b = SlowStore(make_store(client_b, prefix, tmp_path, "b"))
    await old_orders(store_a.store, 60)
    a = IndexUpgrade(store_a, instance="hotline-a", clock=lambda: T0, batch=5)
    b = IndexUpgrade(store_b, instance="hotline-b", clock=lambda: T0, batch=5)
    outcomes = await asyncio.gather(a.run(), b.run())
    assert sorted(o.state for o in outcomes) == ["elsewhere", "rebuilt"]
    assert [o.orders for o in outcomes if o.state == "rebuilt"] == [60]
    assert (store_a.batches == 0) != (store_b.batches == 0)
    assert len(await kinds(client_a, prefix)) == 1
    late = b if outcomes[1].state == "elsewhere" else a
    assert not late.done
    assert (await late.run()).state == "current" and late.round() is None
    assert len(await kinds(client_a, prefix)) == 1
    await client_a.aclose()
    await client_b.aclose()


@on_asyncio
async def test_fresh_redis_records_the_version_without_a_rebuild(redis_server, prefix,
                                                                 tmp_path):
    """A Redis with no order: the version is recorded at once, nothing is reindexed and no
    event is written; orders created after are indexed by their own writes."""
    client = connect(redis_server.url)
    store = SlowStore(make_store(client, prefix, tmp_path))
    upgrade = IndexUpgrade(store, instance="hotline-a", clock=lambda: T0)
    assert (await upgrade.run()).state == "fresh"
    assert store.batches == 0 and upgrade.round() is None
    assert int(await client.get(prefix + VERSION_KEY)) == indexes.INDEX_VERSION
    assert await kinds(client, prefix) == []
    await client.aclose()


class CrashingStore(SlowStore):
    """A store whose reindex dies after its first batch, as an instance killed mid-way."""

    async def reindex(self, *, batch: int = 500, after_batch: Any = None) -> int:
        async def crash(done: int) -> None:
            raise RuntimeError("killed")

        return await self.store.reindex(batch=batch, after_batch=crash)


@on_asyncio
async def test_a_rebuild_that_dies_half_way_is_redone_at_the_next_start(redis_server, prefix,
                                                                       tmp_path):
    """A rebuild interrupted after its first batch records no version, so the next start
    rebuilds every order and records it."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    orders = await old_orders(store, 30)
    dying = IndexUpgrade(CrashingStore(store), instance="hotline-a", clock=lambda: T0, batch=4)
    with pytest.raises(RuntimeError):
        await dying.run()
    assert await client.get(prefix + VERSION_KEY) is None
    assert not dying.done
    again = IndexUpgrade(store, instance="hotline-a", clock=lambda: T0)
    assert (await again.run()).orders == 30
    assert await overdue_and_urgent(store) == sorted(
        o.id for o in orders if o.urgency.value == "urgent"
    )
    await client.aclose()


@on_asyncio
async def test_a_held_lock_is_left_to_its_holder(redis_server, prefix, tmp_path):
    """While another instance holds the rebuild's lock (it runs, or died and its lock has not
    expired), this one rebuilds nothing and records nothing; once the lock is gone it
    rebuilds."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    await old_orders(store, 5)
    await client.set(prefix + LOCK_KEY, "hotline-b:0", px=60_000)
    upgrade = IndexUpgrade(store, instance="hotline-a", clock=lambda: T0)
    assert (await upgrade.run()).state == "elsewhere"
    assert await client.get(prefix + VERSION_KEY) is None
    assert await client.get(prefix + LOCK_KEY) == b"hotline-b:0"
    await client.delete(prefix + LOCK_KEY)  # as its expiry would
    assert (await upgrade.run()).state == "rebuilt"
    await client.aclose()


@on_asyncio
async def test_a_lost_lock_stops_the_rebuild(redis_server, prefix, tmp_path):
    """A rebuild whose lock expired and was taken by another instance stops after its batch
    without recording the version (the other one does), and leaves the other's lock alone."""
    from workorders.upgrade import LockLost

    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    await old_orders(store, 10)

    class Usurped(SlowStore):
        async def reindex(self, *, batch: int = 500, after_batch: Any = None) -> int:
            async def taken(done: int) -> None:
                await client.set(prefix + LOCK_KEY, "hotline-b:1")
                await after_batch(done)

            return await self.store.reindex(batch=batch, after_batch=taken)

    upgrade = IndexUpgrade(Usurped(store), instance="hotline-a", clock=lambda: T0, batch=3)
    with pytest.raises(LockLost):
        await upgrade.run()
    assert await client.get(prefix + VERSION_KEY) is None
    assert await client.get(prefix + LOCK_KEY) == b"hotline-b:1"
    await client.aclose()


@on_asyncio
async def test_versions_current_newer_and_old_layout(redis_server, prefix, tmp_path):
    """A recorded version as new as the code's, or newer (a rolled-back release), is left as
    it is, an older one is rebuilt; keys of the layout before buckets with no order in the
    buckets record nothing (the key move takes ``ivr orders reindex`` with the service
    stopped)."""
    client = connect(redis_server.url)
    store = SlowStore(make_store(client, prefix, tmp_path))
    await client.set(prefix + "wo:seq", 12)
    old = IndexUpgrade(store, instance="hotline-a", clock=lambda: T0)
    assert (await old.run()).state == "old-layout" and not old.done
    assert await client.get(prefix + VERSION_KEY) is None
    await client.delete(prefix + "wo:seq")
    await old_orders(store.store, 3)
    for stored in (indexes.INDEX_VERSION, indexes.INDEX_VERSION + 1):
        await client.set(prefix + VERSION_KEY, stored)
        upgrade = IndexUpgrade(store, instance="hotline-a", clock=lambda: T0)
        assert (await upgrade.run()).state == "current" and upgrade.done
        assert int(await client.get(prefix + VERSION_KEY)) == stored
    assert store.batches == 0
    await client.set(prefix + VERSION_KEY, indexes.INDEX_VERSION - 1)
    older = IndexUpgrade(store, instance="hotline-a", clock=lambda: T0)
    assert (await older.run()).state == "rebuilt" and store.batches > 0
    assert int(await client.get(prefix + VERSION_KEY)) == indexes.INDEX_VERSION
    await client.aclose()


@on_asyncio
async def test_the_upgrade_on_a_redis_cluster(redis_cluster, prefix, tmp_path):
    """On a 3-master Redis Cluster (buckets spread over the nodes, the version and the lock in
    slots of their own): old orders of every bucket get the new sets, the version is
    recorded and the WOREINDEX event goes straight to ``hotline:events``."""
    from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster

    client = AsyncRedisCluster.from_url(redis_cluster.url, socket_timeout=2,
                                        socket_connect_timeout=2)
    store = make_store(client, prefix, tmp_path)
    assert store.buckets.cluster
    orders = await old_orders(store, 24)
    outcome = await IndexUpgrade(store, instance="hotline-a", clock=lambda: T0, batch=5).run()
    assert outcome.state == "rebuilt" and outcome.orders == 24
    assert await overdue_and_urgent(store) == sorted(
        o.id for o in orders if o.urgency.value == "urgent"
    )
    assert int(await client.get(prefix + VERSION_KEY)) == indexes.INDEX_VERSION
    assert [e["orders"] for e in await kinds(client, prefix)] == ["24"]
    await client.aclose()
