"""The callbacks' Lua scripts (``callbacks/request.lua``, ``callbacks/step.lua``) on their own,
against a real redis-server: EVAL of the loaded source with its keys and arguments, then
what it wrote and the named result it answered."""

from __future__ import annotations

import json

import pytest

from callbacks.live import SCRIPTS
from routing.scripts import SCRIPTS as ROUTING_SCRIPTS
from routing.scripts import event_time
from routing.testing import script_runner

T0 = 1_800_000_000.0


@pytest.fixture
def run(redis_server):
    with script_runner(redis_server.url) as runner:
        yield runner


def _waiting_call(run, call_id):
    fields = {"call_id": call_id, "request_type": "fault", "queue": "faults", "urgency": "normal",
              "vip": "0", "priority": "0", "entered_at": repr(T0), "caller_number": "5550100",
              "language": "", "dialled_number": ""}
    run(ROUTING_SCRIPTS["enqueue"],
        [run.key("call", call_id), run.key("waiting"), run.key("seq"), run.key("events")],
        [json.dumps(fields), T0, "hotline-1", event_time(T0)])


def _request(run, call_id, number="5550199"):
    return run(SCRIPTS["callback_request"], [run.key("call", call_id), run.key("events")],
               [call_id, number, T0 + 10, event_time(T0 + 10)])


def _offered_callback(run, call_id, agent_id="agent103"):
    """A callback requested and offered to ``agent_id`` (as the dispatcher's offer does)."""
    _waiting_call(run, call_id)
    _request(run, call_id)
    run.redis.hset(run.key("agent", agent_id), mapping={"status": "available", "call_id": ""})
    run(ROUTING_SCRIPTS["offer"],
        [run.key("agent", agent_id), run.key("call", call_id), run.key("waiting"),
         run.key("offered")],
        [agent_id, call_id, T0 + 20, "{}"])


def _step(run, call_id, step, detail="", agent_id="agent103", at=T0 + 30, attempts=2):
    return run(SCRIPTS["callback_step"],
               [run.key("agent", agent_id), run.key("call", call_id), run.key("waiting"),
                run.key("stats"), run.key("events")],
               [agent_id, call_id, step, at, event_time(at), 60, attempts, 120, detail])


def test_request_marks_the_waiting_call_as_a_callback_owned_by_nobody(run):
    """The caller leaves a number: the call keeps its place, is marked callback with the
    number and no attempts yet, and no instance owns it any more; CALLBACKREQUEST emitted."""
    _waiting_call(run, "c1")
    assert _request(run, "c1") == "requested"
    call = run.hash("call", "c1")
    assert (call["callback"], call["callback_number"], call["callback_attempts"]) == (
        "1", "5550199", "0")
    assert call["instance"] == "" and call["status"] == "waiting"
    assert run.redis.zscore(run.key("waiting"), "c1") == T0
    assert run.events()[-1]["kind"] == "CALLBACKREQUEST"


def test_request_for_a_call_no_longer_waiting_is_refused(run):
    """An agent was offered the call in the meantime (or it is gone): refused by name, the
    call not marked."""
    assert _request(run, "c0") == "not-waiting"
    _offered_callback(run, "c1")
    assert _request(run, "c1") == "not-waiting"
    assert run.hash("call", "c0") == {}


def test_step_agent_answered_dials_and_customer_answered_connects(run):
    """The agent answers: attempt 1 is dialled (agent on call, CALLBACKATTEMPT); the customer
    answers: connected, counted answered (within the threshold, from when they answered)."""
    _offered_callback(run, "c1")
    assert _step(run, "c1", "agent_answered") == ["dialing", 1]
    assert run.hash("agent", "agent103")["status"] == "on_call"
    assert run.hash("call", "c1")["status"] == "dialing"
    assert _step(run, "c1", "customer_answered", T0 + 40) == ["connected", 1]
    assert run.hash("call", "c1")["status"] == "connected"
    assert run.hash("stats") == {"answered": "1", "answered_within": "1"}
    kinds = [e["kind"] for e in run.events()]
    assert kinds[-2:] == ["CALLBACKATTEMPT", "CONNECT"]


def test_step_customer_failed_retries_at_its_place_then_gives_up(run):
    """The customer does not answer: the agent is free, the call waits again at its first
    score, due after the retry delay; once the attempts are spent it is given up
    (EXITCALLBACKFAILED, counted abandoned, out of the waiting set)."""
    _offered_callback(run, "c1")
    _step(run, "c1", "agent_answered")
    assert _step(run, "c1", "customer_failed", "busy") == ["retry", 1]
    call = run.hash("call", "c1")
    assert (call["status"], float(call["callback_next_at"])) == ("waiting", T0 + 30 + 120)
    assert run.redis.zscore(run.key("waiting"), "c1") == T0
    assert run.hash("agent", "agent103")["status"] == "available"
    run.redis.hset(run.key("call", "c1"), mapping={"status": "offered", "agent": "agent103"})
    _step(run, "c1", "agent_answered")
    assert _step(run, "c1", "customer_failed", "noanswer") == ["given-up", 2]
    assert run.hash("call", "c1")["outcome"] == "callback-failed"
    assert run.redis.zcard(run.key("waiting")) == 0
    assert run.hash("stats") == {"abandoned": "1"}
    assert run.events()[-1]["kind"] == "EXITCALLBACKFAILED"


def test_step_of_another_agent_or_out_of_order_is_refused(run):
    """A step named with an agent the callback is not offered to, a customer step before the
    agent answered, or the agent answering twice: refused, nothing changed."""
    _offered_callback(run, "c1")
    changes = run.changes()
    assert _step(run, "c1", "agent_answered", agent_id="agent104") == ["refused", 0]
    assert _step(run, "c1", "customer_failed", "busy") == ["refused", 0]
    assert run.changes() == changes
    _step(run, "c1", "agent_answered")
    assert _step(run, "c1", "agent_answered") == ["refused", 0]
    assert run.hash("call", "c1")["callback_attempts"] == "1"
