"""The work order store against a real redis-server: atomic idempotent creation, history,
events, and the spool that keeps every order while Redis is away (replayed exactly once).

The store is asyncio code; under the asyncio reactor each test body runs as an asyncio Task
(``on_asyncio``), which is also how the service must call it (redis.asyncio needs a Task).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import socket
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from testbed.redis import connect
from workorders.model import Event, Status, TransitionRefused, utc
from workorders.spool import Spool
from workorders.store import StoreUnavailable, UnknownWorkOrder, WorkOrderStore

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()
# One cipher for the module: stores of one test share their keys, like instances do.
CIPHER = random_field_cipher()
HOSTILE_NAME = 'Kim "${EXTEN}" \\ \n200 result=1\n\u202e김철수 📞'




@pytest.fixture
def spool_dir(tmp_path):
    return tmp_path / "spool"


def first_id(store: WorkOrderStore, number: str, call_id: str) -> str:
    """The id of the first order of the bucket a call from ``number`` lands in: seq 1 * B + b
    (``workorders.buckets``)."""
    bucket = store.buckets.of_new(CIPHER.blind_index(number), call_id)
    return str(store.buckets.count + bucket)


async def events_of(client: aioredis.Redis, prefix: str) -> list[dict[str, str]]:
    return [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in await client.xrange(f"{prefix}events")
    ]


@on_asyncio
async def test_create_writes_the_contract_keys(redis_server, prefix, spool_dir):
    """A created order is a hash at wo:<id>, found by wo:by-call:<call>, with its history
    list, a counter id and a WOCREATE event naming order and call; the caller's strings are
    stored verbatim."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    order = await store.create_for_call(
        "1732790000.17", "+821012345678", HOSTILE_NAME, T0,
        category="fault", urgency="urgent", menu_path=["3", "1"], queue="faults",
    )
    one = first_id(store, "+821012345678", "1732790000.17")  # the caller's bucket's first
    assert order.id == one and order.status is Status.PENDING
    fields = await client.hgetall(store.buckets.order_key(one))
    # Sealed at rest (privacy.fields), and opened verbatim.
    assert CIPHER.open("1732790000.17", "caller_name", fields[b"caller_name"].decode()) == (
        HOSTILE_NAME
    )
    assert fields[b"status"] == b"pending" and fields[b"urgency"] == b"urgent"
    assert await client.get(store.buckets.order_name(one, "wo:by-call:1732790000.17")) == (
        one.encode()
    )
    assert await client.llen(store.buckets.history_key(one)) == 1
    (event,) = await events_of(client, prefix)
    assert (event["kind"], event["order_id"], event["call_id"]) == ("WOCREATE", one, order.call_id)
    assert event["time"] == "2026-11-28T09:00:00.000000Z"
    assert await store.get(one) == order
    assert await store.get_by_call("1732790000.17") == order
    await client.aclose()


@on_asyncio
async def test_create_keeps_every_digit_and_character_it_is_given(redis_server, prefix, spool_dir):
    """The create script gets the order's fields, index scores and event as one JSON
    argument: the scores still keep all their digits (microseconds of an epoch time), and
    values beyond ASCII arrive verbatim in the hash and the event."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    at = T0 + 0.123457  # 1796461200.123457: 16 significant digits
    queue = 'Störungen "故障" \\ 📞'
    order = await store.create_for_call("c-digits", "+821099", "Ann", at, queue=queue,
                                        menu_path=["3", "ü"])
    for name in ("wo:index", "wo:status:pending", "wo:open", "wo:category:other"):
        assert await client.zscore(store.buckets.order_name(order.id, name), order.id) == (
            order.created_at.timestamp()
        ), name
    fields = await client.hgetall(store.buckets.order_key(order.id))
    assert fields[b"queue"].decode() == queue and fields[b"id"].decode() == order.id
    assert json.loads(fields[b"menu_path"]) == ["3", "ü"]
    (event,) = await events_of(client, prefix)
    assert (event["queue"], event["order_id"]) == (queue, order.id)
    assert await store.get(order.id) == order
    await client.aclose()


@on_asyncio
async def test_concurrent_creates_for_one_call_make_one_order(redis_server, prefix, spool_dir):
    """Two hundred concurrent creations for one call, from two store instances (two
    service processes), return one and the same order: one id, one history entry, one
    event, the counter moved once."""
    clients = [connect(redis_server.url), connect(redis_server.url)]
    stores = [
        WorkOrderStore(c, spool_dir / str(i), prefix=prefix, cipher=CIPHER)
        for i, c in enumerate(clients)
    ]
    orders = await asyncio.gather(
        *(
            stores[i % 2].create_for_call("1732790000.99", "+8210", "Lee", T0 + i / 1000)
            for i in range(200)
        )
    )
    one = first_id(stores[0], "+8210", "1732790000.99")
    assert {o.id for o in orders} == {one}
    assert {o.created_at for o in orders} == {orders[0].created_at}
    client = clients[0]
    assert await client.get(stores[0].buckets.order_name(one, "wo:seq")) == b"1"
    assert await client.llen(stores[0].buckets.history_key(one)) == 1
    assert [e["kind"] for e in await events_of(client, prefix)] == ["WOCREATE"]
    for c in clients:
        await c.aclose()


@on_asyncio
async def test_load_beyond_the_connection_pool_is_not_an_outage(redis_server, prefix, spool_dir):
    """Five hundred concurrent creations on one client (redis-py's pool allows 100
    connections) all reach Redis: the store queues them instead of mistaking the full pool
    for Redis being down and spooling."""
    client = aioredis.Redis.from_url(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    orders = await asyncio.gather(
        *(store.create_for_call(f"load-{i}", "+8210", "x", T0) for i in range(500))
    )
    one = int(first_id(store, "+8210", "load-0"))  # one caller: one bucket, ids B apart
    assert sorted(int(o.id) for o in orders) == list(range(one, one + 500 * 16, 16))
    assert not (spool_dir / "current.jsonl").exists()
    await client.aclose()


@on_asyncio
async def test_lifecycle_appends_history_and_events(redis_server, prefix, spool_dir):
    """Each update changes the hash, appends one history entry and one event with the new
    status, agent and actor; a refused transition writes nothing."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    order = await store.create_for_call("c1", "+8210", "Park", T0, queue="billing")
    await store.update(order.id, T0 + 60, Event.ASSIGN, "router", agent="agent101")
    await store.update(order.id, T0 + 90, "start", "agent101")
    with pytest.raises(TransitionRefused, match="in_progress"):
        await store.update(order.id, T0 + 95, Event.CLOSE, "agent101")
    done = await store.update(order.id, T0 + 600, Event.RESOLVE, "agent101", outcome="reset")
    assert done.status is Status.RESOLVED and done.updated_at == utc(T0 + 600)
    assert await store.get(order.id) == done
    history = [json.loads(h) for h in await client.lrange(store.buckets.history_key(order.id),
                                                           0, -1)]
    assert [h["event"] for h in history] == ["create", "assign", "start", "resolve"]
    events = await events_of(client, prefix)
    assert [e["kind"] for e in events] == ["WOCREATE", "WOASSIGN", "WOSTART", "WORESOLVE"]
    assert events[-1]["status"] == "resolved" and events[-1]["agent"] == "agent101"
    assert json.loads(events[-1]["details"])["outcome"] == "reset"
    assert await client.hget(store.buckets.order_key(order.id), "outcome") == b"reset"
    await client.aclose()


@on_asyncio
async def test_cleared_fields_leave_the_hash(redis_server, prefix, spool_dir):
    """A value cleared by an event (the agent on unassign) is removed from the hash, so the
    order read back has no agent."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    order = await store.create_for_call("c2", "+8210", "Choi", T0)
    await store.update(order.id, T0 + 1, "assign", "router", agent="agent104")
    back = await store.update(order.id, T0 + 31, "unassign", "router", reason="no answer")
    assert not await client.hexists(store.buckets.order_key(order.id), "agent")
    assert (await store.get(order.id)) == back and back.agent is None
    await client.aclose()


@on_asyncio
async def test_unknown_orders(redis_server, prefix, spool_dir):
    """Reading a missing order gives None; updating it raises UnknownWorkOrder."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    assert await store.get("404") is None and await store.get_by_call("nope") is None
    with pytest.raises(UnknownWorkOrder):
        await store.update("404", T0, "note", "ops", text="hello")
    await client.aclose()


@on_asyncio
async def test_list_recent_newest_first(redis_server, prefix, spool_dir):
    """list_recent(n) returns the n most recently created orders, newest first."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    for i in range(5):
        await store.create_for_call(f"call-{i}", "+8210", "x", T0 + i)
    assert [o.call_id for o in await store.list_recent(3)] == ["call-4", "call-3", "call-2"]
    assert await store.list_recent(0) == []
    await client.aclose()


@on_asyncio
async def test_redis_down_spool_then_replay_exactly_once(redis_server, prefix, spool_dir):
    """With Redis stopped, a new order and changes to an existing one go to the spool and
    are answered from the local view; after Redis restarts, one replay applies each write
    once, in order (ids, history, events marked replayed), and a second replay applies none.
    The creation Redis acknowledged just before it stopped is spooled again ahead of them (it
    might not have reached Redis's disk) and its replay applies nothing: Redis kept it."""
    client = connect(redis_server.url)
    # A window no slow machine outlasts, so that the creation before is spooled again.
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER, unsynced_window=60.0)
    before = await store.create_for_call("c-before", "+8210", "Han", T0)
    redis_server.stop()
    try:
        assigned = await store.update(before.id, T0 + 10, "assign", "router", agent="agent102")
        assert assigned is not None and assigned.status is Status.ASSIGNED
        spooled = await store.create_for_call("c-down", "+8211", HOSTILE_NAME, T0 + 20)
        assert spooled.id.startswith("L")
        again = await store.create_for_call("c-down", "+8211", HOSTILE_NAME, T0 + 21)
        assert again == spooled
        await store.update(spooled.id, T0 + 30, "assign", "router", agent="agent103")
        assert (await store.get(spooled.id)).agent == "agent103"
        with pytest.raises(TransitionRefused):  # checked against the local view, not spooled
            await store.update(spooled.id, T0 + 31, "close", "agent103")
        assert (await store.get_by_call("c-before")).status is Status.ASSIGNED
        with pytest.raises(StoreUnavailable):
            await store.list_recent(5)
        with pytest.raises(StoreUnavailable):
            await store.replay_spool()
        assert [r["op"] for r in Spool(spool_dir).records()] == [
            "create", "update", "create", "update"]
    finally:
        redis_server.start()

    assert await store.replay_spool() == 3
    assert await store.replay_spool() == 0
    assert not list(spool_dir.iterdir())
    replayed = await store.get(spooled.id)
    assert replayed.id == spooled.id and replayed.caller_name == HOSTILE_NAME
    assert (replayed.status, replayed.agent) == (Status.ASSIGNED, "agent103")
    assert [h.event for h in replayed.history] == ["create", "assign"]
    assert (await store.get(before.id)).agent == "agent102"
    events = await events_of(client, prefix)
    assert [(e["kind"], e.get("replayed")) for e in events] == [
        ("WOCREATE", None), ("WOASSIGN", "1"), ("WOCREATE", "1"), ("WOASSIGN", "1"),
    ]
    assert events[2]["time"] == utc(T0 + 20).isoformat(timespec="microseconds")[:-6] + "Z"
    await client.aclose()


@on_asyncio
async def test_spool_disk_full_while_redis_is_down_holds_the_writes(
    redis_server, prefix, spool_dir, monkeypatch
):
    """Redis down and the spool's disk full: the order is still created (the call goes on)
    and its changes kept in memory, in order, behind what the disk took; once Redis is back
    one replay applies them all once."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    redis_server.stop()
    try:
        first = await store.create_for_call("c-disk", "+8212", "Kim", T0)
        real_append = Spool.append

        def full(self, record):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(Spool, "append", full)
        held = await store.create_for_call("c-full", "+8213", "Lee", T0 + 1)
        await store.update(held.id, T0 + 2, "assign", "router", agent="agent103")
        monkeypatch.setattr(Spool, "append", real_append)  # room again: still held, in order
        await store.update(first.id, T0 + 3, "assign", "router", agent="agent101")
        assert [r["op"] for r in Spool(spool_dir).records()] == ["create"]
    finally:
        redis_server.start()
    assert await store.replay_spool() == 4
    assert await store.replay_spool() == 0
    assert (await store.get_by_call("c-full")).agent == "agent103"
    assert (await store.get_by_call("c-disk")).agent == "agent101"
    await client.aclose()


@on_asyncio
async def test_crash_mid_replay_applies_nothing_twice(redis_server, prefix, spool_dir):
    """A replay that applied the spool but crashed before deleting it (simulated: the spool
    file is put back and replayed again, by a new store instance as after a restart) applies
    nothing a second time: no new order, history entry or event."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    redis_server.stop()
    try:
        order = await store.create_for_call("c-crash", "+8210", "Yoon", T0)
        await store.update(order.id, T0 + 5, "assign", "router", agent="agent101")
        await store.update(order.id, T0 + 6, "note", "agent101", text="called back")
    finally:
        redis_server.start()
    saved = spool_dir.parent / "saved.jsonl"
    shutil.copy(spool_dir / "current.jsonl", saved)
    assert await store.replay_spool() == 3
    snapshot = (
        await client.hgetall(store.buckets.order_key(order.id)),
        await client.lrange(store.buckets.history_key(order.id), 0, -1),
        await client.xlen(f"{prefix}events"),
        await client.get(store.buckets.order_name(order.id, "wo:seq")),
    )

    shutil.copy(saved, spool_dir / "current.jsonl")
    restarted = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    assert await restarted.replay_spool() == 0
    assert snapshot == (
        await client.hgetall(store.buckets.order_key(order.id)),
        await client.lrange(store.buckets.history_key(order.id), 0, -1),
        await client.xlen(f"{prefix}events"),
        await client.get(store.buckets.order_name(order.id, "wo:seq")),
    )
    assert len(snapshot[1]) == 3 and snapshot[2] == 3
    await client.aclose()


@on_asyncio
async def test_next_write_after_restart_replays_first(redis_server, prefix, spool_dir):
    """No explicit replay: the first write after Redis is back replays the spool before
    itself, so an update of an order created while Redis was down finds it."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER, retry_after=5)
    redis_server.stop()
    try:
        order = await store.create_for_call("c-next", "+8210", "Jung", T0)
    finally:
        redis_server.start()
    # Within retry_after of the failure the store does not even try Redis.
    held = await store.update(order.id, T0 + 1, "assign", "router", agent="agent101")
    assert (spool_dir / "current.jsonl").exists() and held.status is Status.ASSIGNED
    started = await store.update(order.id, T0 + 10, "start", "agent101")
    assert started.status is Status.IN_PROGRESS
    assert not list(spool_dir.iterdir())
    stored = await store.get(order.id)
    assert [h.event for h in stored.history] == ["create", "assign", "start"]
    await client.aclose()


@on_asyncio
async def test_lost_create_reply_becomes_an_alias(redis_server, prefix, spool_dir):
    """An instance that could not reach Redis spools an order for a call that Redis already
    has (created by another instance, or a create whose reply was lost): on replay no second
    order appears, the local id becomes an alias of the real one, and the spooled change is
    applied to the real order."""
    client = connect(redis_server.url)
    other = WorkOrderStore(client, spool_dir / "b", prefix=prefix, cipher=CIPHER)
    real = await other.create_for_call("c-twice", "+8210", "Kang", T0)
    dead = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    cut_off = WorkOrderStore(dead, spool_dir / "a", prefix=prefix, cipher=CIPHER)
    local = await cut_off.create_for_call("c-twice", "+8210", "Kang", T0 + 1)
    await cut_off.update(local.id, T0 + 2, "assign", "router", agent="agent102")
    assert local.id != real.id
    await dead.aclose()

    restarted = WorkOrderStore(client, spool_dir / "a", prefix=prefix, cipher=CIPHER)
    assert await restarted.replay_spool() == 1  # the create was a no-op, the assign applied
    through_alias = await restarted.get(local.id)
    assert through_alias.id == real.id and through_alias.agent == "agent102"
    assert await client.get(other.buckets.order_name(real.id, "wo:seq")) == b"1"
    await client.aclose()


@on_asyncio
async def test_refused_replay_is_kept_not_lost(redis_server, prefix, spool_dir):
    """A spooled update that Redis cannot apply (no such order) is set aside in
    wo:spool-rejected with its reason, is not retried, and does not block the spool."""
    dead = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    cut_off = WorkOrderStore(dead, spool_dir, prefix=prefix, cipher=CIPHER)
    assert await cut_off.update("999", T0, "note", "ops", text="hello") is None
    await dead.aclose()

    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    assert await store.replay_spool() == 0
    (rejected,) = await client.lrange(f"{prefix}wo:spool-rejected", 0, -1)
    kept = json.loads(rejected)
    assert kept["record"]["order_id"] == "999" and "999" in kept["reason"]
    assert not list(spool_dir.iterdir())
    await client.aclose()


@on_asyncio
async def test_blackholed_redis_times_out_into_the_spool(prefix, spool_dir):
    """A Redis that accepts connections but never answers counts as unreachable after the
    configured timeout: the order is spooled, not lost and not waited on forever."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        client = connect(f"redis://127.0.0.1:{silent.getsockname()[1]}/0")
        store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER, timeout=0.3)
        order = await store.create_for_call("c-hole", "+8210", "Seo", T0)
        assert order.id.startswith("L")
        assert json.loads((spool_dir / "current.jsonl").read_text())["op"] == "create"
        await client.aclose()


@on_asyncio
async def test_restart_while_redis_is_down_keeps_the_spooled_view(prefix, spool_dir):
    """A service restarted while Redis is still down rebuilds its view from the spool file:
    the order created before the restart is served with its spooled changes, and a repeated
    create for that call returns it instead of a second order."""
    dead = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    first = WorkOrderStore(dead, spool_dir, prefix=prefix, cipher=CIPHER)
    order = await first.create_for_call("c-restart", "+8210", HOSTILE_NAME, T0)
    await first.update(order.id, T0 + 1, "assign", "router", agent="agent101")

    second = WorkOrderStore(dead, spool_dir, prefix=prefix, cipher=CIPHER)
    seen = await second.get(order.id)
    assert (seen.agent, seen.caller_name) == ("agent101", HOSTILE_NAME)
    assert second.spool_pending
    assert (await second.create_for_call("c-restart", "+8210", "x", T0 + 2)).id == order.id
    await dead.aclose()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def _members(client: aioredis.Redis, prefix: str) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {}
    async for key in client.scan_iter(match=f"{prefix}wo:*"):
        # Each bucket's set of a name (workorders.buckets), as one set of the name.
        name = re.sub(r"^wo:\{wo\d+\}:", "wo:", key.decode()[len(prefix):])
        if await client.type(key) == b"zset" and name != "wo:index":
            sets.setdefault(name, set()).update(m.decode() for m in await client.zrange(key, 0, -1))
    return sets


@on_asyncio
async def test_indexes_follow_the_order_through_create_update_and_replay(
    redis_server, prefix, spool_dir
):
    """The secondary indexes (workorders.indexes) are written with the order: on creation by
    the create script, on each update in the same transaction, and for writes spooled while
    Redis was away, at replay; they always agree with the orders' states."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    first = await store.create_for_call("c-1", "+4930", "Ann", T0, category="fault")
    await store.update(first.id, T0 + 60, Event.ASSIGN, "sup", agent="a1")
    await store.update(first.id, T0 + 70, Event.START, "a1")
    second = await store.create_for_call("c-2", "+4931", "Bo", T0 + 5, category="complaint",
                                         urgency="important")
    assert await _members(client, prefix) == {
        "wo:status:in_progress": {first.id}, "wo:status:pending": {second.id},
        "wo:category:fault": {first.id}, "wo:category:complaint": {second.id},
        "wo:urgency:normal": {first.id}, "wo:urgency:important": {second.id},
        "wo:status-urgency:in_progress:normal": {first.id},
        "wo:status-urgency:pending:important": {second.id},
        "wo:agent:a1": {first.id}, "wo:agent-open:a1": {first.id},
        "wo:open": {first.id, second.id},
        "wo:overdue-at": {first.id, second.id},  # their response deadlines (the list's filter)
        "wo:due": {first.id, second.id},  # their SLA warnings to come (escalation)
    }
    # Redis away: the resolution is spooled, then replayed with its index changes.
    dead = connect(f"redis://127.0.0.1:{_closed_port()}/0")
    spooled = await WorkOrderStore(dead, spool_dir, prefix=prefix, cipher=CIPHER).create_for_call(
        "c-3", "+4932", "Cy", T0 + 9
    )
    assert spooled.id.startswith("L")
    await dead.aclose()
    replayer = WorkOrderStore(client, spool_dir, prefix=prefix, cipher=CIPHER)
    assert await replayer.replay_spool() == 1
    await store.update(first.id, T0 + 90, Event.RESOLVE, "a1", outcome="fixed")
    sets = await _members(client, prefix)
    assert sets["wo:open"] == {second.id, spooled.id}
    assert sets["wo:overdue-at"] == {second.id, spooled.id}
    assert sets["wo:status:resolved"] == {first.id}
    assert "wo:agent-open:a1" not in sets  # emptied sorted sets vanish
    assert sets["wo:status:pending"] == {second.id, spooled.id}
    assert sets["wo:status-urgency:resolved:normal"] == {first.id}
    assert sets["wo:due"] == {first.id, second.id, spooled.id}  # first: its feedback duty
    await client.aclose()
