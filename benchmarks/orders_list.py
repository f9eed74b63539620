"""Filtered work-order lists at scale: p50/p99 of one page (``WorkOrderStore.find``, 50 rows,
no history: what ``GET /api/workorders`` and ``ivr orders list`` read) with N orders stored.

    python -m benchmarks.orders_list --orders 1000000      (from the repository root)

Starts its own redis-server (``testbed.redis``), writes N orders with their index sets in
pipelines (the hash and index sets exactly as the store writes them, in the default 16 buckets
of ``workorders.buckets``, order i in bucket i % 16; no history list and no
sealing, which the list does not read), then times each filter of ``FILTERS``: first pages and
pages deep in the list (from a cursor taken at random), each page once whole (``find``) and
once its query walk alone (``workorders.query.find_ids``: the ids, no rows; ``walk_*``).
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import replace

import redis.asyncio as aioredis

from privacy.testing import random_field_cipher
from testbed.redis import RedisServer
from workorders import indexes
from workorders.buckets import Buckets
from workorders.model import Policy, Status, create_order
from workorders.query import Cursor, find_ids, parse_filter
from workorders.store import WorkOrderStore, _to_hash

DAY = 86400.0
START = 1_760_000_000.0  # creation times spread over the year before START + 365 days
NOW = START + 365 * DAY
STATUSES = [(Status.CLOSED, 70), (Status.RESOLVED, 10), (Status.IN_PROGRESS, 8),
            (Status.ASSIGNED, 5), (Status.ON_HOLD, 4), (Status.PENDING, 3)]
CATEGORIES = ["inquiry", "change", "fault", "complaint", "other"]
URGENCIES = ["normal"] * 6 + ["important"] * 3 + ["urgent"]
AGENTS = [f"agent{100 + i}" for i in range(50)]

FILTERS = {
    "none": {},
    "status=pending": {"status": "pending"},
    "status=in_progress,urgency=urgent": {"status": "in_progress", "urgency": "urgent"},
    "agent": {"agent": "agent117"},
    "agent+category": {"agent": "agent117", "category": "fault"},
    "status=closed,category=complaint": {"status": "closed", "category": "complaint"},
    "overdue": {"overdue": "true"},
    "overdue+category": {"overdue": "true", "category": "fault"},
    "last 7 days+category": {"created_from": "2026-10-02", "category": "change"},
    "status=assigned,in_progress,on_hold": {"status": "assigned,in_progress,on_hold"},
    "caller": {"caller": "+15550000042"},
}


async def fill(
    client: aioredis.Redis, prefix: str, n: int, rng: random.Random, caller_index: str
) -> None:
    policy = Policy()
    template = create_order("0", "c", "+15550000000", "Caller", START, policy)
    layout = Buckets(prefix=prefix)  # the store's bucketed keys (workorders.buckets)
    repeat_caller = layout.key(layout.of_new(caller_index, ""), "wo:by-caller:" + caller_index)
    weights = [w for _, w in STATUSES]
    pipe = client.pipeline(transaction=False)
    for i in range(1, n + 1):
        created = START + rng.random() * 365 * DAY
        status = rng.choices([s for s, _ in STATUSES], weights)[0]
        agent = None if status is Status.PENDING else rng.choice(AGENTS)
        at = template.created_at.fromtimestamp(created, template.created_at.tzinfo)
        order = replace(
            template, id=str(i), call_id=f"c{i}", caller_number=f"+1555{i % 200_000:07d}",
            created_at=at, updated_at=at, assign_by=at + (template.assign_by - template.created_at),
            respond_by=at + (template.respond_by - template.created_at),
            status=status, category=template.category.__class__(rng.choice(CATEGORIES)),
            urgency=template.urgency.__class__(rng.choice(URGENCIES)), agent=agent,
            history=(),
        )
        pipe.hset(layout.order_key(str(i)), mapping=_to_hash(order))  # type: ignore[arg-type]
        pipe.zadd(layout.order_name(str(i), "wo:index"), {str(i): created})
        for name, score in indexes.memberships(order).items():
            pipe.zadd(layout.order_name(str(i), name), {str(i): score})
        if i % 200_000 == 42:
            pipe.sadd(repeat_caller, str(i))
        if i % 5000 == 0:
            await pipe.execute()
    await pipe.execute()


async def measure(url: str, n: int, runs: int, seed: int) -> dict[str, object]:
    rng = random.Random(seed)
    client = aioredis.Redis.from_url(url)
    prefix = "bench:"
    cipher = random_field_cipher()
    t0 = time.perf_counter()
    await fill(client, prefix, n, rng, cipher.blind_index(FILTERS["caller"]["caller"]) or "")
    fill_s = time.perf_counter() - t0
    print(f"filled {n} orders in {fill_s:.1f} s", file=sys.stderr)
    store = WorkOrderStore(client, tempfile.mkdtemp(), cipher=cipher, prefix=prefix,
                           timeout=10.0)
    info = await client.info("memory")
    load_at_start = os.getloadavg()
    results: dict[str, object] = {}
    all_times: list[float] = []
    for name, params in FILTERS.items():
        f = parse_filter(params)
        times, walks, rows = [], [], 0
        for run in range(runs):
            after = None
            if run % 2:  # every other page starts deep in the list
                after = Cursor(START + rng.random() * 365 * DAY, "0")
            t = time.perf_counter()
            found, _ = await store.find(f, NOW, limit=50, after=after, history=False)
            times.append((time.perf_counter() - t) * 1000)
            rows += len(found)
            # The same page's query walk alone (its ids, no rows): where the time goes.
            t = time.perf_counter()
            await find_ids(client, prefix, f, now=NOW, limit=50, after=after,
                           blind_index=cipher.blind_index, buckets=store.buckets)
            walks.append((time.perf_counter() - t) * 1000)
        times.sort()
        walks.sort()
        all_times += times
        results[name] = {"p50_ms": round(statistics.median(times), 2),
                         "p99_ms": round(times[int(0.99 * (len(times) - 1))], 2),
                         "max_ms": round(times[-1], 2), "rows_per_page": rows / runs,
                         "walk_p50_ms": round(statistics.median(walks), 2),
                         "walk_p99_ms": round(walks[int(0.99 * (len(walks) - 1))], 2)}
    all_times.sort()
    await client.aclose()
    return {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        # Other work on the machine skews the tails: the load average says how busy it was.
        "load_average_at_start": load_at_start, "load_average_at_end": os.getloadavg(),
        "orders": n, "runs_per_filter": runs, "fill_s": round(fill_s, 1),
        "redis_used_memory_mb": round(int(info["used_memory"]) / 2**20),
        "page": 50, "overall_p99_ms": round(all_times[int(0.99 * (len(all_times) - 1))], 2),
        "filters": results,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=200, help="pages timed per filter")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    with RedisServer() as server:
        result = asyncio.run(measure(server.url, args.orders, args.runs, args.seed))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
