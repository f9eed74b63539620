"""The bucket layout of work orders (``workorders.buckets``): keys carry the bucket's hash
tag, ids tell their bucket, local ids are drawn in the caller's bucket, and a caller's
orders share one."""

from __future__ import annotations

import pytest
from redis.exceptions import ConnectionError

from workorders import buckets
from workorders.buckets import DEFAULT_BUCKETS, Buckets, check_count, claim_count


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


def test_read_share_is_the_even_share_with_a_margin_for_the_spread():
    """Each of k even keys is read for size/k plus three binomial standard deviations (and 2),
    at least 4: a page of 50 (51 with the next page's first) over 16 buckets reads 11 from
    each, not 51; one key is read for more than the whole batch."""
    from workorders.buckets import read_share

    assert read_share(51, 16) == 11
    assert read_share(76, 16) == 14
    assert read_share(1, 48) == 4
    assert read_share(100, 1) >= 100


def test_count_at_or_above_counts_the_newest_first_prefix():
    """In a newest-first list of (time, id), the candidates at or above a floor are a prefix;
    its length is found for floors above, inside (equal to a member, or between two ids of
    one time) and below the list."""
    from workorders.buckets import count_at_or_above

    rows = [(9.0, "2"), (7.0, "9"), (7.0, "80"), (7.0, "10"), (3.0, "1")]
    assert count_at_or_above(rows, (10.0, "0")) == 0
    assert count_at_or_above(rows, (7.0, "80")) == 3
    assert count_at_or_above(rows, (7.0, "85")) == 2
    assert count_at_or_above(rows, (1.0, "0")) == 5
    assert count_at_or_above([], (1.0, "0")) == 0


class _Keys:
    """A blocking Redis's SET NX and GET over a dict (``workorders.buckets.CountStore``)."""

    def __init__(self, **values: str) -> None:
        self.values = {k: v.encode() for k, v in values.items()}

    def set(self, name: str, value: str, *, nx: bool) -> bool | None:
        if nx and name in self.values:
            return None
        self.values[name] = value.encode()
        return True

    def get(self, name: str) -> bytes | None:
        return self.values.get(name)


def test_the_first_start_claims_the_bucket_count_and_later_starts_must_match_it():
    """``ivr serve`` records ``store.buckets`` in ``<p>wo:buckets`` when none is recorded and
    starts; with the same count it starts again; with another count it is refused, the
    problem naming the file, the key and both counts, and the recorded count stays."""
    redis = _Keys()
    assert claim_count(redis, 16, "hotline:") is None
    assert redis.values == {"hotline:wo:buckets": b"16"}
    assert claim_count(redis, 16, "hotline:") is None
    problem = claim_count(redis, 32, "hotline:")
    assert problem is not None
    assert "workorders.yaml" in problem and "store.buckets is 32" in problem
    assert "written with 16 buckets (hotline:wo:buckets)" in problem
    assert redis.values == {"hotline:wo:buckets": b"16"}
    # Another prefix is another deployment: its own record.
    assert claim_count(redis, 32, "other:") is None


class _Away(_Keys):
    """A client whose Redis does not answer."""

    closed = False

    def set(self, name: str, value: str, *, nx: bool) -> bool | None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379")

    def close(self) -> None:
        self.closed = True


def test_the_bucket_count_is_not_checked_when_redis_is_away(monkeypatch, caplog):
    """Redis unreachable when ``ivr serve`` starts: no refusal (the service starts and
    spools its writes, as before), a warning that the count was not checked; the client
    is closed."""
    away = _Away()
    monkeypatch.setattr(buckets, "sync_redis", lambda target, **_: away)
    assert check_count("redis://127.0.0.1:6379/0", 16) is None
    assert "not checked" in caplog.text and away.closed
