"""List and filter reads with many orders stored, and Redis memory per order.

Loading: orders are written straight in the store's layout (``workorders.store``: the hash with
its sealed personal fields, the history list, ``wo:by-call``, the caller's set, ``wo:index``
and every secondary index of ``workorders.indexes.INDEXERS``, with their scores) by a Lua
script, 5,000 orders a call, from a pool of template orders made by the real model and sealed
by the real cipher: order n is template ``n % pool`` with its own id, call id and caller set,
created ``spacing`` seconds after order n-1. Sealing each of a million orders anew would only
cost the loader time: a sealed value has the same size whatever the plaintext of the same
length. Statuses as in a steady state, most orders closed (``LIVES``; with the default pool
of 200: 180 of 255 templates closed, 15 pending, 15 of each other status).

Keys are the store's buckets (``workorders.buckets``, the default 16; order n in bucket
n % 16), so every read merges the buckets.

Reads (what the shipped indexes allow; the query layer of ``ivr orders list`` is built on
them), each timed from request to reply, at a random point in the stored period:

- ``index page``: ``ZRANGE wo:{wo<b>}:status:pending <t> -inf BYSCORE REV LIMIT 0 50`` of
  every bucket in one pipeline, merged: the ids of the 50 newest pending orders before ``t``;
- ``page with orders``: the same, then the 50 hashes (``HGETALL``, one pipeline);
- ``two filters, walk``: pending and category ``fault``: the store's query layer
  (``workorders.query.find_ids``: the smaller union walked newest-first over the buckets,
  each batch checked against the other set with ``ZMSCORE`` in each id's bucket), until 50
  ids are found (or the set ends);
- ``two filters, ZINTERSTORE``: the same answer by ``ZINTERSTORE`` of the two sets of each
  bucket into a temporary key of the bucket, then the index page of those and ``DEL``; for
  comparison.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis
import redis.asyncio as aioredis

from benchmarks.workorders.latency import latency_ms
from privacy.fields import FieldCipher
from privacy.testing import random_field_cipher
from workorders import indexes, personal
from workorders.buckets import Buckets
from workorders.model import Event, Policy, WorkOrder, apply, create_order
from workorders.query import find_ids, parse_filter
from workorders.store import _to_hash

#: The store's default layout (``workorders.buckets``): order n is in bucket n % 16.
BUCKETS = Buckets(prefix="bench:")

PAGE = 50
WALK_PAGE = 200
CATEGORIES = ("fault", "inquiry", "change", "complaint", "other")
URGENCIES = ("normal", "important", "urgent")
# Where orders are in a steady state: most of them closed long ago.
LIVES: tuple[tuple[int, tuple[Event, ...]], ...] = (
    (2, ()),  # pending
    (1, (Event.ASSIGN,)),
    (2, (Event.ASSIGN, Event.START)),
    (1, (Event.ASSIGN, Event.START, Event.HOLD)),
    (4, (Event.ASSIGN, Event.START, Event.RESOLVE)),
    (90, (Event.ASSIGN, Event.START, Event.RESOLVE, Event.CLOSE)),
)
CHANGES: dict[Event, dict[str, Any]] = {
    Event.HOLD: {"waiting_on": "customer", "reason": "meter reading"},
    Event.RESOLVE: {"outcome": "fixed"},
}


@dataclass(frozen=True)
class Template:
    """One template order: its hash fields and history as stored, its index memberships."""

    fields: dict[str, str]
    history: list[str]
    sets: dict[str, float]  # key suffix -> score offset from the order's creation time
    number: str


def templates(pool: int, cipher: FieldCipher, agents: int = 50) -> list[Template]:
    import json

    policy = Policy()
    rnd = random.Random(11)
    out = []
    t0 = 1_700_000_000.0
    # Each life gets its share of the pool, at least 15 templates, so that every status
    # meets every category and urgency (n % 5, n // 5 % 3).
    lives = [life for weight, life in LIVES
             for _ in range(max(15, round(weight * pool / 100)))]
    for n, life in enumerate(lives):
        number = f"+4930{rnd.randrange(10**7):07d}"
        order: WorkOrder = create_order(
            str(n), f"call-{n}", number, f"Caller {n}", t0, policy,
            category=CATEGORIES[n % 5], urgency=URGENCIES[n // 5 % 3], queue="general",
            transcript="the line has been dead since this morning, please send someone",
        )
        agent = f"agent{rnd.randrange(agents):03d}"
        for step, event in enumerate(life):
            changes = {"agent": agent} if event is Event.ASSIGN else CHANGES.get(event, {})
            order = apply(order, event, t0 + 600 * (step + 1), agent, policy, **changes)
        created = order.created_at.timestamp()
        fields = personal.seal_hash(_to_hash(order), order.call_id, cipher)
        history = [
            json.dumps(personal.seal_entry(h.to_dict(), order.call_id, cipher),
                       ensure_ascii=True, separators=(",", ":"))
            for h in order.history
        ]
        sets = {k: v - created for k, v in indexes.memberships(order).items()}
        out.append(Template(fields, history, sets, number))
    return out


# The loader runs inside Redis: a Python client spends ~50 us per command, Redis ~2.
_LOAD = """
local tpls = cjson.decode(ARGV[1])
local prefix, first, last = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t0, spacing, callers = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local buckets = tonumber(ARGV[8])
for n = first, last do
  local t = tpls[(n % #tpls) + 1]
  local id = string.format('%d', n)
  local call = 'bench-' .. id
  local created = t0 + n * spacing
  -- The store's bucket of order n (workorders.buckets): n % buckets, tag {wo<b>}.
  local base = prefix .. 'wo:{wo' .. (n % buckets) .. '}:'
  local key = base .. id
  redis.call('HSET', key, 'id', id, 'call_id', call, unpack(t[1]))
  redis.call('RPUSH', key .. ':history', unpack(t[2]))
  redis.call('SET', base .. 'by-call:' .. call, id)
  local caller = redis.sha1hex(string.format('%d', n % callers))
  redis.call('SADD', base .. 'by-caller:' .. caller .. string.sub(caller, 1, 24), id)
  redis.call('ZADD', base .. 'index', string.format('%.6f', created), id)
  for i = 1, #t[3], 2 do
    local score = string.format('%.6f', created + t[3][i + 1])
    redis.call('ZADD', base .. string.sub(t[3][i], 4), score, id)
  end
end
return last - first + 1
"""


def load(client: redis.Redis, prefix: str, orders: int, *, pool: int = 200,
         spacing: float = 30.0, batch: int = 5000, t0: float = 1_700_000_000.0,
         progress: Callable[[int], None] | None = None) -> float:
    """Write ``orders`` orders in the store's layout; the seconds it took. The caller sets
    get keys as long as the blind index's (64 hex digits), a caller calling 3 times."""
    import json

    pool_orders = templates(pool, random_field_cipher())
    packed = json.dumps([
        [[x for k, v in t.fields.items() if k not in ("id", "call_id") for x in (k, v)],
         t.history, [x for k, v in t.sets.items() for x in (k, v)]]
        for t in pool_orders
    ])
    script = client.register_script(_LOAD)
    began = time.perf_counter()
    for first in range(1, orders + 1, batch):
        last = min(orders, first + batch - 1)
        script(args=[packed, prefix, first, last, t0, spacing, max(1, orders // 3),
                     BUCKETS.count])
        if progress is not None:
            progress(last)
    return time.perf_counter() - began


@dataclass(frozen=True)
class ReadRun:
    label: str
    latencies: tuple[float, ...]  # sorted, seconds
    found: float  # average ids answered

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.label,
            "queries": len(self.latencies),
            **latency_ms(self.latencies),
            "ids_per_answer": round(self.found, 1),
        }


def _ids(reply: Any) -> list[str]:
    return [i.decode() if isinstance(i, bytes) else str(i) for i in reply]


def index_page(client: redis.Redis, name: str, before: float, count: int = PAGE) -> list[str]:
    """The newest ``count`` ids of the index ``name`` created before ``before``: each
    bucket's newest ``count`` (one pipeline), merged."""
    pipe = client.pipeline(transaction=False)
    for key in BUCKETS.keys(name):
        pipe.zrange(key, f"({before}", "-inf", desc=True, byscore=True, offset=0, num=count,
                    withscores=True)
    rows = [(float(score), _ids([member])[0]) for reply in pipe.execute()
            for member, score in reply]
    # (score, id) tuples sort as Redis orders members (str by code point = UTF-8 bytes).
    return [i for _, i in sorted(rows, reverse=True)[:count]]


def page_with_orders(client: redis.Redis, name: str, before: float) -> list[str]:
    ids = index_page(client, name, before)
    pipe = client.pipeline(transaction=False)
    for order_id in ids:
        pipe.hgetall(BUCKETS.order_key(order_id))
    pipe.execute()
    return ids


class QueryLayer:
    """The store's query layer (``workorders.query.find_ids``: the driver set walked over
    every bucket, the other set checked in each id's bucket), on its own asyncio loop."""

    def __init__(self, url: str, prefix: str) -> None:
        self.loop = asyncio.new_event_loop()
        self.client = aioredis.Redis.from_url(url)
        self.prefix = prefix

    def find(self, params: dict[str, str], before: float) -> list[str]:
        f = parse_filter({**params, "created_to": _iso(before)})
        ids, _ = self.loop.run_until_complete(find_ids(
            self.client, self.prefix, f, now=before, limit=PAGE,
            blind_index=lambda _: None, buckets=BUCKETS))
        return ids

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.close()


def two_filters_interstore(client: redis.Redis, first: str, second: str,
                           before: float) -> list[str]:
    """The same answer by ``ZINTERSTORE`` in each bucket (a temporary key of the bucket),
    merged; for comparison."""
    tmp = f"tmp:{random.randrange(10**9)}"
    pipe = client.pipeline(transaction=False)
    for bucket in BUCKETS.all():
        key = BUCKETS.key(bucket, tmp)
        pipe.zinterstore(key, {BUCKETS.key(bucket, first): 1, BUCKETS.key(bucket, second): 0})
    pipe.execute()
    ids = index_page(client, tmp, before)
    client.delete(*BUCKETS.keys(tmp))
    return ids


def measure(label: str, query: Callable[[float], list[str]], times: Iterator[float],
            queries: int) -> ReadRun:
    latencies, found = [], 0
    for _ in range(queries):
        before = next(times)
        began = time.perf_counter()
        found += len(query(before))
        latencies.append(time.perf_counter() - began)
    return ReadRun(label, tuple(sorted(latencies)), found / max(1, queries))


def reads(client: redis.Redis, prefix: str, orders: int, queries: int, *,
          spacing: float = 30.0, t0: float = 1_700_000_000.0, url: str = "") -> list[ReadRun]:
    rnd = random.Random(5)

    def times() -> Iterator[float]:
        while True:  # a random moment of the stored period
            yield t0 + rnd.uniform(0.05, 1.0) * orders * spacing

    pending, fault = "wo:status:pending", "wo:category:fault"
    layer = QueryLayer(url, prefix)
    try:
        return [
            measure("index page: pending, newest 50 before t", lambda t: index_page(
                client, pending, t), times(), queries),
            measure("page with orders: the same + 50 HGETALL", lambda t: page_with_orders(
                client, pending, t), times(), queries),
            measure("two filters, walk: pending & fault", lambda t: layer.find(
                {"status": "pending", "category": "fault"}, t), times(), queries),
            measure("two filters, walk: closed & urgent", lambda t: layer.find(
                {"status": "closed", "urgency": "urgent"}, t), times(), queries),
            measure("two filters, ZINTERSTORE: pending & fault", lambda t: two_filters_interstore(
                client, pending, fault, t), times(), max(10, queries // 10)),
        ]
    finally:
        layer.close()


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat()


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])
