"""Work-order KPIs, pure: orders and their clocks in, figures per day, queue, category,
urgency and agent out. Time is injected (``now``), so a replay of the same orders at the same
``now`` gives the same answer; the clocks are :mod:`workorders.clocks`'.

An order counts in the day (UTC) it was **created**, whatever the day of its outcome, like a
call in ``ivr report``. Its queue, category, urgency and agent are those it has now (``-``:
none: no queue, not assigned). Definitions, per group of orders:

- **created**: orders created.
- **assignment within target %**: of the orders whose assignment clock is decided (met or
  breached at ``now``), those never breached; the clock restarts on a reopen of a closed
  order, and a breach in any round counts. Still running: not counted yet.
- **response within target %**: the same over the response clock (a reached contact or the
  resolution answers the caller; targets by urgency, on hold paused).
- **resolution time p50 / p90**: seconds from creation to the last resolution, of the orders
  resolved or closed at ``now``; wall-clock time (holds included), nearest-rank percentiles
  (the smallest time with at least p % of the orders at or under it).
- **first-contact resolution %** (chosen): of the orders resolved or closed at ``now``, those
  never reopened and raised by a single contact (``contacts`` is 1: no repeat call was linked
  to the order). Logged call-backs by the agent (``contact`` events) do not count against it.
- **reopen %**: of the orders resolved at least once, those reopened at least once.
- **repeat-contact %**: of the orders created, those with more than one contact (a repeat
  call linked to the open order; ``contacts``).
- **CSAT**: average of the scores given (1-5) and how many gave each score.
- **NPS**: promoters (9-10) minus detractors (0-6), in percent points of those who answered.

A percentage with nothing to count is ``None`` (no orders is not 0 %).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from workorders.clocks import Clock, ClockKind, ClockPolicy, Clocks, ClockState, clocks_of
from workorders.model import Event, Status, WorkOrder, utc

DIMENSIONS = ("queue", "category", "urgency", "agent")
NONE = "-"  # the group of orders with no queue, or no agent
CSAT_SCORES = range(1, 6)
DONE = frozenset({Status.RESOLVED, Status.CLOSED})


@dataclass(frozen=True)
class OrderFacts:
    """What one order brings to the KPIs at ``now`` (:func:`facts_of`)."""

    day: date
    groups: Mapping[str, str]  # dimension -> the order's value
    assignment_in_time: bool | None  # None: the clock is not decided yet
    response_in_time: bool | None
    resolution_s: float | None  # None: not resolved or closed now
    ever_resolved: bool
    reopened: bool
    contacts: int
    csat: int | None
    nps: int | None

    @property
    def first_contact_resolution(self) -> bool:
        return self.resolution_s is not None and not self.reopened and self.contacts <= 1


def facts_of(order: WorkOrder, policy: ClockPolicy, now: float) -> OrderFacts:
    """The order's KPI facts at ``now``, from the order and its clocks."""
    return facts_with(order, clocks_of(order, policy, now))


def facts_with(order: WorkOrder, clocks: Clocks) -> OrderFacts:
    """The order's KPI facts, its ``clocks`` (:func:`clocks_of`) worked out already: a reader
    that also needs the clocks' due times counts them once."""
    resolves = [h.time for h in order.history if h.event == Event.RESOLVE.value]
    done = order.status in DONE and bool(resolves)
    return OrderFacts(
        day=order.created_at.astimezone(UTC).date(),
        groups={
            "queue": order.queue or NONE,
            "category": order.category.value,
            "urgency": order.urgency.value,
            "agent": order.agent or NONE,
        },
        assignment_in_time=_in_time(clocks.get(ClockKind.ASSIGNMENT)),
        response_in_time=_in_time(clocks.get(ClockKind.RESPONSE)),
        resolution_s=(resolves[-1] - order.created_at).total_seconds() if done else None,
        ever_resolved=bool(resolves),
        reopened=any(h.event == Event.REOPEN.value for h in order.history),
        # The calls about the order (1 + linked repeat calls).
        contacts=order.contacts,
        csat=order.csat,
        nps=order.nps,
    )


def _in_time(clock: Clock | None) -> bool | None:
    if clock is None or clock.state not in (ClockState.MET, ClockState.BREACHED):
        return None
    return not any(mark.what == "breach" for mark in clock.history)


@dataclass(frozen=True)
class Figures:
    """The KPIs of one group of orders (:func:`figures`)."""

    created: int = 0
    assignment_counted: int = 0
    assignment_in_time: int = 0
    response_counted: int = 0
    response_in_time: int = 0
    # sorted; any sequence of floats (the live day's KPIs pass a compact array('d'))
    resolution_times: Sequence[float] = ()
    resolved: int = 0  # resolved or closed now
    first_contact: int = 0
    ever_resolved: int = 0
    reopened: int = 0
    repeat_contact: int = 0
    csat: Mapping[int, int] = field(default_factory=lambda: dict.fromkeys(CSAT_SCORES, 0))
    nps_scores: tuple[int, ...] = ()

    @property
    def csat_responses(self) -> int:
        return sum(self.csat.values())

    @property
    def csat_average(self) -> float | None:
        answered = self.csat_responses
        return sum(s * n for s, n in self.csat.items()) / answered if answered else None

    @property
    def nps(self) -> float | None:
        if not self.nps_scores:
            return None
        promoters = sum(1 for s in self.nps_scores if s >= 9)
        detractors = sum(1 for s in self.nps_scores if s <= 6)
        return 100 * (promoters - detractors) / len(self.nps_scores)

    def resolution_percentile(self, p: float) -> float | None:
        return percentile(self.resolution_times, p)

    def as_dict(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "assignment_within_target_pct": _pct(self.assignment_in_time,
                                                 self.assignment_counted),
            "assignment_counted": self.assignment_counted,
            "response_within_target_pct": _pct(self.response_in_time, self.response_counted),
            "response_counted": self.response_counted,
            "resolved": self.resolved,
            "resolution_p50_s": _round(self.resolution_percentile(50), 1),
            "resolution_p90_s": _round(self.resolution_percentile(90), 1),
            "first_contact_resolution_pct": _pct(self.first_contact, self.resolved),
            "reopen_pct": _pct(self.reopened, self.ever_resolved),
            "repeat_contact_pct": _pct(self.repeat_contact, self.created),
            "csat_average": _round(self.csat_average, 2),
            "csat_responses": self.csat_responses,
            "csat_distribution": {str(s): n for s, n in sorted(self.csat.items())},
            "nps": _round(self.nps, 1),
            "nps_responses": len(self.nps_scores),
        }


def figures(facts: Iterable[OrderFacts]) -> Figures:
    """The KPIs of a group of orders."""
    rows = list(facts)
    assignment = [f.assignment_in_time for f in rows if f.assignment_in_time is not None]
    response = [f.response_in_time for f in rows if f.response_in_time is not None]
    done = [f for f in rows if f.resolution_s is not None]
    csat = dict.fromkeys(CSAT_SCORES, 0)
    for f in rows:
        if f.csat is not None:
            csat[f.csat] = csat.get(f.csat, 0) + 1
    return Figures(
        created=len(rows),
        assignment_counted=len(assignment),
        assignment_in_time=sum(assignment),
        response_counted=len(response),
        response_in_time=sum(response),
        resolution_times=tuple(sorted(f.resolution_s for f in done if f.resolution_s is not None)),
        resolved=len(done),
        first_contact=sum(1 for f in done if f.first_contact_resolution),
        ever_resolved=sum(1 for f in rows if f.ever_resolved),
        reopened=sum(1 for f in rows if f.ever_resolved and f.reopened),
        repeat_contact=sum(1 for f in rows if f.contacts > 1),
        csat=csat,
        nps_scores=tuple(f.nps for f in rows if f.nps is not None),
    )


@dataclass(frozen=True)
class Breakdown:
    """One period (a day, or the whole report): all its orders, and per dimension value."""

    total: Figures
    by: Mapping[str, Mapping[str, Figures]]

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.total.as_dict(),
            "by": {
                dimension: {name: f.as_dict() for name, f in sorted(groups.items())}
                for dimension, groups in self.by.items()
            },
        }


def breakdown(facts: Sequence[OrderFacts]) -> Breakdown:
    by: dict[str, dict[str, list[OrderFacts]]] = {d: {} for d in DIMENSIONS}
    for f in facts:
        for dimension in DIMENSIONS:
            by[dimension].setdefault(f.groups[dimension], []).append(f)
    return Breakdown(
        total=figures(facts),
        by={d: {name: figures(rows) for name, rows in groups.items()} for d, groups in by.items()},
    )


@dataclass(frozen=True)
class KpiReport:
    """Every day of ``[start, end)`` (empty days too) and the period's totals, at ``now``."""

    start: float
    end: float
    now: float
    days: Mapping[date, Breakdown]
    period: Breakdown

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": _iso(self.start),
            "to": _iso(self.end),
            "at": _iso(self.now),
            "total": self.period.as_dict(),
            "days": [{"day": day.isoformat(), **row.as_dict()} for day, row in self.days.items()],
        }


def compute_kpis(
    orders: Iterable[WorkOrder], policy: ClockPolicy, *, start: float, end: float, now: float
) -> KpiReport:
    """The KPIs of the orders created in ``[start, end)`` (others are left out), per UTC day
    and for the whole period, with every clock evaluated at ``now``."""
    if end <= start:
        raise ValueError("the report must end after it starts")
    low, high = utc(start), utc(end)
    facts = [facts_of(o, policy, now) for o in orders if low <= o.created_at < high]
    per_day: dict[date, list[OrderFacts]] = {day: [] for day in days_between(start, end)}
    for f in facts:
        per_day.setdefault(f.day, []).append(f)
    return KpiReport(
        start=start, end=end, now=now,
        days={day: breakdown(rows) for day, rows in sorted(per_day.items())},
        period=breakdown(facts),
    )


def days_between(start: float, end: float) -> list[date]:
    """The UTC days that ``[start, end)`` touches."""
    first, last = utc(start).date(), (utc(end) - timedelta(microseconds=1)).date()
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest rank: the smallest value with at least ``p`` % of ``values`` at or under it
    (``values`` sorted); None when there are none."""
    if not values:
        return None
    rank = max(1, math.ceil(p / 100 * len(values)))
    return values[min(rank, len(values)) - 1]


def _pct(part: int, whole: int) -> float | None:
    return round(100 * part / whole, 2) if whole else None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
