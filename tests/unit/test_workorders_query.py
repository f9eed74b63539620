"""The filter model of work-order lists (pure): parsing from text, the index sets each filter
reads, narrowing to a token's agents, the cursor; and the model's merge."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from workorders import indexes
from workorders.model import (
    Event,
    Policy,
    Status,
    TransitionRefused,
    Urgency,
    WorkOrderError,
    apply,
    create_order,
    merge_orders,
)
from workorders.query import Cursor, FilterError, OrderFilter, descending, parse_filter

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
POLICY = Policy()


def test_parse_reads_every_filter():
    """Lists are comma-separated, dates are UTC days (created_to includes its whole day),
    overdue is a flag, and ``as_params`` gives the same text back."""
    f = parse_filter({"status": "pending, assigned", "category": "fault", "urgency": "urgent",
                      "agent": "agent101,agent102", "caller": "+1 555 0100",
                      "created_from": "2026-11-01", "created_to": "2026-11-02",
                      "overdue": "true"})
    assert f.statuses == {Status.PENDING, Status.ASSIGNED}
    assert f.urgencies == {Urgency.URGENT} and f.categories == {"fault"}
    assert f.agents == {"agent101", "agent102"} and f.caller == "+1 555 0100"
    assert f.created_to - f.created_from == 2 * 86400
    assert f.overdue
    assert parse_filter(f.as_params()) == f


@pytest.mark.parametrize(("params", "reason"), [
    ({"status": "open"}, "status"),
    ({"urgency": "high"}, "urgency"),
    ({"agent": "../x"}, "agent"),
    ({"created_from": "yesterday"}, "created_from"),
    ({"created_from": "2026-11-02T10:00:00"}, "zone"),
    ({"created_from": "2026-11-03", "created_to": "2026-11-02"}, "later"),
    ({"overdue": "maybe"}, "overdue"),
    ({"caller": "anonymous"}, "caller"),
    ({"colour": "red"}, "unknown filter"),
])
def test_parse_refuses_bad_values_naming_the_filter(params, reason):
    """A value that cannot be used is refused with the filter's name in the message."""
    with pytest.raises(FilterError, match=reason):
        parse_filter(params)


def test_constraints_are_the_shipped_index_sets():
    """Each filter reads the index sets that ``workorders.indexes`` writes for a matching
    order: the key names cannot drift apart."""
    order = create_order("1", "c", "+1555", "K", T0, POLICY, category="fault", urgency="urgent")
    order = apply(order, Event.ASSIGN, T0 + 1, "sam", POLICY, agent="agent101")
    f = OrderFilter(statuses=frozenset({order.status}), categories=frozenset({"fault"}),
                    urgencies=frozenset({Urgency.URGENT}), agents=frozenset({"agent101"}),
                    overdue=True)
    member_of = set(indexes.memberships(order))
    for union in f.constraints():
        assert len(union) == 1 and union[0] in member_of


def test_status_and_urgency_together_read_their_pair_sets_when_that_reads_fewer():
    """Status and urgency given together are one union of ``wo:status-urgency`` sets (one
    walk, no check of each candidate against the other) when the pairs are no more sets than
    the two filters' own; otherwise each filter keeps its own union."""
    one = OrderFilter(statuses=frozenset({Status.IN_PROGRESS}),
                      urgencies=frozenset({Urgency.URGENT}))
    assert one.constraints() == [("wo:status-urgency:in_progress:urgent",)]
    two = OrderFilter(statuses=frozenset({Status.CLOSED, Status.RESOLVED}),
                      urgencies=frozenset({Urgency.NORMAL, Urgency.URGENT}),
                      categories=frozenset({"fault"}))
    assert two.constraints() == [
        ("wo:status-urgency:closed:normal", "wo:status-urgency:closed:urgent",
         "wo:status-urgency:resolved:normal", "wo:status-urgency:resolved:urgent"),
        ("wo:category:fault",),
    ]
    many = OrderFilter(statuses=frozenset({Status.PENDING, Status.ASSIGNED, Status.ON_HOLD}),
                       urgencies=frozenset({Urgency.NORMAL, Urgency.URGENT}))
    assert many.constraints() == [
        ("wo:status:assigned", "wo:status:on_hold", "wo:status:pending"),
        ("wo:urgency:normal", "wo:urgency:urgent"),
    ]


def test_within_narrows_to_the_reachable_agents():
    """A token's scope narrows the agent filter: to its agents when none was asked, to the
    intersection otherwise."""
    assert OrderFilter().within(["a1", "a2"]).agents == {"a1", "a2"}
    assert OrderFilter(agents=frozenset({"a2", "a9"})).within(["a1", "a2"]).agents == {"a2"}


def test_cursor_refuses_what_it_did_not_hand_out():
    """A cursor is the creation time and id of an order; anything else is a FilterError."""
    assert Cursor.decode("1762074000.5~42") == Cursor(1762074000.5, "42")
    for text in ("", "42", "x~42", "1.5~../a", "1.5~"):
        with pytest.raises(FilterError):
            Cursor.decode(text)


def test_newest_first_is_the_reverse_of_redis_member_order():
    """Newest first is Redis's order reversed: later times first; at equal times ids by their
    bytes descending, an id before the ids it is a prefix of ("100" before "10", "9" before
    "80"), non-ASCII ids by their UTF-8 bytes; ``descending`` as a sort key and a plain
    reverse sort of (time, id) agree."""
    rows = [(5.0, "10"), (5.0, "100"), (5.0, "9"), (5.0, "80"), (7.0, "1"), (5.0, "L\u00e9"),
            (5.0, "Lz"), (3.0, "999")]
    redis_order = sorted(rows, key=lambda r: (r[0], r[1].encode()))
    want = list(reversed(redis_order))
    assert want[:4] == [(7.0, "1"), (5.0, "L\u00e9"), (5.0, "Lz"), (5.0, "9")]
    assert sorted(rows, key=descending) == want
    assert sorted(rows, reverse=True) == want


def test_merge_folds_and_counts():
    """The merged order is closed with outcome merged and points to the survivor; the
    survivor keeps its status and gets an absorb entry with the merged order's contacts and
    notes; both histories keep every earlier entry. The merged order's calls count as calls
    about the survivor (``contacts``)."""
    survivor = apply(create_order("1", "c1", "+1555", "K", T0, POLICY), Event.ASSIGN, T0 + 1,
                     "sam", POLICY, agent="agent101")
    merged = create_order("2", "c2", "+1555", "K", T0 + 5, POLICY)
    merged = apply(merged, Event.NOTE, T0 + 6, "sam", POLICY, text="again")
    merged = apply(merged, Event.CONTACT, T0 + 7, "sam", POLICY, channel="phone", reached=True)
    merged = apply(merged, Event.CONTACT, T0 + 8, "sam", POLICY, channel="sms", reached=False)
    kept, folded = merge_orders(survivor, merged, T0 + 10, "sam", POLICY)
    assert (folded.status, folded.outcome, folded.merged_into) == (Status.CLOSED, "merged", "1")
    assert folded.history[:-1] == merged.history and folded.history[-1].event == "merge"
    assert kept.status is Status.ASSIGNED and kept.history[:-1] == survivor.history
    assert kept.history[-1].details == {"merged": "2", "contacts": 2, "notes": 1, "calls": 1}
    assert (survivor.contacts, kept.contacts) == (1, 2)


def test_merge_refusals_name_the_order():
    """Into itself: WorkOrderError; into a closed order, or an order already merged: a
    TransitionRefused naming the order."""
    a = create_order("1", "c1", "+1555", "K", T0, POLICY)
    b = create_order("2", "c2", "+1555", "K", T0, POLICY)
    with pytest.raises(WorkOrderError, match="itself"):
        merge_orders(a, a, T0, "sam", POLICY)
    closed = replace(a, status=Status.CLOSED)
    with pytest.raises(TransitionRefused, match="work order 1 is closed"):
        merge_orders(closed, b, T0, "sam", POLICY)
    _, folded = merge_orders(a, b, T0, "sam", POLICY)
    c = create_order("3", "c3", "+1555", "K", T0, POLICY)
    with pytest.raises(TransitionRefused, match="work order 2 is already merged into 1"):
        merge_orders(c, folded, T0, "sam", POLICY)


def test_reopening_a_merged_order_makes_it_stand_alone():
    """A merged order reopened is pending again and no longer points to the survivor."""
    a = create_order("1", "c1", "+1555", "K", T0, POLICY)
    b = create_order("2", "c2", "+1555", "K", T0, POLICY)
    _, folded = merge_orders(a, b, T0, "sam", POLICY)
    reopened = apply(folded, Event.REOPEN, T0 + 1, "sam", POLICY)
    assert (reopened.status, reopened.merged_into, reopened.outcome) == (Status.PENDING, None,
                                                                         None)
