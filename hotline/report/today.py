"""Today's work-order KPIs kept in the process, updated from the orders that changed: what
/metrics' order gauges show (:class:`hotline.metrics.OrderKpiMetrics`, every minute).

:func:`hotline.report.orders.today_report` reads every order of the day with its history
each time, so its cost and its transient memory grow with the day's orders (a heap the
allocator then keeps). Here the day is read whole only at start, at the day change (UTC) and
when the config changes (a new clock policy can move every clock); after that each read
takes the work-order events written since the last one (the ``hotline:events`` stream, from
the last entry read) and reads only the orders they name. Every write of an order adds its
event in the same atomic step (create, update, merge, repeat link, purge), so an order
changed twice is read once, with its last state. If the stream was trimmed past the last
entry read (``MAXLEN ~``), the changes in between are unknown: the day is read whole again.

The figures are those of ``today_report`` at the same ``now`` (the unit tests compare the
two over a day of changes): both are :mod:`workorders.kpi`'s over the same orders, so two
instances show the same. One thing moves with time alone: a running assignment or response
clock is breached once its due time passes, so an order whose clock is undecided keeps its
due time and :meth:`DayKpis.settle` decides it then.

Memory: per order of the day, only its :class:`Entry` (its groups, decided outcomes, due
times, resolution time, survey scores) and its share of the sums: some 350 bytes; per group
the counts and the resolution times in an ``array('d')`` (8 bytes each: nearest-rank
percentiles need every time); nothing of an order's fields or history stays.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, insort
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from heapq import heapify, heappop, heappush
from typing import Any, NamedTuple, Protocol

from events import stream_key
from events.consumer import decode_entries
from workorders.clocks import ClockKind, ClockPolicy, Clocks, ClockState, clocks_of
from workorders.kpi import CSAT_SCORES, DIMENSIONS, Breakdown, Figures, KpiReport, facts_with
from workorders.model import WorkOrder, utc

DAY = 86400.0
ALL = ("all", "all")  # the group of every order (``Breakdown.total``)
#: The undecided clocks that time alone decides (a breach); the other facts need a write.
TIMED = (ClockKind.ASSIGNMENT, ClockKind.RESPONSE)


class Entry(NamedTuple):
    """What one order of the day brings to the KPIs (``workorders.kpi.OrderFacts``, plus the
    due times of its undecided clocks), as a tuple: thousands of them live all day."""

    groups: tuple[str, str, str, str]  # queue, category, urgency, agent (DIMENSIONS' order)
    assignment_in_time: bool | None
    # While the clock runs undecided: the time after which it is breached.
    assignment_due: datetime | None
    response_in_time: bool | None
    response_due: datetime | None
    resolution_s: float | None
    ever_resolved: bool
    reopened: bool
    contacts: int
    csat: int | None
    nps: int | None


def entry_of(order: WorkOrder, clocks: Clocks) -> Entry:
    """The order's entry, its clocks worked out at the time of the read."""
    facts = facts_with(order, clocks)
    dues: list[datetime | None] = []
    for kind in TIMED:
        clock = clocks.get(kind)
        if clock is None or clock.state is not ClockState.RUNNING or clock.due is None:
            dues.append(None)
        else:
            # Time breaches a clock only after the order's last entry too (``advance``): a
            # retarget can leave a running clock due before the entry that moved it.
            dues.append(max(clock.due, clocks.at))
    groups = tuple(facts.groups[d] for d in DIMENSIONS)
    return Entry(
        groups=(groups[0], groups[1], groups[2], groups[3]),
        assignment_in_time=facts.assignment_in_time, assignment_due=dues[0],
        response_in_time=facts.response_in_time, response_due=dues[1],
        resolution_s=facts.resolution_s, ever_resolved=facts.ever_resolved,
        reopened=facts.reopened, contacts=facts.contacts, csat=facts.csat, nps=facts.nps,
    )


class Tally:
    """The running sums of one group of orders, to which an entry is added or taken away."""

    __slots__ = (
        "assignment_counted",
        "assignment_in_time",
        "created",
        "csat",
        "ever_resolved",
        "first_contact",
        "nps",
        "reopened",
        "repeat_contact",
        "response_counted",
        "response_in_time",
        "times",
    )

    def __init__(self) -> None:
        self.created = self.assignment_counted = self.assignment_in_time = 0
        self.response_counted = self.response_in_time = self.first_contact = 0
        self.ever_resolved = self.reopened = self.repeat_contact = 0
        self.times = array("d")  # resolution times, sorted
        self.csat: dict[int, int] = dict.fromkeys(CSAT_SCORES, 0)
        self.nps: dict[int, int] = {}  # score -> answers

    def add(self, entry: Entry, sign: int) -> None:
        """Count ``entry`` in (``sign`` 1) or out (-1): the sums of ``workorders.kpi.figures``."""
        self.created += sign
        if entry.assignment_in_time is not None:
            self.assignment_counted += sign
            self.assignment_in_time += sign * entry.assignment_in_time
        if entry.response_in_time is not None:
            self.response_counted += sign
            self.response_in_time += sign * entry.response_in_time
        if entry.resolution_s is not None:
            if sign > 0:
                insort(self.times, entry.resolution_s)
            else:
                del self.times[bisect_left(self.times, entry.resolution_s)]
            if not entry.reopened and entry.contacts <= 1:
                self.first_contact += sign
        if entry.ever_resolved:
            self.ever_resolved += sign
            self.reopened += sign * entry.reopened
        self.repeat_contact += sign * (entry.contacts > 1)
        if entry.csat is not None:
            self.csat[entry.csat] = self.csat.get(entry.csat, 0) + sign
            if not self.csat[entry.csat] and entry.csat not in CSAT_SCORES:
                del self.csat[entry.csat]
        if entry.nps is not None:
            self.nps[entry.nps] = self.nps.get(entry.nps, 0) + sign
            if not self.nps[entry.nps]:
                del self.nps[entry.nps]

    def figures(self) -> Figures:
        """The group's figures: copies, so a scrape thread never sees a later change."""
        return Figures(
            created=self.created,
            assignment_counted=self.assignment_counted,
            assignment_in_time=self.assignment_in_time,
            response_counted=self.response_counted,
            response_in_time=self.response_in_time,
            resolution_times=array("d", self.times),
            resolved=len(self.times),
            first_contact=self.first_contact,
            ever_resolved=self.ever_resolved,
            reopened=self.reopened,
            repeat_contact=self.repeat_contact,
            csat=dict(self.csat),
            nps_scores=tuple(s for s, n in sorted(self.nps.items()) for _ in range(n)),
        )


class DayKpis:
    """The KPIs of the orders created in one UTC day, kept up to date order by order: pure
    (orders and times in, figures out), the I/O in :class:`TodayKpis`."""

    def __init__(self, start: float) -> None:
        self.start = start
        self._low, self._high = utc(start), utc(start + DAY)
        self._entries: dict[str, Entry] = {}
        self._tallies: dict[tuple[str, str], Tally] = {}
        # (due time, order id, clock) of undecided clocks; stale ones are skipped when due.
        self._dues: list[tuple[datetime, str, ClockKind]] = []
        self._groups: dict[tuple[str, str, str, str], tuple[str, str, str, str]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def day(self) -> date:
        return self._low.date()

    def put(self, order: WorkOrder, policy: ClockPolicy, now: float) -> None:
        """Count ``order`` as it is at ``now``, in place of what it was; an order created on
        another day is left out (or taken out, if it was counted)."""
        if not self._low <= order.created_at < self._high:
            self.drop(order.id)
            return
        entry = entry_of(order, clocks_of(order, policy, now))
        # One tuple per combination of groups, shared by the orders that have it.
        entry = entry._replace(groups=self._groups.setdefault(entry.groups, entry.groups))
        old = self._entries.get(order.id)
        for kind, due in zip(TIMED, (entry.assignment_due, entry.response_due), strict=True):
            if due is not None and (old is None or due != _due(old, kind)):
                heappush(self._dues, (due, order.id, kind))
        self._swap(order.id, old, entry)
        if len(self._dues) > 2 * len(self._entries) + 64:
            self._compact_dues()

    def drop(self, order_id: str) -> None:
        """An order that is gone (purged) or not of this day any more."""
        old = self._entries.get(order_id)
        if old is not None:
            self._swap(order_id, old, None)

    def settle(self, now: float) -> None:
        """Breach the undecided clocks whose due time is past at ``now``
        (``workorders.clocks.advance``: breached once ``now`` is after the due time)."""
        at = utc(now)
        while self._dues and self._dues[0][0] < at:
            due, order_id, kind = heappop(self._dues)
            old = self._entries.get(order_id)
            if old is None or _due(old, kind) != due:
                continue  # met, paused or moved since: that write put the order again
            if kind is ClockKind.ASSIGNMENT:
                new = old._replace(assignment_in_time=False, assignment_due=None)
            else:
                new = old._replace(response_in_time=False, response_due=None)
            self._swap(order_id, old, new)

    def breakdown(self) -> Breakdown:
        """The day's figures, of all orders and per dimension value (``kpi.breakdown``)."""
        by: dict[str, dict[str, Figures]] = {d: {} for d in DIMENSIONS}
        total = Figures()
        for (dimension, name), tally in self._tallies.items():
            if (dimension, name) == ALL:
                total = tally.figures()
            else:
                by[dimension][name] = tally.figures()
        return Breakdown(total=total, by=by)

    def report(self, now: float) -> KpiReport:
        """The day as ``today_report`` gives it at ``now`` (:meth:`settle` first)."""
        self.settle(now)
        day = self.breakdown()
        return KpiReport(start=self.start, end=self.start + DAY, now=now, days={self.day: day},
                         period=day)

    def _compact_dues(self) -> None:
        """Keep only the due times the entries still have: a clock met, paused or moved
        leaves its old one behind, and an order held and resumed all day would pile them."""
        self._dues = [(due, order_id, kind) for order_id, entry in self._entries.items()
                      for kind in TIMED if (due := _due(entry, kind)) is not None]
        heapify(self._dues)

    def _swap(self, order_id: str, old: Entry | None, new: Entry | None) -> None:
        for entry, sign in ((old, -1), (new, 1)):
            if entry is None:
                continue
            for key in (ALL, *zip(DIMENSIONS, entry.groups, strict=True)):
                tally = self._tallies.get(key)
                if tally is None:
                    tally = self._tallies[key] = Tally()
                tally.add(entry, sign)
                if not tally.created:
                    del self._tallies[key]  # a group without orders is not shown
        if new is None:
            del self._entries[order_id]
        else:
            self._entries[order_id] = new


def _due(entry: Entry, kind: ClockKind) -> datetime | None:
    return entry.assignment_due if kind is ClockKind.ASSIGNMENT else entry.response_due


def day_start(now: float) -> float:
    """Midnight (UTC) of the day of ``now``."""
    at = datetime.fromtimestamp(now, UTC)
    return datetime(at.year, at.month, at.day, tzinfo=UTC).timestamp()


# -- the shell: Redis --------------------------------------------------------------------


class OrderSource(Protocol):
    """What the live KPIs read of the work-order store (``WorkOrderStore``)."""

    prefix: str

    @property
    def redis(self) -> Any: ...

    async def created_between(self, start: float, end: float) -> list[WorkOrder]: ...

    async def orders_of(self, ids: Sequence[str]) -> list[WorkOrder]: ...


class ClockSettings(Protocol):
    """The config section the clock policy comes from (``schema.WorkOrdersConfig``)."""

    def clock_policy(self) -> ClockPolicy: ...


@dataclass
class _Read:
    settings: ClockSettings
    policy: ClockPolicy
    day: DayKpis
    last_event: str | None  # the last stream entry read; None: the stream was empty


class TodayKpis:
    """Today's KPIs from Redis, updated from the events since the last read: ``report(now)``
    is ``today_report(store, settings().clock_policy(), now)``, read incrementally.

    ``settings`` is read each time; a new config object (a reload) reads the day whole again
    with its policy. Reads run one at a time on the reactor (the metrics job)."""

    def __init__(self, store: OrderSource, settings: Callable[[], ClockSettings], *,
                 events_batch: int = 1000) -> None:
        self._store = store
        self._settings = settings
        self._batch = events_batch
        self._state: _Read | None = None
        self.full_reads = 0  # how many times the day was read whole (start, day, gap, config)

    async def report(self, now: float) -> KpiReport:
        settings, start = self._settings(), day_start(now)
        state = self._state
        if (state is None or state.settings is not settings or state.day.start != start
                or not await self._catch_up(state, now)):
            state = self._state = await self._read_day(settings, start, now)
        return state.day.report(now)

    async def _read_day(self, settings: ClockSettings, start: float, now: float) -> _Read:
        # The stream's position first: a write after it is read again by the next catch-up.
        self._state = None
        newest = decode_entries(await self._store.redis.xrevrange(self._stream, count=1))
        policy = settings.clock_policy()
        day = DayKpis(start)
        for order in await self._store.created_between(start, start + DAY):
            day.put(order, policy, now)
        self.full_reads += 1
        return _Read(settings, policy, day, newest[0].id if newest else None)

    async def _catch_up(self, state: _Read, now: float) -> bool:
        """Put the orders named by the events since the last read; False if the stream no
        longer holds the last entry read (trimmed or gone): changes may be missing."""
        changed: dict[str, None] = {}  # in the order first seen
        last = state.last_event
        while True:
            page = decode_entries(await self._store.redis.xrange(
                self._stream, min=last or "-", count=self._batch))
            more = len(page) == self._batch
            if last is not None:
                if not page or page[0].id != last:
                    return False
                page = page[1:]  # the entry read last time: XRANGE's bound is inclusive
            for entry in page:
                # A work-order event (``WO...`` kinds) names its order.
                order_id = entry.fields.get("order_id")
                if entry.kind.startswith("WO") and order_id is not None:
                    changed[order_id] = None
                last = entry.id
            if not more:
                break
        ids = list(changed)
        orders = {o.id: o for o in await self._store.orders_of(ids)} if ids else {}
        for order_id in ids:
            order = orders.get(order_id)
            if order is None:
                state.day.drop(order_id)
            else:
                state.day.put(order, state.policy, now)
        state.last_event = last  # only once every change is counted
        return True

    @property
    def _stream(self) -> str:
        return stream_key(self._store.prefix)

