"""Each Lua script of live routing (``routing/lua/``) on its own, against a real redis-server:
EVAL of the loaded source with its keys and arguments, then what it wrote and what it
answered (a name, never a bare 0/1/2). The router's own tests (test_live_router.py) cover
the scripts together; these pin down each one's main path and its refusals.
"""

from __future__ import annotations

import json

import pytest

from routing.scripts import (
    CHANGES_KEPT,
    SCRIPTS,
    AgentActed,
    Completed,
    DeviceChanged,
    Enqueued,
    Left,
    Offered,
    Orphaned,
    Rang,
    Released,
    event_time,
    result,
)
from routing.testing import script_runner

T0 = 1_800_000_000.0


@pytest.fixture
def run(redis_server):
    with script_runner(redis_server.url) as runner:
        yield runner


def _enqueue(run, call_id, at=T0, instance="hotline-1"):
    fields = {"call_id": call_id, "request_type": "fault", "queue": "faults", "urgency": "normal",
              "vip": "0", "priority": "0", "entered_at": repr(at), "caller_number": "5550100",
              "language": "", "dialled_number": ""}
    return run(SCRIPTS["enqueue"],
               [run.key("call", call_id), run.key("waiting"), run.key("seq"), run.key("events")],
               [json.dumps(fields), at, instance, event_time(at)])


def _agent(run, agent_id, status="available", **fields):
    run.redis.hset(run.key("agent", agent_id),
                   mapping={"status": status, "call_id": "", "idle_since": T0, **fields})
    run.redis.sadd(run.key("agents"), agent_id)


def _offer(run, agent_id, call_id, at=T0 + 1):
    return run(SCRIPTS["offer"],
               [run.key("agent", agent_id), run.key("call", call_id), run.key("waiting"),
                run.key("offered")],
               [agent_id, call_id, at, "{}"])


def _offered(run, agent_id, call_id):
    """An available agent offered a call that just entered."""
    _agent(run, agent_id)
    _enqueue(run, call_id)
    assert _offer(run, agent_id, call_id) == Offered.OFFERED


def _ring(run, agent_id, call_id, outcome, at=T0 + 5, reason=""):
    return run(SCRIPTS["ring_result"],
               [run.key("agent", agent_id), run.key("call", call_id), run.key("waiting"),
                run.key("stats"), run.key("events")],
               [agent_id, call_id, outcome, at, event_time(at), reason, 20, 5])


def _leave(run, call_id, kind, at=T0 + 30, destination=""):
    return run(SCRIPTS["leave"],
               [run.key("call", call_id), run.key("waiting"), run.key("stats"), run.key("events")],
               [call_id, "queue", at, event_time(at), 5, kind, destination])


def _zscore(run, name, member):
    return run.redis.zscore(run.key(name), member)


# --- prelude ---------------------------------------------------------------------------------


def test_prelude_starts_a_new_epoch_and_trims_the_change_log_past_changes_kept(run):
    """The first change of a log gives it an epoch; at every 1,000th version the entries older
    than CHANGES_KEPT versions are dropped and the floor says where the log now starts."""
    assert run(SCRIPTS["mark_changed"], [], ["a:agent101"]) == "marked"
    log = run.hash("version")
    assert log["version"] == "1" and log["epoch"] and log["floor"] == "0"
    run.redis.hset(run.key("version"), "version", 999 + CHANGES_KEPT)
    run.redis.zadd(run.key("changed"), {"c:old": 1000, "c:kept": 1001})
    run(SCRIPTS["mark_changed"], [], ["c:new"])
    assert run.changes() == ["c:kept", "c:new"]  # a:agent101 was at version 1
    assert run.hash("version")["floor"] == "1000"


# --- enqueue ---------------------------------------------------------------------------------


def test_enqueue_enters_the_call_at_its_position_with_a_sequence_number(run):
    """A new call gets the next sequence number, status waiting and its owner, joins the
    waiting set scored by when it entered, and ENTERQUEUE is emitted."""
    assert _enqueue(run, "c1") == [Enqueued.ENTERED, 1]
    assert _enqueue(run, "c2", T0 + 1) == [Enqueued.ENTERED, 2]
    call = run.hash("call", "c1")
    assert (call["status"], call["seq"], call["instance"]) == ("waiting", "1", "hotline-1")
    assert _zscore(run, "waiting", "c1") == T0
    assert [e["kind"] for e in run.events()] == ["ENTERQUEUE", "ENTERQUEUE"]
    assert run.changes() == ["c:c1", "c:c2"]


def test_enqueue_of_a_call_already_queued_resumes_it_under_the_new_owner(run):
    """The same call enqueued again (its first instance died, the backup took it over) keeps
    its sequence number and place; only the owner changes, and no second ENTERQUEUE."""
    _enqueue(run, "c1")
    assert _enqueue(run, "c1", T0 + 40, instance="hotline-2") == [Enqueued.RESUMED, "1"]
    call = run.hash("call", "c1")
    assert (call["seq"], call["instance"], call["entered_at"]) == ("1", "hotline-2", repr(T0))
    assert [e["kind"] for e in run.events()] == ["ENTERQUEUE"]


# --- offer -----------------------------------------------------------------------------------


def test_offer_takes_an_available_agent_and_a_waiting_call_together(run):
    """The compare-and-set succeeds: agent and call both offered, the call moves from the
    waiting set to the offered set."""
    _agent(run, "agent101")
    _enqueue(run, "c1")
    assert _offer(run, "agent101", "c1") == Offered.OFFERED
    assert run.hash("agent", "agent101")["status"] == "offered"
    assert run.hash("agent", "agent101")["call_id"] == "c1"
    assert run.hash("call", "c1")["status"] == "offered"
    assert _zscore(run, "waiting", "c1") is None and _zscore(run, "offered", "c1") == T0 + 1


def test_offer_is_refused_when_the_agent_or_the_call_was_taken_meanwhile(run):
    """Another instance won the race: an agent no longer available, or a call no longer
    waiting, refuses the offer by name and changes nothing."""
    _agent(run, "agent101")
    _agent(run, "agent102")
    _enqueue(run, "c1")
    _enqueue(run, "c2")
    _offer(run, "agent101", "c1")
    changes = run.changes()
    assert _offer(run, "agent101", "c2") == Offered.AGENT_NOT_AVAILABLE
    assert _offer(run, "agent102", "c1") == Offered.CALL_NOT_WAITING
    assert run.hash("agent", "agent102")["status"] == "available"
    assert run.hash("call", "c2")["status"] == "waiting"
    assert run.changes() == changes


# --- ring_result -----------------------------------------------------------------------------


def test_ring_answered_connects_and_counts_the_answer_once(run):
    """The agent answers within the threshold: connected, counted answered and within, and
    CONNECT emitted; the same answer reported again (Dial returning) is not counted twice."""
    _offered(run, "agent101", "c1")
    assert _ring(run, "agent101", "c1", "answered") == Rang.CONNECTED
    assert _ring(run, "agent101", "c1", "answered", T0 + 6) == Rang.ALREADY_CONNECTED
    assert run.hash("agent", "agent101")["status"] == "on_call"
    assert run.hash("call", "c1")["status"] == "connected"
    assert run.hash("stats") == {"answered": "1", "answered_within": "1"}
    assert [e["kind"] for e in run.events()].count("CONNECT") == 1


def test_ring_no_answer_pauses_the_agent_and_puts_the_call_back_at_its_place(run):
    """No answer: the agent is paused with the reason given, the call waits again scored by
    when it first entered, and the agent is noted among those it was offered to."""
    _offered(run, "agent101", "c1")
    assert _ring(run, "agent101", "c1", "no_answer", reason="missed") == Rang.REQUEUED
    agent = run.hash("agent", "agent101")
    assert (agent["status"], agent["pause_reason"]) == ("paused", "missed")
    call = run.hash("call", "c1")
    assert (call["status"], json.loads(call["offered_to"])) == ("waiting", ["agent101"])
    assert _zscore(run, "waiting", "c1") == T0
    assert [e["kind"] for e in run.events()][-2:] == ["RINGNOANSWER", "PAUSE"]


def test_ring_caller_gone_abandons_and_a_stranger_agent_is_refused(run):
    """The caller hung up while the phone rang: the call is abandoned and the agent free;
    a result reported by an agent the call is not offered to is refused by name."""
    _offered(run, "agent101", "c1")
    assert _ring(run, "agent102", "c1", "answered") == Rang.NOT_OFFERED
    assert _ring(run, "agent101", "c1", "caller_gone", T0 + 10) == Rang.ABANDONED
    assert run.hash("agent", "agent101")["status"] == "available"
    assert run.hash("call", "c1")["outcome"] == "abandoned"
    assert run.hash("stats") == {"abandoned": "1"}


# --- complete --------------------------------------------------------------------------------


def test_complete_counts_the_handle_time_and_puts_the_agent_in_wrap_up(run):
    """The conversation ends: handled and its handle time counted, the agent in wrap-up until
    now + wrap-up, COMPLETECALLER when the caller hung up first."""
    _offered(run, "agent101", "c1")
    _ring(run, "agent101", "c1", "answered", T0 + 5)
    done = run(SCRIPTS["complete"],
               [run.key("agent", "agent101"), run.key("call", "c1"), run.key("stats"),
                run.key("events")],
               ["agent101", "c1", "caller", T0 + 65, event_time(T0 + 65), 10])
    assert done == Completed.COMPLETED
    agent = run.hash("agent", "agent101")
    assert (agent["status"], float(agent["wrap_until"])) == ("wrap_up", T0 + 75)
    stats = run.hash("stats")
    assert (stats["handled"], float(stats["handle_time_total"])) == ("1", 60.0)
    assert run.events()[-1]["kind"] == "COMPLETECALLER"


def test_complete_of_a_call_not_connected_is_refused(run):
    """A call that never connected (still waiting) cannot complete: refused, nothing counted."""
    _agent(run, "agent101")
    _enqueue(run, "c1")
    done = run(SCRIPTS["complete"],
               [run.key("agent", "agent101"), run.key("call", "c1"), run.key("stats"),
                run.key("events")],
               ["agent101", "c1", "agent", T0 + 65, event_time(T0 + 65), 0])
    assert done == Completed.NOT_CONNECTED
    assert run.hash("stats") == {} and run.hash("call", "c1")["status"] == "waiting"


# --- leave -----------------------------------------------------------------------------------


def test_leave_abandon_removes_the_call_and_counts_short_abandons_apart(run):
    """A caller who hangs up leaves the waiting set; an abandon shorter than the short-abandon
    limit is counted apart, a later one as abandoned."""
    _enqueue(run, "c1")
    _enqueue(run, "c2")
    assert _leave(run, "c1", "ABANDON", T0 + 3) == Left.LEFT
    assert _leave(run, "c2", "ABANDON", T0 + 30) == Left.LEFT
    assert run.hash("stats") == {"abandoned_short": "1", "abandoned": "1"}
    assert run.redis.zcard(run.key("waiting")) == 0
    assert run.hash("call", "c1")["outcome"] == "abandoned"


def test_leave_before_the_queue_counts_and_an_overflow_counts_once(run):
    """A hang-up in the menu (no call state yet) is still an ABANDON event; an overflow sent
    twice is counted once; a call already done is not waiting."""
    assert _leave(run, "c0", "ABANDON") == Left.ABANDONED_BEFORE_QUEUE
    assert run.events()[-1]["kind"] == "ABANDON" and run.hash("call", "c0") == {}
    _enqueue(run, "c1")
    assert _leave(run, "c1", "EXITWITHTIMEOUT", destination="operator") == Left.LEFT
    assert _leave(run, "c1", "EXITWITHTIMEOUT", destination="operator") == Left.ALREADY_OVERFLOWED
    call = run.hash("call", "c1")
    assert (call["status"], call["destination"]) == ("overflow", "operator")
    assert run.hash("stats") == {"overflowed": "1"}
    _enqueue(run, "c2")
    _leave(run, "c2", "ABANDON")
    assert _leave(run, "c2", "ABANDON") == Left.NOT_WAITING


# --- agent -----------------------------------------------------------------------------------


def _act(run, agent_id, action, reason="", initial="logged_out"):
    return run(SCRIPTS["agent"],
               [run.key("agent", agent_id), run.key("events"), run.key("agents")],
               [agent_id, action, reason, T0, event_time(T0), initial])


def test_agent_ensure_makes_a_configured_agent_known_then_acts_apply(run):
    """``ensure`` adds a new agent with the initial status; a pause from available applies
    with its reason and emits PAUSE."""
    assert _act(run, "agent101", "ensure", initial="available") == ["available", AgentActed.OK]
    assert run.redis.smembers(run.key("agents")) == {b"agent101"}
    assert _act(run, "agent101", "pause", "lunch") == ["paused", AgentActed.OK]
    assert run.hash("agent", "agent101")["pause_reason"] == "lunch"
    assert run.events()[-1]["kind"] == "PAUSE"


def test_agent_act_not_allowed_in_its_state_is_refused(run):
    """A login of an agent already available, or a resume of one not paused, is refused by
    name and emits nothing."""
    _act(run, "agent101", "ensure", initial="available")
    assert _act(run, "agent101", "login") == ["available", AgentActed.REFUSED]
    assert _act(run, "agent101", "resume") == ["available", AgentActed.REFUSED]
    assert run.events() == []


# --- device ----------------------------------------------------------------------------------


def _device(run, agent_id, state):
    return run(SCRIPTS["device"], [run.key("agent", agent_id), run.key("events")],
               [agent_id, state, T0, event_time(T0)])


def test_device_busy_elsewhere_pauses_and_idle_resumes(run):
    """The softphone in use with a call not ours pauses an available agent (busy-elsewhere);
    idle again resumes them."""
    _agent(run, "agent101")
    assert _device(run, "agent101", "INUSE") == ["paused", DeviceChanged.CHANGED]
    assert run.hash("agent", "agent101")["pause_reason"] == "busy-elsewhere"
    assert _device(run, "agent101", "NOT_INUSE") == ["available", DeviceChanged.CHANGED]
    assert [e["kind"] for e in run.events()] == ["PAUSE", "UNPAUSE"]


def test_device_state_of_an_agent_on_our_call_changes_nothing(run):
    """In use while on one of our calls is expected: unchanged, and a pause for lunch is not
    lifted by the phone going idle."""
    _agent(run, "agent101", "on_call")
    _agent(run, "agent102", "paused", pause_reason="lunch")
    assert _device(run, "agent101", "INUSE") == ["on_call", DeviceChanged.UNCHANGED]
    assert _device(run, "agent102", "NOT_INUSE") == ["paused", DeviceChanged.UNCHANGED]
    assert run.changes() == []


# --- release ---------------------------------------------------------------------------------


def _release(run, agent_id, call_id, mode):
    return run(SCRIPTS["release"],
               [run.key("agent", agent_id), run.key("call", call_id), run.key("waiting"),
                run.key("offered"), run.key("events")],
               [agent_id, call_id, T0 + 30, event_time(T0 + 30), mode])


def test_release_frees_the_agent_and_puts_the_call_back_at_its_place(run):
    """An offer of a dead instance: the agent is available again (not their fault), the call
    waits again at its first score, OFFERRELEASED emitted; mode missed pauses the agent."""
    _agent(run, "agent101")
    _agent(run, "agent102")
    _enqueue(run, "c1")
    _enqueue(run, "c2")
    _offer(run, "agent101", "c1")
    _offer(run, "agent102", "c2")
    assert _release(run, "agent101", "c1", "free") == Released.RELEASED
    assert run.hash("agent", "agent101")["status"] == "available"
    assert _zscore(run, "waiting", "c1") == T0 and _zscore(run, "offered", "c1") is None
    assert _release(run, "agent102", "c2", "missed") == Released.RELEASED
    agent = run.hash("agent", "agent102")
    assert (agent["status"], agent["pause_reason"]) == ("paused", "missed")
    assert "OFFERRELEASED" in [e["kind"] for e in run.events()]


def test_release_of_an_offer_no_longer_standing_is_refused(run):
    """Released already (or answered), or named with another agent: refused, the call is
    left alone but dropped from the offered set."""
    _offered(run, "agent101", "c1")
    assert _release(run, "agent102", "c1", "free") == Released.NOT_OFFERED
    assert run.hash("call", "c1")["status"] == "offered"
    _ring(run, "agent101", "c1", "answered")
    assert _release(run, "agent101", "c1", "free") == Released.NOT_OFFERED
    assert run.hash("call", "c1")["status"] == "connected"
    assert _zscore(run, "offered", "c1") is None


# --- orphan ----------------------------------------------------------------------------------


def _orphan(run, call_id, instance):
    return run(SCRIPTS["orphan"],
               [run.key("call", call_id), run.key("waiting"), run.key("events")],
               [call_id, instance, T0 + 30, event_time(T0 + 30)])


def test_orphan_of_a_dead_instance_is_removed(run):
    """A waiting call whose instance died leaves the waiting set: EXITORPHANED, outcome
    orphaned."""
    _enqueue(run, "c1", instance="hotline-1")
    assert _orphan(run, "c1", "hotline-1") == Orphaned.REMOVED
    assert run.hash("call", "c1")["outcome"] == "orphaned"
    assert run.redis.zcard(run.key("waiting")) == 0
    assert run.events()[-1]["kind"] == "EXITORPHANED"


def test_orphan_taken_over_or_a_callback_or_gone_is_kept(run):
    """Another instance took the call over, or it is a callback (nobody holds its line), or it
    is no longer waiting: refused by name, the call untouched."""
    _enqueue(run, "c1", instance="hotline-2")
    assert _orphan(run, "c1", "hotline-1") == Orphaned.TAKEN_OVER
    _enqueue(run, "c2", instance="hotline-1")
    run.redis.hset(run.key("call", "c2"), "callback", "1")
    assert _orphan(run, "c2", "hotline-1") == Orphaned.CALLBACK
    _enqueue(run, "c3", instance="hotline-1")
    _leave(run, "c3", "ABANDON")
    assert _orphan(run, "c3", "hotline-1") == Orphaned.NOT_WAITING
    assert run.redis.zcard(run.key("waiting")) == 2


# --- snapshot --------------------------------------------------------------------------------


def _snapshot(run, epoch="", version=-1):
    raw = run(SCRIPTS["snapshot"], [run.key("agents"), run.key("waiting"), run.key("stats")],
              [run.prefix, epoch, version])
    return json.loads(raw)


def test_snapshot_reads_everything_when_the_copy_cannot_be_brought_forward(run):
    """A reader with no copy gets every agent and waiting call (with its score) and the log's
    epoch and version to continue from."""
    _agent(run, "agent101")
    _enqueue(run, "c1")
    state = _snapshot(run)
    assert state["full"] is True
    assert [agent_id for agent_id, _row in state["agents"]] == ["agent101"]
    assert [(call_id, float(score)) for call_id, score, _row in state["calls"]] == [("c1", T0)]
    assert state["version"] == "1"
    log_epoch, _, redis_run = state["epoch"].partition("/")
    assert log_epoch == run.hash("version")["epoch"]
    assert redis_run == run.redis.info("server")["run_id"]


def test_snapshot_from_a_current_copy_returns_only_what_changed(run):
    """Given the epoch and version the copy is at, only the agents and calls changed since
    come back; a copy of another epoch (the log started over) reads everything again."""
    _agent(run, "agent101")
    _enqueue(run, "c1")
    first = _snapshot(run)
    _enqueue(run, "c2")
    delta = _snapshot(run, first["epoch"], int(first["version"]))
    assert delta["full"] is False
    assert [call_id for call_id, _score, _row in delta["calls"]] == ["c2"]
    assert not delta["agents"]  # an empty Lua table: {} in JSON
    assert _snapshot(run, "another epoch", int(first["version"]))["full"] is True


def test_an_answer_no_result_names_is_an_error_not_a_falsy_number():
    """The Python side reads a script's answer by name: bytes and str alike map to the named
    result, and an old-style number (or any unknown name) raises instead of reading as
    'refused'."""
    assert result(Offered, b"offered") is Offered.OFFERED
    assert result(Offered, "call-not-waiting") is Offered.CALL_NOT_WAITING
    with pytest.raises(ValueError):
        result(Offered, b"0")
