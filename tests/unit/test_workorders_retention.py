"""Retention, pure: the dates an order is kept until, which orders may be purged, legal hold
transitions, the retention index, the purge's walk over it and the daily job's claim."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from ivr.testing import on_asyncio
from workorders import retention
from workorders.model import Event, Policy, WorkOrder, WorkOrderError, apply, utc
from workorders.model import create_order as create

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
DAY = 86400.0
POLICY = Policy()


def closed(at: float = T0, closed_at: float | None = None, policy: Policy = POLICY) -> WorkOrder:
    order = create("7", "call-7", "+4930555", "Kim", at, policy)
    for event, changes in ((Event.ASSIGN, {"agent": "agent101"}), (Event.START, {}),
                           (Event.RESOLVE, {})):
        order = apply(order, event, at + 60, "agent101", policy, **changes)
    return apply(order, Event.CLOSE, closed_at or at + 120, "agent101", policy)


def hold(order: WorkOrder, held: bool, at: float, actor: str = "ops1") -> WorkOrder:
    return apply(order, Event.LEGAL_HOLD, at, actor, POLICY, legal_hold=held,
                 reason="court case 17/2027")


def test_retention_is_never_fewer_than_three_years():
    """Policy refuses retention_years under 3; with 3, an order is kept 3 years after
    creation, and after a close 3 years after that close."""
    with pytest.raises(WorkOrderError, match="at least 3 years"):
        Policy(retention_years=2)
    order = create("1", "c", "+49", "K", T0, POLICY)
    assert order.retain_until == datetime(2029, 3, 2, 9, 0, tzinfo=UTC)
    late = closed(T0, closed_at=T0 + 400 * DAY)
    assert late.retain_until == datetime(2030, 4, 6, 9, 0, tzinfo=UTC)
    five = closed(T0, policy=Policy(retention_years=5))
    assert five.retain_until == datetime(2031, 3, 2, 9, 2, tzinfo=UTC)


def test_reopen_and_a_new_close_extend_retention_later_changes_do_not():
    """A reopen keeps the date; closing again moves it to 3 years after the new close; a note,
    a survey score or a legal hold on the closed order leaves it where it is."""
    order = closed()
    first = order.retain_until
    reopened = apply(order, Event.REOPEN, T0 + 200 * DAY, "agent101", POLICY, reason="again")
    assert reopened.retain_until == first
    again = reopened
    for event, changes in ((Event.ASSIGN, {"agent": "agent102"}), (Event.START, {}),
                           (Event.RESOLVE, {})):
        again = apply(again, event, T0 + 201 * DAY, "agent102", POLICY, **changes)
    again = apply(again, Event.CLOSE, T0 + 202 * DAY, "agent102", POLICY)
    assert again.retain_until == datetime(2029, 9, 20, 9, 0, tzinfo=UTC)
    scored = apply(again, Event.UPDATE, T0 + 300 * DAY, "survey", POLICY, csat=4)
    noted = apply(scored, Event.NOTE, T0 + 301 * DAY, "agent102", POLICY, text="called back")
    assert hold(noted, True, T0 + 302 * DAY).retain_until == again.retain_until


def test_expired_only_closed_unheld_orders_past_their_date():
    """An order may be purged when closed, not under a legal hold, and at or past
    retain_until; an open order never, whatever its age."""
    order = closed()
    due = order.retain_until.timestamp()
    assert not retention.expired(order, due - 1)
    assert retention.expired(order, due)
    assert not retention.expired(hold(order, True, T0 + DAY), due + 10 * 365 * DAY)
    opened = apply(order, Event.REOPEN, T0 + DAY, "agent101", POLICY, reason="again")
    assert not retention.expired(opened, due + 10 * 365 * DAY)


def test_retention_index_holds_closed_unheld_orders_by_their_date():
    """wo:retain: a closed order scored by retain_until; open or held orders are not in it."""
    order = closed()
    assert retention.retained(order) == {"wo:retain": order.retain_until.timestamp()}
    assert retention.retained(create("1", "c", "+49", "K", T0, POLICY)) == {}
    assert retention.retained(hold(order, True, T0 + DAY)) == {}


@pytest.mark.parametrize("status_events", [
    (), ((Event.ASSIGN, {"agent": "a1"}),),
    ((Event.ASSIGN, {"agent": "a1"}), (Event.START, {}), (Event.RESOLVE, {})),
])
def test_legal_hold_set_and_release_in_any_status_keep_the_status(status_events):
    """A legal hold is set and released in any status without changing it; each is a history
    entry with who and why; a retried set is recorded and changes nothing."""
    order = create("1", "c", "+49", "K", T0, POLICY)
    for event, changes in status_events:
        order = apply(order, event, T0 + 10, "a1", POLICY, **changes)
    held = hold(order, True, T0 + 20)
    again = hold(held, True, T0 + 25, actor="ops2")
    released = hold(again, False, T0 + 30, actor="ops3")
    assert (held.legal_hold, again.legal_hold, released.legal_hold) == (True, True, False)
    assert held.status is again.status is released.status is order.status
    assert [(h.event, h.actor, h.details["legal_hold"]) for h in released.history[-3:]] == [
        ("legal_hold", "ops1", True), ("legal_hold", "ops2", True),
        ("legal_hold", "ops3", False)]
    assert all(h.details["reason"] == "court case 17/2027" for h in released.history[-3:])
    assert WorkOrder.from_json(released.to_json()) == released


@pytest.mark.parametrize("changes", [
    {"legal_hold": True}, {"legal_hold": True, "reason": "  "}, {"reason": "why"},
    {"legal_hold": "yes", "reason": "why"},
])
def test_legal_hold_needs_a_flag_and_a_reason(changes):
    """Without true/false or without a reason the hold is refused: it must be reviewable."""
    with pytest.raises(WorkOrderError, match="legal_hold"):
        apply(closed(), Event.LEGAL_HOLD, T0 + DAY, "ops1", POLICY, **changes)


def test_deletion_record_has_ids_and_dates_only():
    """The deletion record: id, created, closed, retain_until, purged_at, reason; nothing of
    the caller."""
    order = closed()
    record = retention.DeletionRecord.of(order, T0 + 4 * 365 * DAY)
    assert record.to_dict() == {
        "id": "7", "created": "2026-03-02T09:00:00.000000Z",
        "closed": "2026-03-02T09:02:00.000000Z", "retain_until": "2029-03-02T09:02:00.000000Z",
        "purged_at": "2030-03-01T09:00:00.000000Z", "reason": "retention expired",
    }


class FakeRetentionStore:
    """Orders by id and the wo:retain members in order; purge_order deletes unless ``stuck``
    (an index member whose order does not qualify and which stays in the set)."""

    def __init__(self, orders: dict[str, WorkOrder], stuck: frozenset[str] = frozenset()):
        self.orders = orders
        self.members = sorted(orders, key=lambda i: orders[i].retain_until)
        self.stuck = stuck

    async def retained_past(self, now: float, offset: int, count: int) -> list[str]:
        due = [i for i in self.members if self.orders[i].retain_until <= utc(now)]
        return due[offset:offset + count]

    async def get(self, order_id: str) -> WorkOrder | None:
        return self.orders.get(order_id)

    async def purge_order(self, order_id: str, now: float,
                          reason: str = retention.REASON_EXPIRED
                          ) -> retention.DeletionRecord | None:
        if order_id in self.stuck:
            return None
        self.members.remove(order_id)
        return retention.DeletionRecord.of(self.orders.pop(order_id), now, reason)


def orders(n: int) -> dict[str, WorkOrder]:
    return {str(i): replace(closed(T0 + i * DAY), id=str(i)) for i in range(n)}


@on_asyncio
async def test_purge_walks_the_index_in_batches_and_steps_over_stuck_members():
    """The purge deletes every order due in batches; a member that stays (index out of step)
    is reported skipped once and does not stop the walk; a dry run reports and keeps all."""
    now = T0 + 3 * 365 * DAY + 7 * DAY
    dry = FakeRetentionStore(orders(12))
    report = await retention.purge(dry, now, dry_run=True, batch=3)
    assert [r.id for r in report.deleted] == [str(i) for i in range(6)]
    assert len(dry.orders) == 12
    store = FakeRetentionStore(orders(12), stuck=frozenset({"0", "4"}))
    report = await retention.purge(store, now, dry_run=False, batch=2)
    assert [r.id for r in report.deleted] == ["1", "2", "3", "5"]
    assert report.skipped == ("0", "4")
    assert sorted(store.orders, key=int) == ["0", "4", *map(str, range(6, 12))]


class FakeLock:
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}

    async def set(self, name: str, value: str, *, nx: bool, ex: int) -> bool | None:
        if nx and name in self.keys:
            return None
        self.keys[name] = value
        return True


@on_asyncio
async def test_daily_purge_runs_after_its_hour_once_per_day():
    """Before hour_utc nothing runs; at it the first claim of the day purges, the same day's
    next calls (this instance or another sharing the lock) do nothing; the next day runs."""
    lock = FakeLock()
    store = FakeRetentionStore(orders(3))
    first = retention.DailyPurge(store, lock, prefix="p:", instance="a", hour_utc=3)
    second = retention.DailyPurge(store, lock, prefix="p:", instance="b", hour_utc=3)
    day = datetime(2029, 3, 3, tzinfo=UTC).timestamp()
    assert await first.run_if_due(day + 2 * 3600) is None
    report = await first.run_if_due(day + 3 * 3600)
    assert report is not None and [r.id for r in report.deleted] == ["0"]
    assert await second.run_if_due(day + 4 * 3600) is None
    assert await first.run_if_due(day + 5 * 3600) is None
    assert lock.keys == {"p:wo:purge-day:2029-03-03": "a"}
    nxt = await second.run_if_due(day + 86400 + 3 * 3600)
    assert nxt is not None and [r.id for r in nxt.deleted] == ["1"]
