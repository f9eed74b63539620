"""Live routing and the hotline flow under Redis faults, against a real redis-server (AOF on,
as shipped) killed with SIGKILL in the middle of a call and restarted on its data.

The call flow runs on the reactor against a fake Asterisk, as in the service; the router
(``routing.live.LiveRouter``) and the work-order store are the real asyncio code behind the
service's adapters, on the same redis-server. Asterisk's view of channels is a fake that
says which calls still exist (ARI's answer to the sweep). Each test body runs as an asyncio
Task (``on_asyncio``); the flow's and the router's time is a ``task.Clock`` moved by hand.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from twisted.internet import task

from hotline.adapters import RouterOnReactor, WorkOrdersOnReactor
from ivr.config import load_config
from ivr.flows.hotline import HotlineFlow
from ivr.testing import SILENCE, FakeAsterisk, on_asyncio
from privacy.datakeys import DataKey
from privacy.envelope import new_key
from privacy.fields import FieldCipher
from routing.live import OFFER_GRACE_S, CallRequest, LiveRouter
from routing.live_sweep import SWEEP_EVERY_S
from routing.testing import only_available
from testbed.redis import RedisServer, connect
from workorders.model import Status
from workorders.store import WorkOrderStore

CONFIG = Path(__file__).resolve().parents[2] / "config"
CIPHER = FieldCipher(DataKey("workorders-pii", 1, new_key()), DataKey("blind-index", 1, new_key()))
T0 = 1_800_000_000.0
CALL = "1800000000.21"


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A redis-server of this test's own: it is killed."""
    with RedisServer() as started:
        yield started


class Channels:
    """Asterisk's channels as ARI reports them: those in ``up`` exist."""

    def __init__(self) -> None:
        self.up: set[str] = set()

    async def originate_callback(
        self, call_id: str, agent_endpoint: str, number: str, ring_timeout_s: float
    ) -> None:
        raise AssertionError("no callback here")

    async def channel_exists(self, call_id: str) -> bool | None:
        return call_id in self.up


DIAL = {"DIALSTATUS": "ANSWER", "DIALEDTIME_MS": "64000", "ANSWEREDTIME_MS": "60000"}
"""Dial's variables when the agent answered and talked for a minute."""


def on_the_same_redis(
    server: RedisServer, live: LiveRouter, tmp_path: Path, clock: task.Clock
) -> tuple[WorkOrderStore, HotlineFlow]:
    """The work-order store on ``live``'s redis-server and prefix, and the hotline flow on
    both, as the service wires them."""
    store = WorkOrderStore(connect(server.url), tmp_path / "spool", cipher=CIPHER,
                           prefix=live.prefix, timeout=1.0)
    cfg = load_config(CONFIG, environ={})
    flow = HotlineFlow(config=lambda: cfg, workorders=WorkOrdersOnReactor(store),
                       router=RouterOnReactor(live), clock=clock,
                       sound=lambda name: f"/sounds/{name}")
    return store, flow


async def until(condition: Callable[[], object], what: str, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("answer_reached_routing", [True, False],
                         ids=["connected-then-redis-died", "redis-died-while-it-rang"])
@on_asyncio
async def test_redis_dies_during_a_call_the_agent_is_free_again_and_the_order_has_its_assignee(
    server: RedisServer, tmp_path: Path, answer_reached_routing: bool
) -> None:
    """agent103, the only agent free, takes a fault call; redis-server is killed (SIGKILL)
    while they talk (after ARI's Dial event put them on call in routing, or before: the
    answer itself lost) and the conversation ends while it is dead. The caller still gets
    the survey; Redis restarts on its AOF, the store replays its spool and the order names
    agent103 as assignee, in progress, with the scores. Nobody touches routing: once
    Asterisk has no channel for the call, the sweep frees agent103 and the next call is
    offered to them: within OFFER_GRACE_S and the queue's wrap-up (counted from
    when the call was found over) for a connected call, ring timeout + grace for the
    offer of an answer routing never heard of (settled without wrap-up)."""
    cfg = load_config(CONFIG, environ={})
    clock = task.Clock()
    clock.advance(T0)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    channels = Channels()
    live = LiveRouter(connect(server.url), lambda: cfg.routing, instance="hotline-1",
                      prefix=prefix, clock=clock.seconds, telephony=channels)
    await only_available(live, "agent103")
    store, flow = on_the_same_redis(server, live, tmp_path, clock)

    def music_on_hold(_timeout: str) -> None:
        clock.advance(0.5)

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "STREAM FILE": ["3"], "EXEC": [SILENCE], "GET VARIABLE": DIAL.get,
        "GET DATA": ["4", "8"], "WAIT FOR DIGIT": music_on_hold,
    })
    channels.up.add(CALL)
    done = fake.run(flow).asFuture(asyncio.get_running_loop())
    await until(lambda: fake.exec_calls, "the agent's phone to ring")
    if answer_reached_routing:
        assert await live.answered(CALL)  # ARI's Dial event
    # The kill comes while they talk, seconds after the ring, when Redis has written all that
    # to disk; here that comes at once, so wait for it (work order writes acknowledged and
    # not yet on disk at a kill: test_workorder_store_faults, unsynced writes).
    server.persist()
    server.kill()
    clock.advance(60)
    fake.send_raw(b"200 result=0\n")  # Dial returns: the conversation is over
    await done
    assert fake.variables["HOTLINE_NEXT"] == "done"
    assert store.spool_pending
    channels.up.discard(CALL)  # the caller hung up after the survey

    server.start()
    await store.replay_spool()
    order = await store.get_by_call(CALL)
    assert order is not None
    assert (order.agent, order.status, order.csat, order.nps) == (
        "agent103", Status.IN_PROGRESS, 4, 8)

    queue = cfg.routing.queues["faults"]
    free_within = (OFFER_GRACE_S + queue.wrapup_s if answer_reached_routing
                   else queue.ring_timeout_s + OFFER_GRACE_S) + 2 * SWEEP_EVERY_S
    since_restart = 0.0
    while (await live.agents())["agent103"]["status"] != "available":
        assert since_restart <= free_within, ("agent103 still busy", await live.agents())
        clock.advance(SWEEP_EVERY_S)
        since_restart += SWEEP_EVERY_S
        await live.dispatch()
    await live.enqueue(CallRequest("next", "fault", "normal", "5550100", clock.seconds()))
    made = await live.dispatch()
    assert [(a.call_id, a.agent_id) for a in made] == [("next", "agent103")]
    kinds = [f[b"kind"].decode() for _, f in await live.redis.xrange(live.events_key)
             if f.get(b"call_id") == CALL.encode()]
    ending = "COMPLETECALLER" if answer_reached_routing else "ABANDON"
    assert [k for k in kinds if not k.startswith("WO")] == (
        ["ENTERQUEUE", "CONNECT", ending] if answer_reached_routing else ["ENTERQUEUE", ending])
    for client in (live.redis, store._redis):
        await client.aclose()


@on_asyncio
async def test_a_waiting_call_redis_lost_in_its_crash_is_queued_again_at_its_place(
    server: RedisServer, tmp_path: Path
) -> None:
    """A fault call waits in line (every agent paused). Redis acknowledged its ENTERQUEUE
    but is killed before its append-only file had it (``everysec`` puts the file's writing
    off while an fsync is slow; here the file is turned off for the call's writes) and
    restarts without the call. With no record no dispatcher would ever offer it: the caller
    would hold until they hung up. The flow finds the record gone and queues the call again
    with its arrival time, so when agent103 comes back from break the call is offered and
    rung; its work order (held by the store through the same crash) names agent103."""
    cfg = load_config(CONFIG, environ={})
    clock = task.Clock()
    clock.advance(T0)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    live = LiveRouter(connect(server.url), lambda: cfg.routing, instance="hotline-1",
                      prefix=prefix, clock=clock.seconds, telephony=Channels())
    await only_available(live)  # nobody free: the call waits
    server.persist()
    await live.redis.config_set("appendonly", "no")
    store, flow = on_the_same_redis(server, live, tmp_path, clock)
    holds = 0

    def music_on_hold(_timeout: str) -> None:
        nonlocal holds
        holds += 1

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "STREAM FILE": ["3"], "EXEC": [SILENCE], "GET VARIABLE": DIAL.get,
        "GET DATA": ["4", "8"], "WAIT FOR DIGIT": music_on_hold,
    })
    done = fake.run(flow).asFuture(asyncio.get_running_loop())
    await until(lambda: holds >= 3, "the caller to hold in line")
    queued = await live.waiting_call(CALL)
    assert queued is not None

    server.kill()
    server.start()
    # The same instance's router on a client of the test's own (the flow's client finds its
    # connections dead once); its dispatch stands for the service's dispatcher.
    after = LiveRouter(connect(server.url), lambda: cfg.routing, instance="hotline-1",
                       prefix=prefix, clock=clock.seconds, telephony=Channels())
    assert await after.redis.hgetall(f"{prefix}call:{CALL}") == {}  # the crash lost the call
    seen = holds
    await until(lambda: holds > seen + 3, "the caller to hold on after the restart")
    again = await after.waiting_call(CALL)
    assert again is not None, "the lost call was not queued again"
    assert again["entered_at"] == queued["entered_at"]
    assert again["queue"] == "faults"

    await after.agent_action("agent103", "resume")
    made = await after.dispatch()
    assert [(a.call_id, a.agent_id) for a in made] == [(CALL, "agent103")]
    await until(lambda: fake.exec_calls, "agent103's phone to ring")
    assert fake.exec_calls[0][1][0] == "PJSIP/agent103"
    assert await live.answered(CALL)
    clock.advance(60)
    fake.send_raw(b"200 result=0\n")  # Dial returns: the conversation is over
    await done
    assert fake.variables["HOTLINE_NEXT"] == "done"
    await store.replay_spool()
    order = await store.get_by_call(CALL)
    assert order is not None
    assert (order.agent, order.status, order.csat, order.nps) == (
        "agent103", Status.IN_PROGRESS, 4, 8)
    for client in (live.redis, after.redis, store._redis):
        await client.aclose()


@on_asyncio
async def test_a_copy_of_the_pool_from_before_a_crash_that_lost_writes_is_read_again(
    server: RedisServer,
) -> None:
    """A dispatcher's copy of the pool is at the change log's version that includes a call
    Redis acknowledged and then lost in a crash. After the restart the log is back one
    version, and another instance's new call takes that version again. Had the copy been
    brought forward from its version it would keep the lost call and never see the new one
    (until its full read, up to a minute): the log's epoch as readers see it names the
    redis-server process, so the copy is read whole again."""
    cfg = load_config(CONFIG, environ={})
    prefix = f"t{uuid.uuid4().hex[:8]}:"

    def router(instance: str) -> LiveRouter:
        return LiveRouter(connect(server.url), lambda: cfg.routing, instance=instance,
                          prefix=prefix, clock=lambda: T0, telephony=Channels())

    dispatcher = router("hotline-1")
    await only_available(dispatcher)  # nobody free: calls stay waiting
    server.persist()
    await dispatcher.redis.config_set("appendonly", "no")
    await dispatcher.enqueue(CallRequest("lost", "fault", "normal", "5550101", T0))
    assert [c.call_id for c in (await dispatcher.snapshot()).calls] == ["lost"]
    server.kill()
    server.start()
    other = router("hotline-2")
    await other.enqueue(CallRequest("new", "fault", "normal", "5550102", T0 + 1))
    assert await other.dispatch() == []  # its heartbeat: its calls are anyone's to offer
    with contextlib.suppress(redis.exceptions.ConnectionError):
        await dispatcher.redis.ping()  # the dead connection dropped; the copy kept
    reads = dict(dispatcher._copy.reads)
    assert [c.call_id for c in (await dispatcher.snapshot()).calls] == ["new"]
    assert dispatcher._copy.reads["full"] == reads["full"] + 1
    for client in (dispatcher.redis, other.redis):
        await client.aclose()
