"""Work-order KPIs, pure, time injected: each figure's definition, empty days, percentiles,
the groups per queue, category, urgency and agent, and the same answer on a replay."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime

import pytest

from workorders.clocks import ClockPolicy
from workorders.kpi import compute_kpis, days_between, percentile
from workorders.model import Event, Policy, WorkOrder, apply, create_order

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC).timestamp()
H = 3600.0
DAY = 24 * H
POLICY = Policy()
CLOCKS = ClockPolicy()


def new(n: int, at: float, **fields: object) -> WorkOrder:
    return create_order(str(n), f"call-{n}", "+4930555", "Kim", at, POLICY, **fields)


def then(order: WorkOrder, *steps: tuple[float, Event, dict[str, object]]) -> WorkOrder:
    for at, event, changes in steps:
        order = apply(order, event, at, "agent101", POLICY, **changes)
    return order


def handled(n: int, at: float, assign_after: float, resolve_after: float,
            **fields: object) -> WorkOrder:
    return then(
        new(n, at, **fields),
        (at + assign_after, Event.ASSIGN, {"agent": f"agent{n}"}),
        (at + assign_after + 60, Event.START, {}),
        (at + resolve_after, Event.RESOLVE, {}),
    )


def report(orders: list[WorkOrder], now: float, start: float = T0, end: float = T0 + DAY):
    """The JSON report of the orders created in [start, end) at ``now``."""
    return compute_kpis(orders, CLOCKS, start=start, end=end, now=now).as_dict()


def test_empty_days_are_rows_of_zeros_and_no_percentages():
    """Every day of the period is a row even without orders: counts 0, percentages,
    percentiles, CSAT and NPS None (nothing to count is not 0 %)."""
    data = report([], T0, start=MIDNIGHT, end=MIDNIGHT + 3 * DAY)
    assert [d["day"] for d in data["days"]] == ["2026-03-02", "2026-03-03", "2026-03-04"]
    for row in [data["total"], *data["days"]]:
        assert row["created"] == 0 and row["resolved"] == 0
        for key in ("assignment_within_target_pct", "response_within_target_pct",
                    "resolution_p50_s", "resolution_p90_s", "first_contact_resolution_pct",
                    "reopen_pct", "repeat_contact_pct", "csat_average", "nps"):
            assert row[key] is None, key
        assert row["csat_distribution"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 0}
        assert row["by"] == {"queue": {}, "category": {}, "urgency": {}, "agent": {}}


def test_each_figure_follows_its_definition():
    """Four orders of one day: assignment and response in time or breached (an undecided
    clock not counted), resolution time to the last resolution, first-contact resolution
    (no reopen, one contact), reopen among the resolved, repeat contacts, CSAT, NPS."""
    quick = then(handled(1, T0, H, 2 * H),
                 (T0 + 3 * H, Event.CLOSE, {}),
                 (T0 + 4 * H, Event.UPDATE, {"csat": 5, "nps": 10}))
    late = then(handled(2, T0 + 600, 3 * H, 50 * H),
                (T0 + 600 + 51 * H, Event.REOPEN, {"reason": "still broken"}),
                (T0 + 600 + 52 * H, Event.RESOLVE, {}),
                (T0 + 600 + 53 * H, Event.UPDATE, {"csat": 2, "nps": 5}))
    waiting = new(3, T0 + 1200)
    repeat = replace(handled(4, T0 + 1800, 600, H), contacts=2)  # one repeat call linked
    repeat = then(repeat, (T0 + 2 * H, Event.UPDATE, {"csat": 4, "nps": 9}))
    orders = [quick, late, waiting, repeat]

    early = report(orders, T0 + 60 * H)["total"]
    assert early["created"] == 4
    # 1 and 4 assigned in time, 2 late; 3 still pending past 2 h: breached.
    assert (early["assignment_within_target_pct"], early["assignment_counted"]) == (50.0, 4)
    # Response: 1 and 4 met; 2 resolved after 50 h and 3 unanswered past 48 h: breached.
    assert (early["response_within_target_pct"], early["response_counted"]) == (50.0, 4)
    assert early["resolved"] == 3
    assert (early["resolution_p50_s"], early["resolution_p90_s"]) == (2 * H, 52 * H)
    assert early["first_contact_resolution_pct"] == 33.33  # only 1: 2 reopened, 4 repeat
    assert early["reopen_pct"] == 33.33 and early["repeat_contact_pct"] == 25.0
    assert early["csat_average"] == 3.67 and early["csat_responses"] == 3
    assert early["csat_distribution"] == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 1}
    assert (early["nps"], early["nps_responses"]) == (33.3, 3)  # 2 promoters, 1 detractor

    # Not yet late: the pending order's clocks are still running, so it is not counted.
    before = report([waiting], T0 + 1.5 * H)["total"]
    assert (before["created"], before["assignment_counted"], before["response_counted"]) == (
        1, 0, 0)
    assert before["assignment_within_target_pct"] is None


def test_groups_per_queue_category_urgency_and_agent():
    """Each order counts in its queue, category, urgency and agent; no queue or no agent is
    the group '-'."""
    a = handled(1, T0, 60, H, queue="billing", category="inquiry", urgency="urgent")
    b = new(2, T0 + 60, category="fault")
    by = report([a, b], T0 + 2 * H)["total"]["by"]
    assert {k: v["created"] for k, v in by["queue"].items()} == {"-": 1, "billing": 1}
    assert {k: v["created"] for k, v in by["category"].items()} == {"fault": 1, "inquiry": 1}
    assert {k: v["created"] for k, v in by["urgency"].items()} == {"normal": 1, "urgent": 1}
    assert {k: v["created"] for k, v in by["agent"].items()} == {"-": 1, "agent1": 1}
    assert by["agent"]["agent1"]["resolution_p50_s"] == H


def test_orders_count_in_the_day_they_were_created():
    """An order counts in its creation day (UTC), whatever the day of its outcome; orders
    created outside the period are left out."""
    first = handled(1, T0, 60, 30 * H)
    second = new(2, T0 + DAY + H)
    outside = new(3, T0 - 10 * H)  # the day before
    data = report([first, second, outside], T0 + 3 * DAY, start=MIDNIGHT,
                  end=MIDNIGHT + 2 * DAY)
    assert [(d["day"], d["created"], d["resolved"]) for d in data["days"]] == [
        ("2026-03-02", 1, 1), ("2026-03-03", 1, 0)]
    assert data["total"]["created"] == 2


@pytest.mark.parametrize(("values", "p", "expected"), [
    ([], 50, None),
    ([7.0], 90, 7.0),
    ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
    ([1.0, 2.0, 3.0, 4.0], 90, 4.0),
    ([float(v) for v in range(1, 11)], 90, 9.0),
    ([float(v) for v in range(1, 11)], 91, 10.0),
    ([float(v) for v in range(1, 101)], 50, 50.0),
])
def test_percentiles_are_nearest_rank(values, p, expected):
    """The p-th percentile is the smallest value with at least p % of the values at or
    under it; none without values."""
    assert percentile(values, p) == expected


def test_resolution_percentiles_over_many_orders():
    """p50 and p90 of ten resolution times 1 h .. 10 h are 5 h and 9 h."""
    orders = [handled(n, T0 + n, 60, n * H) for n in range(1, 11)]
    total = report(orders, T0 + 2 * DAY)["total"]
    assert (total["resolution_p50_s"], total["resolution_p90_s"]) == (5 * H, 9 * H)


def test_a_replay_gives_the_same_answer():
    """The same orders read back from their JSON (a replay, another instance) at the same
    now give the same figures; a later now decides clocks that were running."""
    orders = [handled(1, T0, 3 * H, 49 * H), new(2, T0 + 60), handled(3, T0 + 120, 60, H)]
    replayed = [WorkOrder.from_json(o.to_json()) for o in orders]
    assert report(orders, T0 + H) == report(replayed, T0 + H)
    assert report(orders, T0 + H) != report(orders, T0 + 3 * H)


def test_days_between_touches_every_utc_day_of_the_period():
    """A period ending at midnight does not include the next day."""
    assert days_between(T0, T0 + DAY) == [date(2026, 3, 2), date(2026, 3, 3)]
    assert days_between(MIDNIGHT, MIDNIGHT + DAY) == [date(2026, 3, 2)]
