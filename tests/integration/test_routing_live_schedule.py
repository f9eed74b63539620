"""Agents' schedules in the live router, against a real redis-server: an agent logged in and
available outside their schedule is offered nothing (the offer goes to an agent on schedule,
whose explanation names the one passed over), is shown ``off schedule`` by the API figures,
staffs no queue in the estimated wait, and takes calls again from the first minute of the
schedule, with no action of theirs. Schedules are read in the configured time zone.

The router is asyncio code; each test body runs as an asyncio Task on the reactor's loop
(``on_asyncio``), as in the service. Time is a list the test moves by hand.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis.asyncio as aioredis

from api import queue_report
from ivr.testing import on_asyncio
from routing.live import CallRequest, LiveRouter
from routing.testing import only_available, shipped_config

ZONE = "Asia/Seoul"
MONDAY_0859 = datetime(2027, 1, 11, 8, 59, 30, tzinfo=ZoneInfo(ZONE)).timestamp()



def _config():
    """The shipped files; agent103 (network 5) works 09:00-17:00 on weekdays, Seoul time; the
    fault rule's one step is ``network >= 2`` (agent103 and agent104 qualify)."""
    def change(files):
        files["agents"]["timezone"] = ZONE
        files["agents"]["agents"]["agent103"]["schedule"] = {
            day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}
        for q in files["queues"]["queues"].values():
            q["wrapup_s"] = 0

    return shipped_config(change)



@pytest.fixture
def router(redis_server):
    now = [MONDAY_0859]
    live = LiveRouter(aioredis.Redis.from_url(redis_server.url), _config,
                      instance="hotline-1", prefix=f"t{uuid.uuid4().hex[:8]}:",
                      clock=lambda: now[0])
    live.now = now
    return live



async def _enqueue(router, call_id, at):
    return await router.enqueue(CallRequest(call_id, "fault", "normal", "5550100", at))


@on_asyncio
async def test_off_schedule_agent_waits_for_the_schedule_to_start(router):
    """At 08:59 Seoul time agent103, logged in and available, is off schedule: the call is not
    offered, the API shows the agent ``schedule: off`` and the queue's agent ``off_schedule``,
    and nobody serves the queue (no estimated wait). At 09:00 the next round offers the call
    to agent103, the agent's Redis state untouched in between."""
    await only_available(router, "agent103")
    entry = await _enqueue(router, "c1", router.now[0])
    assert entry.estimated_wait_s is None
    assert await router.dispatch() == []
    assert await router.poll("c1") is None
    agents = await router.agents()
    assert (agents["agent103"]["status"], agents["agent103"]["schedule"]) == ("available", "off")
    assert agents["agent104"]["schedule"] == "on"  # no schedule: always on
    faults = (await queue_report(router))["faults"]
    assert faults["agents"] == {"off_schedule": 1, "paused": 3}
    assert faults["waiting"] == 1

    router.now[0] = MONDAY_0859 + 30  # 09:00:00
    [made] = await router.dispatch()
    assert (made.call_id, made.agent_id, made.why.off_schedule) == ("c1", "agent103", ())
    offer = await router.poll("c1")
    assert (offer.kind, offer.endpoint) == ("agent", "PJSIP/agent103")
    assert (await router.agents())["agent103"]["schedule"] == "on"


@on_asyncio
async def test_offer_passes_over_the_agent_off_schedule_and_says_so(router):
    """With agent103 (level 5, off schedule) and agent104 (level 2, no schedule) free, the call
    goes to agent104; the explanation, as stored on the call and listed by the API's
    decisions, names agent103 as passed over off schedule."""
    await only_available(router, "agent103", "agent104")
    await _enqueue(router, "c1", router.now[0])
    [made] = await router.dispatch()
    assert made.agent_id == "agent104"
    why = json.loads(await router.redis.hget(router._k("call", "c1"), "why"))
    assert why["off_schedule"] == ["agent103"]
    assert [c["agent"] for c in why["candidates"]] == ["agent104"]
    assert router.decisions[-1]["off_schedule"] == ["agent103"]


@on_asyncio
async def test_call_in_progress_is_finished_past_the_end_of_the_schedule(router):
    """At 16:59 agent103 takes a call; at 17:00 the call goes on, and once it ends the agent,
    available again, is offered nothing more (the next call waits for agent104)."""
    router.now[0] = datetime(2027, 1, 11, 16, 59, tzinfo=ZoneInfo(ZONE)).timestamp()
    await only_available(router, "agent103")
    await _enqueue(router, "c1", router.now[0])
    [made] = await router.dispatch()
    assert made.agent_id == "agent103"
    assert await router.answered("c1")
    router.now[0] += 60
    await _enqueue(router, "c2", router.now[0])
    assert await router.dispatch() == []
    assert (await router.agents())["agent103"]["status"] == "on_call"
    assert await router.completed("c1", "agent103", "agent")
    state = (await router.agents())["agent103"]
    assert (state["status"], state["schedule"]) == ("available", "off")
    assert await router.dispatch() == []
    await router.agent_action("agent104", "resume")
    [made] = await router.dispatch()
    assert (made.call_id, made.agent_id) == ("c2", "agent104")
