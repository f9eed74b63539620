"""The pure work order model: lifecycle table, refusals, deadlines, overdue, JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from workorders.model import (
    CHANGES,
    TRANSITIONS,
    Category,
    Event,
    Policy,
    Status,
    TransitionRefused,
    Urgency,
    WorkOrder,
    WorkOrderError,
    add_years,
    apply,
    create_order,
    overdue,
    utc,
)

T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC).timestamp()
HOUR = 3600.0
POLICY = Policy()

HOSTILE = [
    'He said "hi"',
    "back\\slash\\\\ and \\n literal",
    "${EXTEN}${SHELL(rm -rf /)}$[1+1]",
    "line one\nline two\r\nHANGUP\n200 result=1",
    "김철수 📞 Ünïcødé \u202eRTL\u202c",
    "nul\x00 and bell\x07 and tab\t",
    "'; DROP TABLE orders; --",
    "",
]

#: The changes each event needs to be accepted (beyond the status).
REQUIRED = {
    Event.ASSIGN: {"agent": "agent102"},
    Event.HOLD: {"waiting_on": "customer", "reason": "meter reading"},
    Event.CONTACT: {"channel": "phone", "reached": True},
    Event.BACK_OFFICE: {"reason": "needs-back-office"},
    Event.REPEAT: {"call_id": "1732790999.3"},
    Event.LEGAL_HOLD: {"legal_hold": True, "reason": "court order 12/2026"},
    Event.MERGE: {"into": "7"},
}

#: Events that lead from a new order to each status.
PATH = {
    Status.PENDING: [],
    Status.ASSIGNED: [Event.ASSIGN],
    Status.IN_PROGRESS: [Event.ASSIGN, Event.START],
    Status.ON_HOLD: [Event.ASSIGN, Event.START, Event.HOLD],
    Status.RESOLVED: [Event.ASSIGN, Event.START, Event.RESOLVE],
    Status.CLOSED: [Event.ASSIGN, Event.START, Event.RESOLVE, Event.CLOSE],
}


def new_order(urgency: Urgency = Urgency.NORMAL, **fields) -> WorkOrder:
    return create_order(
        "42", "1732790000.17", "+821012345678", "Kim", T0, POLICY, urgency=urgency, **fields
    )


def order_in(status: Status, at: float = T0 + 60) -> WorkOrder:
    order = new_order()
    for step in PATH[status]:
        order = apply(order, step, at, "test", POLICY, **REQUIRED.get(step, {}))
    assert order.status is status
    return order


def test_table_declares_every_status():
    """Every status has an entry in the transition table, and every event its changes."""
    assert set(TRANSITIONS) == set(Status)
    assert set(CHANGES) == set(Event)


@pytest.mark.parametrize(
    ("status", "event", "target"),
    [(s, e, t) for s, accepted in TRANSITIONS.items() for e, t in accepted.items()],
)
def test_declared_transition(status, event, target):
    """Each declared (status, event) leads to its declared status, with one history entry
    naming the event, the actor and (when the status changes) where it came from."""
    order = order_in(status)
    changed = apply(order, event, T0 + 120, "agent101", POLICY, **REQUIRED.get(event, {}))
    assert changed.status is target
    assert changed.updated_at == utc(T0 + 120)
    assert len(changed.history) == len(order.history) + 1
    entry = changed.history[-1]
    assert (entry.event, entry.actor, entry.time) == (event.value, "agent101", utc(T0 + 120))
    if target is not status:
        assert (entry.details["from"], entry.details["to"]) == (status.value, target.value)


@pytest.mark.parametrize(
    ("status", "event"),
    [(s, e) for s in Status for e in Event if e not in TRANSITIONS[s]],
)
def test_undeclared_transition_is_refused(status, event):
    """Any (status, event) not in the table raises TransitionRefused, naming the order, its
    status, the event and what the status accepts; the order is unchanged."""
    order = order_in(status)
    with pytest.raises(TransitionRefused) as refused:
        apply(order, event, T0 + 120, "agent101", POLICY, **REQUIRED.get(event, {}))
    message = str(refused.value)
    assert order.id in message and status.value in message and event.value in message
    assert "accepted:" in message
    assert order == order_in(status)


def test_unknown_event_is_refused():
    """An event name that is not an Event raises WorkOrderError listing the known events."""
    with pytest.raises(WorkOrderError, match=r"unknown event 'escalate'.*assign"):
        apply(new_order(), "escalate", T0, "x", POLICY)


def test_assign_needs_an_agent():
    """Assigning without an agent is refused: an assigned order always has someone."""
    with pytest.raises(WorkOrderError, match="agent is required"):
        apply(new_order(), Event.ASSIGN, T0, "router", POLICY)


@pytest.mark.parametrize(
    ("event", "status", "changes"),
    [
        (Event.START, Status.ASSIGNED, {"agent": "agent103"}),
        (Event.UPDATE, Status.PENDING, {"status": "closed"}),
        (Event.UPDATE, Status.PENDING, {"caller_name": "someone else"}),
        (Event.UPDATE, Status.PENDING, {"created_at": "2020-01-01T00:00:00Z"}),
        (Event.NOTE, Status.PENDING, {"agent": "agent101"}),
    ],
)
def test_changes_outside_the_event_are_refused(event, status, changes):
    """An event may only change its own fields: status, caller and times are never set by
    hand, and a note cannot reassign."""
    with pytest.raises(WorkOrderError, match="cannot change"):
        apply(order_in(status), event, T0, "x", POLICY, **changes)


@pytest.mark.parametrize(
    "changes",
    [
        {"csat": 6}, {"csat": 0}, {"csat": True}, {"nps": 11}, {"nps": -1}, {"nps": 7.5},
        {"confidence": 1.5}, {"confidence": "high"}, {"category": "billing"},
        {"urgency": "asap"}, {"menu_path": "31"}, {"menu_path": [3, 1]}, {"queue": 7},
    ],
)
def test_bad_values_are_refused(changes):
    """Values are checked: CSAT 1-5, NPS 0-10, confidence 0-1, known category and urgency,
    a menu path of strings; the message names the field and the value."""
    name = next(iter(changes))
    with pytest.raises(WorkOrderError, match=name):
        apply(new_order(), Event.UPDATE, T0, "survey", POLICY, **changes)


def test_unassign_clears_the_agent():
    """Giving an order back (agent did not answer) returns it to pending without an agent."""
    order = apply(order_in(Status.ASSIGNED), Event.UNASSIGN, T0, "router", POLICY,
                  reason="no answer")
    assert (order.status, order.agent) == (Status.PENDING, None)
    assert order.history[-1].details["reason"] == "no answer"


def test_reopen_resolved_goes_back_to_the_same_agent():
    """Reopening a resolved order puts it back in progress with the agent who had it."""
    resolved = apply(order_in(Status.IN_PROGRESS), Event.RESOLVE, T0 + HOUR, "agent102",
                     POLICY, outcome="line reset")
    reopened = apply(resolved, Event.REOPEN, T0 + 2 * HOUR, "caller", POLICY)
    assert (reopened.status, reopened.agent) == (Status.IN_PROGRESS, "agent102")


def test_reopen_closed_returns_to_assignment():
    """Reopening a closed order makes it pending again: agent and outcome cleared."""
    closed = apply(
        apply(order_in(Status.IN_PROGRESS), Event.RESOLVE, T0, "a", POLICY, outcome="done"),
        Event.CLOSE, T0, "a", POLICY,
    )
    reopened = apply(closed, Event.REOPEN, T0 + HOUR, "supervisor", POLICY, reason="again")
    assert (reopened.status, reopened.agent, reopened.outcome) == (Status.PENDING, None, None)


@pytest.mark.parametrize(
    ("urgency", "hours"), [(Urgency.URGENT, 1), (Urgency.IMPORTANT, 24), (Urgency.NORMAL, 48)]
)
def test_deadlines_by_urgency(urgency, hours):
    """respond_by is 1 h / 24 h / 48 h after creation by urgency; assign_by always 2 h;
    retain_until three years to the day."""
    order = new_order(urgency)
    assert order.respond_by - order.created_at == timedelta(hours=hours)
    assert order.assign_by - order.created_at == timedelta(hours=2)
    assert order.retain_until == datetime(2029, 3, 2, 9, 30, tzinfo=UTC)


def test_deadlines_follow_the_policy():
    """A policy from config (e.g. 30 min for urgent, 1 h to assign, 5 years) is applied."""
    policy = Policy(
        response={Urgency.URGENT: 1800, Urgency.IMPORTANT: 7200, Urgency.NORMAL: 86400},
        assign_within=3600,
        retention_years=5,
    )
    order = create_order("1", "c", "n", "m", T0, policy, urgency="urgent")
    assert order.respond_by - order.created_at == timedelta(minutes=30)
    assert order.assign_by - order.created_at == timedelta(hours=1)
    assert order.retain_until.year == order.created_at.year + 5


def test_retention_below_three_years_is_refused():
    """The policy refuses retention shorter than the legal three years."""
    with pytest.raises(WorkOrderError, match="at least 3 years"):
        Policy(retention_years=2)


def test_leap_day_retention_is_never_short():
    """Three years after 29 February is 1 March, not 28 February."""
    leap = datetime(2028, 2, 29, 12, tzinfo=UTC)
    assert add_years(leap, 3) == datetime(2031, 3, 1, 12, tzinfo=UTC)


def test_reclassified_urgency_recomputes_respond_by_from_creation():
    """Raising urgency later moves respond_by to creation + the new target, not now + it."""
    order = apply(new_order(), Event.UPDATE, T0 + 30 * 60, "classifier", POLICY,
                  urgency="urgent")
    assert order.respond_by == utc(T0 + HOUR)
    assert order.assign_by == utc(T0 + 2 * HOUR)


def test_reopen_restarts_deadlines_and_close_extends_retention():
    """A reopen restarts assign_by and respond_by from the reopen; a close keeps the order
    at least retention years after that close."""
    order = order_in(Status.RESOLVED)
    later = T0 + 400 * 86400
    closed = apply(order, Event.CLOSE, later, "supervisor", POLICY)
    assert closed.retain_until == add_years(utc(later), 3)
    reopened = apply(closed, Event.REOPEN, later + HOUR, "supervisor", POLICY)
    assert reopened.assign_by == utc(later + 3 * HOUR)
    assert reopened.respond_by == utc(later + HOUR + 48 * HOUR)
    assert reopened.retain_until == closed.retain_until


def test_overdue_assignment_only_while_pending():
    """assign_by is breached by a pending order past it, not at it, and not once assigned."""
    order = new_order(Urgency.NORMAL)
    assert overdue(order, T0 + 2 * HOUR) == ()
    (breach,) = overdue(order, T0 + 2 * HOUR + 90)
    assert (breach.deadline, breach.late_by) == ("assign_by", timedelta(seconds=90))
    assigned = apply(order, Event.ASSIGN, T0 + HOUR, "r", POLICY, agent="agent101")
    assert overdue(assigned, T0 + 2 * HOUR + 90) == ()


def test_overdue_response_until_resolved():
    """respond_by is breached by any order not yet resolved past it; a resolved order is not
    overdue; an urgent pending order past 2 h breaches both deadlines."""
    urgent = new_order(Urgency.URGENT)
    assert [b.deadline for b in overdue(urgent, T0 + 3 * HOUR)] == ["assign_by", "respond_by"]
    working = apply(
        apply(urgent, Event.ASSIGN, T0, "r", POLICY, agent="a"), Event.START, T0, "a", POLICY
    )
    (breach,) = overdue(working, T0 + HOUR + 1)
    assert breach.deadline == "respond_by" and breach.due == utc(T0 + HOUR)
    resolved = apply(working, Event.RESOLVE, T0 + 30 * 60, "a", POLICY)
    assert overdue(resolved, T0 + 10 * HOUR) == ()


@pytest.mark.parametrize("text", HOSTILE)
def test_json_round_trip_keeps_hostile_strings_verbatim(text):
    """Caller number, name, transcript, outcome and notes survive to_json/from_json exactly,
    and the JSON is one ASCII line (safe in any log or spool line)."""
    order = create_order("7", "1.2", text, text, T0, POLICY, transcript=text, menu_path=[text])
    order = apply(order, Event.NOTE, T0 + 1, text, POLICY, text=text)
    encoded = order.to_json()
    assert "\n" not in encoded and encoded.isascii()
    decoded = WorkOrder.from_json(encoded)
    assert decoded == order
    assert (decoded.caller_number, decoded.caller_name, decoded.transcript) == (text, text, text)
    assert decoded.history[-1].details["text"] == text and decoded.history[-1].actor == text


@given(
    number=st.text(st.characters(blacklist_categories=["Cs"])),
    name=st.text(st.characters(blacklist_categories=["Cs"])),
    now=st.floats(min_value=0, max_value=4e9),
)
def test_json_round_trip_any_text_any_time(number, name, now):
    """Any caller strings and any time round-trip exactly (times kept to the microsecond)."""
    order = create_order("1", "c", number, name, now, POLICY)
    assert WorkOrder.from_json(order.to_json()) == order


def test_json_has_the_contract_shape():
    """to_dict has the contract's keys, nested caller and deadlines, ISO-8601 UTC times."""
    data = json.loads(new_order(Urgency.URGENT, category="fault").to_json())
    assert set(data) == {
        "id", "call_id", "caller", "menu_path", "category", "urgency", "queue", "agent",
        "status", "outcome", "created_at", "updated_at", "deadlines", "retain_until", "merged_into",
        "transcript", "confidence", "engine", "language", "history", "csat", "nps",
        "escalations",
        "contacts", "back_office",
        "legal_hold",
    }
    assert data["caller"] == {"number": "+821012345678", "name": "Kim"}
    assert data["created_at"] == "2026-03-02T09:30:00.000000Z"
    assert data["deadlines"] == {
        "assign_by": "2026-03-02T11:30:00.000000Z",
        "respond_by": "2026-03-02T10:30:00.000000Z",
    }
    assert (data["category"], data["status"]) == (Category.FAULT.value, "pending")


@pytest.mark.parametrize(
    "broken",
    ['{"id": "1"}', '{"status": "lost"}', "[]", '{"id": "1", "call', ""],
)
def test_from_json_refuses_what_is_not_an_order(broken):
    """Truncated, wrongly shaped or invalid JSON raises WorkOrderError, not a bare KeyError."""
    with pytest.raises(WorkOrderError, match="not a work order"):
        WorkOrder.from_json(broken)


def test_from_json_refuses_times_without_zone():
    """A time without a UTC offset is refused: a local time would shift deadlines."""
    data = json.loads(new_order().to_json())
    data["created_at"] = "2026-03-02T09:30:00"
    with pytest.raises(WorkOrderError, match="without a zone"):
        WorkOrder.from_dict(data)


def test_create_refuses_unknown_fields():
    """Creation accepts only what the call flow knows; survey scores or status are refused."""
    with pytest.raises(WorkOrderError, match="csat"):
        create_order("1", "c", "n", "m", T0, POLICY, csat=5)
