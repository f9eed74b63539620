"""Service-level clocks of a work order, recomputed from its history: pure, time injected.

Four clocks per order, each with a due time, a state and its own history (``ClockMark``):

==========  =====================================  ===========================================
clock       starts                                 met by
==========  =====================================  ===========================================
assignment  creation; reopen of a closed order     ``assign`` (an ``unassign`` undoes it)
response    creation; every reopen                 a reached ``contact`` or ``resolve``
resolution  creation; every reopen                 ``resolve``
feedback    every ``resolve``                      a reached ``contact`` after the resolution
==========  =====================================  ===========================================

Targets: ``assign_within``; ``response`` and ``resolution`` by urgency (a change of urgency
moves the due time, counted from the clock's start); ``feedback_within``. The response and
resolution clocks pause while the order is ``on_hold`` and go on where they stopped on
``resume``. A clock is ``breached`` once time passes its due time unmet (met later, it stays
breached: the breach is history); ``met`` when met in time; ``paused``; else ``running``.

Each clock counts in the calendar of ``ClockPolicy`` when it is one of ``business_clocks``
(``Clock.business_hours`` then says so), else 24x7.

The state is a fold over ``WorkOrder.history``: ``replay(entries, policy)`` then
``advance(clocks, now)``. Folding a prefix and then the rest gives the same clocks as folding
the whole, and advancing to an earlier time first changes nothing, so a replay, a correction
or a second instance always agrees.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cached_property
from typing import Any

from workorders.calendar import ALWAYS_OPEN, Calendar
from workorders.model import Event, HistoryEntry, Policy, Status, Urgency, WorkOrder, utc


class ClockKind(StrEnum):
    ASSIGNMENT = "assignment"
    RESPONSE = "response"
    RESOLUTION = "resolution"
    FEEDBACK = "feedback"


class ClockState(StrEnum):
    RUNNING = "running"
    PAUSED = "paused"
    MET = "met"
    BREACHED = "breached"


#: The clocks an order's creation starts.
FIRST_CLOCKS = (ClockKind.ASSIGNMENT, ClockKind.RESPONSE, ClockKind.RESOLUTION)

#: The clocks that stop while the order waits on the customer or a third party.
PAUSED_ON_HOLD = frozenset({ClockKind.RESPONSE, ClockKind.RESOLUTION})


@dataclass(frozen=True)
class ClockPolicy:
    """Targets in seconds (``schema.WorkOrdersConfig.clock_policy()``) and the calendar."""

    assign_within: float = 2 * 3600.0
    response: Mapping[Urgency, float] = field(default_factory=lambda: dict(Policy().response))
    resolution: Mapping[Urgency, float] = field(
        default_factory=lambda: {
            Urgency.URGENT: 8 * 3600.0,
            Urgency.IMPORTANT: 72 * 3600.0,
            Urgency.NORMAL: 120 * 3600.0,
        }
    )
    feedback_within: float = 24 * 3600.0
    calendar: Calendar = ALWAYS_OPEN
    business_clocks: frozenset[ClockKind] = frozenset(ClockKind)

    def target(self, kind: ClockKind, urgency: Urgency) -> timedelta:
        # Kept once worked out: every creation asks for three (a policy is immutable).
        known = self._targets.get((kind, urgency))
        if known is None:
            seconds = {
                ClockKind.ASSIGNMENT: self.assign_within,
                ClockKind.RESPONSE: self.response[urgency],
                ClockKind.RESOLUTION: self.resolution[urgency],
                ClockKind.FEEDBACK: self.feedback_within,
            }[kind]
            known = self._targets[(kind, urgency)] = timedelta(seconds=seconds)
        return known

    @cached_property
    def _targets(self) -> dict[tuple[ClockKind, Urgency], timedelta]:
        return {}

    def calendar_of(self, kind: ClockKind) -> Calendar:
        return self.calendar if kind in self.business_clocks else ALWAYS_OPEN


@dataclass(frozen=True)
class ClockMark:
    """One line of a clock's history: start, pause, resume, retarget, met, breach, undo."""

    time: datetime
    what: str
    note: str = ""


@dataclass(frozen=True)
class Clock:
    """One clock of one order: the facts, from which ``state`` and ``due`` follow."""

    kind: ClockKind
    target: timedelta
    business_hours: bool  # counted only in the calendar's business hours
    started_at: datetime
    counted: timedelta = timedelta(0)  # counted time before ``since``
    since: datetime | None = None  # start of the running stretch; None: paused or met
    due: datetime | None = None  # None while paused
    met_at: datetime | None = None
    breached_at: datetime | None = None
    history: tuple[ClockMark, ...] = ()

    @property
    def state(self) -> ClockState:
        if self.breached_at is not None:
            return ClockState.BREACHED
        if self.met_at is not None:
            return ClockState.MET
        return ClockState.RUNNING if self.since is not None else ClockState.PAUSED

    def to_dict(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return None if at is None else at.isoformat().replace("+00:00", "Z")

        return {
            "clock": self.kind.value,
            "state": self.state.value,
            "due": iso(self.due),
            "target_s": self.target.total_seconds(),
            "business_hours": self.business_hours,
            "met_at": iso(self.met_at),
            "breached_at": iso(self.breached_at),
            "history": [
                {"time": iso(m.time), "what": m.what, **({"note": m.note} if m.note else {})}
                for m in self.history
            ],
        }


@dataclass(frozen=True)
class Clocks:
    """All clocks of one order as of ``at``, with what the history said so far."""

    at: datetime
    urgency: Urgency = Urgency.NORMAL
    status: Status = Status.PENDING
    clocks: Mapping[ClockKind, Clock] = field(default_factory=dict)

    def __getitem__(self, kind: ClockKind) -> Clock:
        return self.clocks[kind]

    def get(self, kind: ClockKind) -> Clock | None:
        return self.clocks.get(kind)


def clocks_of(order: WorkOrder, policy: ClockPolicy, now: float) -> Clocks:
    """The order's clocks at ``now``, from its history alone."""
    return advance(replay(order.history, policy), utc(now), policy)


def replay(
    entries: Iterable[HistoryEntry], policy: ClockPolicy, start: Clocks | None = None
) -> Clocks:
    """Fold history entries (in order) into the clocks, from ``start`` or from nothing."""
    clocks = start
    for entry in entries:
        clocks = step(clocks, entry, policy)
    if clocks is None:
        raise ValueError("no history: an order's history starts with its creation")
    return clocks


def step(clocks: Clocks | None, entry: HistoryEntry, policy: ClockPolicy) -> Clocks:
    """The clocks after one history entry: time first moves to the entry, then it applies."""
    at = entry.time
    if clocks is None or entry.event == "create":
        urgency = Urgency(entry.details.get("urgency", Urgency.NORMAL))
        board = Clocks(at=at, urgency=urgency)
        return _start(board, at, policy, *FIRST_CLOCKS)
    board = advance(clocks, at, policy)
    if "to" in entry.details:
        board = replace(board, status=Status(entry.details["to"]))
    try:
        event = Event(entry.event)
    except ValueError:
        return board  # a newer writer's event: it does not move a clock we know
    details = entry.details
    if event is Event.ASSIGN:
        return _meet(board, at, "assign", ClockKind.ASSIGNMENT)
    if event is Event.UNASSIGN:
        return _undo(board, at, ClockKind.ASSIGNMENT)
    if event is Event.HOLD:
        note = f"{details.get('waiting_on', '')}: {details.get('reason', '')}"
        return _change(board, PAUSED_ON_HOLD, lambda c: _pause(c, at, policy, note))
    if event is Event.RESUME:
        return _change(board, PAUSED_ON_HOLD, lambda c: _resume(c, at, policy))
    if event is Event.CONTACT and details.get("reached") is True:
        return _meet(board, at, f"contact by {details.get('channel')}",
                     ClockKind.RESPONSE, ClockKind.FEEDBACK)
    if event is Event.RESOLVE:
        board = _meet(board, at, "resolve", ClockKind.RESPONSE, ClockKind.RESOLUTION)
        return _start(board, at, policy, ClockKind.FEEDBACK)
    if event is Event.REOPEN:
        kinds = [ClockKind.RESPONSE, ClockKind.RESOLUTION]
        if board.status is Status.PENDING:
            kinds.append(ClockKind.ASSIGNMENT)
        return _start(board, at, policy, *kinds)
    if event is Event.UPDATE and "urgency" in details:
        urgency = Urgency(details["urgency"])
        board = replace(board, urgency=urgency)
        return _change(board, {ClockKind.RESPONSE, ClockKind.RESOLUTION},
                       lambda c: _retarget(c, at, policy.target(c.kind, urgency), policy))
    return board


def advance(clocks: Clocks, now: datetime, policy: ClockPolicy) -> Clocks:
    """The clocks at ``now``: every running clock whose due time has passed is breached then.

    Advancing to a time before ``clocks.at`` changes nothing (time never runs backwards).
    """
    if now <= clocks.at:
        return clocks
    board = replace(clocks, at=now)
    return _change(board, set(ClockKind), lambda c: _breach_if_due(c, now))


def _breach_if_due(clock: Clock, now: datetime) -> Clock:
    if (clock.since is None or clock.due is None or clock.met_at is not None
            or clock.breached_at is not None or now <= clock.due):
        return clock
    return replace(clock, breached_at=clock.due,
                   history=(*clock.history, ClockMark(clock.due, "breach")))


def _change(board: Clocks, kinds: Iterable[ClockKind], change: Callable[[Clock], Clock]) -> Clocks:
    clocks = dict(board.clocks)
    for kind in kinds:
        if kind in clocks:
            clocks[kind] = change(clocks[kind])
    return replace(board, clocks=clocks)


def _start(board: Clocks, at: datetime, policy: ClockPolicy, *kinds: ClockKind) -> Clocks:
    """(Re)start clocks at ``at``: a reopen or a new resolution is a new promise."""
    clocks = dict(board.clocks)
    for kind in kinds:
        calendar = policy.calendar_of(kind)
        target = policy.target(kind, board.urgency)
        old = clocks.get(kind)
        clocks[kind] = Clock(
            kind=kind, target=target, business_hours=calendar.business_hours_only,
            started_at=at, since=at, due=calendar.add_business_time(at, target),
            history=(*(old.history if old else ()), ClockMark(at, "start")),
        )
    # The board's constructor, not dataclasses.replace: the same board, cheaper (every
    # creation starts three clocks).
    return Clocks(at=board.at, urgency=board.urgency, status=board.status, clocks=clocks)


def _meet(board: Clocks, at: datetime, note: str, *kinds: ClockKind) -> Clocks:
    def meet(clock: Clock) -> Clock:
        if clock.met_at is not None:
            return clock
        return replace(clock, met_at=at, since=None,
                       history=(*clock.history, ClockMark(at, "met", note)))

    return _change(board, kinds, meet)


def _undo(board: Clocks, at: datetime, kind: ClockKind) -> Clocks:
    """An unassigned order must be taken again, by the due time of the first assignment."""
    def undo(clock: Clock) -> Clock:
        if clock.met_at is None:
            return clock
        undone = replace(clock, met_at=None, since=clock.started_at, counted=timedelta(0),
                         history=(*clock.history, ClockMark(at, "undone", "unassign")))
        if clock.due is not None and at > clock.due and clock.breached_at is None:
            # Late already: the breach is now, not at a due time when it was still met.
            return replace(undone, breached_at=at,
                           history=(*undone.history, ClockMark(at, "breach")))
        return undone

    return _change(board, [kind], undo)


def _pause(clock: Clock, at: datetime, policy: ClockPolicy, note: str) -> Clock:
    if clock.since is None or clock.met_at is not None:
        return clock
    counted = clock.counted + policy.calendar_of(clock.kind).business_time_between(
        clock.since, at)
    return replace(clock, counted=counted, since=None, due=None,
                   history=(*clock.history, ClockMark(at, "pause", note)))


def _resume(clock: Clock, at: datetime, policy: ClockPolicy) -> Clock:
    if clock.since is not None or clock.met_at is not None:
        return clock
    resumed = replace(clock, since=at, history=(*clock.history, ClockMark(at, "resume")))
    return replace(resumed, due=_due(resumed, policy))


def _retarget(clock: Clock, at: datetime, target: timedelta, policy: ClockPolicy) -> Clock:
    if clock.met_at is not None or target == clock.target:
        return clock
    changed = replace(clock, target=target,
                      history=(*clock.history, ClockMark(at, "retarget", str(target))))
    return replace(changed, due=_due(changed, policy) if changed.since else None)


def _due(clock: Clock, policy: ClockPolicy) -> datetime:
    """When the target is reached if the clock runs on from ``since`` without a pause."""
    assert clock.since is not None
    left = max(clock.target - clock.counted, timedelta(0))
    return policy.calendar_of(clock.kind).add_business_time(clock.since, left)
