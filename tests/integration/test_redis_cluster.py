"""The service on a real 3-master Redis Cluster (the ``redis_cluster`` fixture): the client
the ``cluster`` section builds reaches every node; routing's scripts run atomically in the
``{rt}`` slot with their events in that slot's outbox; the relay moves outbox entries to
``hotline:events`` once each, and again (at least once) after a relay died between the copy
and the acknowledgement."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
import yaml
from redis.asyncio.cluster import RedisCluster as AsyncRedisCluster
from twisted.internet import task

import events
from events.relay import GROUP, OutboxRelay, OutboxTags
from hotline.adapters import RouterOnReactor
from hotline.redisclient import async_redis, sync_redis
from ivr.aio import deferred
from ivr.config import RedisSettings, load_config
from ivr.flows.hotline import HotlineFlow
from ivr.testing import FakeAsterisk, on_asyncio
from routing.live import HEARTBEAT_TTL_S, OFFER_GRACE_S, CallRequest, LiveRouter
from routing.testing import only_available, shipped_config
from testbed.redis import RedisCluster
from workorders.testing import InMemoryWorkOrders


def callback_config() -> Any:
    """The shipped routing config with callbacks offered in every queue."""
    def change(files: dict[str, Any]) -> None:
        for queue in files["queues"]["queues"].values():
            queue["callback"] = {"attempts": 2, "retry_delay_s": 60.0}

    return shipped_config(change)


class GoneChannels:
    """Asterisk as the sweep sees it after the instance died: no channel of its calls left;
    callbacks originated are recorded."""

    def __init__(self) -> None:
        self.originated: list[str] = []

    async def originate_callback(self, call_id: str, endpoint: str, number: str,
                                 ring_timeout_s: float) -> None:
        self.originated.append(call_id)

    async def channel_exists(self, call_id: str) -> bool:
        return False

CONFIG = Path(__file__).resolve().parents[2] / "config"
CALL = "1700000000.21"
T0 = 1_800_000_000.0


def settings(cluster: RedisCluster) -> RedisSettings:
    return RedisSettings.model_validate({"cluster": {"nodes": cluster.nodes}})


def client(cluster: RedisCluster) -> Any:
    return async_redis(settings(cluster), socket_timeout=2.0, socket_connect_timeout=2.0)


def decoded(rows: list[Any]) -> list[dict[str, str]]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _id, fields in rows]


def test_the_cluster_section_builds_clients_that_reach_every_node(redis_cluster) -> None:
    """Keys spread over the three masters are written and read back through the blocking
    client the ``cluster`` section builds: it follows each key to the node serving its
    slot."""
    blocking = sync_redis(settings(redis_cluster), socket_timeout=2, socket_connect_timeout=2)
    keys = [f"spread:{i}" for i in range(30)]
    for key in keys:
        blocking.set(key, key)
    assert [blocking.get(key) for key in keys] == [key.encode() for key in keys]
    owners = {blocking.get_node_from_key(key).port for key in keys}
    assert len(owners) == 3
    blocking.close()


@on_asyncio
async def test_the_relay_moves_each_outbox_entry_once(redis_cluster, prefix) -> None:
    """Entries in two outboxes (two slots, on different nodes) reach the events stream once
    each, unchanged plus ``outbox_id``, in order per outbox; the outboxes are left empty and
    a second round copies nothing."""
    redis = client(redis_cluster)
    tags = OutboxTags("rt")
    tags.add_source(lambda: ["wo3"])
    for i in range(3):
        await redis.xadd(events.outbox_key("rt", prefix), events.event_fields(
            "ENTERQUEUE", T0 + i, call_id=f"c{i}"))
        await redis.xadd(events.outbox_key("wo3", prefix), events.event_fields(
            "WOCREATE", T0 + i, order_id=str(i)))
    relay = OutboxRelay(redis, tags, consumer="hotline-1", prefix=prefix)
    assert await relay.run_once() == 6
    rows = decoded(await redis.xrange(events.stream_key(prefix)))
    assert [r["call_id"] for r in rows if r["kind"] == "ENTERQUEUE"] == ["c0", "c1", "c2"]
    assert [r["order_id"] for r in rows if r["kind"] == "WOCREATE"] == ["0", "1", "2"]
    assert {r["outbox_id"].split("/")[0] for r in rows} == {"rt", "wo3"}
    assert len({r["outbox_id"] for r in rows}) == 6
    assert await redis.xlen(events.outbox_key("rt", prefix)) == 0
    assert await redis.xlen(events.outbox_key("wo3", prefix)) == 0
    assert await relay.run_once() == 0
    assert await redis.xlen(events.stream_key(prefix)) == 6
    await redis.aclose()


@on_asyncio
async def test_a_dead_relays_entries_are_copied_again_by_another(redis_cluster, prefix) -> None:
    """A relay holding an outbox's lease read an entry and copied it, then died before
    acknowledging: another relay skips the outbox while the lease lasts; once it has run out
    the other takes it, claims the pending entry and copies it again: the stream holds it
    twice with the same ``outbox_id`` (at least once), and the outbox is emptied."""
    redis = client(redis_cluster)
    outbox = events.outbox_key("rt", prefix)
    await redis.xadd(outbox, events.event_fields("CONNECT", T0, call_id="c1"))
    dead = OutboxRelay(redis, ["rt"], consumer="hotline-1", prefix=prefix, claim_s=60)
    assert await dead._lease(keys=[f"{outbox}:relay"], args=["hotline-1", 60_000])
    await dead._ensure_group(outbox)
    ((_key, entries),) = await redis.xreadgroup(GROUP, "hotline-1", {outbox: ">"})
    ((entry_id, fields),) = entries
    await redis.xadd(events.stream_key(prefix),
                     {**fields, b"outbox_id": f"rt/{entry_id.decode()}".encode()})
    # hotline-1 dies here, before XACK.
    other = OutboxRelay(redis, ["rt"], consumer="hotline-2", prefix=prefix, claim_s=0.001)
    assert await other.run_once() == 0  # the lease is hotline-1's
    await redis.delete(f"{outbox}:relay")  # ... until it runs out
    assert await other.run_once() == 1
    rows = decoded(await redis.xrange(events.stream_key(prefix)))
    assert [(r["kind"], r["outbox_id"]) for r in rows] == [
        ("CONNECT", f"rt/{entry_id.decode()}")] * 2
    assert await redis.xlen(outbox) == 0
    assert (await redis.xpending(outbox, GROUP))["pending"] == 0
    await redis.aclose()


@pytest.fixture
def cfg(tmp_path):
    """The shipped config with faults routed to ``network >= 2`` (agent103 qualifies)."""
    target = tmp_path / "config"
    shutil.copytree(CONFIG, target)
    path = target / "routing.yaml"
    routing = yaml.safe_load(path.read_text())
    routing["rules"]["fault"]["steps"] = [{"skills": "network >= 2"}]
    path.write_text(yaml.safe_dump(routing, allow_unicode=True))
    return load_config(target, environ={})


@pytest_twisted.ensureDeferred
async def test_a_call_is_routed_on_the_cluster_and_its_events_relayed(
    redis_cluster, cfg, prefix
) -> None:
    """The hotline flow hands a fault call to the live router on the cluster: it is queued,
    offered to the one available agent and connected, every script atomic in the ``{rt}``
    slot; its events wait in ``{rt}``'s outbox, not on the stream, until the relay moves
    them, once each, to ``hotline:events``."""
    redis = client(redis_cluster)
    assert isinstance(redis, AsyncRedisCluster)
    clock = task.Clock()
    clock.advance(T0)
    live = LiveRouter(redis, lambda: cfg.routing, instance="hotline-1", prefix=prefix,
                      clock=clock.seconds, cluster=True)
    assert live.events_key == f"{prefix}outbox:{{rt}}"
    await deferred(only_available(live, "agent103"))
    orders = InMemoryWorkOrders()
    flow = HotlineFlow(config=lambda: cfg, workorders=orders, router=RouterOnReactor(live),
                       clock=clock, sound=lambda name: f"/sounds/{name}")

    def music_on_hold(_timeout):
        clock.advance(0.5)

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "GET VARIABLE": lambda name: {"DIALSTATUS": "ANSWER"}.get(name),
        "STREAM FILE": [None], "GET DATA": ["3", None], "WAIT FOR DIGIT": music_on_hold,
    })
    await fake.run(flow)
    assert [(app, args[0]) for app, args in fake.exec_calls] == [("Dial", "PJSIP/agent103")]
    (order,) = orders.orders.values()
    assert order.agent == "agent103"

    assert await deferred(redis.exists(events.stream_key(prefix))) == 0
    relay = OutboxRelay(redis, ["rt"], consumer="hotline-1", prefix=prefix)
    moved = await deferred(relay.run_once())
    rows = decoded(await deferred(redis.xrange(events.stream_key(prefix))))
    assert len(rows) == moved
    kinds = [r["kind"] for r in rows if r.get("call_id") == CALL]
    assert kinds[:2] == ["ENTERQUEUE", "CONNECT"] and kinds.count("CONNECT") == 1
    assert len({r["outbox_id"] for r in rows}) == len(rows)
    await deferred(redis.aclose())


@on_asyncio
async def test_callbacks_and_the_sweep_run_on_the_cluster(redis_cluster, prefix) -> None:
    """Callbacks (virtual hold) and the sweep of a dead instance's calls run their scripts in
    the ``{rt}`` slot of the cluster: a callback is offered and originated once; after its
    instance died the sweep releases the offer nobody followed up (the agent paused
    ``missed``), removes the waiting call whose channel is gone and keeps the callback; their
    events come through the relay."""
    now = [T0]

    def router(instance: str, telephony: Any) -> LiveRouter:
        return LiveRouter(client(redis_cluster), lambda: callback_config(), instance=instance,
                          prefix=prefix, clock=lambda: now[0], telephony=telephony,
                          cluster=True)

    phone = GoneChannels()
    dead, alive = router("hotline-1", phone), router("hotline-2", GoneChannels())
    await only_available(dead, "agent103")
    await dead.dispatch()  # heartbeat of the soon-dead instance
    await dead.enqueue(CallRequest("c1", "fault", "normal", "5550199", T0))
    assert await dead.request_callback("c1", "5550199")
    await dead.enqueue(CallRequest("c2", "fault", "normal", "5550100", T0 + 1))
    await dead.dispatch()
    assert (await dead.callback_offer("c1")).agent_id == "agent103"
    assert phone.originated == ["c1"]
    await alive.redis.delete(alive._k("instance", "hotline-1"))  # its heartbeat expired
    now[0] += max(HEARTBEAT_TTL_S, 15 + OFFER_GRACE_S) + 1
    await alive.sweep()
    await alive.sweep()
    agent = await alive.agents()
    assert (agent["agent103"]["status"], agent["agent103"]["pause_reason"]) == ("paused", "missed")

    relay = OutboxRelay(alive.redis, ["rt"], consumer="hotline-2", prefix=prefix)
    await relay.run_once()
    kinds = [(r["kind"], r.get("call_id"))
             for r in decoded(await alive.redis.xrange(events.stream_key(prefix)))]
    assert ("CALLBACKREQUEST", "c1") in kinds and ("RINGNOANSWER", "c1") in kinds
    assert ("EXITORPHANED", "c2") in kinds and ("EXITORPHANED", "c1") not in kinds
    for r in (dead, alive):
        await r.redis.aclose()
