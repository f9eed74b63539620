"""The cheaper steps of a work order's creation give exactly what the plain ones gave: the
order as ``dataclasses.replace`` built it, the hash fields as ``json.dumps`` wrote them, the
same keys and clock targets. (The store's tests pin the keys and values in Redis; these pin
each shortcut against the general form it stands for.)"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from workorders.buckets import Buckets
from workorders.clocks import ClockKind, ClockPolicy, Clocks, replay
from workorders.model import (
    HistoryEntry,
    Policy,
    Urgency,
    WorkOrder,
    apply,
    create_order,
    iso,
)
from workorders.store.hashes import _JSON_FIELDS, order_from_hash, to_hash

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()


def reference_hash(order: WorkOrder) -> dict[str, str]:
    """The hash fields as the store wrote them before (every JSON value by json.dumps)."""
    data = order.to_dict()
    caller, deadlines = data.pop("caller"), data.pop("deadlines")
    data.pop("history")
    data.update(caller_number=caller["number"], caller_name=caller["name"], **deadlines)
    return {
        name: value if isinstance(value, str) and name not in _JSON_FIELDS else json.dumps(value)
        for name, value in data.items()
        if value is not None
    }


def orders() -> list[WorkOrder]:
    """Orders with every JSON field empty, set, true, a float, a big int."""
    policy = Policy()
    new = create_order("", "c-1", "+15550100", "Kim", T0, policy, category="fault",
                       urgency="urgent", queue="general", transcript="no dial tone")
    rich = create_order("7", "c-2", "+15550101", "Lee", T0, policy, menu_path=["1", "3"],
                        confidence=0.875, engine="vosk", language="ko")
    rich = apply(rich, "assign", T0 + 1, "sam", policy, agent="agent101")
    rich = apply(rich, "start", T0 + 2, "agent101", policy)
    rich = apply(rich, "resolve", T0 + 3, "agent101", policy, outcome="fixed")
    rich = apply(rich, "update", T0 + 4, "ivr", policy, csat=5, nps=10)
    return [new, rich, replace(rich, legal_hold=True, contacts=12345678901,
                               escalations=("response:warning:x",), merged_into="9")]


def test_hash_fields_are_what_json_dumps_wrote() -> None:
    """``to_hash`` gives the same fields, values and order as with ``json.dumps`` of every
    JSON value and the history dropped after ``to_dict``; and reads back to the order."""
    for order in orders():
        fields = to_hash(order)
        assert list(fields.items()) == list(reference_hash(order).items())
        assert order_from_hash(fields, [h.to_dict() for h in order.history]) == order


def test_to_dict_without_history_is_to_dict_less_history() -> None:
    """``to_dict(history=False)`` is ``to_dict()`` without its ``history`` key, in order."""
    for order in orders():
        full = order.to_dict()
        del full["history"]
        assert list(order.to_dict(history=False).items()) == list(full.items())


def test_with_id_is_replace_of_the_id() -> None:
    """``with_id`` gives the order ``dataclasses.replace(order, id=...)`` gives, equal and
    of the same type, and leaves the draft as it was."""
    for order in orders():
        renumbered = order.with_id("4711")
        assert renumbered == replace(order, id="4711") and type(renumbered) is WorkOrder
        assert renumbered.id == "4711" and order.id != "4711"
        assert renumbered.to_dict() == replace(order, id="4711").to_dict()


def test_create_order_carries_its_creation_entry() -> None:
    """A new order is the one the fields describe with its one ``create`` entry, as it was
    built in two steps before."""
    policy = Policy()
    order = create_order("", "c-1", "+15550100", "Kim", T0, policy, category="fault",
                         urgency="urgent", queue="general")
    at = datetime.fromtimestamp(T0, UTC)
    assert order.history == (HistoryEntry(at, "create", "ivr", {
        "category": "fault", "urgency": "urgent", "queue": "general"}),)
    assert order.updated_at == order.created_at == at
    assert order.respond_by == at + timedelta(hours=1)
    assert iso(at) == order.to_dict()["created_at"]


def test_clock_targets_and_the_started_board() -> None:
    """``ClockPolicy.target`` answers every clock and urgency as the table of targets does
    (by a clock's name too), and a creation's board keeps its time, urgency and status."""
    policy = ClockPolicy()
    for urgency in Urgency:
        table = {
            ClockKind.ASSIGNMENT: policy.assign_within,
            ClockKind.RESPONSE: policy.response[urgency],
            ClockKind.RESOLUTION: policy.resolution[urgency],
            ClockKind.FEEDBACK: policy.feedback_within,
        }
        for kind, seconds in table.items():
            assert policy.target(kind, urgency) == timedelta(seconds=seconds)
            assert policy.target(ClockKind(kind.value), urgency) == timedelta(seconds=seconds)
    order = create_order("", "c-1", "+15550100", "Kim", T0, Policy(), urgency="important")
    board = replay(order.history, policy)
    assert isinstance(board, Clocks) and board.at == order.created_at
    assert board.urgency is Urgency.IMPORTANT
    assert sorted(board.clocks) == sorted(
        [ClockKind.ASSIGNMENT, ClockKind.RESPONSE, ClockKind.RESOLUTION]
    )


def test_bucket_bases_are_the_spelled_out_keys() -> None:
    """A bucket's key prefix, kept per layout, is ``<p>wo:{wo<b>}:`` for every bucket (and
    spelled out for a number outside the layout)."""
    layout = Buckets(16, "hotline:")
    for bucket in (*layout.all(), 16, 99):
        assert layout.base(bucket) == f"hotline:wo:{{wo{bucket}}}:"
    assert layout.key(3, "wo:status:pending") == "hotline:wo:{wo3}:status:pending"
    assert Buckets(16, "hotline:") == layout and hash(Buckets(16, "hotline:")) == hash(layout)
