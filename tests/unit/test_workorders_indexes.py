"""The secondary indexes as pure data: which sorted sets an order belongs to, and what a
write changes in them."""

from __future__ import annotations

from datetime import UTC, datetime

from workorders.indexes import index_changes, memberships
from workorders.model import Event, Policy, apply, create_order

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
        "wo:open": T0,
        "wo:due": T0 + 0.8 * 3600,  # the urgent response clock's warning (escalation)
    }


def test_assignment_moves_the_order_between_sets_and_onto_the_agents_load():
    """Assigning leaves the pending set, enters the assigned set, the agent's set and the
    agent's open load; sets that did not change are not rewritten."""
    order = new_order()
    assigned = apply(order, Event.ASSIGN, T0 + 60, "sup", POLICY, agent="a1")
    changes = index_changes(order, assigned)
    assert changes.remove == {"wo:status:pending"}
    assert changes.add == {
        "wo:status:assigned": T0, "wo:agent:a1": T0, "wo:agent-open:a1": T0,
    }


def test_a_resolved_order_leaves_the_open_sets_but_keeps_its_agent():
    """Resolved work is no longer owed: it leaves ``wo:open`` and the agent's open load, and
    stays findable by agent."""
    order = apply(new_order(), Event.ASSIGN, T0 + 60, "sup", POLICY, agent="a1")
    order = apply(order, Event.START, T0 + 120, "a1", POLICY)
    resolved = apply(order, Event.RESOLVE, T0 + 180, "a1", POLICY, outcome="fixed")
    changes = index_changes(order, resolved)
    assert changes.remove == {"wo:status:in_progress", "wo:open", "wo:agent-open:a1"}
    # wo:due: the feedback clock starts with the resolution (its warning at 80 % of 24 h).
    assert changes.add == {"wo:status:resolved": T0, "wo:due": T0 + 180 + 0.8 * 24 * 3600}
    assert "wo:agent:a1" in memberships(resolved)


def test_a_write_that_changes_no_indexed_field_changes_no_set():
    """A note touches no index."""
    order = new_order()
    noted = apply(order, Event.NOTE, T0 + 5, "a1", POLICY, text="called back")
    changes = index_changes(order, noted)
    assert changes.add == {} and changes.remove == frozenset()
