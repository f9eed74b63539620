"""The walk over the buckets (``workorders.query``) against a real redis-server, at the edges
of its merge: every page equals the same slice of a full sort of the matching orders (newest
first, equal creation times by id as Redis orders members), however the orders fall into
buckets: ties on the score across and within buckets, most buckets empty, page ends at the
end of a bucket. Index sets are written directly, in the store's bucketed keys."""

from __future__ import annotations

import random
import uuid

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from workorders.buckets import Buckets
from workorders.query import Cursor, find_ids, parse_filter

T0 = 1_764_000_000.0


@pytest.fixture
def layout() -> Buckets:
    return Buckets(prefix=f"m{uuid.uuid4().hex[:8]}:")


Order = tuple[str, float, str, str]  # id, created, status, category


async def write(client: aioredis.Redis, layout: Buckets, orders: list[Order]) -> None:
    """The orders' ``wo:index``, status and category sets, each in its id's bucket."""
    async with client.pipeline(transaction=False) as pipe:
        for order_id, created, status, category in orders:
            for name in ("wo:index", f"wo:status:{status}", f"wo:category:{category}"):
                pipe.zadd(layout.order_name(order_id, name), {order_id: created})
        await pipe.execute()


def expected(orders: list[Order], params: dict[str, str]) -> list[str]:
    statuses = set(params.get("status", "").split(",")) - {""}
    categories = set(params.get("category", "").split(",")) - {""}
    hits = [(created, order_id) for order_id, created, status, category in orders
            if (not statuses or status in statuses)
            and (not categories or category in categories)]
    return [order_id for _, order_id in sorted(hits, key=lambda h: (h[0], h[1].encode()),
                                               reverse=True)]


async def pages(client: aioredis.Redis, layout: Buckets, params: dict[str, str], limit: int,
                created: dict[str, float]) -> tuple[list[str], list[Cursor | None]]:
    """Every page of the filter, and each page's cursor (checked: full pages, each cursor
    the creation time and id of its page's last order)."""
    f = parse_filter(params)
    ids: list[str] = []
    cursors: list[Cursor | None] = []
    after: Cursor | None = None
    while True:
        page, after = await find_ids(client, layout.prefix, f, now=T0, limit=limit, after=after,
                                     blind_index=lambda _: None, buckets=layout)
        if after is not None:
            assert len(page) == limit
            assert after == Cursor(created[page[-1]], page[-1])
        ids += page
        cursors.append(after)
        assert len(cursors) < 2000
        if after is None:
            return ids, cursors


FILTERS = [{}, {"status": "pending"}, {"status": "pending,closed", "category": "fault"}]


def in_bucket(bucket: int, n: int, buckets: int = 16) -> str:
    """The n-th id of ``bucket`` (ids tell their bucket: ``id % B``)."""
    return str(n * buckets + bucket)


@on_asyncio
async def test_ties_on_the_score_merge_as_redis_orders_members(redis_server, layout):
    """Orders created at the same instant in many buckets (and long runs of one instant in one
    bucket) come newest first, equal times by id bytes descending (as Redis orders members:
    "9" before "80" before "10"), each exactly once, each page's cursor at its last order."""
    client = aioredis.Redis.from_url(redis_server.url)
    rng = random.Random(5)
    orders: list[Order] = []
    for n in range(400):
        bucket = rng.randrange(16) if n % 3 else 3  # a third of them in one bucket
        created = T0 + rng.choice([0.0, 0.0, 1.5, 2.0, 7.25])  # few distinct instants
        orders.append((in_bucket(bucket, n), created, rng.choice(["pending", "closed"]),
                       rng.choice(["fault", "inquiry"])))
    await write(client, layout, orders)
    created = {o[0]: o[1] for o in orders}
    for params in FILTERS:
        want = expected(orders, params)
        for limit in (1, 7, 50, 1000):
            got, _ = await pages(client, layout, params, limit, created)
            assert got == want, (params, limit)
    await client.aclose()


@on_asyncio
async def test_most_buckets_empty(redis_server, layout):
    """With orders in 2 of 16 buckets (the rest hold no set at all), pages are complete and in
    order; a filter whose sets exist in one bucket only still finds every order."""
    client = aioredis.Redis.from_url(redis_server.url)
    orders: list[Order] = [
        (in_bucket(5 if n % 2 else 11, n), T0 + n * 10.0, "pending" if n % 4 else "closed",
         "fault" if n % 2 else "inquiry")
        for n in range(120)
    ]
    await write(client, layout, orders)
    created = {o[0]: o[1] for o in orders}
    for params in [*FILTERS, {"status": "closed", "category": "inquiry"}]:
        want = expected(orders, params)
        for limit in (1, 13, 50):
            got, _ = await pages(client, layout, params, limit, created)
            assert got == want, (params, limit)
    nothing, following = await find_ids(
        client, layout.prefix, parse_filter({"status": "assigned"}), now=T0, limit=10,
        after=None, blind_index=lambda _: None, buckets=layout)
    assert (nothing, following) == ([], None)
    await client.aclose()


@on_asyncio
async def test_a_page_that_ends_at_the_end_of_a_bucket(redis_server, layout):
    """Each bucket holds one stretch of time (bucket b the b-th newest ten orders): pages of
    ten end exactly where a bucket runs out, and the next page goes on in the next bucket,
    from a cursor that is the last member of the bucket before, with nothing lost or
    repeated; so do pages of other sizes, and a cursor between two buckets' stretches."""
    client = aioredis.Redis.from_url(redis_server.url)
    orders: list[Order] = []
    for bucket in range(16):
        for n in range(10):
            created = T0 - bucket * 1000.0 - n
            orders.append((in_bucket(bucket, n), created, "pending", "fault"))
    await write(client, layout, orders)
    created = {o[0]: o[1] for o in orders}
    want = expected(orders, {})
    for limit in (10, 9, 11, 160, 161):
        got, _ = await pages(client, layout, {}, limit, created)
        assert got == want, limit
    got, cursors = await pages(client, layout, {"status": "pending"}, 10, created)
    assert got == want
    assert cursors[:3] == [Cursor(T0 - 9, "144"), Cursor(T0 - 1009, "145"),
                           Cursor(T0 - 2009, "146")]
    between, _ = await find_ids(
        client, layout.prefix, parse_filter({}), now=T0, limit=3,
        after=Cursor(T0 - 500.0, "0"), blind_index=lambda _: None, buckets=layout)
    assert between == want[10:13]
    await client.aclose()
