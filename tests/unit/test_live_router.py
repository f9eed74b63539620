"""The live router's Lua scripts against a real redis-server: callbacks that keep their place,
softphone device states, stale offers and orphaned calls of dead instances.

The router is asyncio code; each test body runs as an asyncio Task on the reactor's loop
(``on_asyncio``), as in the service. Time is a list the test moves by hand.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import redis
import redis.asyncio as aioredis

from ivr.testing import on_asyncio
from routing import core
from routing.live import HEARTBEAT_TTL_S, OFFER_GRACE_S, CallRequest, LiveRouter
from routing.live_snapshot import _s
from routing.live_sweep import SWEEP_EVERY_S
from routing.testing import only_available, shipped_config

T0 = 1_800_000_000.0



def _config(retry_delay_s: float = 60.0, attempts: int = 2):
    def change(files):
        for q in files["queues"]["queues"].values():
            q["callback"] = {"attempts": attempts, "retry_delay_s": retry_delay_s}
            q["wrapup_s"] = 0

    return shipped_config(change)


class FakeTelephony:
    """Records originates; channels listed in ``up`` exist in 'Asterisk'."""

    def __init__(self) -> None:
        self.originated: list[tuple[str, str, str]] = []
        self.up: set[str] = set()

    async def originate_callback(self, call_id, endpoint, number, ring_timeout_s):
        self.originated.append((call_id, endpoint, number))

    async def channel_exists(self, call_id):
        return call_id in self.up



@pytest.fixture
def make(redis_server):
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    now = [T0]
    cfg = _config()

    def router(instance="hotline-1", telephony=None, config=cfg):
        client = aioredis.Redis.from_url(redis_server.url)
        return LiveRouter(client, lambda: config, instance=instance, prefix=prefix,
                          clock=lambda: now[0], telephony=telephony)

    router.now = now
    return router



async def _enqueue(router, call_id, at, request_type="fault", number="5550100"):
    return await router.enqueue(CallRequest(call_id, request_type, "normal", number, at))


async def _events(router):
    return [{k.decode(): v.decode() for k, v in f.items()}
            for _, f in await router.redis.xrange(router.events_key)]


@on_asyncio
async def test_callback_keeps_place_and_only_one_instance_places_it(make):
    """A callback stays at its place: with one agent free it is offered before a later
    caller, and of two instances dispatching the same round exactly one originates it
    (agent first: the agent's endpoint is rung, with the customer's number)."""
    phone_a, phone_b = FakeTelephony(), FakeTelephony()
    a, b = make("hotline-1", phone_a), make("hotline-2", phone_b)
    await only_available(a)
    await _enqueue(a, "c1", T0, number="5550199")
    assert await a.request_callback("c1", "5550199")
    await _enqueue(a, "c2", T0 + 5)
    await a.agent_action("agent103", "resume")
    await asyncio.gather(a.dispatch(), b.dispatch())
    assert phone_a.originated + phone_b.originated == [("c1", "PJSIP/agent103", "5550199")]
    offer = await a.callback_offer("c1")
    assert (offer.agent_id, offer.number, offer.attempt) == ("agent103", "5550199", 0)
    assert await a.poll("c2") is None


@pytest.mark.parametrize(
    ("caller_id", "dialled", "shown"),
    [
        (None, "15881234", core.CallbackCallerId("15881234")),
        (None, "", None),
        ({"number": "+8215885000", "name": "ACME Hotline"}, "15881234",
         core.CallbackCallerId("+8215885000", "ACME Hotline")),
    ],
)
@on_asyncio
async def test_callback_offer_presents_the_number_dialled_or_the_configured_one(
    make, caller_id, dialled, shown
):
    """The number the caller dialled is kept with the call in Redis and is what the
    customer's phone is shown when their callback is placed; a queue's ``callback.caller_id``
    takes its place; a call whose dialled number is unknown presents nothing (None)."""
    def change(files):
        if caller_id is not None:
            files["queues"]["queues"]["faults"]["callback"] = {"caller_id": caller_id}

    config = shipped_config(change)
    r = make(telephony=FakeTelephony(), config=config)
    await only_available(r)
    await r.enqueue(CallRequest("c1", "fault", "normal", "5550199", T0, dialled_number=dialled))
    assert await r.request_callback("c1", "5550199")
    await r.agent_action("agent103", "resume")
    await r.dispatch()
    assert (await r.callback_offer("c1")).caller_id == shown


@on_asyncio
async def test_callback_customer_no_answer_retries_at_its_place_then_gives_up(make):
    """The customer does not answer: the agent is free again, the callback goes back to its
    place but is not offered before the retry delay; after the last attempt it is given up
    (EXITCALLBACKFAILED) and leaves the waiting set."""
    phone = FakeTelephony()
    r = make(telephony=phone)
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    await r.request_callback("c1", "5550199")
    await r.dispatch()
    assert await r.callback_step("c1", "agent103", "agent_answered") == 1
    assert (await r.agents())["agent103"]["status"] == "on_call"
    assert await r.callback_step("c1", "agent103", "customer_failed", "customer noanswer") == 1
    assert (await r.agents())["agent103"]["status"] == "available"
    assert await r.redis.zrange(r._k("waiting"), 0, -1) == [b"c1"]
    await r.dispatch()
    assert len(phone.originated) == 1  # not due yet
    make.now[0] += 61
    await r.dispatch()
    assert len(phone.originated) == 2
    assert await r.callback_step("c1", "agent103", "agent_answered") == 2
    assert await r.callback_step("c1", "agent103", "customer_failed", "busy") == 2
    assert await r.redis.zrange(r._k("waiting"), 0, -1) == []
    kinds = [e["kind"] for e in await _events(r)]
    assert kinds.count("CALLBACKATTEMPT") == 2 and kinds[-1] == "EXITCALLBACKFAILED"


@on_asyncio
async def test_callback_connected_counts_answered_and_completes(make):
    """Agent answers, customer answers: CONNECT (marked callback) and then COMPLETECALLER;
    the agent ends available."""
    r = make(telephony=FakeTelephony())
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    await r.request_callback("c1", "5550199")
    await r.dispatch()
    await r.callback_step("c1", "agent103", "agent_answered")
    assert await r.callback_step("c1", "agent103", "customer_answered", T0 + 3)
    assert await r.completed("c1", "agent103", by="caller")
    kinds = [(e["kind"], e.get("callback")) for e in await _events(r)]
    assert ("CONNECT", "1") in kinds and kinds[-1][0] == "COMPLETECALLER"
    assert (await r.agents())["agent103"]["status"] == "available"


@on_asyncio
async def test_unanswered_callback_offer_is_released_as_missed(make):
    """Nobody answers the agent's phone for a callback: after ring timeout + grace the sweep
    pauses the agent (missed) and the callback is back at its place."""
    r = make(telephony=FakeTelephony())
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    await r.request_callback("c1", "5550199")
    await r.dispatch()
    make.now[0] += r.config().queues["faults"].ring_timeout_s + OFFER_GRACE_S + 1
    await r.sweep()
    agent = (await r.agents())["agent103"]
    assert (agent["status"], agent["pause_reason"]) == ("paused", "missed")
    assert await r.redis.zrange(r._k("waiting"), 0, -1) == [b"c1"]


@on_asyncio
async def test_offer_of_dead_instance_is_freed_and_its_gone_calls_removed(make):
    """Instance 1 dies with one call offered and one waiting. Instance 2's sweep frees the
    agent after ring timeout + grace (OFFERRELEASED, the agent not blamed), and removes the
    calls whose channels Asterisk no longer has (EXITORPHANED); a call whose channel is
    still up (re-entering through the backup) stays."""
    phone = FakeTelephony()
    dead, alive = make("hotline-1"), make("hotline-2", phone)
    await only_available(dead, "agent103")
    await dead.dispatch()  # heartbeat of the soon-dead instance
    await _enqueue(dead, "c1", T0)
    await _enqueue(dead, "c2", T0 + 1)
    await _enqueue(dead, "c3", T0 + 2)
    await dead.dispatch()
    assert (await dead.poll("c1")).agent_id == "agent103"
    await alive.redis.delete(alive._k("instance", "hotline-1"))  # its heartbeat expired
    phone.up = {"c3"}
    make.now[0] += max(HEARTBEAT_TTL_S, 15 + OFFER_GRACE_S) + 1
    await alive.sweep()
    assert (await alive.agents())["agent103"]["status"] == "available"
    await alive.sweep()
    kinds = [(e["kind"], e.get("call_id")) for e in await _events(alive)]
    assert ("OFFERRELEASED", "c1") in kinds
    assert ("EXITORPHANED", "c1") in kinds and ("EXITORPHANED", "c2") in kinds
    assert ("EXITORPHANED", "c3") not in kinds
    assert await alive.redis.zrange(alive._k("waiting"), 0, -1) == [b"c3"]


@on_asyncio
async def test_reentered_call_keeps_its_position(make):
    """The same call enqueued again by the backup instance keeps its sequence and place, and
    is now owned by the backup."""
    first, backup = make("hotline-1"), make("hotline-2")
    await only_available(first)
    await _enqueue(first, "c1", T0)
    await _enqueue(first, "c2", T0 + 1)
    entry = await _enqueue(backup, "c1", T0 + 30)
    assert entry.resumed and entry.position == 1
    assert (await backup.waiting_call("c1"))["instance"] == "hotline-2"


@on_asyncio
async def test_device_state_pauses_busy_elsewhere_and_resumes(make):
    """INUSE while available -> paused busy-elsewhere; NOT_INUSE -> available again;
    UNAVAILABLE -> paused unavailable, back on NOT_INUSE; a device busy with our own call
    (agent offered or on call) changes nothing; an explicit break is never lifted by it."""
    r = make()
    await r.sync_agents()
    assert r.agent_for_device("PJSIP/agent101") == "agent101"
    assert await r.device_state("agent101", "INUSE") == "paused"
    assert (await r.agents())["agent101"]["pause_reason"] == "busy-elsewhere"
    assert await r.device_state("agent101", "NOT_INUSE") == "available"
    assert await r.device_state("agent101", "UNAVAILABLE") == "paused"
    assert (await r.agents())["agent101"]["pause_reason"] == "unavailable"
    assert await r.device_state("agent101", "NOT_INUSE") == "available"
    await r.agent_action("agent102", "pause", "lunch")
    assert await r.device_state("agent102", "NOT_INUSE") is None
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    await r.dispatch()
    assert await r.device_state("agent103", "RINGING") is None
    kinds = [(e["kind"], e.get("source")) for e in await _events(r)]
    assert kinds.count(("PAUSE", "device")) == 2 and kinds.count(("UNPAUSE", "device")) == 2


@on_asyncio
async def test_callback_refused_once_offered(make):
    """A caller pressing the key just as an agent was offered the call stays on the line:
    the request is refused and the offer stands."""
    r = make(telephony=FakeTelephony())
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    await r.dispatch()
    assert not await r.request_callback("c1", "5550199")
    assert (await r.poll("c1")).agent_id == "agent103"


@on_asyncio
async def test_calls_of_a_dead_instance_are_not_offered(make):
    """Nobody could ring the agent for a call whose instance died: it is not offered (the
    agent stays free), until the backup instance re-enqueues it and owns it."""
    dead, alive = make("hotline-1"), make("hotline-2", FakeTelephony())
    await only_available(dead, "agent103")
    await _enqueue(dead, "c1", T0)
    await alive.redis.delete(alive._k("instance", "hotline-1"))
    alive.telephony.up = {"c1"}  # the caller is still there, re-entering via the backup
    assert await alive.dispatch() == []
    assert (await alive.agents())["agent103"]["status"] == "available"
    assert (await _enqueue(alive, "c1", T0 + 20)).resumed  # re-entered through the backup
    made = await alive.dispatch()
    assert [(a.call_id, a.agent_id) for a in made] == [("c1", "agent103")]


@on_asyncio
async def test_callback_agent_leg_ending_unanswered_releases_at_once(make):
    """The agent's phone rang out for a callback (ARI ChannelDestroyed of its leg): the
    agent is paused missed and the callback is back at its place right away; once the agent
    has answered, the same notice changes nothing."""
    r = make(telephony=FakeTelephony())
    await only_available(r, "agent103", "agent104")
    await _enqueue(r, "c1", T0)
    await r.request_callback("c1", "5550199")
    await r.dispatch()
    agent = (await r.callback_offer("c1")).agent_id
    assert await r.callback_unanswered("c1")
    state = (await r.agents())[agent]
    assert (state["status"], state["pause_reason"]) == ("paused", "missed")
    assert await r.redis.zrange(r._k("waiting"), 0, -1) == [b"c1"]
    await r.dispatch()
    other = (await r.callback_offer("c1")).agent_id
    assert other != agent
    await r.callback_step("c1", other, "agent_answered")
    assert not await r.callback_unanswered("c1")


@on_asyncio
async def test_answer_is_counted_once_at_the_moment_it_happened(make):
    """The agent's answer comes live (ARI Dial event) and again when Dial returns after the
    conversation: CONNECT is written once, its hold time ends at the answer, the agent is
    on call meanwhile, and the queue counts one answered call within the target."""
    router = make()
    await only_available(router, "agent103")
    await _enqueue(router, "c1", T0)
    make.now[0] = T0 + 4
    await router.dispatch()
    assert (await router.poll("c1")).agent_id == "agent103"
    assert await router.answered("c1", at=T0 + 7)
    assert (await router.agents())["agent103"]["status"] == "on_call"
    make.now[0] = T0 + 300  # the conversation is over, Dial returns
    assert await router.ring_result("c1", "agent103", "answered", at=T0 + 7)
    connects = [e for e in await _events(router) if e["kind"] == "CONNECT"]
    assert [e["holdtime"] for e in connects] == ["7.000"]
    stats = (await router.snapshot()).stats["faults"]
    assert (stats.answered, stats.answered_within) == (1, 1)


@on_asyncio
async def test_wrap_up_ends_at_its_time_and_frees_the_agent(make):
    """After a call the agent wraps up for the queue's wrap-up time: the dispatcher keeps
    them out of routing until then, and makes them available again once it is over."""
    config = shipped_config(lambda files: files["queues"]["queues"]["faults"].update(wrapup_s=30))
    router = make(config=config)
    await only_available(router, "agent103")
    await _enqueue(router, "c1", T0)
    await router.dispatch()
    assert await router.answered("c1", at=T0 + 1)
    make.now[0] = T0 + 60
    assert await router.completed("c1", "agent103", by="agent")
    await router.dispatch()
    assert (await router.agents())["agent103"]["status"] == "wrap_up"
    make.now[0] = T0 + 91
    await router.dispatch()
    assert (await router.agents())["agent103"]["status"] == "available"
    assert "WRAPUPEND" in [e["kind"] for e in await _events(router)]


async def _lost(router, method, *args, **kwargs):
    """``router.<method>(...)`` made while Redis is away: its script fails as redis-py's do,
    whatever the method did before its write (as forgetting the call here) stands."""
    name = {"completed": "complete", "ring_result": "ring_result"}[method]
    script = router._scripts[name]

    async def away(**_kwargs):
        raise redis.ConnectionError("Error 111 connecting to 127.0.0.1. Connection refused.")

    router._scripts[name] = away
    try:
        with pytest.raises(redis.ConnectionError):
            await getattr(router, method)(*args, **kwargs)
    finally:
        router._scripts[name] = script


async def _connected(router, call_id, at=T0):
    """The call queued, offered to a free agent and answered."""
    await _enqueue(router, call_id, at)
    assert len(await router.dispatch()) == 1
    assert await router.answered(call_id, at=at + 1)


@on_asyncio
async def test_conversation_whose_end_was_lost_is_completed_once_its_channel_is_gone(make):
    """Redis was away when the call flow reported the end of agent103's conversation, so
    routing still shows them on the call. The sweep leaves them alone while the caller's
    channel exists, then completes the call once Asterisk has had no channel for it for
    OFFER_GRACE_S (COMPLETECALLER, source=sweep): the agent takes the next call. A report
    of that completion arriving late changes nothing, even during the agent's next call."""
    phone = FakeTelephony()
    r = make(telephony=phone)
    await only_available(r, "agent103")
    await _connected(r, "c1")
    make.now[0] = T0 + 60
    await _lost(r, "completed", "c1", "agent103", by="agent")
    phone.up = {"c1"}  # the caller is still in the survey
    await r.dispatch()
    make.now[0] += SWEEP_EVERY_S
    await r.dispatch()
    assert (await r.agents())["agent103"]["status"] == "on_call"
    phone.up = set()  # the caller hung up
    make.now[0] += SWEEP_EVERY_S
    await r.dispatch()
    assert (await r.agents())["agent103"]["status"] == "on_call"  # grace for a late report
    make.now[0] += OFFER_GRACE_S
    await r.dispatch()
    assert (await r.agents())["agent103"]["status"] == "available"
    completions = [e for e in await _events(r) if e["kind"].startswith("COMPLETE")]
    assert [(e["kind"], e["call_id"], e.get("source")) for e in completions] == [
        ("COMPLETECALLER", "c1", "sweep")]
    assert not await r.completed("c1", "agent103", by="agent")  # the report, late
    await _connected(r, "c2", at=make.now[0])
    phone.up = {"c2"}
    assert not await r.completed("c1", "agent103", by="agent")
    make.now[0] += OFFER_GRACE_S + SWEEP_EVERY_S
    await r.dispatch()
    agent = (await r.agents())["agent103"]
    assert (agent["status"], agent["call_id"]) == ("on_call", "c2")
    assert r.channels_gone == {}


@on_asyncio
async def test_sweep_ends_only_calls_nobody_reports_on_and_asterisk_says_are_gone(make):
    """Four connected calls, none with a channel in Asterisk: one whose call flow still
    runs here (it reports the end itself), one of another instance that lives (its own sweep
    reconciles it), one Asterisk cannot tell about (never ended on a guess), and one of an
    instance that died: only the last is completed by this instance's sweep."""

    class Unsure(FakeTelephony):
        async def channel_exists(self, call_id):
            return None if call_id == "c3" else call_id in self.up

    def everyone_takes_faults(files):
        for queue in files["queues"]["queues"].values():
            queue["wrapup_s"] = 0
        files["routing"]["rules"]["fault"]["steps"] = [{"skills": "general"}]

    config = shipped_config(everyone_takes_faults)
    phone = Unsure()
    here = make("hotline-1", phone, config=config)
    other, gone = make("hotline-2", config=config), make("hotline-3", config=config)
    await only_available(here, "agent101", "agent102", "agent103", "agent104")
    for router in (other, gone):
        await router.dispatch()  # heartbeats
    for router, call_id in ((here, "c1"), (other, "c2"), (here, "c3"), (gone, "c4")):
        await _connected(router, call_id)
    here.local_calls.discard("c3")  # its flow is over: only Asterisk's answer protects it
    await here.redis.delete(here._k("instance", "hotline-3"))  # its heartbeat expired
    for _ in range(2):
        make.now[0] += OFFER_GRACE_S
        await here.sweep()
    calls = {}
    for call_id in ("c1", "c2", "c3", "c4"):
        calls[call_id] = _s(await here.redis.hget(here._k("call", call_id), "status"))
    assert calls == {"c1": "connected", "c2": "connected", "c3": "connected", "c4": "done"}
    busy = [a for a, row in (await here.agents()).items() if row["status"] == "on_call"]
    assert len(busy) == 3


@on_asyncio
async def test_stale_offer_whose_caller_is_gone_is_settled_though_its_instance_lives(make):
    """The call flow could not report how agent103's ring ended (Redis away) and the caller
    went elsewhere: past ring timeout + grace, the sweep of the live instance settles the
    offer once Asterisk no longer has the caller's channel, as a caller who hung up while
    it rang (ABANDON at stage ringing): the agent is free, the call not put back in line.
    While the channel exists (the answer itself may be what was lost) it stays."""
    phone = FakeTelephony()
    r = make(telephony=phone)
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    await r.dispatch()
    await _lost(r, "ring_result", "c1", "agent103", "no_answer")
    phone.up = {"c1"}
    make.now[0] += 15 + OFFER_GRACE_S + 1
    await r.sweep()
    assert (await r.agents())["agent103"]["status"] == "offered"
    phone.up = set()
    await r.sweep()
    assert (await r.agents())["agent103"]["status"] == "available"
    assert await r.redis.zrange(r._k("waiting"), 0, -1) == []
    abandons = [e for e in await _events(r) if e["kind"] == "ABANDON"]
    assert [(e["call_id"], e["stage"]) for e in abandons] == [("c1", "ringing")]
    assert "c1" not in r.local_calls


@on_asyncio
async def test_callback_conversation_whose_end_was_lost_follows_the_agents_leg(make):
    """A callback's conversation runs on the agent's leg (``callback-<call id>``); the
    customer's first call is long gone. Its end lost, the sweep completes it once that leg
    is gone (COMPLETEAGENT, source=sweep), not before."""
    phone = FakeTelephony()
    r = make(telephony=phone)
    await only_available(r, "agent103")
    await _enqueue(r, "c1", T0)
    assert await r.request_callback("c1", "5550199")
    await r.dispatch()
    assert await r.callback_step("c1", "agent103", "agent_answered")
    assert await r.callback_step("c1", "agent103", "customer_answered", T0 + 30)
    await _lost(r, "completed", "c1", "agent103", by="caller")
    phone.up = {"callback-c1"}
    for _ in range(2):
        make.now[0] += OFFER_GRACE_S
        await r.sweep()
    assert (await r.agents())["agent103"]["status"] == "on_call"
    phone.up = set()
    for _ in range(2):
        make.now[0] += OFFER_GRACE_S
        await r.sweep()
    assert (await r.agents())["agent103"]["status"] == "available"
    completions = [e for e in await _events(r) if e["kind"].startswith("COMPLETE")]
    assert [(e["kind"], e.get("source")) for e in completions] == [("COMPLETEAGENT", "sweep")]
