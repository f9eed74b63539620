"""Service-level clocks of a work order, recomputed from its history with time injected."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workorders.calendar import BusinessHours
from workorders.clocks import (
    ClockKind,
    ClockPolicy,
    ClockState,
    advance,
    clocks_of,
    replay,
)
from workorders.model import TRANSITIONS, Event, Policy, Urgency, WorkOrder, apply, create_order

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()  # a Monday
H = 3600.0
POLICY = Policy()
CLOCKS = ClockPolicy()
A, R, S, F = ClockKind.ASSIGNMENT, ClockKind.RESPONSE, ClockKind.RESOLUTION, ClockKind.FEEDBACK
CHANGES = {
    Event.ASSIGN: {"agent": "agent101"},
    Event.HOLD: {"waiting_on": "third_party", "reason": "network operator"},
    Event.CONTACT: {"channel": "phone", "reached": True},
    Event.UPDATE: {"urgency": "urgent"},
    Event.BACK_OFFICE: {"reason": "needs-back-office"},
    Event.REPEAT: {"call_id": "c2"},
    Event.LEGAL_HOLD: {"legal_hold": True, "reason": "court order 12/2026"},
    Event.MERGE: {"into": "7"},
}


def order(urgency: Urgency = Urgency.NORMAL, at: float = T0) -> WorkOrder:
    return create_order("9", "call-9", "+4930555", "Kim", at, POLICY, urgency=urgency)


def then(wo: WorkOrder, event: Event, at: float, **changes: object) -> WorkOrder:
    return apply(wo, event, at, "agent101", POLICY, **(changes or CHANGES.get(event, {})))


def utc(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def test_new_order_runs_assignment_response_and_resolution():
    """Creation starts three clocks with their targets (2 h; 48 h and 120 h for normal);
    feedback waits for a resolution."""
    clocks = clocks_of(order(), CLOCKS, T0 + 60)
    assert {k: clocks[k].state for k in (A, R, S)} == dict.fromkeys((A, R, S), ClockState.RUNNING)
    assert (clocks[A].due, clocks[R].due, clocks[S].due) == (
        utc(T0 + 2 * H), utc(T0 + 48 * H), utc(T0 + 120 * H))
    assert clocks.get(F) is None
    assert not clocks[R].business_hours


@pytest.mark.parametrize(("urgency", "hours"),
                         [(Urgency.URGENT, 1), (Urgency.IMPORTANT, 24), (Urgency.NORMAL, 48)])
def test_response_target_by_urgency(urgency, hours):
    """The response clock is due 1 h, 24 h or 48 h after creation, by urgency."""
    assert clocks_of(order(urgency), CLOCKS, T0)[R].due == utc(T0 + hours * H)


def test_assignment_met_in_time_and_breached_late():
    """Assigned within 2 h: met. Not assigned by then: breached at the due time, and an
    assignment after that leaves it breached (the history shows both)."""
    assert clocks_of(then(order(), Event.ASSIGN, T0 + H), CLOCKS, T0 + 5 * H)[A].state is (
        ClockState.MET)
    late = clocks_of(then(order(), Event.ASSIGN, T0 + 3 * H), CLOCKS, T0 + 5 * H)[A]
    assert late.state is ClockState.BREACHED and late.breached_at == utc(T0 + 2 * H)
    assert [m.what for m in late.history] == ["start", "breach", "met"]
    assert clocks_of(order(), CLOCKS, T0 + 2 * H)[A].state is ClockState.RUNNING  # due: in time


def test_unassign_reopens_the_assignment_clock_to_its_first_due_time():
    """An agent giving the order back undoes the assignment: running to the first due time
    if still before it, breached at once if after."""
    assigned = then(order(), Event.ASSIGN, T0 + 600)
    early = clocks_of(then(assigned, Event.UNASSIGN, T0 + H), CLOCKS, T0 + H)[A]
    assert (early.state, early.due) == (ClockState.RUNNING, utc(T0 + 2 * H))
    late = clocks_of(then(assigned, Event.UNASSIGN, T0 + 3 * H), CLOCKS, T0 + 4 * H)[A]
    assert (late.state, late.breached_at) == (ClockState.BREACHED, utc(T0 + 3 * H))


def test_response_met_by_a_reached_contact_not_by_an_unanswered_one():
    """Calling the customer back and reaching them is the response; a voicemail is not."""
    wo = then(order(Urgency.URGENT), Event.ASSIGN, T0 + 60)
    missed = then(wo, Event.CONTACT, T0 + 600, channel="phone", reached=False)
    assert clocks_of(missed, CLOCKS, T0 + 900)[R].state is ClockState.RUNNING
    reached = then(missed, Event.CONTACT, T0 + 1200)
    clock = clocks_of(reached, CLOCKS, T0 + 2 * H)[R]
    assert (clock.state, clock.met_at) == (ClockState.MET, utc(T0 + 1200))
    assert clock.history[-1].note == "contact by phone"


def test_resolution_meets_response_and_resolution_and_starts_feedback():
    """Resolving answers the caller and resolves the order; the feedback clock starts then,
    due 24 h later."""
    wo = then(then(then(order(), Event.ASSIGN, T0 + 60), Event.START, T0 + 120),
              Event.RESOLVE, T0 + 10 * H)
    clocks = clocks_of(wo, CLOCKS, T0 + 11 * H)
    assert clocks[R].state is clocks[S].state is ClockState.MET
    assert (clocks[F].state, clocks[F].due) == (ClockState.RUNNING, utc(T0 + 34 * H))


def resolved(at: float = T0 + 10 * H) -> WorkOrder:
    return then(then(then(order(), Event.ASSIGN, T0 + 60), Event.START, T0 + 120),
                Event.RESOLVE, at)


def test_feedback_met_by_a_reached_contact_within_24_hours():
    """A reached contact after the resolution closes the follow-up duty; none by 24 h
    later breaches it, and a closed order still owes it."""
    met = clocks_of(then(resolved(), Event.CONTACT, T0 + 20 * H), CLOCKS, T0 + 40 * H)[F]
    assert (met.state, met.met_at) == (ClockState.MET, utc(T0 + 20 * H))
    closed = then(resolved(), Event.CLOSE, T0 + 11 * H)
    late = clocks_of(closed, CLOCKS, T0 + 40 * H)[F]
    assert (late.state, late.breached_at) == (ClockState.BREACHED, utc(T0 + 34 * H))


def test_resolution_breached_when_not_resolved_in_time():
    """An urgent order unresolved 8 h after creation breaches its resolution clock."""
    wo = then(then(order(Urgency.URGENT), Event.ASSIGN, T0 + 60), Event.CONTACT, T0 + 600)
    clocks = clocks_of(wo, CLOCKS, T0 + 9 * H)
    assert clocks[R].state is ClockState.MET
    assert (clocks[S].state, clocks[S].breached_at) == (ClockState.BREACHED, utc(T0 + 8 * H))


def test_hold_pauses_response_and_resolution_and_resume_shifts_their_due_times():
    """Five hours on hold: response and resolution are paused (no due time, no breach even
    long after the old due time) and due five hours later after the resume."""
    wo = then(then(order(Urgency.URGENT), Event.ASSIGN, T0 + 60), Event.HOLD, T0 + 0.5 * H)
    paused = clocks_of(wo, CLOCKS, T0 + 5 * H)
    assert paused[R].state is paused[S].state is ClockState.PAUSED
    assert paused[R].due is None
    assert paused[R].history[-1].note == "third_party: network operator"
    resumed = clocks_of(then(wo, Event.RESUME, T0 + 5.5 * H), CLOCKS, T0 + 5.5 * H)
    assert resumed[R].state is ClockState.RUNNING
    assert resumed[R].due == utc(T0 + 6 * H)
    assert resumed[S].due == utc(T0 + 13 * H)
    assert [m.what for m in resumed[R].history] == ["start", "pause", "resume"]


def test_hold_after_a_breach_keeps_the_breach():
    """A breach is history: putting the order on hold afterwards does not undo it."""
    wo = then(then(order(Urgency.URGENT), Event.ASSIGN, T0 + 60), Event.HOLD, T0 + 2 * H)
    clock = clocks_of(wo, CLOCKS, T0 + 3 * H)[R]
    assert (clock.state, clock.breached_at) == (ClockState.BREACHED, utc(T0 + H))


def test_urgency_change_moves_the_due_times_from_the_clock_start():
    """Raising normal to urgent makes response due 1 h after creation (breached if that has
    passed) and resolution 8 h after."""
    wo = then(then(order(), Event.ASSIGN, T0 + 60), Event.UPDATE, T0 + 0.5 * H)
    clocks = clocks_of(wo, CLOCKS, T0 + 0.75 * H)
    assert (clocks[R].due, clocks[S].due) == (utc(T0 + H), utc(T0 + 8 * H))
    assert clocks.urgency is Urgency.URGENT
    assert clocks_of(wo, CLOCKS, T0 + 2 * H)[R].state is ClockState.BREACHED


def test_reopen_restarts_response_and_resolution_and_assignment_when_closed():
    """Reopening a resolved order restarts response and resolution from the reopen; a
    closed order going back to pending restarts the assignment clock too."""
    reopened = then(resolved(), Event.REOPEN, T0 + 20 * H)
    clocks = clocks_of(reopened, CLOCKS, T0 + 21 * H)
    assert (clocks[R].state, clocks[R].due) == (ClockState.RUNNING, utc(T0 + 68 * H))
    assert clocks[A].state is ClockState.MET
    closed = then(then(resolved(), Event.CLOSE, T0 + 11 * H), Event.REOPEN, T0 + 20 * H)
    again = clocks_of(closed, CLOCKS, T0 + 21 * H)
    assert (again[A].state, again[A].due) == (ClockState.RUNNING, utc(T0 + 22 * H))
    assert [m.what for m in again[A].history] == ["start", "met", "start"]


def test_business_hours_clock_says_so_and_pauses_across_a_weekend():
    """Counted in Berlin office hours: the clock is flagged business_hours; an urgent order
    (1 h response, 8 h resolution) raised Friday 15:00 on hold from 15:30 to Monday 09:00
    is due for response Monday 09:30 and for resolution Monday 16:30 (7.5 h left)."""
    berlin = ZoneInfo("Europe/Berlin")
    office = BusinessHours(berlin, {d: ((8 * 60, 17 * 60),) for d in range(5)})
    policy = ClockPolicy(calendar=office, business_clocks=frozenset({R, S}))
    start = datetime(2026, 3, 6, 15, 0, tzinfo=berlin).timestamp()
    wo = then(order(Urgency.URGENT, start), Event.ASSIGN, start + 60)
    wo = then(wo, Event.HOLD, start + 0.5 * H)
    monday = datetime(2026, 3, 9, 9, 0, tzinfo=berlin).timestamp()
    clocks = clocks_of(then(wo, Event.RESUME, monday), policy, monday)
    assert clocks[R].business_hours and not clocks[A].business_hours
    assert clocks[R].due == datetime(2026, 3, 9, 9, 30, tzinfo=berlin)
    assert clocks[S].due == datetime(2026, 3, 9, 16, 30, tzinfo=berlin)
    assert clocks[A].due == utc(start + 2 * H)  # 24x7: assignment is not in business_clocks


def test_clock_as_json():
    """A clock's JSON view: name, state, due, target, business-hours flag and history."""
    data = clocks_of(order(), CLOCKS, T0)[A].to_dict()
    assert data == {"clock": "assignment", "state": "running", "due": "2026-03-02T11:00:00Z",
                    "target_s": 7200.0, "business_hours": False, "met_at": None,
                    "breached_at": None,
                    "history": [{"time": "2026-03-02T09:00:00Z", "what": "start"}]}


# Random lives of an order: each step an event (taken when the status accepts it) after a
# random delay, so holds, breaches, reopens and urgency changes interleave in every order.
STEPS = st.lists(
    st.tuples(st.sampled_from([*Event]), st.floats(0, 30 * H), st.sampled_from([*Urgency])),
    max_size=25,
)


def life(steps: list[tuple[Event, float, Urgency]]) -> WorkOrder:
    wo = order()
    at = T0
    for event, delay, urgency in steps:
        if event not in TRANSITIONS[wo.status]:
            continue
        at += delay
        changes = {"urgency": urgency.value} if event is Event.UPDATE else CHANGES.get(event, {})
        wo = apply(wo, event, at, "agent101", POLICY, **changes)
    return wo


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, cut=st.integers(0, 30), later=st.floats(0, 200 * H))
def test_replay_from_any_prefix_equals_replay_of_the_whole(steps, cut, later):
    """Clocks folded from a prefix of the history and then the rest equal the clocks folded
    from the whole history, at any observation time: a replay or a second instance agrees."""
    wo = life(steps)
    history = wo.history
    cut = min(cut, len(history) - 1) + 1  # the prefix holds at least the creation
    now = history[-1].time + timedelta(seconds=later)
    whole = advance(replay(history, CLOCKS), now, CLOCKS)
    continued = advance(replay(history[cut:], CLOCKS, start=replay(history[:cut], CLOCKS)),
                        now, CLOCKS)
    assert continued == whole


@settings(max_examples=200, deadline=None)
@given(steps=STEPS, first=st.floats(0, 100 * H), second=st.floats(0, 100 * H))
def test_looking_earlier_changes_nothing_later(steps, first, second):
    """Advancing the clocks to an earlier time before a later one gives the same clocks as
    advancing straight to the later one: observing does not change the answer."""
    board = replay(life(steps).history, CLOCKS)
    early, late = sorted((board.at + timedelta(seconds=first), board.at +
                          timedelta(seconds=second)))
    assert advance(advance(board, early, CLOCKS), late, CLOCKS) == advance(board, late, CLOCKS)
