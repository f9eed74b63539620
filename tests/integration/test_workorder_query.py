"""Lists, filters, merge and reindex of work orders against a real redis-server: the index
reads of ``workorders.query`` give the same orders, in the same order, as filtering every
order in Python; a merge keeps a concurrent change to either order; ``reindex`` makes orders
written before the indexes findable."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from workorders import indexes
from workorders.buckets import Buckets
from workorders.model import Status, TransitionRefused, WorkOrder, WorkOrderError, overdue
from workorders.query import Cursor, OrderFilter, parse_filter
from workorders.store import UnknownWorkOrder, WorkOrderStore


def bucket_key(prefix: str, order_id: str, name: str) -> str:
    """The key ``name`` in the bucket of ``order_id`` (``workorders.buckets``)."""
    return Buckets(prefix=prefix).order_name(order_id, name)

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC).timestamp()
CIPHER = random_field_cipher()
AGENTS = ["agent101", "agent102", "agent103", "agent104"]
CATEGORIES = ["inquiry", "change", "fault", "complaint", "other"]


def connect(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def make_store(client, prefix, tmp_path) -> WorkOrderStore:
    return WorkOrderStore(client, tmp_path / "spool", cipher=CIPHER, prefix=prefix)


async def populate(store: WorkOrderStore, n: int, seed: int = 7) -> list[WorkOrder]:
    """``n`` orders over about ``n`` hours, in every status, category, urgency and agent;
    every tenth from one of three repeat callers (``+1555000{0,1,2}``)."""
    rng = random.Random(seed)
    plans = []
    for i in range(n):
        at = T0 + i * 5000 + rng.random()
        number = f"+1555{(i // 10) % 3:04d}" if i % 10 == 0 else f"+1555{1000 + i:06d}"
        fields = {"category": rng.choice(CATEGORIES),
                  "urgency": rng.choice(["urgent", "important", "normal"])}
        steps = rng.choice([[], ["assign"], ["assign", "start"], ["assign", "start", "resolve"],
                            ["assign", "hold"], ["assign", "start", "resolve", "close"]])
        agent = rng.choice(AGENTS)
        plans.append((i, at, number, fields, steps, agent))

    async def one(i, at, number, fields, steps, agent) -> WorkOrder:
        order = await store.create_for_call(f"call-{i}", number, f"Caller {i}", at, **fields)
        for step in steps:
            changes: dict[str, object] = {}
            if step == "assign":
                changes = {"agent": agent}
            if step == "hold":
                changes = {"waiting_on": "customer", "reason": "meter reading"}
            order = await store.update(order.id, at + 60, step, "sam", **changes)
        return order

    orders: list[WorkOrder] = []
    for start in range(0, n, 50):
        orders += await asyncio.gather(*(one(*plan) for plan in plans[start:start + 50]))
    return orders


async def all_pages(store, f, now, limit, max_scan=None):
    ids, after, pages = [], None, 0
    while True:
        found, after = await store.find(f, now, limit=limit, after=after, history=False)
        ids += [o.id for o in found]
        pages += 1
        assert pages < 1000
        if after is None:
            return ids, pages


def expected(orders, f, now, caller_numbers=None):
    hits = [o for o in orders if f.matches(o, now)
            and (caller_numbers is None or o.caller_number in caller_numbers)]
    hits.sort(key=lambda o: (o.created_at.timestamp(), o.id.encode()), reverse=True)
    return [o.id for o in hits]


FILTERS = [
    {},
    {"status": "pending"},
    {"status": "assigned,in_progress", "urgency": "urgent"},
    {"status": "closed,resolved", "urgency": "normal,important"},  # 4 status-urgency sets
    {"status": "pending,assigned,in_progress", "urgency": "urgent,important"},  # the 5 apart
    {"category": "fault", "agent": "agent102"},
    {"agent": "agent101,agent103", "status": "closed"},
    {"created_from": "2026-11-05", "created_to": "2026-11-09"},
    {"overdue": "true"},
    {"overdue": "true", "category": "complaint,other"},
    {"category": "inquiry", "created_to": "2026-11-10T12:00:00Z", "urgency": "normal,important"},
]


@on_asyncio
async def test_filters_and_pages_match_a_full_scan(redis_server, prefix, tmp_path):
    """Over 200 orders, every filter (alone and combined, lists of values, date range,
    overdue) gives exactly the orders a full scan gives, newest first, and walking the pages
    with the cursor (page sizes 1, 7, 50) returns each once and none missing."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    orders = await populate(store, 200)
    now = T0 + 20 * 86400
    for params in FILTERS:
        f = parse_filter(params)
        want = expected(orders, f, now)
        for limit in (1, 7, 50) if len(want) < 60 else (7, 50):
            got, pages = await all_pages(store, f, now, limit)
            assert got == want, (params, limit)
            # A full last page may be followed by one empty page, never more.
            assert pages in (max(1, -(-len(want) // limit)), len(want) // limit + 1)
    await client.aclose()


@on_asyncio
async def test_caller_filter_uses_the_blind_index(redis_server, prefix, tmp_path):
    """``caller`` finds the orders of one number however it is spelled, combined with the
    other filters, newest first."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    orders = await populate(store, 120)
    now = T0 + 20 * 86400
    for params in ({"caller": "+1 555 0001"}, {"caller": "+1-555-0002", "status": "pending"}):
        f = parse_filter(params)
        digits = "".join(c for c in params["caller"] if c.isdigit())
        want = expected(orders, f, now, {"+" + digits})
        assert want  # the fixture has repeat callers
        got, _ = await all_pages(store, f, now, 2)
        assert got == want
    await client.aclose()


@on_asyncio
async def test_a_short_page_goes_on_from_where_the_scan_stopped(redis_server, prefix, tmp_path):
    """With a small scan budget a page may come back short but with a cursor; following the
    cursors still yields exactly the matching orders."""
    from workorders import query

    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    orders = await populate(store, 150)
    now = T0 + 20 * 86400
    f = parse_filter({"status": "closed", "category": "fault", "urgency": "urgent,normal"})
    ids, after, short = [], None, 0
    while True:
        page, after = await query.find_ids(client, prefix, f, now=now, limit=5, after=after,
                                           blind_index=CIPHER.blind_index, max_scan=10)
        short += len(page) < 5 and after is not None
        ids += page
        if after is None:
            break
    assert ids == expected(orders, f, now)
    assert short > 0
    await client.aclose()


@on_asyncio
async def test_merge_folds_one_order_into_another(redis_server, prefix, tmp_path):
    """The merged order points to the survivor, is closed with outcome merged and leaves the
    open sets; the survivor's history names it with its contacts and notes; both histories
    are kept; events WOABSORB and WOMERGE are written."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    a = await store.create_for_call("c-a", "+15550100", "Kim", T0)
    b = await store.create_for_call("c-b", "+15550100", "Kim", T0 + 10)
    await store.update(b.id, T0 + 20, "note", "sam", text="called twice")
    await store.update(b.id, T0 + 30, "contact", "sam", channel="phone", reached=False)
    kept, folded = await store.merge(a.id, b.id, T0 + 40, "sam")
    assert (folded.status, folded.outcome, folded.merged_into) == (Status.CLOSED, "merged", a.id)
    assert kept.history[-1].event == "absorb"
    assert kept.history[-1].details == {"merged": b.id, "contacts": 1, "notes": 1, "calls": 1}
    assert kept.contacts == 2  # the merged order's call counts as a call about the survivor
    again_a, again_b = await store.get(a.id), await store.get(b.id)
    assert again_a == kept and again_b == folded
    assert [h.event for h in again_b.history] == ["create", "note", "contact", "merge"]
    assert await client.zscore(bucket_key(prefix, b.id, "wo:open"), b.id) is None
    assert await client.zscore(bucket_key(prefix, b.id, "wo:status:closed"), b.id) is not None
    kinds = [f[b"kind"] for _, f in await client.xrange(f"{prefix}events")]
    assert kinds[-2:] == [b"WOABSORB", b"WOMERGE"]
    await client.aclose()


@on_asyncio
async def test_merge_refusals_are_clear(redis_server, prefix, tmp_path):
    """Merging an order into itself, an unknown order, an order already merged, or into a
    closed order is refused, naming the order, and writes nothing."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    a = await store.create_for_call("c-a", "+15550100", "Kim", T0)
    b = await store.create_for_call("c-b", "+15550101", "Lee", T0 + 1)
    c = await store.create_for_call("c-c", "+15550102", "Max", T0 + 2)
    with pytest.raises(WorkOrderError, match="itself"):
        await store.merge(a.id, a.id, T0 + 5, "sam")
    with pytest.raises(UnknownWorkOrder):
        await store.merge(a.id, "999", T0 + 5, "sam")
    await store.merge(a.id, b.id, T0 + 5, "sam")
    with pytest.raises(TransitionRefused, match=f"work order {b.id} is already merged"):
        await store.merge(c.id, b.id, T0 + 6, "sam")
    for step, changes in (("assign", {"agent": "agent101"}), ("start", {}), ("resolve", {}),
                          ("close", {})):
        await store.update(c.id, T0 + 7, step, "sam", **changes)
    before = await client.xlen(f"{prefix}events")
    with pytest.raises(TransitionRefused, match=f"work order {c.id} is closed"):
        await store.merge(c.id, a.id, T0 + 8, "sam")
    assert await client.xlen(f"{prefix}events") == before
    await client.aclose()


@on_asyncio
async def test_merge_keeps_a_concurrent_change(redis_server, prefix, tmp_path):
    """A change to the survivor or to the merged order that lands while a merge is between
    its read and its write (another instance's note) makes the merge start over on the new
    state: the note and the merge are both in the history, nothing is lost."""
    client, other = connect(redis_server.url), connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    racer = make_store(other, prefix, tmp_path / "racer")
    real_stage = store._stage
    for target in ("survivor", "merged"):
        a = await store.create_for_call(f"c-a-{target}", "+15550100", "Kim", T0)
        b = await store.create_for_call(f"c-b-{target}", "+15550100", "Kim", T0 + 1)
        victim = a.id if target == "survivor" else b.id
        raced: list[str] = []

        async def stage(*args, victim=victim, raced=raced, **kwargs):
            if not raced:  # between the WATCHed read and the EXEC of the first attempt
                raced.append((await racer.update(victim, T0 + 2, "note", "ann", text="x")).id)
            await real_stage(*args, **kwargs)

        store._stage = stage  # type: ignore[method-assign]
        kept, folded = await store.merge(a.id, b.id, T0 + 3, "sam")
        store._stage = real_stage  # type: ignore[method-assign]
        survivor, merged = await store.get(a.id), await store.get(b.id)
        assert raced == [victim]
        assert (survivor, merged) == (kept, folded)
        assert [h.event for h in (survivor if target == "survivor" else merged).history][1] \
            == "note"
        assert merged.merged_into == a.id and survivor.history[-1].event == "absorb"
        assert survivor.history[-1].details["notes"] == (1 if target == "merged" else 0)
    await client.aclose()
    await other.aclose()


@on_asyncio
async def test_reindex_makes_old_orders_findable(redis_server, prefix, tmp_path):
    """Orders whose index sets are missing (written before the indexes existed) are found
    by no filter; after ``reindex`` every filter finds them again, and running it twice
    changes nothing."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    orders = await populate(store, 80)
    sets = set()
    for order in orders:
        sets |= set(indexes.memberships(order))
    await client.delete(*(k for key in sets for k in Buckets(prefix=prefix).keys(key)))
    now = T0 + 20 * 86400
    f = OrderFilter(statuses=frozenset({Status.PENDING}))
    assert (await store.find(f, now))[0] == []
    assert await store.reindex(batch=30) == 80
    for params in FILTERS:
        f = parse_filter(params)
        got, _ = await all_pages(store, f, now, 50)
        assert got == expected(orders, f, now)
    dump = {k: await client.zrange(k, 0, -1, withscores=True) for k in sorted(sets)}
    await store.reindex()
    assert dump == {k: await client.zrange(k, 0, -1, withscores=True) for k in sorted(sets)}
    await client.aclose()


def test_cursor_round_trips_the_exact_score():
    """A cursor keeps the creation time to the last bit (a rounded one would repeat or skip
    the order at the page boundary)."""
    at = datetime(2026, 11, 2, 9, 0, 0, 123457, tzinfo=UTC).timestamp()
    cursor = Cursor(at, "L0123456789abcde")
    assert Cursor.decode(cursor.encode()) == cursor


def test_overdue_agrees_with_the_model():
    """The filter's overdue check is the model's ``overdue``."""
    from workorders.model import Policy, create_order

    order = create_order("1", "c", "+1555", "K", T0, Policy())
    f = OrderFilter(overdue=True)
    for later in (0, 3 * 3600, 49 * 3600):
        assert f.matches(order, T0 + later) == bool(overdue(order, T0 + later))


@on_asyncio
async def test_overdue_follows_holds_and_resumes_through_the_store(redis_server, prefix, tmp_path):
    """The ``overdue`` filter reads ``wo:overdue-at``, which every update keeps in the same
    transaction: an order is listed once past its response deadline; put on hold before it,
    it is not (its clocks are paused); resumed, it is listed again only once its shifted deadline
    has passed; resolved, never. Each answer is the model's ``overdue`` of the stored order,
    alone and with a category (then nothing overdue at all is an empty last page)."""
    client = connect(redis_server.url)
    store = make_store(client, prefix, tmp_path)
    order = await store.create_for_call("call-late", "+15550001", "Kim", T0, urgency="urgent")
    order = await store.update(order.id, T0 + 60, "assign", "sam", agent="agent101")
    f = OrderFilter(overdue=True)

    with_category = OrderFilter(overdue=True, categories=frozenset({order.category.value}))

    async def listed(now: float) -> bool:
        found, _ = await store.find(f, now, history=False)
        stored = await store.get(order.id)
        assert stored is not None
        assert ([o.id for o in found] == [order.id]) == bool(overdue(stored, now))
        # With a second filter the walk first counts the overdue orders: none, no walk.
        assert await store.find(with_category, now, history=False) == (found, None)
        return bool(found)

    assert not await listed(T0 + 1800) and await listed(T0 + 2 * 3600)
    await store.update(order.id, T0 + 1800, "hold", "agent101",
                       waiting_on="customer", reason="meter reading")
    assert not await listed(T0 + 30 * 3600)
    resumed = await store.update(order.id, T0 + 30 * 3600, "resume", "agent101")
    assert resumed.respond_by.timestamp() > T0 + 30 * 3600  # the paused time was added
    assert not await listed(T0 + 30 * 3600 + 1)
    assert await listed(resumed.respond_by.timestamp() + 1)
    await store.update(order.id, T0 + 40 * 3600, "start", "agent101")
    await store.update(order.id, T0 + 40 * 3600, "resolve", "agent101", outcome="fixed")
    assert not await listed(T0 + 90 * 3600)
    assert not await client.exists(*Buckets(prefix=prefix).keys(indexes.OVERDUE_AT))
    await client.aclose()
