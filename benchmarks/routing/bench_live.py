"""Live routing decision latency, Redis round trips included.

    .venv/bin/python -m benchmarks.routing.bench_live [--rounds 200]

The world of ``bench_decide`` (1,000 agents over 50 skills, 500 waiting calls, 20 request
types) is written into a throw-away redis-server (testbed.redis) through the live router's own
scripts. Each round one agent becomes available and one dispatcher decision is timed in three
parts, as :meth:`routing.live.LiveRouter.dispatch` does them:

- ``snapshot``: the shared state read (one Lua script: what changed since the router's last
  read, from the change log, plus the queue stats) and the :class:`routing.core.Snapshot`
  built from the router's copy;
- ``decide``: the pure core on that snapshot;
- ``offer``: the compare-and-set Lua script that claims agent and call.

Besides: ``status``, a waiting caller's position and estimated wait (what enqueue and every
announcement ask), timed once per round after the decision; ``full_read``, the snapshot when
the router's copy is thrown away first (its first read, and the one a dispatcher makes every
``FULL_READ_EVERY_S``), timed on every 10th round and not counted in ``total``.

The state is put back after each round, so every round decides on the same world. The
benchmark writes the agent hashes directly, outside the scripts, and so records those writes
in the change log itself (:meth:`routing.live.LiveRouter.mark_changed`, untimed), as the
scripts do for every change in service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time

import redis.asyncio as aioredis

from benchmarks.routing.bench_decide import N_AGENTS, N_CALLS, N_SKILLS, build_world
from routing import core
from routing.live import CallRequest, LiveRouter
from routing.scripts import Offered, result
from testbed.redis import RedisServer


def _pct(samples: list[float]) -> tuple[float, float]:
    s = sorted(samples)
    return s[len(s) // 2] * 1e3, s[min(len(s) - 1, int(0.99 * len(s)))] * 1e3


async def run(rounds: int, url: str) -> dict[str, object]:
    config, agents, calls = build_world()
    profiles = {
        a.agent_id: core.AgentProfile(a.agent_id, a.agent_id, f"PJSIP/{a.agent_id}", a.skills)
        for a in agents
    }
    cfg = core.RoutingConfig(config.queues, config.rules, profiles,
                             fallback_request_type=config.fallback_request_type)
    client = aioredis.Redis.from_url(url)
    now = [2000.0]
    router = LiveRouter(client, lambda: cfg, instance="bench", clock=lambda: now[0])
    await client.flushdb()
    pipe = client.pipeline(transaction=False)
    for a in agents:
        pipe.sadd(router._k("agents"), a.agent_id)
        pipe.hset(router._k("agent", a.agent_id), mapping={
            "status": "on_call" if a.status == core.AgentStatus.AVAILABLE else a.status.value,
            "idle_since": a.idle_since, "since": 0, "call_id": ""})
    await pipe.execute()
    for c in calls:
        await router.enqueue(CallRequest(c.call_id, c.request_type, "normal", "5550100",
                                         c.entered_at))
    rng, pick_caller = random.Random(7), random.Random(11)
    parts: dict[str, list[float]] = {"snapshot": [], "decide": [], "offer": [], "total": [],
                                     "status": [], "full_read": []}
    offered = 0
    await router.snapshot()  # the router's first read is a full one, as at service start
    for i in range(rounds):
        agent_id = rng.choice(agents).agent_id
        key = router._k("agent", agent_id)
        before = await client.hgetall(key)
        await client.hset(key, mapping={"status": "available", "call_id": ""})
        await router.mark_changed(agents=[agent_id])
        t0 = time.perf_counter()
        snapshot = await router.snapshot()
        t1 = time.perf_counter()
        assignments = core.decide(snapshot, cfg)
        t2 = time.perf_counter()
        for a in assignments[:1]:
            reply = await router._scripts["offer"](
                keys=[router._k("agent", a.agent_id), router._k("call", a.call_id),
                      router._k("waiting"), router._k("offered")],
                args=[a.agent_id, a.call_id, snapshot.now, json.dumps(a.why.as_dict())])
            offered += result(Offered, reply) is Offered.OFFERED
        t3 = time.perf_counter()
        for name, dt in (("snapshot", t1 - t0), ("decide", t2 - t1), ("offer", t3 - t2),
                         ("total", t3 - t0)):
            parts[name].append(dt)
        t4 = time.perf_counter()
        await router.status(pick_caller.choice(calls).call_id)
        parts["status"].append(time.perf_counter() - t4)
        if i % 10 == 0:
            router._copy.reset()
            t5 = time.perf_counter()
            await router.snapshot()
            parts["full_read"].append(time.perf_counter() - t5)
        for a in assignments[:1]:  # put the world back as it was
            call_key = router._k("call", a.call_id)
            await client.hset(call_key, mapping={"status": "waiting", "agent": ""})
            await client.zadd(router._k("waiting"),
                              {a.call_id: float(await client.hget(call_key, "entered_at"))})
            await client.zrem(router._k("offered"), a.call_id)
            await router.mark_changed(calls=[a.call_id])
        await client.delete(key)
        await client.hset(key, mapping=before)
        await router.mark_changed(agents=[agent_id])
    await client.aclose()
    return {
        "agents": N_AGENTS, "skills": N_SKILLS, "waiting_calls": N_CALLS, "rounds": rounds,
        "offers_made": offered, "reads": router._copy.reads,
        **{f"{name}_ms_p50_p99": [round(v, 3) for v in _pct(samples)]
           for name, samples in parts.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    with RedisServer() as server:
        print(json.dumps(asyncio.run(run(args.rounds, server.url)), indent=2))


if __name__ == "__main__":
    main()
