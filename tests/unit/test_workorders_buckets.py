"""The bucket layout of work orders (``workorders.buckets``): keys carry the bucket's hash
tag, ids tell their bucket, local ids are drawn in the caller's bucket, and a caller's
orders share one."""

from __future__ import annotations

import pytest

from workorders.buckets import DEFAULT_BUCKETS, Buckets


def test_every_key_of_a_bucket_carries_its_hash_tag() -> None:
    """Names as the rest of the code spells them get the bucket's tag after ``wo:``; the
    outbox of a bucket is its tag's (cluster) or the events stream (standalone)."""
    b = Buckets(prefix="p:")
    assert b.key(3, "wo:status:pending") == "p:wo:{wo3}:status:pending"
    assert b.order_key("35") == "p:wo:{wo3}:35" and b.history_key("35") == "p:wo:{wo3}:35:history"
    assert b.order_name("35", "wo:op:x") == "p:wo:{wo3}:op:x"
    assert b.keys("wo:open") == [f"p:wo:{{wo{n}}}:open" for n in range(DEFAULT_BUCKETS)]
    assert b.events_key(3) == "p:events"
    assert Buckets(prefix="p:", cluster=True).events_key(3) == "p:outbox:{wo3}"
    assert Buckets(4).tags() == ["wo0", "wo1", "wo2", "wo3"]


def test_ids_tell_their_bucket_and_local_ids_are_drawn_in_one() -> None:
    """A numeric id's bucket is id % B; a local id (``L`` + 15 hex digits) drawn for a bucket
    is in it; a caller's orders (by the blind index) share a bucket whatever the call."""
    b = Buckets(16)
    assert [b.of_id(i) for i in ("16", "17", "35")] == [0, 1, 3]
    for bucket in range(16):
        local = b.local_id(bucket)
        assert local.startswith("L") and len(local) == 16 and b.of_id(local) == bucket
    assert b.of_new("idx", "call-1") == b.of_new("idx", "call-2")
    assert b.of_new(None, "call-1") == b.of_new(None, "call-1")


def test_at_least_one_bucket() -> None:
    """Zero buckets is refused."""
    with pytest.raises(ValueError, match="at least 1"):
        Buckets(0)
