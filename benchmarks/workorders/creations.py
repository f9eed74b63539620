"""Work-order creations through the real store (``WorkOrderStore.create_for_call``: sealing of
the personal fields, the create Lua script with its indexes and event), timed one by one.

Single client: one coroutine, one creation after the other. Concurrent: ``procs`` processes,
each with its own store and connection pool and ``tasks`` coroutines creating at once; the
rate is all creations over the wall time between a common start and the last reply.

The client CPU is the whole process's; the harness's own share of it (the timing loop around
each creation, run once with a creation that does nothing) is measured apart and reported as
``harness_cpu_us_per_order``, so it is not taken for the store's. ``creations_per_round_trip``:
how many creations the store's group commit sent to Redis together, on average.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from benchmarks.workorders.latency import latency_ms
from privacy.testing import random_field_cipher
from workorders.store import WorkOrderStore

CATEGORIES = ("fault", "inquiry", "change", "complaint", "other")
URGENCIES = ("normal", "important", "urgent")


@dataclass(frozen=True)
class CreationRun:
    """One measured run: how many, how long, each creation's latency (seconds, sorted)."""

    label: str
    orders: int
    seconds: float
    latencies: tuple[float, ...]
    client_cpu_s: float = 0.0  # the client processes' CPU time (user + system)
    redis_cpu_s: float = 0.0  # redis-server's (INFO cpu), set by the runner
    round_trips: int = 0  # round trips the creations took (group commit)
    harness_cpu_s: float = 0.0  # of client_cpu_s, the timing loop's own (no creation)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "run": self.label,
            "orders": self.orders,
            "seconds": round(self.seconds, 3),
            "creations_per_s": round(self.rate, 1),
            **latency_ms(self.latencies),
            # CPU per creation: what the machine's load does not change much.
            "client_cpu_us_per_order": round(self.client_cpu_s / self.orders * 1e6, 1),
            "redis_cpu_us_per_order": round(self.redis_cpu_s / self.orders * 1e6, 1),
            "harness_cpu_us_per_order": round(self.harness_cpu_s / self.orders * 1e6, 1),
            "creations_per_round_trip": (
                round(self.orders / self.round_trips, 2) if self.round_trips else None
            ),
        }


@dataclass(frozen=True)
class _Measured:
    """What one process measured."""

    latencies: list[float]
    began: float  # wall clock, epoch
    ended: float
    cpu_s: float
    round_trips: int
    harness_cpu_s: float


async def _create(url: str, prefix: str, count: int, tasks: int, start_at: float | None
                  ) -> _Measured:
    """Create ``count`` orders with ``tasks`` coroutines."""
    client = aioredis.Redis.from_url(url, socket_timeout=10, max_connections=tasks + 4)
    store = WorkOrderStore(client, tempfile.mkdtemp(prefix="bench-spool-"), prefix=prefix,
                           cipher=random_field_cipher(), timeout=10.0,
                           max_in_flight=max(1, tasks))
    tag = uuid.uuid4().hex[:8]
    await store.create_for_call(f"warm-{tag}", "+4930555000", "Warm Up", time.time())
    harness = await _timed_loop(_nothing, count, tasks, [])
    if start_at is not None:  # the processes of a concurrent run start together
        await asyncio.sleep(max(0.0, start_at - time.time()))
    trips = store.creation_round_trips

    async def create(n: int) -> None:
        await store.create_for_call(
            f"{tag}-{n}", f"+49305550{n % 100000:05d}", f"Caller {n}", time.time(),
            category=CATEGORIES[n % len(CATEGORIES)], urgency=URGENCIES[n % 3],
            queue="general", transcript="the line has been dead since this morning",
        )

    latencies: list[float] = []
    began = time.perf_counter()
    wall_began = time.time()
    cpu = await _timed_loop(create, count, tasks, latencies)
    elapsed = time.perf_counter() - began
    trips = store.creation_round_trips - trips
    await client.aclose()
    return _Measured(latencies, wall_began, wall_began + elapsed, cpu, trips, harness)


async def _nothing(n: int) -> None:
    return None


async def _timed_loop(create: Callable[[int], Awaitable[None]], count: int, tasks: int,
                      latencies: list[float]) -> float:
    """``create`` for 0 .. count - 1 from ``tasks`` coroutines, each timed into
    ``latencies``: the CPU seconds this process spent."""
    cpu = time.process_time()

    async def worker(first: int) -> None:
        for n in range(first, count, tasks):
            at = time.perf_counter()
            await create(n)
            latencies.append(time.perf_counter() - at)

    await asyncio.gather(*(worker(i) for i in range(tasks)))
    return time.process_time() - cpu


def _process(url: str, prefix: str, count: int, tasks: int, start_at: float,
             out: Any) -> None:
    out.put(asyncio.run(_create(url, prefix, count, tasks, start_at)))


def single(url: str, prefix: str, orders: int) -> CreationRun:
    m = asyncio.run(_create(url, prefix, orders, 1, None))
    return CreationRun("single client", orders, m.ended - m.began, tuple(sorted(m.latencies)),
                       m.cpu_s, round_trips=m.round_trips, harness_cpu_s=m.harness_cpu_s)


def concurrent(url: str, prefix: str, orders: int, procs: int, tasks: int) -> CreationRun:
    """``orders`` split over ``procs`` processes of ``tasks`` coroutines each."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 2.0 + 0.5 * procs  # after every process has imported and warmed
    share = [orders // procs + (1 if i < orders % procs else 0) for i in range(procs)]
    workers = [ctx.Process(target=_process, args=(url, prefix, n, tasks, start_at, out))
               for n in share]
    for w in workers:
        w.start()
    results: list[_Measured] = [out.get() for _ in workers]
    for w in workers:
        w.join()
    return CreationRun(
        f"concurrent ({procs} processes x {tasks} tasks)", orders,
        max(m.ended for m in results) - min(m.began for m in results),
        tuple(sorted(x for m in results for x in m.latencies)),
        sum(m.cpu_s for m in results),
        round_trips=sum(m.round_trips for m in results),
        harness_cpu_s=sum(m.harness_cpu_s for m in results),
    )
