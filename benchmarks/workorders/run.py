"""Work-order benchmark: creations/s and latency with ``appendfsync everysec`` and ``always``,
list/filter reads with many orders stored, Redis memory per order.

    .venv/bin/python -m benchmarks.workorders.run [--single 5000] [--concurrent 50000]
        [--procs 2] [--tasks 32] [--orders 1000000] [--queries 1000]
        [--fsync everysec,always] [--fsync-floor 1000] [--out var/bench/workorders.json]

Each part starts its own redis-server (``testbed.redis.RedisServer``: AOF on, the fsync policy
set with ``CONFIG SET appendfsync``), on this machine, with the client(s) on the same cores.
Creations go through the real store (``benchmarks.workorders.creations``); reads are index
reads as the shipped indexes allow (``benchmarks.workorders.listing`` says exactly which).
With ``always``, the disk's fsync floor is timed too (``benchmarks.workorders.fsync``: an
append and an fsync, repeated, in the server's AOF directory), the part of a creation's
latency that is the disk's.

Memory per order: ``used_memory`` after minus before, over the orders written: through the
store (hash, history, by-call, caller set, every index, the op id with its TTL, the event on
the stream), and for the bulk load (the same without op ids and events).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import redis
from redis.utils import HIREDIS_AVAILABLE

from benchmarks.workorders import creations, fsync, listing
from testbed.redis import RedisServer

ROOT = Path(__file__).resolve().parents[2]


def _server(fsync: str) -> RedisServer:
    server = RedisServer().start()
    client = redis.Redis.from_url(server.url)
    client.config_set("appendfsync", fsync)
    client.close()
    return server


def _redis_cpu(client: redis.Redis) -> float:
    cpu = client.info("cpu")
    return float(cpu["used_cpu_user"]) + float(cpu["used_cpu_sys"])


def creation_runs(policy: str, single: int, concurrent: int, procs: int, tasks: int,
                  fsyncs: int = 0) -> dict[str, Any]:
    with _server(policy) as server:
        client = redis.Redis.from_url(server.url)
        before, cpu = listing.used_memory(client), _redis_cpu(client)
        runs = [replace(creations.single(server.url, "bench:", single),
                        redis_cpu_s=_redis_cpu(client) - cpu)]
        after = listing.used_memory(client)
        if concurrent:
            cpu = _redis_cpu(client)
            run = creations.concurrent(server.url, "bench:", concurrent, procs, tasks)
            runs.append(replace(run, redis_cpu_s=_redis_cpu(client) - cpu))
        client.close()
        # The disk's own share: an append and fsync where this server keeps its AOF.
        floor = fsync.fsync_floor(server.dir, fsyncs) if fsyncs else None
    part: dict[str, Any] = {
        "appendfsync": policy,
        "runs": [r.as_dict() for r in runs],
        # +1: the warm-up order of the single run
        "bytes_per_order_via_store": round((after - before) / (single + 1)),
    }
    if floor is not None:
        part["fsync_floor"] = floor.as_dict()
    return part


def listing_runs(orders: int, queries: int, log: Any) -> dict[str, Any]:
    with _server("everysec") as server:
        client = redis.Redis.from_url(server.url, socket_timeout=60)
        before = listing.used_memory(client)

        def progress(n: int) -> None:
            if n % 100_000 == 0 or n == orders:
                print(f"  loaded {n} orders", file=log, flush=True)

        seconds = listing.load(client, "bench:", orders, progress=progress)
        after = listing.used_memory(client)
        reads = listing.reads(client, "bench:", orders, queries, url=server.url)
        sizes = {name: sum(client.zcard(k) for k in listing.BUCKETS.keys(f"wo:{name}"))
                 for name in ("status:pending", "status:closed", "category:fault",
                              "urgency:urgent")}
        client.close()
    return {
        "orders": orders,
        "load_seconds": round(seconds, 1),
        "bytes_per_order_bulk": round((after - before) / orders),
        "used_memory_mb": round(after / 2**20, 1),
        "set_sizes": sizes,
        "reads": [r.as_dict() for r in reads],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.workorders.run", description=__doc__)
    parser.add_argument("--single", type=int, default=5000, help="creations, one client")
    parser.add_argument("--concurrent", type=int, default=50000,
                        help="creations, concurrent (0: skip)")
    parser.add_argument("--procs", type=int, default=2, help="client processes (concurrent)")
    parser.add_argument("--tasks", type=int, default=32,
                        help="concurrent creations per process")
    parser.add_argument("--orders", type=int, default=1_000_000,
                        help="orders stored for the reads (0: skip)")
    parser.add_argument("--queries", type=int, default=1000, help="queries per read kind")
    parser.add_argument("--fsync", default="everysec,always",
                        help="appendfsync policies to run the creations with")
    parser.add_argument("--fsync-floor", type=int, default=1000,
                        help="appends + fsync timed in the AOF's directory after the "
                             "'always' creations (0: skip)")
    parser.add_argument("--out", default=str(ROOT / "var" / "bench" / "workorders.json"))
    args = parser.parse_args(argv)
    result: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    # Other work on the machine skews rates and latencies, not CPU per order.
                    "load_average_at_start": os.getloadavg(),
                    # redis-py packs commands and parses replies in C with hiredis installed.
                    "redis_parser": "hiredis" if HIREDIS_AVAILABLE else "python"},
        "creations": [],
    }
    for policy in [f for f in args.fsync.split(",") if f]:
        print(f"creations, appendfsync {policy} ...", file=sys.stderr, flush=True)
        part = creation_runs(policy, args.single, args.concurrent, args.procs, args.tasks,
                             fsyncs=args.fsync_floor if policy == "always" else 0)
        result["creations"].append(part)
        for run in part["runs"]:
            print(f"  {policy:9} {run['run']:38} {run['creations_per_s']:9.0f}/s  "
                  f"p50 {run['p50_ms']:.2f} ms  p99 {run['p99_ms']:.2f} ms  "
                  f"{run['creations_per_round_trip'] or 0:.1f}/round trip  "
                  f"client {run['client_cpu_us_per_order']:.0f} µs/creation", file=sys.stderr)
        if "fsync_floor" in part:
            floor = part["fsync_floor"]
            print(f"  {policy:9} {'fsync floor (append + fsync)':38} {'':11}  "
                  f"p50 {floor['p50_ms']:.2f} ms  p99 {floor['p99_ms']:.2f} ms",
                  file=sys.stderr)
    if args.orders:
        print(f"reads with {args.orders} orders stored ...", file=sys.stderr, flush=True)
        result["listing"] = listing_runs(args.orders, args.queries, sys.stderr)
        for read in result["listing"]["reads"]:
            print(f"  {read['read']:45} p50 {read['p50_ms']:.2f} ms  p99 {read['p99_ms']:.2f} ms",
                  file=sys.stderr)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    json.dump(result, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
