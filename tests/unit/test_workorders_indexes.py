"""The secondary indexes as pure data: which sorted sets an order belongs to, and what a
write changes in them."""

from __future__ import annotations

from datetime import UTC, datetime

from workorders.indexes import OVERDUE_AT, index_changes, memberships
from workorders.model import Event, Policy, apply, create_order, overdue

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC).timestamp()
POLICY = Policy()


def new_order():
    return create_order("7", "c1", "+4930", "Ann", T0, POLICY, "ivr",
                        category="fault", urgency="urgent")


def test_a_new_order_is_pending_open_and_filed_by_its_fields():
    """A new order sits in its status, category and urgency sets and in the open set, each
    scored by its creation time (lists come newest first by that score)."""
    assert memberships(new_order()) == {
        "wo:status:pending": T0,
        "wo:category:fault": T0,
        "wo:urgency:urgent": T0,
        "wo:status-urgency:pending:urgent": T0,
        "wo:open": T0,
        "wo:overdue-at": T0 + 3600,  # the urgent response target, before assignment's 2 h
        "wo:due": T0 + 0.8 * 3600,  # the urgent response clock's warning (escalation)
    }


def test_assignment_moves_the_order_between_sets_and_onto_the_agents_load():
    """Assigning leaves the pending set, enters the assigned set, the agent's set and the
    agent's open load; sets that did not change are not rewritten."""
    order = new_order()
    assigned = apply(order, Event.ASSIGN, T0 + 60, "sup", POLICY, agent="a1")
    changes = index_changes(order, assigned)
    assert changes.remove == {"wo:status:pending", "wo:status-urgency:pending:urgent"}
    assert changes.add == {
        "wo:status:assigned": T0, "wo:agent:a1": T0, "wo:agent-open:a1": T0,
        "wo:status-urgency:assigned:urgent": T0,
    }


def test_a_resolved_order_leaves_the_open_sets_but_keeps_its_agent():
    """Resolved work is no longer owed: it leaves ``wo:open`` and the agent's open load, and
    stays findable by agent."""
    order = apply(new_order(), Event.ASSIGN, T0 + 60, "sup", POLICY, agent="a1")
    order = apply(order, Event.START, T0 + 120, "a1", POLICY)
    resolved = apply(order, Event.RESOLVE, T0 + 180, "a1", POLICY, outcome="fixed")
    changes = index_changes(order, resolved)
    assert changes.remove == {
        "wo:status:in_progress", "wo:open", "wo:agent-open:a1", "wo:overdue-at",
        "wo:status-urgency:in_progress:urgent",
    }
    # wo:due: the feedback clock starts with the resolution (its warning at 80 % of 24 h).
    assert changes.add == {"wo:status:resolved": T0, "wo:due": T0 + 180 + 0.8 * 24 * 3600,
                           "wo:status-urgency:resolved:urgent": T0}
    assert "wo:agent:a1" in memberships(resolved)


def test_a_write_that_changes_no_indexed_field_changes_no_set():
    """A note touches no index."""
    order = new_order()
    noted = apply(order, Event.NOTE, T0 + 5, "a1", POLICY, text="called back")
    changes = index_changes(order, noted)
    assert changes.add == {} and changes.remove == frozenset()


def _overdue_by_index(order, now: float) -> bool:
    """What the list's ``overdue`` filter answers from the index: a ``wo:overdue-at`` score
    below now (``workorders.query``)."""
    score = memberships(order).get(OVERDUE_AT)
    return score is not None and score < now


def test_overdue_at_answers_what_the_model_calls_overdue_through_every_transition():
    """Along lives that take every status and the events that move deadlines (hold and
    resume, unassign, back office, reopen from resolved and from closed, an urgency raise),
    the order's ``wo:overdue-at`` score says "overdue" exactly when ``model.overdue`` does,
    at moments before, at and after each deadline; and ``index_changes`` carries the
    score from one state to the next (the store writes only that diff)."""
    lives = [
        [(Event.ASSIGN, {"agent": "a1"}), (Event.START, {}),
         (Event.HOLD, {"waiting_on": "customer", "reason": "meter"}), (Event.RESUME, {}),
         (Event.RESOLVE, {"outcome": "fixed"}), (Event.REOPEN, {}),
         (Event.RESOLVE, {"outcome": "fixed"}), (Event.CLOSE, {}), (Event.REOPEN, {})],
        [(Event.ASSIGN, {"agent": "a1"}), (Event.UNASSIGN, {}), (Event.ASSIGN, {"agent": "a2"}),
         (Event.HOLD, {"waiting_on": "third_party", "reason": "parts"}), (Event.RESUME, {}),
         (Event.BACK_OFFICE, {"reason": "callback-failed"}), (Event.UPDATE, {"urgency": "normal"})],
    ]
    for life in lives:
        order = create_order("7", "c1", "+4930", "Ann", T0, POLICY, "ivr",
                             category="fault", urgency="important")
        sets = dict(memberships(order))
        at = T0
        for event, changes in [(None, {}), *life]:
            if event is not None:
                at += 5400  # 90 minutes a step: deadlines pass between some of them
                before = order
                order = apply(order, event, at, "sup", POLICY, **changes)
                diff = index_changes(before, order)
                sets = {k: v for k, v in sets.items() if k not in diff.remove} | dict(diff.add)
                assert sets == memberships(order), (event, order.status)
            deadlines = [order.assign_by.timestamp(), order.respond_by.timestamp()]
            moments = [at, *(d + e for d in deadlines for e in (-1.0, 0.0, 1e-3, 1.0)),
                       at + 30 * 86400]
            for now in moments:
                assert _overdue_by_index(order, now) == bool(overdue(order, now)), (
                    event, order.status, now - T0)
