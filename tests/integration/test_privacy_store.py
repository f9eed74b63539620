"""Personal data at rest against a real redis-server: data keys wrapped in Redis, work orders
whose number, name, transcript and notes never reach Redis, the spool file or the events
stream in plaintext, the blind index for repeat callers, and a master key rotation."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.cli import check, rotate
from privacy.datakeys import DataKeyError, DataKeys
from privacy.envelope import new_key
from privacy.fields import FieldCipher, SealedFieldError
from privacy.keys import ENV_KEY, ENV_PREVIOUS, KeyRing
from testbed.redis import connect
from workorders.migrate import move_into_buckets, seal_plaintext_orders
from workorders.store import WorkOrderStore

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=UTC).timestamp()
NUMBER, NAME = "+821012345678", "Kim Chul-soo"
TRANSCRIPT, NOTE = "my internet is down since monday", "promised a technician visit"
SECRETS = (NUMBER, "12345678", NAME, "Chul-soo", "internet is down", "technician")


def ring(*keys: tuple[str, bytes]) -> KeyRing:
    (first, key), *older = keys
    env = {ENV_KEY: f"{first}:{base64.b64encode(key).decode()}"}
    if older:
        env[ENV_PREVIOUS] = ",".join(f"{v}:{base64.b64encode(k).decode()}" for v, k in older)
    return KeyRing.load(environ=env)


async def raw_dump(client: aioredis.Redis, prefix: str) -> bytes:
    """Every byte this test's key space holds in Redis."""
    out = []
    async for key in client.scan_iter(match=prefix + "*"):
        kind = (await client.type(key)).decode()
        if kind == "hash":
            out.append(repr(await client.hgetall(key)))
        elif kind == "list":
            out.append(repr(await client.lrange(key, 0, -1)))
        elif kind == "string":
            out.append(repr(await client.get(key)))
        elif kind == "set":
            out.append(repr(await client.smembers(key)))
        elif kind == "stream":
            out.append(repr(await client.xrange(key)))
        elif kind == "zset":
            out.append(repr(await client.zrange(key, 0, -1)))
    return "\n".join(out).encode()


def assert_no_secret(data: bytes, where: str) -> None:
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret!r} in plaintext in {where}"
        assert json.dumps(secret).encode()[1:-1] not in data, f"{secret!r} escaped in {where}"


async def store_with(client: aioredis.Redis, keys: KeyRing, spool: Path, prefix: str,
                     ) -> WorkOrderStore:
    cipher = await FieldCipher.load(DataKeys(client, keys, prefix=prefix))
    return WorkOrderStore(client, spool, prefix=prefix, cipher=cipher)


async def an_order_with_a_note(store: WorkOrderStore, call_id: str) -> str:
    order = await store.create_for_call(call_id, NUMBER, NAME, T0, transcript=TRANSCRIPT)
    await store.update(order.id, T0 + 1, "update", "agent101", transcript=TRANSCRIPT + "!")
    await store.update(order.id, T0 + 2, "note", "agent101", text=NOTE)
    return order.id


@on_asyncio
async def test_data_keys_are_created_once_across_instances(redis_server, prefix):
    """Forty concurrent first uses from two instances make one data key: every caller gets
    the same bytes, and Redis holds it only wrapped (the key's bytes are not in it)."""
    keys = ring(("1", new_key()))
    clients = [connect(redis_server.url) for _ in range(2)]
    instances = [DataKeys(c, keys, prefix=prefix) for c in clients]
    got = await asyncio.gather(*(instances[i % 2].get("workorders-pii") for i in range(40)))
    assert len(set(got)) == 1 and len(got[0]) == 32
    stored = await clients[0].get(f"{prefix}keys:workorders-pii")
    record = json.loads(stored)
    assert record["version"] == 1 and record["master"] == "1"
    assert got[0] not in base64.b64decode(record["wrapped"]) and got[0] not in stored
    for c in clients:
        await c.aclose()


@on_asyncio
async def test_a_wrong_master_key_is_a_clear_error(redis_server, prefix):
    """Data keys wrapped by one master key do not open with another under the same version:
    ``DataKeyError`` names the data key, its Redis key and the master key's source."""
    client = connect(redis_server.url)
    await DataKeys(client, ring(("1", new_key())), prefix=prefix).get("workorders-pii")
    with pytest.raises(DataKeyError) as caught:
        await DataKeys(client, ring(("1", new_key())), prefix=prefix).get("workorders-pii")
    message = str(caught.value)
    assert "data key workorders-pii" in message and f"{prefix}keys:workorders-pii" in message
    assert "HOTLINE_MASTER_KEY" in message
    await client.aclose()


@on_asyncio
async def test_orders_hold_no_plaintext_in_redis_or_events_and_read_back(
    redis_server, prefix, tmp_path
):
    """Number, name, transcript and a note are nowhere in Redis in plaintext (hash, history,
    events, indexes), and every read gives the order exactly as written."""
    client = connect(redis_server.url)
    keys = ring(("1", new_key()))
    store = await store_with(client, keys, tmp_path / "spool", prefix)
    order_id = await an_order_with_a_note(store, "call-plain")
    assert_no_secret(await raw_dump(client, prefix), "Redis")
    events = [f for _, f in await client.xrange(f"{prefix}events")]
    assert [e[b"kind"] for e in events] == [b"WOCREATE", b"WOUPDATE", b"WONOTE"]
    fresh = await store_with(client, keys, tmp_path / "spool2", prefix)
    order = await fresh.get(order_id)
    assert order is not None
    assert (order.caller_number, order.caller_name) == (NUMBER, NAME)
    assert order.transcript == TRANSCRIPT + "!"
    assert order.history[0].details["transcript"] == TRANSCRIPT
    assert order.history[-1].details["text"] == NOTE
    assert order.to_dict() == (await store.get(order_id)).to_dict()
    await client.aclose()


@on_asyncio
async def test_the_spool_file_holds_no_plaintext(redis_server, prefix, tmp_path):
    """With Redis unreachable, the spooled creation and note are sealed in the spool file;
    replayed, Redis gets them sealed and reads give the plaintext."""
    keys = ring(("1", new_key()))
    client = connect(redis_server.url)
    cipher = await FieldCipher.load(DataKeys(client, keys, prefix=prefix))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = connect(f"redis://127.0.0.1:{port}/0")
    spool = tmp_path / "spool"
    cut_off = WorkOrderStore(dead, spool, prefix=prefix, cipher=cipher)
    order = await cut_off.create_for_call("call-spool", NUMBER, NAME, T0, transcript=TRANSCRIPT)
    await cut_off.update(order.id, T0 + 1, "note", "agent101", text=NOTE)
    await dead.aclose()
    assert_no_secret(b"".join(p.read_bytes() for p in spool.iterdir()), "the spool file")
    store = WorkOrderStore(client, spool, prefix=prefix, cipher=cipher)
    assert await store.replay_spool() == 2
    assert_no_secret(await raw_dump(client, prefix), "Redis after replay")
    replayed = await store.get(order.id)
    assert replayed is not None and replayed.caller_name == NAME
    assert replayed.history[-1].details["text"] == NOTE
    await client.aclose()


@on_asyncio
async def test_a_value_moved_to_another_order_does_not_open(redis_server, prefix, tmp_path):
    """Copying one order's sealed name into another order's hash makes that order fail to
    read (``SealedFieldError``), instead of showing the other caller's name."""
    client = connect(redis_server.url)
    store = await store_with(client, ring(("1", new_key())), tmp_path / "spool", prefix)
    first = await store.create_for_call("call-a", NUMBER, NAME, T0)
    second = await store.create_for_call("call-b", "+15550100", "Lee", T0)
    sealed = await client.hget(store.buckets.order_key(first.id), "caller_name")
    await client.hset(store.buckets.order_key(second.id), "caller_name", sealed)
    with pytest.raises(SealedFieldError, match="caller_name of call-b"):
        await store.get(second.id)
    await client.aclose()


@on_asyncio
async def test_rotation_rewraps_data_keys_and_keeps_every_order_readable(
    redis_server, prefix, tmp_path
):
    """``ivr keys rotate`` with a new master key first re-wraps each data key (counted),
    touches no order, is a no-op the second time; afterwards the new key alone opens every
    order, and ``ivr keys check`` says so."""
    old, new = new_key(), new_key()
    client = connect(redis_server.url)
    store = await store_with(client, ring(("1", old)), tmp_path / "spool", prefix)
    ids = [await an_order_with_a_note(store, f"call-r{i}") for i in range(3)]
    before = {i: await client.hgetall(store.buckets.order_key(i)) for i in ids}
    both = ring(("2", new), ("1", old))
    out = tmp_path / "out.txt"
    with out.open("w") as text:
        assert await rotate(client, both, prefix, text) == 0
        assert await rotate(client, both, prefix, text) == 0
        assert await check(client, ring(("2", new)), prefix, text) == 0
        assert await check(client, ring(("1", old)), prefix, text) == 1
    lines = out.read_text().splitlines()
    assert "master key 2: 2 data key(s) re-wrapped, 0 already current, 0 failed" in lines
    assert "master key 2: 0 data key(s) re-wrapped, 2 already current, 0 failed" in lines
    assert any(line.startswith("2 data key(s) open, 0 failed") for line in lines)
    assert {i: await client.hgetall(store.buckets.order_key(i)) for i in ids} == before
    rotated = await store_with(client, ring(("2", new)), tmp_path / "spool2", prefix)
    for order_id in ids:
        order = await rotated.get(order_id)
        assert order is not None and order.history[-1].details["text"] == NOTE
    await client.aclose()


@on_asyncio
async def test_by_caller_finds_repeat_contacts(redis_server, prefix, tmp_path):
    """Orders from one number, however it was spelled, are found together, oldest first;
    another number and an anonymous caller are not among them."""
    client = connect(redis_server.url)
    store = await store_with(client, ring(("1", new_key())), tmp_path / "spool", prefix)
    a = await store.create_for_call("call-1", NUMBER, NAME, T0)
    await store.create_for_call("call-2", "+15550100", "Lee", T0 + 1)
    b = await store.create_for_call("call-3", "+82 10-1234-5678", NAME, T0 + 2)
    await store.create_for_call("call-4", "anonymous", "", T0 + 3)
    assert [o.id for o in await store.by_caller("+821012345678")] == [a.id, b.id]
    assert await store.by_caller("anonymous") == []
    assert await store.by_caller("+821099999999") == []
    await client.aclose()


@on_asyncio
async def test_plaintext_orders_still_read_and_are_sealed_by_the_migration(
    redis_server, prefix, tmp_path
):
    """An order written before encryption (plaintext hash and history) reads as it is; the
    migration seals it (and puts it in the caller index), once."""
    client = connect(redis_server.url)
    keys = ring(("1", new_key()))
    store = await store_with(client, keys, tmp_path / "spool", prefix)
    await client.hset(f"{prefix}wo:old", mapping={
        "id": "old", "call_id": "call-old", "caller_number": NUMBER, "caller_name": NAME,
        "created_at": "2025-01-01T00:00:00.000000Z", "updated_at": "2025-01-01T00:00:00.000000Z",
        "assign_by": "2025-01-01T02:00:00.000000Z", "respond_by": "2025-01-03T00:00:00.000000Z",
        "retain_until": "2028-01-01T00:00:00.000000Z", "status": "pending",
        "category": "fault", "urgency": "normal", "menu_path": "[]", "transcript": TRANSCRIPT,
    })
    await client.rpush(f"{prefix}wo:old:history", json.dumps({
        "time": "2025-01-01T00:00:00.000000Z", "event": "note", "actor": "a",
        "details": {"text": NOTE},
    }))
    await client.zadd(f"{prefix}wo:index", {"old": 1735689600})
    # Written in the layout before buckets: moved into them first (ivr orders reindex).
    await move_into_buckets(client, store.buckets)
    legacy = await store.get("old")
    assert legacy is not None and (legacy.caller_name, legacy.transcript) == (NAME, TRANSCRIPT)
    cipher = await FieldCipher.load(DataKeys(client, keys, prefix=prefix))
    assert await seal_plaintext_orders(client, cipher, prefix=prefix) == (1, 0)
    assert await seal_plaintext_orders(client, cipher, prefix=prefix) == (0, 1)
    assert_no_secret(await raw_dump(client, prefix), "Redis after the migration")
    migrated = await store_with(client, keys, tmp_path / "spool2", prefix)
    assert (await migrated.get("old")).to_dict() == legacy.to_dict()
    assert [o.id for o in await migrated.by_caller(NUMBER)] == ["old"]
    await client.aclose()


def unreachable_redis() -> aioredis.Redis:
    """A client of a port nobody listens on: Redis away."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return aioredis.Redis.from_url(f"redis://127.0.0.1:{port}", socket_connect_timeout=0.5)


@on_asyncio
async def test_data_keys_read_once_open_again_while_redis_is_away(redis_server, prefix,
                                                                  tmp_path):
    """A service that read its data keys with Redis up keeps their wrapped records (mode 0600,
    never the key itself); started again while Redis is away, it gets the same keys from that
    copy, so it can seal what it spools."""
    keys = ring(("1", new_key()))
    local = tmp_path / "keys"
    client = connect(redis_server.url)
    first = DataKeys(client, keys, prefix=prefix, local_dir=local)
    wanted = {name: await first.get(name) for name in ("workorders-pii", "blind-index")}
    for name, key in wanted.items():
        path = local / f"{name}.json"
        assert path.stat().st_mode & 0o777 == 0o600
        assert key not in path.read_bytes()
        assert path.read_bytes() == await client.get(f"{prefix}keys:{name}")
    await client.aclose()

    away = unreachable_redis()
    again = DataKeys(away, keys, prefix=prefix, local_dir=local)
    assert {name: await again.get(name) for name in wanted} == wanted
    await away.aclose()


@on_asyncio
async def test_a_data_key_never_read_here_is_not_made_while_redis_is_away(prefix, tmp_path):
    """Redis away and no copy kept: a clear error (making the key here could give two
    instances two keys), naming the key and how to get past it."""
    away = unreachable_redis()
    with pytest.raises(DataKeyError) as caught:
        await DataKeys(away, ring(("1", new_key())), prefix=prefix,
                       local_dir=tmp_path / "keys").get("workorders-pii")
    message = str(caught.value)
    assert "data key workorders-pii: Redis unreachable" in message
    assert "start once with Redis up" in message
    assert not (tmp_path / "keys" / "workorders-pii.json").exists()
    await away.aclose()
