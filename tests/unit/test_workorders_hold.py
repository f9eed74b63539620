"""On hold and logged contacts in the work order lifecycle (workorders.model)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from workorders.model import (
    Event,
    Policy,
    Status,
    TransitionRefused,
    WorkOrder,
    WorkOrderError,
    apply,
    create_order,
    held_from,
    overdue,
    utc,
)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).timestamp()
HOUR = 3600.0
POLICY = Policy()
WAIT = {"waiting_on": "customer", "reason": "meter reading"}


def order_at(*events: Event) -> WorkOrder:
    order = create_order("7", "call-7", "+4930123", "Lee", T0, POLICY)
    for n, event in enumerate(events, start=1):
        changes = {Event.ASSIGN: {"agent": "agent101"}, Event.HOLD: WAIT}.get(event, {})
        order = apply(order, event, T0 + n * 60, "agent101", POLICY, **changes)
    return order


@pytest.mark.parametrize("events", [(Event.ASSIGN,), (Event.ASSIGN, Event.START)])
def test_resume_goes_back_to_the_status_the_hold_left(events):
    """A hold from assigned resumes to assigned, one from in_progress to in_progress; the
    history names both steps with their from/to and the hold keeps its reason."""
    before = order_at(*events)
    held = apply(before, Event.HOLD, T0 + HOUR, "agent101", POLICY, **WAIT)
    assert held.status is Status.ON_HOLD
    assert held_from(held) is before.status
    assert held.history[-1].details == {**WAIT, "from": before.status.value, "to": "on_hold"}
    resumed = apply(held, Event.RESUME, T0 + 2 * HOUR, "agent101", POLICY)
    assert resumed.status is before.status
    assert resumed.history[-1].details == {"from": "on_hold", "to": before.status.value}


def test_handover_while_on_hold_keeps_it_on_hold():
    """Another agent may take over an order while it waits; it stays on hold."""
    held = apply(order_at(Event.ASSIGN), Event.HOLD, T0 + HOUR, "a", POLICY, **WAIT)
    moved = apply(held, Event.ASSIGN, T0 + 2 * HOUR, "sup", POLICY, agent="agent102")
    assert (moved.status, moved.agent) == (Status.ON_HOLD, "agent102")


@pytest.mark.parametrize(
    ("events", "event"),
    [((), Event.HOLD), ((Event.ASSIGN, Event.START, Event.RESOLVE), Event.HOLD),
     ((Event.ASSIGN,), Event.RESUME), ((Event.ASSIGN, Event.HOLD), Event.HOLD),
     ((Event.ASSIGN, Event.HOLD), Event.RESOLVE), ((Event.ASSIGN, Event.HOLD), Event.START)],
)
def test_hold_and_resume_outside_their_states_are_refused(events, event):
    """Only assigned and in_progress orders go on hold, only held ones resume, and a held
    order is resumed before it is worked on: the error names order, status and event."""
    order = order_at(*events)
    with pytest.raises(TransitionRefused) as refused:
        apply(order, event, T0 + HOUR, "x", POLICY, **(WAIT if event is Event.HOLD else {}))
    message = str(refused.value)
    assert f"work order {order.id} is {order.status.value}" in message
    assert repr(event.value) in message


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({}, "waiting_on"), ({"waiting_on": "weather", "reason": "x"}, "waiting_on"),
     ({"waiting_on": "third_party"}, "reason is required"),
     ({"waiting_on": "third_party", "reason": "  "}, "reason is required")],
)
def test_hold_needs_what_it_waits_on_and_why(changes, reason):
    """A hold says whom it waits on (customer or third party) and why: a silent hold is
    a hidden breach."""
    with pytest.raises(WorkOrderError, match=reason):
        apply(order_at(Event.ASSIGN), Event.HOLD, T0 + HOUR, "x", POLICY, **changes)


@pytest.mark.parametrize("status_events", [(), (Event.ASSIGN, Event.START, Event.RESOLVE,
                                                 Event.CLOSE)])
def test_contact_is_logged_in_any_status_without_changing_it(status_events):
    """A contact with the customer is history only: channel, whether they were reached and
    a text, in every status, the order otherwise unchanged."""
    order = order_at(*status_events)
    logged = apply(order, Event.CONTACT, T0 + HOUR, "agent101", POLICY,
                   channel="email", reached=False, text="left a message")
    assert logged.status is order.status
    assert logged.history[-1].details == {"channel": "email", "reached": False,
                                          "text": "left a message"}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [({"reached": True}, "channel"), ({"channel": "pigeon", "reached": True}, "channel"),
     ({"channel": "phone"}, "reached"), ({"channel": "phone", "reached": "yes"}, "reached")],
)
def test_contact_needs_a_channel_and_whether_it_reached(changes, reason):
    """A contact without a known channel or a yes/no on reaching the customer is refused."""
    with pytest.raises(WorkOrderError, match=reason):
        apply(order_at(), Event.CONTACT, T0, "x", POLICY, **changes)


def test_respond_by_moves_on_by_the_time_on_hold():
    """The 24x7 deadline in the order pauses too: three hours on hold before it was due move
    respond_by three hours later, and overdue() reports nothing while the order waits."""
    order = order_at(Event.ASSIGN)
    held = apply(order, Event.HOLD, T0 + HOUR, "a", POLICY, **WAIT)
    assert overdue(held, T0 + 100 * HOUR) == ()
    resumed = apply(held, Event.RESUME, T0 + 4 * HOUR, "a", POLICY)
    assert resumed.respond_by == order.respond_by + timedelta(hours=3)
    late = apply(apply(order, Event.HOLD, T0 + 49 * HOUR, "a", POLICY, **WAIT),
                 Event.RESUME, T0 + 60 * HOUR, "a", POLICY)
    assert late.respond_by == order.respond_by  # already due: a hold does not undo a breach
    assert utc(T0 + 48 * HOUR) == order.respond_by
