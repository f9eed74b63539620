"""Group commit of creations through the real store and a real redis-server: a burst of
creations shares round trips yet each call gets its own order, its keys and one event; a
batch cut off by Redis going down, or applied with its replies lost, is spooled caller by
caller and replayed to exactly one order per call; a script Redis lost is loaded again. The
round trip itself (``evalsha``: calls packed by hiredis, sent on one pooled connection) is
pinned against redis-py's pipeline, bytes and replies.

The round trip is reached through the store's ``_creations`` (the group commit): the only way
to stop Redis or lose the replies exactly while a batch is in flight.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from testbed.redis import connect
from workorders.store import WorkOrderStore
from workorders.store.groupcommit import Call, GroupCommit, evalsha, pack_call

T0 = 1_796_461_200.0
CIPHER = random_field_cipher()
BURST = 40


async def burst(store: WorkOrderStore, calls: list[str]) -> list[Any]:
    return await asyncio.gather(*(
        # The caller's number by call: a call's creations land in one bucket.
        store.create_for_call(call, f"+82{int(call.rsplit('-', 1)[1]) % 7:04d}", "Caller",
                              T0 + n / 1000, category="fault", queue="faults")
        for n, call in enumerate(calls)
    ))


async def created_events(client: aioredis.Redis, prefix: str) -> list[str]:
    """The call id of every WOCREATE event, in stream order."""
    return [
        fields[b"call_id"].decode()
        for _, fields in await client.xrange(f"{prefix}events")
        if fields[b"kind"] == b"WOCREATE"
    ]


@on_asyncio
async def test_a_burst_shares_round_trips_and_keeps_one_order_per_call(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """Forty concurrent creations, each call created twice at once: far fewer round trips
    than creations, yet each call has exactly one order (both of its creations get it), its
    by-call key and one WOCREATE event, and the second creation of a call returns that same
    order."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)
    calls = [f"burst-{n}" for n in range(BURST)]
    orders = await burst(store, calls + calls)
    assert store.creation_round_trips < BURST
    first, again = orders[:BURST], orders[BURST:]
    assert [o.id for o in first] == [o.id for o in again]
    assert len({o.id for o in first}) == BURST
    for order in first:
        assert await client.get(store.buckets.order_name(order.id, f"wo:by-call:{order.call_id}")
                                ) == order.id.encode()
        assert await store.get(order.id) == order
    assert sorted(await created_events(client, prefix)) == sorted(calls)
    assert not store.spool_pending
    await client.aclose()


async def _redis_gone_with(store: WorkOrderStore, fail: Any) -> None:
    """Make the store's next batch of more than one creation go through ``fail`` (which gets
    the calls and the real send) instead of straight to Redis."""
    assert store._creations is not None
    real = store._creations._send

    async def send(calls: list[Call]) -> list[Any]:
        if len(calls) > 1:
            return list(await fail(calls, real))
        return await real(calls)

    store._creations = GroupCommit(send)


@on_asyncio
async def test_redis_down_mid_batch_spools_each_creation_then_replays_each_once(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """Redis stops while a batch is on its way: every creation of the batch (its leader's
    and those of the callers that joined it) is spooled with a local id, none is lost; once
    Redis is back, the replay makes exactly one order and one event per call."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)

    async def stop_then_send(calls: list[Call], real: Any) -> list[Any]:
        redis_server.stop()
        return list(await real(calls))

    await _redis_gone_with(store, stop_then_send)
    calls = [f"down-{n}" for n in range(BURST)]
    try:
        orders = await burst(store, calls)
        spooled = [o for o in orders if o.id.startswith("L")]
        # All but the lone first one (sent before the stop) and any sent alone after it.
        assert len(spooled) >= BURST // 2
        assert store.spool_pending
    finally:
        redis_server.start()
    await store.replay_spool()
    assert not store.spool_pending
    assert sorted(await created_events(client, prefix)) == sorted(calls)
    for order in orders:
        assert getattr(await store.get(order.id), "call_id", None) == order.call_id
    assert len({getattr(await store.get_by_call(call), "id", None) for call in calls}) == BURST
    await client.aclose()


@on_asyncio
async def test_a_batch_applied_with_its_replies_lost_replays_to_the_same_orders(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """Redis applied a batch but the connection broke before the replies came back: each
    caller spools its creation; the replay finds each call's order (by its operation id)
    instead of a second one, the local ids become aliases of the real ones, one event per
    call."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)

    async def send_then_lose(calls: list[Call], real: Any) -> list[Any]:
        await real(calls)
        raise RedisConnectionError("connection reset before the replies")

    await _redis_gone_with(store, send_then_lose)
    calls = [f"lost-{n}" for n in range(BURST)]
    orders = await burst(store, calls)
    spooled = [o for o in orders if o.id.startswith("L")]
    assert len(spooled) >= BURST // 2  # those of the batches that lost their replies
    # Those of the lost batches were applied already, those queued behind them not yet.
    assert await store.replay_spool() < len(spooled)
    assert await store.replay_spool() == 0
    assert sorted(await created_events(client, prefix)) == sorted(calls)
    found = [await store.get(order.id) for order in spooled]  # through the alias if any
    assert [o.call_id if o else None for o in found] == [o.call_id for o in spooled]
    assert any(o and not o.id.startswith("L") for o in found)  # aliases of the applied ones
    await client.aclose()


@on_asyncio
async def test_a_script_redis_lost_is_loaded_again_for_a_batch(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """After ``SCRIPT FLUSH`` (as after a restart without the script), a batch of creations
    gets the create script loaded again and every creation of it lands, none spooled."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)
    await store.create_for_call("before-flush", "+820001", "Moon", T0)
    await client.script_flush()
    calls = [f"flushed-{n}" for n in range(BURST)]
    orders = await burst(store, calls)
    assert not any(o.id.startswith("L") for o in orders) and not store.spool_pending
    assert sorted(await created_events(client, prefix)) == sorted(["before-flush", *calls])
    await client.aclose()


async def _create_calls(store: WorkOrderStore, count: int) -> list[Call]:
    """The create-script calls of ``count`` new orders, as the store builds them."""
    calls: list[Call] = []

    async def capture(batch: list[Call]) -> list[Any]:
        calls.extend(batch)
        return [[b"1", 1] for _ in batch]

    real, store._creations = store._creations, GroupCommit(capture)
    await burst(store, [f"packed-{n}" for n in range(count)])
    store._creations = real
    return calls


@on_asyncio
async def test_a_create_call_is_packed_to_the_bytes_redis_py_packs(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """The wire path's shortcut: hiredis packs a create call, keys, text, numbers and
    non-ASCII text alike, to exactly the bytes redis-py's own packing gives the same
    ``EVALSHA``."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)
    sha = store._create_script.sha
    calls = await _create_calls(store, 5)
    calls.append((["k:ü"], ["Zoë", 7, 1_796_461_200.123456, 0.1, 1e22, b"\x00raw"]))
    connection = client.connection_pool.make_connection()
    for keys, args in calls:
        general = b"".join(connection.pack_command("EVALSHA", sha, len(keys), *keys, *args))
        assert pack_call(sha, (keys, args)) == general
    await client.aclose()


@on_asyncio
async def test_evalsha_answers_what_the_pipeline_answers(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """The same calls through ``evalsha`` and through a redis-py pipeline
    (``execute(raise_on_error=False)``) get the same replies in the same order: an order
    created, the same call again found, a call Redis refuses its own ``ResponseError``
    (NOSCRIPT included) while the calls around it still apply."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)
    await client.script_load(store._create_script.script)
    sha = store._create_script.sha
    first, second = await _create_calls(store, 2)
    refused: Call = ([prefix + "x"], [])  # the script reads ARGV it lacks: a script error
    fast = await evalsha(client, sha, [first, refused, first])
    fast.append((await evalsha(client, "0" * 40, [first]))[0])
    async with client.pipeline(transaction=False) as pipe:
        for keys, args in (second, refused, second):
            pipe.evalsha(sha, len(keys), *keys, *args)
        pipe.evalsha("0" * 40, len(first[0]), *first[0], *first[1])
        general = await pipe.execute(raise_on_error=False)
    assert [type(r) for r in fast] == [type(r) for r in general]
    assert isinstance(fast[1], ResponseError) and isinstance(fast[3], NoScriptError)
    assert [fast[0][1], fast[2][1]] == [general[0][1], general[2][1]] == [1, 0]
    assert fast[2][0] == fast[0][0]  # the same call again: the order it created
    await client.aclose()


@on_asyncio
async def test_evalsha_follows_the_clients_retry_policy_on_a_dropped_connection(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """A pooled connection the server closed (a restart, an idle timeout): as with a
    pipeline, a client whose retry policy allows it reconnects and sends the batch again
    (the creations land), and one without retries raises the connection error (the store
    then spools)."""
    patient = aioredis.Redis.from_url(redis_server.url, retry=Retry(NoBackoff(), 1),
                                      socket_timeout=2)
    store = WorkOrderStore(patient, tmp_path, prefix=prefix, cipher=CIPHER)
    await patient.script_load(store._create_script.script)
    sha = store._create_script.sha
    calls = await _create_calls(store, 4)
    assert [r[1] for r in await evalsha(patient, sha, calls[:1])] == [1]
    await patient.client_kill_filter(_type="normal", skipme=False)
    assert [r[1] for r in await evalsha(patient, sha, calls[1:3])] == [1, 1]
    await patient.aclose()
    hasty = connect(redis_server.url)  # the testbed's client: no retries
    assert [r[1] for r in await evalsha(hasty, sha, calls[:1])] == [0]
    await hasty.client_kill_filter(_type="normal", skipme=False)
    with pytest.raises(RedisConnectionError):
        await evalsha(hasty, sha, calls[3:])
    assert [r[1] for r in await evalsha(hasty, sha, calls[3:])] == [1]  # reconnected
    await hasty.aclose()
