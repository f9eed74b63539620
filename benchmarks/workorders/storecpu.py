"""The client's CPU per creation with Redis out of the picture: ``create_for_call`` through
the real store (model, clocks, indexes, sealing, event, the create script's arguments, group
commit, the operation's timeout), its round trip answered at once in the same process.

    .venv/bin/python -m benchmarks.workorders.storecpu [--orders 5000] [--tasks 32]
        [--profile tottime]

What the client costs apart from redis-py and the wire, for changes to the creation path.
CPU time still moves with how busy the machine is (shared caches and cores); for a figure
that does not, count instructions, the difference of two lengths over their orders:

    valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        .venv/bin/python -m benchmarks.workorders.storecpu --orders 200    # then 1000
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from benchmarks.workorders.creations import CATEGORIES, URGENCIES
from privacy.testing import random_field_cipher
from workorders.store import WorkOrderStore
from workorders.store.groupcommit import Call, GroupCommit

WARM_UP = 500


async def cpu_per_creation(orders: int, tasks: int, profile: cProfile.Profile | None = None
                           ) -> float:
    """Seconds of this process's CPU per creation, ``orders`` created by ``tasks``
    coroutines after a warm-up of :data:`WARM_UP`."""
    # Never connected: the creations' round trips are answered by ``answer`` below.
    client = aioredis.Redis.from_url("redis://127.0.0.1:1")
    store = WorkOrderStore(client, tempfile.mkdtemp(prefix="bench-spool-"), prefix="bench:",
                           cipher=random_field_cipher(), timeout=10.0, max_in_flight=tasks)
    ids = iter(range(1, 1 << 62))

    async def answer(calls: list[Call]) -> list[Any]:
        await asyncio.sleep(0)  # one loop turn, as a reply would take at the least
        return [[str(next(ids)).encode(), 1] for _ in calls]

    store._creations = GroupCommit(answer)

    async def run(first: int, count: int) -> None:
        async def worker(start: int) -> None:
            for n in range(start, first + count, tasks):
                await store.create_for_call(
                    f"call-{n}", f"+49305550{n % 100000:05d}", f"Caller {n}", time.time(),
                    category=CATEGORIES[n % len(CATEGORIES)], urgency=URGENCIES[n % 3],
                    queue="general", transcript="the line has been dead since this morning",
                )

        await asyncio.gather(*(worker(first + i) for i in range(tasks)))

    await run(0, WARM_UP)
    cpu = time.process_time()
    if profile is not None:
        profile.enable()
    await run(WARM_UP, orders)
    if profile is not None:
        profile.disable()
    return (time.process_time() - cpu) / orders


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.workorders.storecpu",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=5000)
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--profile", choices=("tottime", "cumulative"),
                        help="cProfile the creations, sorted so (slower meanwhile)")
    args = parser.parse_args(argv)
    profile = cProfile.Profile() if args.profile else None
    seconds = asyncio.run(cpu_per_creation(args.orders, args.tasks, profile))
    print(f"{seconds * 1e6:.1f} µs of client CPU per creation "
          f"({args.orders} creations, {args.tasks} coroutines)")
    if profile is not None:
        pstats.Stats(profile, stream=sys.stdout).sort_stats(args.profile).print_stats(40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
