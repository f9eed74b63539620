"""Today's work-order KPIs kept in the process (``hotline.report.today``): after any sequence
of changes, read incrementally, the same figures (and the same /metrics text) as the full
read ``today_report``; the day read whole only at start, day change, config change or a gap
in the events; nothing of an order kept beyond its entry."""

from __future__ import annotations

import random
from collections.abc import Sequence
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest

from hotline.metrics import OrderKpiMetrics
from hotline.report.orders import today_report
from hotline.report.today import DayKpis, Entry, TodayKpis
from ivr.testing import on_asyncio
from workorders.clocks import ClockPolicy
from workorders.kpi import compute_kpis
from workorders.model import (
    TRANSITIONS,
    Event,
    Policy,
    TransitionRefused,
    WorkOrder,
    apply,
    create_order,
)

MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
H = 3600.0
DAY = 24 * H
POLICY = Policy()
CLOCKS = ClockPolicy()


class Settings:
    """A config section: the reader reads the day again when the object changes."""

    def __init__(self, policy: ClockPolicy = CLOCKS) -> None:
        self.policy = policy

    def clock_policy(self) -> ClockPolicy:
        return self.policy


class FakeRedis:
    """The events stream as the reader uses it (XRANGE, XREVRANGE), ids ``<n>-0``."""

    def __init__(self) -> None:
        self.entries: list[tuple[bytes, dict[bytes, bytes]]] = []
        self.seq = 0

    def add(self, fields: dict[str, str]) -> None:
        self.seq += 1
        self.entries.append((f"{self.seq}-0".encode(),
                             {k.encode(): v.encode() for k, v in fields.items()}))

    def trim(self, keep: int) -> None:
        self.entries = self.entries[-keep:]

    @staticmethod
    def _n(entry_id: bytes | str) -> int:
        text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        return int(text.split("-")[0])

    async def xrange(self, name: str, min: str = "-", count: int | None = None) -> list[Any]:
        assert name == "hotline:events"
        low = 0 if min == "-" else self._n(min)
        found = [e for e in self.entries if self._n(e[0]) >= low]
        return found[:count] if count else found

    async def xrevrange(self, name: str, count: int | None = None) -> list[Any]:
        assert name == "hotline:events"
        return list(reversed(self.entries))[:count]


class FakeStore:
    """Orders in a dict, each write with its event on the stream (as the real store does);
    counts what the reader reads."""

    prefix = "hotline:"

    def __init__(self) -> None:
        self.redis = FakeRedis()
        self.orders: dict[str, WorkOrder] = {}
        self.orders_read = 0
        self.day_reads = 0

    def write(self, order: WorkOrder, kind: str = "WOUPDATE") -> None:
        self.orders[order.id] = order
        self.redis.add({"kind": kind, "order_id": order.id})

    def purge(self, order_id: str) -> None:
        del self.orders[order_id]
        self.redis.add({"kind": "WOPURGE", "order_id": order_id})

    async def created_between(self, start: float, end: float) -> list[WorkOrder]:
        self.day_reads += 1
        found = [o for o in self.orders.values()
                 if start <= o.created_at.timestamp() < end]
        self.orders_read += len(found)
        return sorted(found, key=lambda o: o.created_at)

    async def orders_of(self, ids: Sequence[str]) -> list[WorkOrder]:
        found = [self.orders[i] for i in ids if i in self.orders]
        self.orders_read += len(found)
        return found


async def metrics_text(report: Any) -> str:
    """/metrics' order gauges for ``report``, without the age line."""
    async def read() -> Any:
        return report

    metrics = OrderKpiMetrics(read, lambda: 0.0)
    await metrics.refresh()
    registry = CollectorRegistry()
    registry.register(metrics)
    return "\n".join(line for line in generate_latest(registry).decode().splitlines()
                     if "kpi_age" not in line)


STEPS = (
    (Event.ASSIGN, {"agent": "agent1"}), (Event.ASSIGN, {"agent": "agent2", "queue": "faults"}),
    (Event.UNASSIGN, {}), (Event.START, {}), (Event.START, {}), (Event.RESOLVE, {}),
    (Event.RESOLVE, {}), (Event.RESOLVE, {}), (Event.CLOSE, {}),
    (Event.REOPEN, {"reason": "again"}), (Event.UPDATE, {"urgency": "urgent"}),
    (Event.UPDATE, {"queue": "billing", "category": "inquiry"}),
    (Event.UPDATE, {"csat": 2}), (Event.UPDATE, {"csat": 5, "nps": 9}),
    (Event.UPDATE, {"nps": 3}),
    (Event.HOLD, {"waiting_on": "customer", "reason": "a document"}),
    (Event.RESUME, {}), (Event.CONTACT, {"channel": "phone", "reached": True}),
    (Event.REPEAT, {"call_id": "x"}),
)


def a_day_of_changes(store: FakeStore, rng: random.Random, start: float, n: int,
                     first_id: int) -> list[float]:
    """``n`` moments of a day from ``start``: at each, new orders and changes to earlier
    ones (some twice in a row), written to ``store``. The moments are returned."""
    moments, at = [], start + 60.0
    next_id = first_id
    for _ in range(n):
        for _ in range(rng.randint(0, 3)):
            queue = rng.choice(["faults", "billing", ""])  # "": no queue
            order = create_order(str(next_id), f"call-{next_id}", "+4930555", "Kim", at,
                                 POLICY, **({"queue": queue} if queue else {}),
                                 urgency=rng.choice(["normal", "important", "urgent"]))
            store.write(order, "WOCREATE")
            next_id += 1
        for order_id in rng.sample(sorted(store.orders), min(4, len(store.orders))):
            for _ in range(rng.choice([1, 2, 3])):  # some changed twice before a read
                status = store.orders[order_id].status
                event, changes = rng.choice([s for s in STEPS if s[0] in TRANSITIONS[status]])
                if event is Event.REPEAT:
                    changes = {"call_id": f"repeat-{rng.random()}"}
                with suppress(TransitionRefused, ValueError):  # not in this status: skipped
                    store.write(apply(store.orders[order_id], event, at, "agent1", POLICY,
                                      **changes))
        if store.orders and rng.random() < 0.05:
            store.purge(rng.choice(sorted(store.orders)))
        moments.append(at)
        at += rng.choice([30.0, 300.0, 1800.0, 2.5 * H])  # past due times too
    return moments


@on_asyncio
async def test_incremental_figures_equal_the_full_read_through_a_day_and_a_rollover():
    """At every read of two days of random changes (orders created, assigned, unassigned,
    resolved, reopened, held, moved between queues, surveyed, purged, some changed twice
    between reads, clocks breached by time alone), the incremental report equals
    ``today_report``'s, figure for figure and line for line of /metrics; the day is read
    whole only twice (start and the day change)."""
    store, rng = FakeStore(), random.Random(14)
    reader = TodayKpis(store, lambda: settings)
    settings = Settings()
    compared = 0
    for start, first_id in ((MIDNIGHT, 1), (MIDNIGHT + DAY, 1000)):
        for now in a_day_of_changes(store, rng, start, 40, first_id):
            if now >= start + DAY:
                break
            live = await reader.report(now)
            full = await today_report(store, CLOCKS, now)
            assert live.as_dict() == full.as_dict(), now
            for quantile in (50, 90):
                assert (live.period.total.resolution_percentile(quantile)
                        == full.period.total.resolution_percentile(quantile))
            compared += 1
        assert await metrics_text(live) == await metrics_text(full)
    assert compared > 40
    assert reader.full_reads == 2


@on_asyncio
async def test_only_changed_orders_are_read_after_the_first():
    """After the first read, a read takes only the orders named by events since the last
    one (an order changed twice is read once), not the day's orders."""
    store = FakeStore()
    at = MIDNIGHT + 9 * H
    for n in range(50):
        store.write(create_order(str(n), f"c{n}", "+49", "K", at, POLICY), "WOCREATE")
    reader = TodayKpis(store, lambda: settings)
    settings = Settings()
    await reader.report(at + 60)
    assert store.orders_read == 50
    for _ in range(2):
        store.write(apply(store.orders["7"], Event.UPDATE, at + 90, "a", POLICY, nps=10))
    store.redis.add({"kind": "CONNECT", "call_id": "c99"})  # not a work-order event
    report = await reader.report(at + 120)
    assert store.orders_read == 51
    assert report.period.total.nps == 100.0
    assert reader.full_reads == 1


@on_asyncio
async def test_a_gap_in_the_events_or_a_new_config_reads_the_day_again():
    """If the stream no longer holds the last entry read (trimmed past it), the changes in
    between are unknown: the day is read whole and the figures are right; a new config
    object (a reload) reads it whole with its policy."""
    store = FakeStore()
    at = MIDNIGHT + 9 * H
    store.write(create_order("1", "c1", "+49", "K", at, POLICY), "WOCREATE")
    settings = Settings()
    reader = TodayKpis(store, lambda: settings)
    await reader.report(at)
    for n in range(2, 6):
        store.write(create_order(str(n), f"c{n}", "+49", "K", at, POLICY), "WOCREATE")
    store.redis.trim(2)
    report = await reader.report(at + 60)
    assert (report.period.total.created, reader.full_reads) == (5, 2)
    await reader.report(at + 120)
    assert reader.full_reads == 2
    settings = Settings(ClockPolicy(assign_within=60.0))
    report = await reader.report(at + 180)
    assert reader.full_reads == 3
    assert report.period.total.assignment_counted == 5  # all breached under the new target


def test_a_clock_breached_by_time_alone_counts_without_a_write():
    """An order never assigned counts as undecided until its due time, then as breached
    at the same moment as the full computation says, with no write in between."""
    order = create_order("1", "c1", "+49", "K", MIDNIGHT + H, POLICY)
    day = DayKpis(MIDNIGHT)
    day.put(order, CLOCKS, MIDNIGHT + H)
    for now in (MIDNIGHT + 3 * H, MIDNIGHT + 3 * H + 0.001, MIDNIGHT + 4 * H):
        full = compute_kpis([order], CLOCKS, start=MIDNIGHT, end=MIDNIGHT + DAY, now=now)
        assert day.report(now).as_dict() == full.as_dict(), now
    assert day.report(MIDNIGHT + 4 * H).period.total.assignment_counted == 1


def test_an_order_of_another_day_or_moved_out_of_a_group_leaves_nothing_behind():
    """Orders of another day are not counted; an order moved to another queue leaves its
    old queue's group (absent, as in the full report), and a dropped order its groups."""
    day = DayKpis(MIDNIGHT)
    day.put(create_order("0", "c0", "+49", "K", MIDNIGHT - 60, POLICY), CLOCKS, MIDNIGHT)
    order = create_order("1", "c1", "+49", "K", MIDNIGHT + H, POLICY, queue="faults")
    day.put(order, CLOCKS, MIDNIGHT + H)
    day.put(apply(order, Event.UPDATE, MIDNIGHT + H, "a", POLICY, queue="billing"), CLOCKS,
            MIDNIGHT + H)
    assert len(day) == 1
    assert set(day.breakdown().by["queue"]) == {"billing"}
    day.drop("1")
    assert len(day) == 0 and day.breakdown().by["queue"] == {}


def test_an_entry_is_a_small_tuple_with_shared_groups():
    """What stays per order is its entry (a tuple of plain values), not the order: orders
    with the same groups share one groups tuple."""
    day = DayKpis(MIDNIGHT)
    for n in range(3):
        day.put(create_order(str(n), f"c{n}", "+49", "K", MIDNIGHT + H, POLICY,
                             queue="faults"), CLOCKS, MIDNIGHT + H)
    entries = list(day._entries.values())
    assert all(type(e) is Entry for e in entries)
    assert entries[0].groups is entries[1].groups is entries[2].groups


def test_due_times_left_behind_do_not_pile_up():
    """An order held and resumed all day moves its response due time at every resume: the
    old due times are dropped, so what is kept stays within two per order, and the
    figures still equal the full computation's."""
    order = create_order("1", "c1", "+49", "K", MIDNIGHT + 60, POLICY)
    order = apply(order, Event.ASSIGN, MIDNIGHT + 61, "a", POLICY, agent="agent1")
    day = DayKpis(MIDNIGHT)
    at = MIDNIGHT + 120
    for _ in range(300):
        order = apply(order, Event.HOLD, at, "a", POLICY, waiting_on="customer",
                      reason="a document")
        order = apply(order, Event.RESUME, at + 60, "a", POLICY)
        day.put(order, CLOCKS, at + 60)
        at += 120
    assert len(day._dues) <= 2 * len(day) + 64
    full = compute_kpis([order], CLOCKS, start=MIDNIGHT, end=MIDNIGHT + DAY, now=at)
    assert day.report(at).as_dict() == full.as_dict()
