"""The schema of entries in the hotline:events stream."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from events import event_fields, events_key_for, outbox_key, stream_key
from workorders.store import WORK_ORDER_KINDS

T0 = datetime(2026, 3, 2, 9, 30, 0, 250000, tzinfo=UTC).timestamp()


def test_fields_are_flat_strings():
    """Strings stay as they are, other values become JSON, empty values are left out; kind
    and an ISO-8601 UTC time come first."""
    entry = event_fields(
        "CONNECT", T0, call_id="1.2", agent="agent101", queue=None, holdtime=12,
        details={"a": [1]}, name='q"${X}\n',
    )
    assert entry == {
        "kind": "CONNECT",
        "time": "2026-03-02T09:30:00.250000Z",
        "call_id": "1.2",
        "agent": "agent101",
        "holdtime": "12",
        "details": '{"a": [1]}',
        "name": 'q"${X}\n',
    }
    assert list(entry)[:2] == ["kind", "time"]


@pytest.mark.parametrize("kind", ["", "connect", "Connect"])
def test_kind_must_be_a_queue_log_name(kind):
    """Kinds are upper-case queue_log style names; anything else is refused."""
    with pytest.raises(ValueError, match="upper case"):
        event_fields(kind, T0)


@pytest.mark.parametrize("field", ["kind", "time"])
def test_reserved_fields(field):
    """A field may not overwrite the kind or the time."""
    with pytest.raises(ValueError, match="reserved"):
        event_fields("CONNECT", T0, **{field: "x"})


def test_work_order_kinds_and_stream_key():
    """Work order events are WO + the lifecycle event; the stream follows the key prefix."""
    assert WORK_ORDER_KINDS["create"] == "WOCREATE"
    assert WORK_ORDER_KINDS["start"] == "WOSTART"
    assert set(WORK_ORDER_KINDS.values()) == {
        "WOCREATE", "WOASSIGN", "WOUNASSIGN", "WOSTART", "WORESOLVE", "WOCLOSE", "WOREOPEN",
        "WOUPDATE", "WONOTE", "WOHOLD", "WORESUME", "WOCONTACT", "WOBACK_OFFICE", "WOREPEAT",
        "WOLEGAL_HOLD", "WOMERGE", "WOABSORB",
    }
    assert stream_key() == "hotline:events" and stream_key("t1:") == "t1:events"


def test_outbox_key_carries_the_slot_tag() -> None:
    """An outbox stream is named after its hash tag, so it lands in the slot of the keys of
    the atomic steps that write to it."""
    assert outbox_key("rt") == "hotline:outbox:{rt}"
    assert outbox_key("wo3", prefix="x:") == "x:outbox:{wo3}"


def test_events_key_for_is_the_stream_on_one_redis_and_the_outbox_on_a_cluster() -> None:
    """Standalone Redis keeps writing events straight to ``hotline:events``; a cluster writes
    them to the slot's outbox, which the relay drains into ``hotline:events``."""
    assert events_key_for("rt", cluster=False) == stream_key() == "hotline:events"
    assert events_key_for("rt", cluster=True) == "hotline:outbox:{rt}"
    assert events_key_for("wo0", cluster=True, prefix="p:") == "p:outbox:{wo0}"
