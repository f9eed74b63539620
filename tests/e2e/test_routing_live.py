"""Live skills-based routing through the real stack: Asterisk 22, redis-server, SIPp agents
and one or two ``ivr serve`` processes sharing one agent pool in Redis.

What is checked is what a call center could observe: which softphone rang, the event stream
(``hotline:events``, queue_log names), the work orders and the agents' states over the HTTP
API. Timings are shortened by config overrides only (ring timeouts, step timeouts, wrap-up).
"""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis

from recordings.metadata import RecordingMeta
from testbed.asterisk import Asterisk
from testbed.checks import (
    call_gone,
    events,
    first_event,
    kinds,
    routing_leftovers,
    wait_for,
    workorder,
)
from testbed.keys import field_cipher
from testbed.service import merge
from testbed.softphones import SippAgent

pytestmark = pytest.mark.e2e

FAULTS_ANYONE_WITH_NETWORK = {"routing.yaml": {"rules": {"fault": {"steps": [
    {"skills": "network >= 2"}]}}}}


def connects(db: redis.Redis) -> list[dict[str, str]]:
    return [e for e in events(db) if e["kind"] == "CONNECT"]


def queued(db: redis.Redis, call_id: str, timeout: float = 40) -> None:
    wait_for(lambda: "ENTERQUEUE" in kinds(db, call_id), timeout, f"call {call_id} queued")


def no_overlap(db: redis.Redis) -> dict[str, int]:
    """Per agent, CONNECT and COMPLETE* alternate: never two conversations at once."""
    busy: dict[str, str] = {}
    served: dict[str, int] = {}
    for e in events(db):
        agent = e.get("agent", "")
        if e["kind"] == "CONNECT":
            assert agent not in busy, f"{agent} connected to {e['call_id']} while on {busy}"
            busy[agent] = e["call_id"]
            served[agent] = served.get(agent, 0) + 1
        elif e["kind"] in ("COMPLETEAGENT", "COMPLETECALLER"):
            assert busy.pop(agent, None) == e["call_id"]
    return served


def callback_legs_end_cleanly(asterisk: Asterisk, agent: SippAgent, customer: SippAgent
                              ) -> None:
    """Every leg of a callback ends with a BYE of its own, leaving no channel up in Asterisk,
    and no phone gave up on a request inside the call (a re-INVITE, say: a phone that gave up
    on one left its leg up until Asterisk's timers ended it, and the retransmissions reached
    the next test's phone)."""
    asterisk.wait_until_idle(timeout=5)
    assert agent.aborted_calls() == [] and customer.aborted_calls() == []


def agent_shown(agent: SippAgent, number: str, name: str = "") -> None:
    """The agent's phone shows who the callback is for, from the start of ringing (the
    INVITE's From and P-Asserted-Identity) through any connected-line update (the
    P-Asserted-Identity of a re-INVITE): the customer's number, with the caller's name if
    known, never the dialplan extension ``s`` the agent's leg runs in."""
    display = f'"Callback: {name}"' if name else '"Callback"'
    leg = agent.events("INVITE")[0].call_id  # a callback rings its agent first
    shown = [e.detail for e in agent.events() if e.call_id == leg
             and e.kind in ("INVITE", "IDENTITY")]
    assert len(shown) >= 2 and all(d.startswith(f"{display} <sip:{number}@") for d in shown), (
        shown)


def test_skill_match_billing_call_goes_to_billing_agent(hotline, agents, caller, asterisk, db
                                                       ) -> None:
    """Both agents are free; a billing call (key 1, inquiry) rings agent101 (billing 5),
    never agent103 (network only), and the decision explains the step that matched."""
    billing = agents("agent101", answer_after=0.3, hold_for=1.0)
    network = agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent101", "agent103"))
    call_id = caller("w2|d1")
    call_gone(asterisk, call_id)
    assert workorder(service, call_id)["agent"] == "agent101"
    assert billing.answered == 1 and network.count("INVITE") == 0
    assert [e["agent"] for e in connects(db)] == ["agent101"]
    assert routing_leftovers(db) == []


def test_relaxation_after_step_timeout(hotline, agents, caller, asterisk, db) -> None:
    """The billing expert (agent101) is on a break; the first step (billing >= 4) holds for
    3 s, after which billing >= 2 lets agent102 (billing 2) take the call: its hold time is
    at least the step timeout."""
    agents("agent102", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent101", "agent102"), overrides={
        "routing.yaml": {"rules": {
            "inquiry": {"steps": [{"skills": "billing >= 4", "timeout_s": 3},
                                  {"skills": "billing >= 2"}]}}},
        # The caller speaks English (the default line): agent102 must too, now that the
        # call's language reaches routing (shipped, agent102 speaks Korean only).
        "agents.yaml": {"agents": {"agent102": {"languages": ["ko", "en"]}}},
    })
    assert service.post("/api/agents/agent101/pause?reason=break")[0] == 200
    call_id = caller("w2|d1")
    call_gone(asterisk, call_id)
    (connect,) = connects(db)
    assert connect["agent"] == "agent102"
    assert float(connect["holdtime"]) >= 3.0
    assert workorder(service, call_id)["agent"] == "agent102"


def test_urgent_before_normal(hotline, agents, caller, asterisk, db) -> None:
    """Two calls wait for the only agent: a normal one (key 5) and, later, an urgent fault
    (key 3). When the agent is resumed it takes the urgent call first."""
    agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103",), overrides={"routing.yaml": {"rules": {
        "other": {"steps": [{"skills": "general"}]}}}})
    service.post("/api/agents/agent103/pause?reason=break")
    normal = caller("w2|d5", number="5550001")
    queued(db, normal)
    urgent = caller("w2|d3", number="5550002")
    queued(db, urgent)
    service.post("/api/agents/agent103/resume")
    call_gone(asterisk, normal, timeout=60)
    call_gone(asterisk, urgent, timeout=60)
    assert [e["call_id"] for e in connects(db)] == [urgent, normal]
    assert no_overlap(db) == {"agent103": 2}


def test_rona_returns_call_to_its_original_position(hotline, agents, caller, asterisk, db
                                                   ) -> None:
    """Two fault calls wait; the first is offered to agent103, who does not answer: agent103
    is paused (missed) and the call goes back to the head of the line, so when agent104 is
    resumed it serves the first call before the second."""
    agents("agent103", behaviour="no-answer")
    agents("agent104", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103", "agent104"), overrides=FAULTS_ANYONE_WITH_NETWORK)
    service.post("/api/agents/agent104/pause?reason=break")
    service.post("/api/agents/agent103/pause?reason=break")
    first = caller("w2|d3", number="5550011")
    queued(db, first)
    second = caller("w2|d3", number="5550012")
    queued(db, second)
    service.post("/api/agents/agent103/resume")
    wait_for(lambda: "RINGNOANSWER" in kinds(db, first), 30, "agent103's ring to time out")
    assert service.get("/api/agents")["agent103"]["pause_reason"] == "missed"
    service.post("/api/agents/agent104/resume")
    call_gone(asterisk, first, timeout=60)
    call_gone(asterisk, second, timeout=60)
    assert [(e["call_id"], e["agent"]) for e in connects(db)] == [
        (first, "agent104"), (second, "agent104")]
    assert routing_leftovers(db) == []


def test_agent_pause_and_resume(hotline, agents, caller, asterisk, db) -> None:
    """A paused agent is never rung, however long the call waits; once resumed the waiting
    call reaches them. PAUSE and UNPAUSE are in the event stream with the reason."""
    agent = agents("agent103", answer_after=0.3, hold_for=1.0)
    service = hotline(agents=("agent103",))
    assert service.post("/api/agents/agent103/pause?reason=lunch")[0] == 200
    call_id = caller("w2|d3")
    queued(db, call_id)
    time.sleep(3)
    assert agent.count("INVITE") == 0
    assert service.post("/api/agents/agent103/resume")[0] == 200
    call_gone(asterisk, call_id)
    assert agent.answered == 1
    seen = [(e["kind"], e.get("reason")) for e in events(db) if e.get("agent") == "agent103"]
    assert seen.index(("PAUSE", "lunch")) < seen.index(("UNPAUSE", ""))


def test_softphone_busy_elsewhere_pauses_and_resumes(hotline, agents, asterisk, db) -> None:
    """A call to agent103's softphone that is not ours (placed straight through Asterisk)
    makes its device INUSE: the agent is paused busy-elsewhere from ARI's DeviceStateChanged;
    when that call ends the device is NOT_INUSE and the agent is available again."""
    agents("agent103", answer_after=0.2, hold_for=30.0)
    service = hotline(agents=("agent103",))
    wait_for(lambda: service.get("/api/agents")["agent103"]["status"] == "available", 10,
             "agent103 available")
    private = asterisk.ari("POST", "/channels", params={
        "endpoint": "PJSIP/agent103", "extension": "s", "context": "caller-sim",
        "timeout": "10"}, body={"variables": {"CALLER_SCRIPT": "w4|h"}})
    paused = wait_for(
        lambda: (a := service.get("/api/agents")["agent103"])["status"] == "paused" and a,
        15, "agent103 paused by its device state")
    assert paused["pause_reason"] == "busy-elsewhere"
    call_gone(asterisk, private["id"], timeout=20)
    wait_for(lambda: service.get("/api/agents")["agent103"]["status"] == "available", 15,
             "agent103 resumed when its phone is idle")
    seen = [(e["kind"], e.get("source")) for e in events(db) if e.get("agent") == "agent103"]
    assert ("PAUSE", "device") in seen and ("UNPAUSE", "device") in seen


def test_callback_keeps_its_place(hotline, agents, caller, asterisk, db) -> None:
    """The caller presses 1 while waiting, hears the confirmation and hangs up; a later
    caller waits on the line. When the agent is free the callback is served first: the
    agent's phone rings, then the customer's phone (trunk 'customer') rings and is bridged
    with the agent; the work order records the request and the attempt."""
    agent = agents("agent103", answer_after=0.3, hold_for=8.0)
    customer = agents("customer", port=5079, answer_after=0.5, hold_for=2.0)
    service = hotline(agents=("agent103",))
    service.post("/api/agents/agent103/pause?reason=break")
    # 1 on hold for a callback, then 1 once the caller ID has been read back: confirmed.
    first = caller("w2|d3|w10|d1|w9|d1", number="5550199")
    wait_for(lambda: "CALLBACKREQUEST" in kinds(db, first), 60, "the callback request")
    call_gone(asterisk, first, timeout=20)
    assert first in routing_leftovers(db)  # the caller is gone, the place is kept
    second = caller("w2|d3", number="5550200")
    queued(db, second)
    service.post("/api/agents/agent103/resume")
    customer.wait_for("INVITE", timeout=30)
    call_gone(asterisk, second, timeout=90)
    order = wait_for(lambda: (o := workorder(service, first)) and o["agent"] and o, 30,
                     "the callback's work order to name the agent")
    assert order["agent"] == "agent103"
    notes = " | ".join(str(h) for h in order["history"])
    assert "callback requested to 5550199 (the caller ID, confirmed)" in notes
    assert "callback attempt 1" in notes
    assert "5550199" in customer.events("DIALED")[0].detail
    order_of = [(e["call_id"], e.get("callback", "")) for e in connects(db)]
    assert order_of == [(first, "1"), (second, "")]
    assert customer.answered == 1 and agent.answered == 2
    routed = [k for k in kinds(db, first) if k.startswith(("CALLBACK", "CONNECT", "COMPLETE"))]
    assert routed == ["CALLBACKREQUEST", "CALLBACKATTEMPT", "CONNECT", "COMPLETECALLER"]
    assert routing_leftovers(db) == []
    callback_legs_end_cleanly(asterisk, agent, customer)
    agent_shown(agent, "5550199", "Test Caller")
    # The callback is recorded as a leg of the same call and order (the caller, who asked for
    # it, never reached an agent on their call: that one has no recording).
    start = first_event(db, first, "RECORDSTART", timeout=10)
    stored = first_event(db, first, "RECORDSTORED", timeout=60)
    assert start["leg"] == "callback" and stored["recording_id"] == start["recording_id"]
    rid = start["recording_id"]
    assert db.smembers(f"hotline:rec:by-call:{first}") == {rid}
    assert db.smembers(f"hotline:rec:by-order:{order['id']}") == {rid}
    meta = RecordingMeta.from_hash(rid, db.hgetall(f"hotline:rec:{rid}"))
    assert (meta.leg, meta.agent, meta.work_order_id) == ("callback", "agent103", order["id"])
    assert meta.talk_seconds >= 1
    # MixMonitor writes only the frames that pass, and the testbed's SIPp phones only echo:
    # bridged phone to phone (no Local channel sending silence, as a test caller has) no
    # frame flows, so the file keeps the ringing only. The check after hangup held it within
    # its tolerance (2 s, config/recordings.yaml) of the talk time, raising no alarm.
    assert meta.duration_seconds >= meta.talk_seconds - 2
    assert not {"RECORDSHORT", "RECORDMISSING"} & set(kinds(db, first))


def test_callback_to_another_number_rings_that_number(hotline, agents, caller, asterisk, db,
                                                      redis_server) -> None:
    """The caller presses 1 on hold, hears the number they call from read back (SAY DIGITS),
    keys another number ended by #, hears it read back and confirms with 1. The callback
    rings that number on the trunk, not the caller ID, and the work order says so. The
    customer's phone shows the hotline (the queue's ``callback.caller_id``) in From and
    P-Asserted-Identity, not their own number nor the caller ID they called from."""
    other = "01055512345"
    agent = agents("agent103", answer_after=0.3, hold_for=3.0)
    customer = agents("customer", port=5079, answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",), overrides={"queues.yaml": {"queues": {"faults": {
        "callback": {"number": {"timeout_s": 10},
                     "caller_id": {"number": "+8215885000", "name": "ACME Hotline"}}}}}})
    service.post("/api/agents/agent103/pause?reason=break")
    call_id = caller(f"w2|d3|w10|d1|w9|d{other}#|w12|d1", number="5550199")
    request = wait_for(lambda: [e for e in events(db, call_id)
                                if e["kind"] == "CALLBACKREQUEST"], 90, "the callback request")
    # The event carries the number sealed (routing.numbers), opening to the one keyed.
    assert other not in request[0]["number"]
    cipher = field_cipher(redis_server.url)
    assert cipher.open(f"call:{call_id}", "callback_number", request[0]["number"]) == other
    call_gone(asterisk, call_id, timeout=20)
    service.post("/api/agents/agent103/resume")
    customer.wait_for("ANSWERED", timeout=30)
    (dialed,) = customer.events("DIALED")
    assert other in dialed.detail and "5550199" not in dialed.detail
    shown_to_customer = [e.detail for e in customer.events() if e.kind in ("INVITE", "IDENTITY")]
    assert len(shown_to_customer) >= 2
    for shown in shown_to_customer:
        assert shown.startswith('"ACME Hotline" <sip:+8215885000@'), shown
        assert other not in shown and "5550199" not in shown
    order = wait_for(lambda: (o := workorder(service, call_id)) and o["agent"] and o, 30,
                     "the callback's work order to name the agent")
    notes = " | ".join(str(h) for h in order["history"])
    assert f"callback requested to {other} (entered by the caller)" in notes
    # The agent's phone shows the number it will be bridged with, and the caller's name.
    agent_shown(agent, other, "Test Caller")
    (leg,) = agent.events("INVITE")
    assert leg.call_id in {e.call_id for e in agent.events("ANSWERED")}
    wait_for(lambda: routing_leftovers(db) == [], 30, "the callback to be completed")
    callback_legs_end_cleanly(asterisk, agent, customer)


def _two_instances(hotline: Any, overrides: dict[str, Any]) -> tuple[Any, Any]:
    """Instance 1 on FastAGI 4573 / HTTP 8090, instance 2 on 4574 / 8091 (the dialplan's
    HOTLINE_AGI and HOTLINE_AGI_BACKUP), one Redis, one agent pool."""
    one = hotline(agents=("agent103", "agent104"), instance="hotline-1", overrides=overrides)
    two = hotline(agents=("agent103", "agent104"), instance="hotline-2", agi_port=4574,
                  http_port=8091, flush=False, overrides=merge(
                      overrides, {"service.yaml": {"audiosocket": {"port": 9093}}}))
    return one, two


def test_two_instances_share_one_pool(hotline, agents, caller, asterisk, db) -> None:
    """Six concurrent calls, three through each of two ``ivr serve`` instances, two agents:
    every call is served, each agent has one conversation at a time (CONNECT and COMPLETE
    alternate per agent), and no state is left in Redis."""
    agents("agent103", answer_after=0.3, hold_for=1.0)
    agents("agent104", answer_after=0.3, hold_for=1.0)
    _two_instances(hotline, overrides=FAULTS_ANYONE_WITH_NETWORK)
    calls = []
    for n in range(6):
        extra = {"HOTLINE_AGI": "127.0.0.1:4574"} if n % 2 else {}
        calls.append(caller("w2|d3", number=f"55503{n:02d}", **extra))
    for call_id in calls:
        call_gone(asterisk, call_id, timeout=120)
    served = no_overlap(db)
    assert sum(served.values()) == 6 and set(served) == {"agent103", "agent104"}
    assert {e["call_id"] for e in connects(db)} == set(calls)
    assert routing_leftovers(db) == []


def test_instance_killed_mid_queue(hotline, agents, operator, caller, asterisk, db) -> None:
    """Instance 1 dies while two callers wait in it: the dialplan re-enters both through the
    backup instance, which resumes them at their places (no menu again) and serves them in
    their original order. A third caller whose dialplan has no backup goes to the operator;
    once that call ends, instance 2 removes its stale queue entry (EXITORPHANED)."""
    agents("agent103", answer_after=0.3, hold_for=1.0)
    one, two = _two_instances(hotline, overrides=FAULTS_ANYONE_WITH_NETWORK)
    for service in (one,):
        service.post("/api/agents/agent103/pause?reason=break")
        service.post("/api/agents/agent104/pause?reason=break")
    first = caller("w2|d3", number="5550401")
    queued(db, first)
    second = caller("w2|d3", number="5550402")
    queued(db, second)
    lost = caller("w2|d3", number="5550403", HOTLINE_AGI_BACKUP="")
    queued(db, lost)
    one.kill()
    operator.wait_for("INVITE", timeout=30)
    wait_for(lambda: db.hget("hotline:{rt}:call:" + second, "instance") == "hotline-2", 30,
             "the second call resumed in hotline-2")
    two.post("/api/agents/agent103/resume")
    call_gone(asterisk, first, timeout=60)
    call_gone(asterisk, second, timeout=60)
    assert [e["call_id"] for e in connects(db)] == [first, second]
    assert kinds(db, first).count("ENTERQUEUE") == 1  # resumed, not queued again
    wait_for(lambda: "EXITORPHANED" in kinds(db, lost), 30, "the orphan to be removed")
    assert routing_leftovers(db) == []
