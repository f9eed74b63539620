"""Retention against a real redis-server: the purge deletes every key of an expired order and
nothing else, leaves a deletion record without personal data, keeps held orders and orders
reopened under its feet, and the daily job runs once a day across two instances."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from testbed.redis import connect
from workorders import retention
from workorders.buckets import Buckets
from workorders.model import Event, Status, WorkOrder
from workorders.store import WorkOrderStore


def bucket_key(prefix: str, order_id: str, name: str) -> str:
    """The key ``name`` in the bucket of ``order_id`` (``workorders.buckets``)."""
    return Buckets(prefix=prefix).order_name(order_id, name)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
YEAR = 365 * DAY
CIPHER = random_field_cipher()
# Keys any write touches that are not the order's own: the stream, the counter, op ids.
SHARED = ("events", "wo:seq", "wo:deletions")


def new_store(client: aioredis.Redis, tmp_path: Any, prefix: str) -> WorkOrderStore:
    return WorkOrderStore(client, tmp_path / f"spool-{uuid.uuid4().hex[:6]}", prefix=prefix,
                          cipher=CIPHER)


async def closed_order(store: WorkOrderStore, call_id: str, at: float,
                       number: str = "+4930555010") -> WorkOrder:
    order = await store.create_for_call(call_id, number, "Kim Lee", at, category="inquiry",
                                        queue="billing", transcript="my bill is wrong")
    for step, event, changes in (
        (60, Event.ASSIGN, {"agent": "agent101"}),
        (120, Event.START, {}),
        (600, Event.RESOLVE, {"outcome": "refund"}),
        (700, Event.CLOSE, {}),
    ):
        changed = await store.update(order.id, at + step, event, "agent101", **changes)
        assert changed is not None
        order = changed
    return order


async def state(client: aioredis.Redis, prefix: str) -> dict[str, Any]:
    """Every key of the prefix with its contents, but the stream, the counter, the deletion
    records and the op ids (TTL'd keys every write leaves)."""
    out: dict[str, Any] = {}
    async for raw in client.scan_iter(match=f"{prefix}*"):
        # Each bucket's keys (workorders.buckets) by their names outside the buckets.
        key = re.sub(r"^wo:\{wo\d+\}:", "wo:", raw.decode()[len(prefix):])
        if key in SHARED or key.startswith("wo:op:"):
            continue
        kind = (await client.type(raw)).decode()
        if kind == "string":
            out[key] = await client.get(raw)
        elif kind == "hash":
            out[key] = await client.hgetall(raw)
        elif kind == "list":
            out[key] = await client.lrange(raw, 0, -1)
        elif kind == "set":
            out[key] = await client.smembers(raw)
        elif kind == "zset":
            out[key] = await client.zrange(raw, 0, -1, withscores=True)
        else:
            out[key] = kind
    return out


@on_asyncio
async def test_purge_deletes_every_key_of_an_expired_order_and_nothing_else(
    redis_server, prefix, tmp_path
):
    """After the purge the key space is exactly what it was before the expired order was
    created (the kept order's keys and index memberships untouched); the deletion record
    has the id and dates only, and the WOPURGE event carries no personal data."""
    client = connect(redis_server.url)
    store = new_store(client, tmp_path, prefix)
    kept = await closed_order(store, "call-kept", T0 + 2 * YEAR, number="+4930555999")
    before = await state(client, prefix)
    gone = await closed_order(store, "call-gone", T0)
    retain = bucket_key(prefix, gone.id, "wo:retain")
    assert await client.zscore(retain, gone.id) == gone.retain_until.timestamp()

    now = T0 + 3 * YEAR + 10 * DAY
    report = await retention.purge(store, now, dry_run=False)

    assert [r.id for r in report.deleted] == [gone.id] and report.skipped == ()
    assert await state(client, prefix) == before
    assert await store.get(gone.id) is None and await store.get(kept.id) == kept
    (raw,) = await client.lrange(bucket_key(prefix, gone.id, "wo:deletions"), 0, -1)
    record = json.loads(raw)
    assert record == {
        "id": gone.id, "created": "2026-03-02T09:00:00.000000Z",
        "closed": "2026-03-02T09:11:40.000000Z", "retain_until": "2029-03-02T09:11:40.000000Z",
        "purged_at": "2029-03-11T09:00:00.000000Z", "reason": "retention expired",
    }
    _, last = (await client.xrange(f"{prefix}events"))[-1]
    event = {k.decode(): v.decode() for k, v in last.items()}
    assert event["kind"] == "WOPURGE" and event["order_id"] == gone.id
    for secret in ("4930555010", "Kim Lee", "my bill", "call-gone"):
        assert not any(secret in value for value in (*event.values(), raw.decode()))
    await client.aclose()


@on_asyncio
async def test_dry_run_deletes_nothing_and_says_what_would_go(redis_server, prefix, tmp_path):
    """A dry run names the expired orders and leaves every key as it was, also the stream
    and the deletion list."""
    client = connect(redis_server.url)
    store = new_store(client, tmp_path, prefix)
    gone = await closed_order(store, "call-1", T0)
    await closed_order(store, "call-2", T0 + YEAR)
    before = await state(client, prefix)
    events_before = await client.xlen(f"{prefix}events")

    report = await retention.purge(store, T0 + 3 * YEAR + 10 * DAY, dry_run=True)

    assert [r.id for r in report.deleted] == [gone.id]
    assert report.as_dict()["would_delete"] == 1
    assert await state(client, prefix) == before
    assert await client.xlen(f"{prefix}events") == events_before
    assert await client.exists(*Buckets(prefix=prefix).keys("wo:deletions")) == 0
    await client.aclose()


class Audit:
    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    async def record(self, **entry: Any) -> str:
        self.entries.append(entry)
        return str(len(self.entries))


@on_asyncio
async def test_held_order_is_kept_until_released(redis_server, prefix, tmp_path):
    """A legal hold takes the order out of wo:retain (in the update's atomic step) and the
    purge keeps it; the hold and its release are in the history with who and why, on the
    stream, and in the audit log; once released, the order is purged."""
    client = connect(redis_server.url)
    store = new_store(client, tmp_path, prefix)
    order = await closed_order(store, "call-h", T0)
    audit = Audit()
    held = await retention.legal_hold_command(
        store, order.id, held=True, now=T0 + YEAR, actor="ops1", reason="court case 17/2027",
        audit=audit,
    )
    assert held.legal_hold and held.status is Status.CLOSED
    assert await client.zscore(bucket_key(prefix, order.id, "wo:retain"), order.id) is None
    entry = held.history[-1]
    assert (entry.event, entry.actor, entry.details) == (
        "legal_hold", "ops1", {"legal_hold": True, "reason": "court case 17/2027"})
    assert (await store.get(order.id)) == held

    late = T0 + 10 * YEAR
    report = await retention.purge(store, late, dry_run=False)
    assert report.deleted == () and await store.get(order.id) == held

    released = await retention.legal_hold_command(
        store, order.id, held=False, now=late, actor="ops2", reason="case closed", audit=audit)
    assert not released.legal_hold
    assert [(e["action"], e["user"], e["obj"], e["reason"]) for e in audit.entries] == [
        ("workorder.legal_hold", "ops1", f"workorder:{order.id}", "court case 17/2027"),
        ("workorder.legal_release", "ops2", f"workorder:{order.id}", "case closed"),
    ]
    kinds = [f[b"kind"] for _, f in await client.xrange(f"{prefix}events")]
    assert kinds.count(b"WOLEGAL_HOLD") == 2
    report = await retention.purge(store, late + 1, dry_run=False)
    assert [r.id for r in report.deleted] == [order.id]
    await client.aclose()


@on_asyncio
async def test_order_reopened_between_read_and_delete_is_not_purged(
    redis_server, prefix, tmp_path, monkeypatch
):
    """Another instance reopens the order after the purge read it as expired and before the
    delete: WATCH sees the change, the purge reads it again, finds it open and keeps it
    (no deletion record); the reopen holds."""
    client = connect(redis_server.url)
    store = new_store(client, tmp_path, prefix)
    order = await closed_order(store, "call-r", T0)
    now = T0 + 4 * YEAR
    real_expired = retention.expired
    calls = []

    def reopen_elsewhere() -> WorkOrder | None:
        async def reopen() -> WorkOrder | None:
            other = connect(redis_server.url)
            try:
                return await new_store(other, tmp_path, prefix).update(
                    order.id, now, Event.REOPEN, "agent102", reason="not fixed")
            finally:
                await other.aclose()
        return asyncio.run(reopen())

    def expired_then_reopened(seen: WorkOrder, at: float) -> bool:
        calls.append(seen.status)
        if len(calls) == 1:  # between this read and the MULTI/EXEC
            with ThreadPoolExecutor(1) as pool:
                assert pool.submit(reopen_elsewhere).result() is not None
        return real_expired(seen, at)

    monkeypatch.setattr(retention, "expired", expired_then_reopened)
    record = await store.purge_order(order.id, now)

    assert record is None and calls == [Status.CLOSED, Status.PENDING]
    current = await store.get(order.id)
    assert current is not None and current.status is Status.PENDING
    assert await client.exists(*Buckets(prefix=prefix).keys("wo:deletions")) == 0
    await client.aclose()


@on_asyncio
async def test_daily_job_runs_once_a_day_across_two_instances(redis_server, prefix, tmp_path):
    """Two instances' daily jobs at the same moment: one claims the day and purges, the other
    skips; before the configured hour nobody runs; the next day runs again (once)."""
    clients = [connect(redis_server.url), connect(redis_server.url)]
    stores = [new_store(c, tmp_path, prefix) for c in clients]
    jobs = [retention.DailyPurge(s, c, prefix=prefix, instance=f"i{n}", hour_utc=3)
            for n, (s, c) in enumerate(zip(stores, clients, strict=True))]
    for n in range(5):
        await closed_order(stores[0], f"call-{n}", T0 + n * DAY)
    day = datetime(2029, 3, 5, tzinfo=UTC).timestamp()  # orders 0..2 are past their date

    assert await asyncio.gather(*(j.run_if_due(day + 2 * 3600) for j in jobs)) == [None, None]
    reports = await asyncio.gather(*(j.run_if_due(day + 3 * 3600) for j in jobs))
    ran = [r for r in reports if r is not None]
    assert len(ran) == 1 and len(ran[0].deleted) == 3
    assert await asyncio.gather(*(j.run_if_due(day + 5 * 3600) for j in jobs)) == [None, None]

    later = await asyncio.gather(*(j.run_if_due(day + DAY + 4 * 3600) for j in jobs))
    ran = [r for r in later if r is not None]
    assert len(ran) == 1 and len(ran[0].deleted) == 1
    assert sum([await clients[0].llen(k) for k in Buckets(prefix=prefix).keys("wo:deletions")]) == 4
    for client in clients:
        await client.aclose()
