"""Through the hotline flow, against a real redis-server: the agent who answers a call
becomes the assignee of its work order at the answer (ARI's Dial event, while the
conversation runs), and Dial's return reporting the same answer changes nothing more.

The flow runs on the reactor as in the service, driving a fake Asterisk whose Dial stays
unanswered (the conversation) until the test ends it; router and store are the service's
asyncio LiveRouter and WorkOrderStore behind its adapters (hotline.adapters).
"""

from __future__ import annotations

import uuid

import pytest_twisted
import redis.asyncio as aioredis
from twisted.internet import reactor, task

from hotline.adapters import RouterOnReactor, WorkOrdersOnReactor
from ivr.aio import deferred
from ivr.config import load_config
from ivr.flows.hotline import HotlineFlow
from ivr.flows.hotline.answer import AssignOnAnswer
from ivr.testing import SILENCE, FakeAsterisk
from privacy.testing import random_field_cipher
from routing.live import LiveRouter
from routing.testing import SHIPPED_CONFIG, only_available, shipped_config
from workorders.model import Status
from workorders.store import WorkOrderStore

CALL = "1700000000.21"


@pytest_twisted.ensureDeferred
async def test_the_answering_agent_is_the_assignee_at_the_answer(redis_server, tmp_path):
    """A caller presses 3 (a fault); agent103 is offered the call and answers. At the answer
    (ARI Dial ANSWER, peer PJSIP/agent103-...) the order is assigned to agent103 and in
    progress while the conversation still runs; when Dial returns the flow reports the answer
    again and the history still has one assign and one start, by the router and the agent."""
    cfg = load_config(SHIPPED_CONFIG, environ={})
    routing = shipped_config()
    clock = task.Clock()
    clock.advance(1_800_000_000)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    client = aioredis.Redis.from_url(redis_server.url)
    live = LiveRouter(client, lambda: routing, instance="hotline-1", prefix=prefix,
                      clock=clock.seconds)
    await deferred(only_available(live, "agent103"))
    store = WorkOrderStore(client, tmp_path / "spool", prefix=prefix,
                           cipher=random_field_cipher())
    flow = HotlineFlow(config=lambda: cfg, workorders=WorkOrdersOnReactor(store),
                       router=RouterOnReactor(live), clock=clock,
                       sound=lambda name: f"/sounds/{name}")

    def music_on_hold(_timeout):
        clock.advance(0.5)

    fake = FakeAsterisk(env={"uniqueid": CALL}, clock=clock, answers={
        "GET VARIABLE": lambda name: {"DIALSTATUS": "ANSWER"}.get(name),
        "STREAM FILE": [None], "GET DATA": ["3", None], "WAIT FOR DIGIT": music_on_hold,
        "EXEC": SILENCE,  # Dial: the conversation runs until the test ends it
    })
    done = fake.run(flow)
    for _ in range(500):
        if fake.exec_calls:
            break
        await task.deferLater(reactor, 0.01, lambda: None)
    assert [(app, args[0]) for app, args in fake.exec_calls] == [("Dial", "PJSIP/agent103")]

    clock.advance(7)
    answer = AssignOnAnswer(store, live.agent_for_device, clock.seconds)
    await deferred(answer.on_dial({"dialstatus": "ANSWER", "caller": {"id": CALL},
                                   "peer": {"name": "PJSIP/agent103-0000002a"}}))
    talking = await deferred(store.get_by_call(CALL))
    assert (talking.agent, talking.status) == ("agent103", Status.IN_PROGRESS)
    answered_at = talking.history[-1].time

    clock.advance(120)
    fake.send_raw(b"200 result=0\n")  # the conversation is over: Dial returns
    await done
    order = await deferred(store.get_by_call(CALL))
    assert (order.agent, order.status) == ("agent103", Status.IN_PROGRESS)
    taken = [(h.event, h.actor, h.time) for h in order.history if h.event in ("assign", "start")]
    assert taken == [("assign", "router", answered_at), ("start", "agent103", answered_at)]
