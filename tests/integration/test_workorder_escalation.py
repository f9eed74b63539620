"""The escalation watch against a real redis-server: two instances sweeping at once fire
each warning and breach exactly once (event, supervisor's list, urgency raise), the
``wo:due`` schedule follows the store's writes, and resolved work is left alone.

Each test body runs as an asyncio Task on the reactor's loop (``on_asyncio``), as the
service runs the watch.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders.buckets import Buckets
from workorders.clocks import ClockKind, ClockPolicy
from workorders.escalation import EscalationPolicy, Level
from workorders.model import Event, Urgency
from workorders.store import WorkOrderStore
from workorders.watch import EscalationWatch, escalation_list


def bucket_key(prefix: str, order_id: str, name: str) -> str:
    """The key ``name`` in the bucket of ``order_id`` (``workorders.buckets``)."""
    return Buckets(prefix=prefix).order_name(order_id, name)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
H = 3600.0
CIPHER = random_field_cipher()  # shared by the instances, as their keys are
POLICY = EscalationPolicy(raise_urgency_on_breach={ClockKind.RESPONSE: "step"})


class Instance:
    """One ``ivr serve``'s work-order store and escalation watch, with its own connection."""

    def __init__(self, url: str, prefix: str, spool_dir) -> None:
        self.redis = aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
        self.store = WorkOrderStore(self.redis, spool_dir, prefix=prefix, cipher=CIPHER)
        self.fired: list = []
        self.watch = EscalationWatch(
            self.redis, self.store, clocks=ClockPolicy(), policy=POLICY,
            list_retention_s=7 * 86400, on_fired=self.fired.append,
        )


@pytest.fixture
def two(redis_server, prefix, tmp_path):
    """Two instances on one Redis."""
    return (Instance(redis_server.url, prefix, tmp_path / "spool1"),
            Instance(redis_server.url, prefix, tmp_path / "spool2"))


async def escalation_events(client, prefix: str) -> list[dict[str, str]]:
    entries = [
        {k.decode(): v.decode() for k, v in fields.items()}
        for _, fields in await client.xrange(f"{prefix}events")
    ]
    return [e for e in entries if e["kind"] in ("WOWARNING", "WOBREACH")]


async def new_order(instance: Instance, n: int, **fields):
    return await instance.store.create_for_call(f"call-{n}", "+4930555", "Kim", T0, **fields)


async def both_sweep(two, now: float) -> list:
    first, second = await asyncio.gather(two[0].watch.sweep(now), two[1].watch.sweep(now))
    return [*first, *second]


@on_asyncio
async def test_two_instances_fire_each_warning_exactly_once(two, prefix):
    """Twenty orders, two watches sweeping at the same moment: each order's assignment
    warning is fired once in all (one event, one list entry, one count), then each breach
    once; sweeping again fires nothing."""
    a, b = two
    orders = [await new_order(a if n % 2 else b, n) for n in range(20)]
    fired = await both_sweep(two, T0 + 1.6 * H)
    assert sorted(e.order_id for e in fired) == sorted(o.id for o in orders)
    assert {(e.clock, e.level) for e in fired} == {(ClockKind.ASSIGNMENT, Level.WARNING)}
    assert len(a.fired) + len(b.fired) == 20
    events = await escalation_events(a.redis, prefix)
    assert len(events) == 20 and {e["kind"] for e in events} == {"WOWARNING"}
    event = next(e for e in events if e["order_id"] == orders[0].id)
    assert event["clock"] == "assignment" and event["level"] == "warning"
    assert event["due"] == "2026-03-02T11:00:00.000000Z"
    assert event["at"] == "2026-03-02T10:36:00.000000Z"
    assert (event["percent"], event["target_s"], event["actor"]) == ("80", "7200.0", "sla")
    assert event["call_id"] == "call-0" and event["status"] == "pending"
    assert "+4930555" not in str(events) and "Kim" not in str(events)  # no personal data
    assert await both_sweep(two, T0 + 1.7 * H) == []

    breaches = await both_sweep(two, T0 + 2 * H)
    assert len(breaches) == 20 and {e.level for e in breaches} == {Level.BREACH}
    assert len(await escalation_events(a.redis, prefix)) == 40
    assert len(await escalation_list(a.redis, prefix=prefix, limit=1000)) == 40


@on_asyncio
async def test_a_breach_raises_the_urgency_once(two, prefix):
    """A response breach (configured to raise the urgency) found by two instances at once:
    one breach event, one ``update`` by ``sla`` in the history raising normal to important,
    and the order then scheduled for its new resolution warning."""
    a, _ = two
    order = await new_order(a, 1)
    await a.store.update(order.id, T0 + 600, Event.ASSIGN, "supervisor", agent="agent101")
    fired = await both_sweep(two, T0 + 48 * H + 1)
    assert [(e.clock, e.level) for e in fired] == [(ClockKind.RESPONSE, Level.BREACH)]
    raised = await a.store.get(order.id)
    assert raised.urgency is Urgency.IMPORTANT
    updates = [h for h in raised.history if h.event == "update"]
    assert [(h.actor, h.details["urgency"]) for h in updates] == [("sla", "important")]
    assert [e["kind"] for e in await escalation_events(a.redis, prefix)] == ["WOBREACH"]
    # important: resolution due 72 h after creation, its warning at 57.6 h.
    assert await a.redis.zscore(bucket_key(prefix, order.id, "wo:due"), order.id) == T0 + 207_360
    assert await both_sweep(two, T0 + 48 * H + 2) == []
    assert (await a.store.get(order.id)).urgency is Urgency.IMPORTANT


@on_asyncio
async def test_the_supervisors_list_names_order_clock_level_due_and_since(two, prefix):
    """Every fired escalation is on ``wo:escalations``, newest first, with the order, the
    clock, the level, the due time and when it fired; ``open_only`` leaves out resolved
    orders."""
    a, _ = two
    first = await new_order(a, 1)
    second = await new_order(a, 2, urgency="urgent")
    await a.watch.sweep(T0 + 0.8 * H)  # the urgent response warning
    await a.watch.sweep(T0 + 1.6 * H)  # both assignment warnings, the urgent response breach
    listed = await escalation_list(a.redis, prefix=prefix)
    assert {(e.order_id, e.clock.value, e.level.value) for e in listed[:3]} == {
        (first.id, "assignment", "warning"), (second.id, "assignment", "warning"),
        (second.id, "response", "breach")}
    assert {e.since for e in listed[:3]} == {datetime(2026, 3, 2, 10, 36, tzinfo=UTC)}
    oldest = listed[-1]
    assert (oldest.order_id, oldest.clock, oldest.level) == (
        second.id, ClockKind.RESPONSE, Level.WARNING)
    assert oldest.due == datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
    assert oldest.since == datetime(2026, 3, 2, 9, 48, tzinfo=UTC)
    assert oldest.to_dict()["since"] == "2026-03-02T09:48:00.000000Z"
    assert len(listed) == 4
    for event in (Event.ASSIGN, Event.START, Event.RESOLVE):
        await a.store.update(second.id, T0 + 2 * H, event, "agent101",
                             **({"agent": "agent101"} if event is Event.ASSIGN else {}))
    still_open = await escalation_list(a.redis, prefix=prefix, open_only=True)
    assert [e.order_id for e in still_open] == [first.id]
    assert len(await escalation_list(a.redis, prefix=prefix, limit=2)) == 2


@on_asyncio
async def test_an_order_resolved_before_its_warning_gets_none(two, prefix):
    """Assigned, resolved and the customer reached before any warning was due: the order
    leaves ``wo:due`` and no sweep ever fires anything for it."""
    a, _ = two
    order = await new_order(a, 1)
    assert await a.redis.zscore(bucket_key(prefix, order.id, "wo:due"), order.id) == T0 + 1.6 * H
    await a.store.update(order.id, T0 + 600, Event.ASSIGN, "sup", agent="agent101")
    await a.store.update(order.id, T0 + 700, Event.START, "agent101")
    await a.store.update(order.id, T0 + H, Event.RESOLVE, "agent101", outcome="fixed")
    await a.store.update(order.id, T0 + 2 * H, Event.CONTACT, "agent101",
                         channel="phone", reached=True)
    assert await a.redis.zscore(bucket_key(prefix, order.id, "wo:due"), order.id) is None
    for now in (T0 + 2 * H, T0 + 50 * H, T0 + 200 * H):
        assert await a.watch.sweep(now) == ()
    assert await escalation_events(a.redis, prefix) == []
    assert await escalation_list(a.redis, prefix=prefix) == []


@on_asyncio
async def test_the_schedule_follows_the_watch_and_the_store(two, prefix):
    """After a warning the order is due at its breach; a note leaves that alone, a hold
    takes the paused clocks' warnings off, and a resume brings new ones (new due times)."""
    a, _ = two
    order = await new_order(a, 1, urgency="urgent")
    await a.store.update(order.id, T0 + 60, Event.ASSIGN, "sup", agent="agent101")
    await a.store.update(order.id, T0 + 120, Event.START, "agent101")
    due = bucket_key(prefix, order.id, "wo:due")
    assert await a.redis.zscore(due, order.id) == T0 + 0.8 * H
    await a.watch.sweep(T0 + 0.8 * H)
    assert await a.redis.zscore(due, order.id) == T0 + H  # the response breach
    await a.store.update(order.id, T0 + 0.85 * H, Event.NOTE, "agent101", text="on it")
    assert await a.redis.zscore(due, order.id) == T0 + H
    await a.store.update(order.id, T0 + 0.9 * H, Event.HOLD, "agent101",
                         waiting_on="customer", reason="meter reading")
    assert await a.redis.zscore(due, order.id) is None  # response, resolution paused
    await a.store.update(order.id, T0 + 2 * H, Event.RESUME, "agent101")
    assert await a.redis.zscore(due, order.id) == T0 + 2 * H  # past 80 %: warned at once
    (warning,) = await a.watch.sweep(T0 + 2 * H)
    assert (warning.clock, warning.level) == (ClockKind.RESPONSE, Level.WARNING)
    assert warning.due == datetime(2026, 3, 2, 11, 6, tzinfo=UTC)  # 0.1 h left from 11:00
    recorded = (await a.store.get(order.id)).escalations
    assert recorded == ("response:warning:2026-03-02T10:00:00.000000Z",
                        "response:warning:2026-03-02T11:06:00.000000Z")


@on_asyncio
async def test_an_order_that_is_gone_leaves_the_schedule(two, prefix):
    """An id in ``wo:due`` without its order (purged) is dropped by the sweep."""
    a, _ = two
    await a.redis.zadd(bucket_key(prefix, "404", "wo:due"), {"404": T0})
    assert await a.watch.sweep(T0 + H) == ()
    assert await a.redis.zscore(bucket_key(prefix, "404", "wo:due"), "404") is None


@on_asyncio
async def test_list_entries_older_than_the_retention_leave_the_list(two, prefix):
    """The list keeps ``list_retention_days``: a week later, the old entries are gone when
    the next escalation is listed."""
    a, _ = two
    await new_order(a, 1)
    await a.watch.sweep(T0 + 1.6 * H)
    assert len(await escalation_list(a.redis, prefix=prefix)) == 1
    await a.store.create_for_call("call-2", "+4930555", "Kim", T0 + 8 * 86400)
    await a.watch.sweep(T0 + 8 * 86400 + 1.6 * H)
    listed = await escalation_list(a.redis, prefix=prefix)
    assert len(listed) > 1  # the new order's warning, the first one's breaches since
    assert {e.since for e in listed} == {datetime.fromtimestamp(T0 + 8 * 86400 + 1.6 * H, UTC)}


@on_asyncio
async def test_a_backlog_is_worked_off_in_batches(redis_server, prefix, tmp_path):
    """After an outage many orders are due at once: one sweep reads them in batches (here
    of 4, at most 2 batches), the next sweep goes on where it stopped."""
    a = Instance(redis_server.url, prefix, tmp_path / "spool")
    a.watch = EscalationWatch(a.redis, a.store, clocks=ClockPolicy(), policy=POLICY,
                              batch=4, max_batches=2)
    for n in range(10):
        await new_order(a, n)
    assert len(await a.watch.sweep(T0 + 1.6 * H)) == 8
    assert len(await a.watch.sweep(T0 + 1.6 * H)) == 2
    assert await a.watch.sweep(T0 + 1.6 * H) == ()


@on_asyncio
async def test_store_and_watch_built_from_one_config_count_alike(redis_server, prefix, tmp_path):
    """A store and a watch built from the same ``workorders`` config (warnings at 50 %, a
    4 h assignment target) schedule and fire the assignment warning at 2 h, not at the
    shipped 80 % of 2 h."""
    from workorders.schema import WorkOrdersConfig

    config = WorkOrdersConfig.model_validate(
        {"assign_within_hours": 4, "escalation": {"warn_at_percent": 50}})
    client = aioredis.Redis.from_url(redis_server.url)
    store = WorkOrderStore.from_config(client, config, spool_dir=tmp_path, cipher=CIPHER,
                                       prefix=prefix)
    watch = EscalationWatch.from_config(client, store, config)
    order = await store.create_for_call("call-1", "+4930555", "Kim", T0)
    assert await client.zscore(bucket_key(prefix, order.id, "wo:due"), order.id) == T0 + 2 * H
    assert await watch.sweep(T0 + 1.9 * H) == ()
    (warning,) = await watch.sweep(T0 + 2 * H)
    assert (warning.clock, warning.level, warning.percent) == (
        ClockKind.ASSIGNMENT, Level.WARNING, 50)
