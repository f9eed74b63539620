"""The live router's copy of the shared state (``routing/live_snapshot.py``), kept current from
the change log, against a real redis-server: whatever any instance changes, the next snapshot
of every instance is the one a full read would give, without reading everything again.

Each check compares an instance's snapshot with the full read of a new router of the same name
(what every read was before the change log). Time is a list moved by hand.
"""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from routing.live import FULL_READ_EVERY_S, CallRequest, LiveRouter
from routing.testing import shipped_config

T0 = 1_800_000_000.0



def _config(edit=None):
    def change(files):
        for q in files["queues"]["queues"].values():
            q["callback"] = {"attempts": 2, "retry_delay_s": 60.0}
            q["wrapup_s"] = 20
            q["max_wait_s"] = 400
        if edit:
            edit(files)

    return shipped_config(change)



@pytest.fixture
def world(redis_server):
    """``world(instance)`` makes a router on one shared pool; ``world.config`` is the config
    every router reads (replace ``world.config[0]`` to reload), ``world.now`` the clock."""
    prefix = f"s{uuid.uuid4().hex[:8]}:"
    now = [T0]
    config = [_config()]

    def router(instance="hotline-1"):
        client = aioredis.Redis.from_url(redis_server.url)
        return LiveRouter(client, lambda: config[0], instance=instance, prefix=prefix,
                          clock=lambda: now[0])

    async def alive(*routers):
        """Heartbeats that do not expire (a dispatch round sets them for 6 real seconds)."""
        for r in routers:
            await r.redis.set(r._k("instance", r.instance), "1")

    router.now = now
    router.config = config
    router.alive = alive
    return router


async def _seen(router):
    """What a round sees: agents, calls in order, stats, (callback?, owner) per waiting call
    in order, finished wrap-ups."""
    snapshot, meta, wrapped_up = await router._read()
    return (dict(snapshot.agents), list(snapshot.calls), dict(snapshot.stats),
            list(meta.items()), wrapped_up)


async def _assert_current(router):
    """The router's snapshot equals a full read by a new router of the same name (whose
    calls count as its own, not a dead instance's)."""
    seen = await _seen(router)
    reference = LiveRouter(router.redis, router.config, instance=router.instance,
                           prefix=router.prefix, clock=router.clock)
    assert seen == await _seen(reference)
    assert reference._copy.reads == {"full": 1, "delta": 0}
    return seen


async def _enqueue(router, call_id, at, request_type="fault"):
    return await router.enqueue(CallRequest(call_id, request_type, "normal", "5550100", at))


@on_asyncio
async def test_changes_by_another_instance_reach_the_copy_without_a_full_read(world):
    """Agent state changes, new calls, offers, answers, calls leaving, made by instance B,
    are all in instance A's next snapshot, which reads only what changed (one full read,
    the first)."""
    a, b = world("hotline-1"), world("hotline-2")
    await world.alive(a, b)
    await b.sync_agents()
    await _assert_current(a)
    await b.agent_action("agent101", "pause", "break")
    await _enqueue(b, "c1", T0)
    await _enqueue(b, "c2", T0 + 1, request_type="billing")
    agents, calls, *_ = await _assert_current(a)
    assert agents["agent101"].status.value == "paused"
    assert [c.call_id for c in calls] == ["c1", "c2"]
    made = await b.dispatch()
    assert made
    agents, calls, *_ = await _assert_current(a)
    offered = made[0]
    assert agents[offered.agent_id].status.value == "offered"
    assert offered.call_id not in [c.call_id for c in calls]
    await b.ring_result(offered.call_id, offered.agent_id, "no_answer")
    agents, calls, *_ = await _assert_current(a)
    assert offered.call_id in [c.call_id for c in calls]
    await b.abandon("c2", "queue")
    await b.device_state("agent102", "INUSE")
    agents, calls, *_ = await _assert_current(a)
    assert "c2" not in [c.call_id for c in calls]
    assert a._copy.reads["full"] == 1 and a._copy.reads["delta"] >= 4


class _NoChannels:
    """Asterisk without any channel: the sweep removes every waiting call of a dead
    instance; callbacks are placed nowhere."""

    async def originate_callback(self, call_id, endpoint, number, ring_timeout_s):
        return None

    async def channel_exists(self, call_id):
        return False


async def _calls_by_status(router, calls):
    pipe = router.redis.pipeline(transaction=False)
    for call_id in calls:
        pipe.hmget(router._k("call", call_id), "status", "agent", "callback")
    out: dict[str, list[tuple[str, str, bool]]] = {}
    for call_id, row in zip(calls, await pipe.execute(), strict=True):
        status, agent, callback = (v.decode() if v else "" for v in row)
        out.setdefault(status, []).append((call_id, agent, callback == "1"))
    return out


@on_asyncio
async def test_random_operations_of_two_instances_keep_every_copy_exact(world):
    """Hundreds of random operations by two instances (agent actions, device states, calls
    arriving, offered, answered, rejected, completed, abandoned, overflowed, callbacks placed,
    answered and failed, an instance dying and its calls swept, wrap-ups ending, time
    passing): after each, both instances' snapshots equal a full read, with the calls and
    their owners in the waiting set's order."""
    a, b = world("hotline-1"), world("hotline-2")
    a.telephony = b.telephony = _NoChannels()
    await world.alive(a, b)
    rng = random.Random(5)
    await a.sync_agents()
    agents = list(a.config().agents)
    types = ["fault", "billing", "inquiry", "change", "complaint"]
    calls: list[str] = []
    done: dict[str, int] = {}
    for step in range(400):
        r = rng.choice((a, b))
        op = rng.choice(("agent", "device", "enqueue", "enqueue", "dispatch", "dispatch",
                         "ring", "complete", "abandon", "callback", "callback_step",
                         "unanswered", "time", "sweep"))
        agent = rng.choice(agents)
        by_status = await _calls_by_status(r, calls)
        waiting = [c for c, _, _ in by_status.get("waiting", [])]
        if op == "agent":
            action = rng.choice(("login", "logout", "pause", "resume", "resume"))
            ok = (await r.agent_action(agent, action, "break" if action == "pause" else ""))[1]
        elif op == "device":
            ok = await r.device_state(agent, rng.choice(("INUSE", "NOT_INUSE", "UNAVAILABLE")))
        elif op == "enqueue":
            calls.append(f"c{step}")
            # now, or a little earlier: arrivals out of order, and ties in the waiting set
            at = world.now[0] - rng.choice((0, 0, 5))
            ok = await _enqueue(r, calls[-1], at, rng.choice(types))
        elif op == "dispatch":
            ok = await r.dispatch()
        elif op == "ring" and by_status.get("offered"):
            call, agent_id, _ = rng.choice(by_status["offered"])
            outcome = rng.choice(("answered", "answered", "no_answer", "rejected",
                                  "caller_gone"))
            ok = await r.ring_result(call, agent_id, outcome)
        elif op == "complete" and by_status.get("connected"):
            call, agent_id, _ = rng.choice(by_status["connected"])
            ok = await r.completed(call, agent_id, rng.choice(("agent", "caller")))
        elif op == "abandon" and waiting:
            ok = await r.abandon(rng.choice(waiting), "queue")
        elif op == "callback" and waiting:
            ok = await r.request_callback(rng.choice(waiting), "5550199")
        elif op == "callback_step" and (callbacks := [
            (call, agent_id, status) for status in ("offered", "dialing")
            for call, agent_id, callback in by_status.get(status, []) if callback
        ]):
            call, agent_id, status = rng.choice(callbacks)
            step_name = "agent_answered" if status == "offered" else rng.choice(
                ("customer_answered", "customer_failed", "customer_failed"))
            ok = await r.callback_step(call, agent_id, step_name, world.now[0])
        elif op == "unanswered" and by_status.get("offered"):
            ok = await r.callback_unanswered(rng.choice(by_status["offered"])[0])
        elif op == "time":
            world.now[0] += rng.choice((1, 10, 30, 70))
            ok = True
        elif op == "sweep":
            if rng.random() < 0.3:  # the other instance's heartbeat expired
                other = b if r is a else a
                await r.redis.delete(r._k("instance", other.instance))
            ok = await r.sweep() or True
        else:
            ok = False
        done[op] = done.get(op, 0) + bool(ok)
        for instance in (a, b):
            await _assert_current(instance)
    assert all(done.get(op) for op in ("ring", "complete", "abandon", "callback",
                                       "callback_step", "unanswered", "sweep")), done
    assert a._copy.reads["full"] <= 2 + (world.now[0] - T0) // FULL_READ_EVERY_S, a._copy.reads


@on_asyncio
async def test_config_reload_rebuilds_the_agents_from_the_copy(world):
    """A reload (a new config object) applies at the next snapshot: an agent's new skills,
    an agent removed from the config left out, without reading Redis in full again; an agent
    added to the config is in it once the reload's agent sync made it known in Redis."""
    a = world("hotline-1")
    await a.sync_agents()
    before, *_ = await _assert_current(a)
    assert "agent104" in before

    def edit(files):
        agents = files["agents"]["agents"]
        agents["agent101"]["skills"] = {"billing": 1}
        agents["agent105"] = {**agents.pop("agent104"), "endpoint": "PJSIP/agent105"}

    world.config[0] = _config(edit)
    after, *_ = await _assert_current(a)
    assert dict(after["agent101"].skills) == {"billing": 1}
    assert "agent104" not in after and "agent105" not in after
    await a.sync_agents()
    after, *_ = await _assert_current(a)
    assert after["agent105"].status.value == "available"
    assert a._copy.reads["full"] == 1


@on_asyncio
async def test_a_log_started_over_or_trimmed_past_the_copy_means_a_full_read(world):
    """The change log's keys lost (a new epoch) or trimmed past the version the copy is at
    (its floor): the next read is a full one, and right."""
    a, b = world("hotline-1"), world("hotline-2")
    await world.alive(a, b)
    await b.sync_agents()
    await _enqueue(b, "c1", T0)
    await _assert_current(a)
    await b.redis.delete(b._k("version"), b._k("changed"))
    await b.agent_action("agent101", "pause", "break")
    await _enqueue(b, "c2", T0 + 1)
    await _assert_current(a)
    assert a._copy.reads["full"] == 2
    await b.abandon("c1", "queue")
    version = int(await b.redis.hget(b._k("version"), "version"))
    await b.redis.hset(b._k("version"), "floor", version)  # as a trim leaves it
    _, calls, *_ = await _assert_current(a)
    assert a._copy.reads["full"] == 3
    assert [c.call_id for c in calls] == ["c2"]


@on_asyncio
async def test_writes_outside_the_scripts_are_seen_when_recorded_or_at_the_next_full_read(
    world,
):
    """A hash written behind the scripts' back is invisible to a copy until it is recorded
    in the change log (``mark_changed``), or until the periodic full read."""
    a = world("hotline-1")
    await a.sync_agents()
    await _assert_current(a)
    await a.redis.hset(a._k("agent", "agent101"), "status", "paused")
    assert (await _seen(a))[0]["agent101"].status.value == "available"
    await a.mark_changed(agents=["agent101"])
    assert (await _assert_current(a))[0]["agent101"].status.value == "paused"
    await a.redis.hset(a._k("agent", "agent102"), "status", "paused")
    world.now[0] += FULL_READ_EVERY_S
    assert (await _assert_current(a))[0]["agent102"].status.value == "paused"


@on_asyncio
async def test_concurrent_reads_of_one_instance_each_see_what_was_done_before_them(world):
    """An announcement's position read while the dispatcher's read is in flight: each sees
    every change made before it started, and the copy ends current."""
    a, b = world("hotline-1"), world("hotline-2")
    await world.alive(a, b)
    await b.sync_agents()
    for agent in a.config().agents:
        await b.agent_action(agent, "pause", "break")
    await _enqueue(b, "c1", T0)
    await a.snapshot()
    await _enqueue(b, "c2", T0 + 1)
    first, status, _ = await asyncio.gather(
        a.snapshot(), a.status("c2"), _enqueue(b, "c3", T0 + 2)
    )
    assert [c.call_id for c in first.calls][:2] == ["c1", "c2"]
    assert status.position == 2
    _, calls, *_ = await _assert_current(a)
    assert [c.call_id for c in calls] == ["c1", "c2", "c3"]
