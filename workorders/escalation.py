"""Escalation of work orders: which SLA warnings and breaches are due, as pure data.

Each running clock (``workorders.clocks``) owes two escalations: a *warning* when its counted
time reaches ``warn_at_percent`` of the target (80 % unless configured, per clock kind), and
the *breach* at its due time. Each has a stable identity, ``Escalation.key`` within the
order: clock, level and the due time it refers to. So a replay computes the same warning
again (and finds it recorded), while a hold, a reopen or a change of urgency that moves the
due time owes a new one. A breach refers to the time the clock was breached, which a later
change of target does not move.

The order records what was dealt with in ``WorkOrder.escalations`` (those keys), written by
the watch (``workorders.watch``) in the same atomic step as the events, so the order alone
says what it still owes: :func:`owed`. That makes the ``wo:due`` index (:class:`DueClocks`,
scored by the next time anything falls due) a pure function of the order like every other
index, whoever writes the order.

Owed escalations are computed from the clocks as the history leaves them (``replay``, not
advanced to ``now``): the store's indexer and the watch see the same list whenever they run.
At ``now`` (:func:`due_at`) the ones whose time has come are fired, except a warning whose
breach is due too: it is recorded as passed over (a warning after the breach says nothing).
A clock met late still owes its breach: the breach happened even if nobody looked in time.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from workorders.calendar import Calendar
from workorders.clocks import FIRST_CLOCKS, Clock, ClockKind, ClockPolicy, Clocks, replay, step
from workorders.model import HistoryEntry, Urgency, WorkOrder, utc

#: The index of orders with something still to escalate (``workorders.indexes``).
DUE_INDEX = "wo:due"


class Level(StrEnum):
    WARNING = "warning"  # warn_at_percent of the target counted
    BREACH = "breach"  # the due time passed unmet


#: How a breach raises the order's urgency: one step (normal -> important -> urgent), or up
#: to the urgency named. Never lowered.
Raise = Urgency | Literal["step"]

#: Urgencies from the least to the most pressing.
_RANK = (Urgency.NORMAL, Urgency.IMPORTANT, Urgency.URGENT)


@dataclass(frozen=True)
class EscalationPolicy:
    """When warnings fall due, and which breaches raise the urgency
    (``schema.EscalationSettings.policy()``)."""

    # Percent of each clock's target; 0: no warning for that clock, only its breach.
    warn_at_percent: Mapping[ClockKind, int] = field(
        default_factory=lambda: dict.fromkeys(ClockKind, 80)
    )
    raise_urgency_on_breach: Mapping[ClockKind, Raise] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for kind, percent in self.warn_at_percent.items():
            if not 0 <= percent < 100:
                raise ValueError(f"warn_at_percent of {kind.value}: {percent} is not in 0..99")

    def percent(self, kind: ClockKind) -> int:
        return self.warn_at_percent.get(kind, 0)

    def raised(self, kind: ClockKind, urgency: Urgency) -> Urgency | None:
        """The urgency a breach of ``kind`` raises ``urgency`` to; None: it stays."""
        how = self.raise_urgency_on_breach.get(kind)
        if how is None:
            return None
        rank = _RANK.index(urgency)
        goal = min(rank + 1, len(_RANK) - 1) if how == "step" else _RANK.index(Urgency(how))
        return _RANK[goal] if goal > rank else None


@dataclass(frozen=True)
class Escalation:
    """One warning or breach of one clock of one order."""

    order_id: str
    clock: ClockKind
    level: Level
    due: datetime  # the due time it refers to (part of its identity)
    at: datetime  # when it falls due
    percent: int  # of the target: the warning's, 100 for the breach
    target: timedelta
    business_hours: bool
    clock_open: bool  # the clock is not met yet (a breach found late may have been met since)

    @property
    def key(self) -> str:
        """Its identity within the order, as ``WorkOrder.escalations`` records it."""
        return _key(self.clock, self.level, self.due)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """Order, clock, level, due time: the same warning wherever and whenever computed."""
        return (self.order_id, self.clock.value, self.level.value, iso(self.due))


@dataclass(frozen=True)
class Due:
    """What a sweep at ``now`` does to one order."""

    fire: tuple[Escalation, ...]  # events, the supervisor's list, the counter
    passed: tuple[Escalation, ...]  # warnings overtaken by their breach: recorded, not fired
    escalations: tuple[str, ...]  # the order's record afterwards
    next_at: datetime | None  # the next time anything falls due (the index score)
    raise_to: Urgency | None  # the urgency the fired breaches raise the order to


def owed(order: WorkOrder, clocks: ClockPolicy, policy: EscalationPolicy) -> tuple[Escalation, ...]:
    """Every escalation the order's clocks owe and the order has not recorded, soonest first."""
    done = frozenset(order.escalations)
    items = [
        Escalation(
            order_id=order.id, clock=clock.kind, level=level, due=due, at=at, percent=percent,
            target=clock.target, business_hours=clock.business_hours,
            clock_open=clock.met_at is None,
        )
        for clock, level, due, at, percent in _schedule(order, clocks, policy)
        if not done or _key(clock.kind, level, due) not in done
    ]
    return tuple(sorted(items, key=lambda e: (e.at, e.clock, e.level)))


def due_at(
    order: WorkOrder, clocks: ClockPolicy, policy: EscalationPolicy, now: float
) -> Due:
    """The escalations of ``order`` that fall due by ``now``, and what follows from them."""
    at = utc(now)
    due = [item for item in owed(order, clocks, policy) if item.at <= at]
    breached = {item.clock for item in due if item.level is Level.BREACH}
    fire = tuple(i for i in due if i.level is Level.BREACH or i.clock not in breached)
    passed = tuple(i for i in due if i.level is Level.WARNING and i.clock in breached)
    recorded = (*order.escalations, *(item.key for item in (*fire, *passed)))
    goals = [
        goal for item in fire if item.level is Level.BREACH and item.clock_open
        if (goal := policy.raised(item.clock, order.urgency)) is not None
    ]
    return Due(
        fire=fire,
        passed=passed,
        escalations=recorded,
        next_at=next_due(replace(order, escalations=recorded), clocks, policy),
        raise_to=max(goals, key=_RANK.index) if goals else None,
    )


def next_due(
    order: WorkOrder, clocks: ClockPolicy, policy: EscalationPolicy, board: Clocks | None = None
) -> datetime | None:
    """When the next owed escalation falls due (possibly past); None when nothing is owed.
    ``board``: the order's clocks as its history leaves them, when known already."""
    done = frozenset(order.escalations)
    return min(
        (at for clock, level, due, at, _ in _schedule(order, clocks, policy, board)
         if not done or _key(clock.kind, level, due) not in done),
        default=None,
    )


@dataclass(frozen=True)
class DueClocks:
    """The ``wo:due`` indexer (``workorders.indexes``): the order scored by the next time a
    warning or a breach falls due, absent when it owes none.

    The store asks it about an order before and after each write; the order after is the
    order before plus one history entry (the same entry objects), so the clocks of the last
    few histories are kept and a write costs one step instead of a second replay.
    """

    clocks: ClockPolicy = field(default_factory=ClockPolicy)
    policy: EscalationPolicy = field(default_factory=EscalationPolicy)
    recent: int = 256  # histories whose clocks are kept
    _boards: OrderedDict[int, tuple[HistoryEntry, int, Clocks]] = field(
        default_factory=OrderedDict, init=False, compare=False, repr=False
    )

    _first: dict[Urgency, tuple[tuple[Calendar, timedelta], ...]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def __call__(self, order: WorkOrder) -> Mapping[str, float]:
        if not order.history:
            return {}
        if len(order.history) == 1 and not order.escalations:
            at: datetime | None = self.first_due(order.history[0])  # every creation
        else:
            at = next_due(order, self.clocks, self.policy, self._board(order.history))
        return {} if at is None else {DUE_INDEX: at.timestamp()}

    def first_due(self, creation: HistoryEntry) -> datetime:
        """``next_due`` of an order whose history is ``creation`` alone, with nothing
        escalated yet, without replaying it: what every creation asks (a fifth of its
        client CPU as a replay and a schedule).

        The creation starts the assignment, response and resolution clocks at its time, from
        zero: each owes its breach at start + target and, with a percentage, its warning at
        start + that share of the target, earlier. Counted time only grows with time
        (``add_business_time`` is monotonic), so the earliest of them all is, for each
        calendar, start + the shortest of those durations in it (the tests compare it with
        the replay)."""
        urgency = Urgency(creation.details.get("urgency", Urgency.NORMAL))
        spans = self._first.get(urgency)
        if spans is None:
            spans = self._first[urgency] = self._first_spans(urgency)
        return min(calendar.add_business_time(creation.time, span) for calendar, span in spans)

    def _first_spans(self, urgency: Urgency) -> tuple[tuple[Calendar, timedelta], ...]:
        """For each calendar the first clocks count in, the shortest time to their first
        warning or breach."""
        spans: list[tuple[Calendar, timedelta]] = []
        for kind in FIRST_CLOCKS:
            target = self.clocks.target(kind, urgency)
            percent = self.policy.percent(kind)
            span = target * percent / 100 if percent else target
            calendar = self.clocks.calendar_of(kind)
            known = next((n for n, (c, _) in enumerate(spans) if c is calendar), None)
            if known is None:
                spans.append((calendar, span))
            else:
                spans[known] = (calendar, min(spans[known][1], span))
        return tuple(spans)

    def _board(self, history: tuple[HistoryEntry, ...]) -> Clocks:
        """The clocks after ``history``: kept, one step from kept ones, or replayed."""
        board = self._kept(history)
        if board is None:
            before = self._kept(history[:-1]) if len(history) > 1 else None
            board = (step(before, history[-1], self.clocks) if before is not None
                     else replay(history, self.clocks))
            self._boards[id(history[-1])] = (history[-1], len(history), board)
            while len(self._boards) > self.recent:
                self._boards.popitem(last=False)
        return board

    def _kept(self, history: tuple[HistoryEntry, ...]) -> Clocks | None:
        # Keyed by the last entry object (kept alive here, so its id is not reused): the
        # entries before it are the ones it was appended to.
        kept = self._boards.get(id(history[-1]))
        if kept is None or kept[0] is not history[-1] or kept[1] != len(history):
            return None
        return kept[2]


def iso(at: datetime) -> str:
    """The form times take in keys and events (``2026-11-28T12:00:00.000000Z``)."""
    return at.isoformat(timespec="microseconds").replace("+00:00", "Z")


#: One owed escalation before it is dressed as an ``Escalation``: the clock, the level, the
#: due time it refers to, when it falls due, the percentage of the target.
_Owed = tuple[Clock, Level, datetime, datetime, int]


def _schedule(
    order: WorkOrder, clocks: ClockPolicy, policy: EscalationPolicy, board: Clocks | None = None
) -> list[_Owed]:
    """What the clocks owe, recorded or not (cheap: the indexer runs it on every write)."""
    if not order.history:
        return []
    owed: list[_Owed] = []
    if board is None:
        board = replay(order.history, clocks)
    for clock in board.clocks.values():
        if clock.breached_at is not None:
            owed.append((clock, Level.BREACH, clock.breached_at, clock.breached_at, 100))
            continue
        if clock.since is None or clock.due is None or clock.met_at is not None:
            continue  # paused or met in time: nothing to say
        owed.append((clock, Level.BREACH, clock.due, clock.due, 100))
        percent = policy.percent(clock.kind)
        if percent:
            # Counted time reaches the percentage: from the running stretch, or at once when
            # it was reached before a pause (the due time moved: a new warning).
            left = max(clock.target * percent / 100 - clock.counted, _ZERO)
            warn = clocks.calendar_of(clock.kind).add_business_time(clock.since, left)
            owed.append((clock, Level.WARNING, clock.due, min(warn, clock.due), percent))
    return owed


_ZERO = timedelta(0)


def _key(clock: ClockKind, level: Level, due: datetime) -> str:
    return f"{clock.value}:{level.value}:{iso(due)}"
