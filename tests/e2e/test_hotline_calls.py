"""Whole calls through the real stack: Asterisk 22, redis-server, ``ivr serve``, SIPp agents.

A simulated caller (a Local channel running ``caller-sim``) dials the hotline, Asterisk hands
the call to ``ivr serve`` over FastAGI, and the service walks the menu, writes the work order
to Redis, queues the call and dials the agent's SIP softphone. The tests look only at what a
user could see: the work order (HTTP API), the event stream in Redis, what each softphone
received, and the channels in Asterisk. Nothing is mocked.

Timings are shortened by config overrides (ring timeouts, menu timeouts, wrap-up), never by
changing the code's behaviour.
"""

from __future__ import annotations

import socket
import time

import pytest

from ivr.ari import simulated_caller_variables
from testbed.checks import call_gone, events, kinds, routing_leftovers, wait_for, workorder

pytestmark = pytest.mark.e2e


def test_fault_call_reaches_agent_and_creates_work_order(
    hotline, agents, caller, asterisk, db
) -> None:
    """Key 3 (fault) during the welcome: the call is queued in faults, rings agent103's
    softphone (best network level), the agent answers and talks, and the work order in Redis
    holds caller number, call id, menu path, category, urgency, queue, agent, timestamps and
    status."""
    agent = agents("agent103", answer_after=0.5, hold_for=2.0)
    service = hotline(agents=("agent103",))
    call_id = caller("w2|d3", number="5550103", name="Alice Caller")
    call_gone(asterisk, call_id)
    order = workorder(service, call_id)
    assert order is not None
    assert order["call_id"] == call_id
    assert order["caller"] == {"number": "5550103", "name": "Alice Caller"}
    assert order["menu_path"] == ["3"]
    assert (order["category"], order["urgency"]) == ("fault", "urgent")
    assert (order["queue"], order["agent"]) == ("faults", "agent103")
    assert order["status"] == "in_progress"
    assert order["created_at"] < order["updated_at"]
    assert order["deadlines"]["respond_by"] and order["deadlines"]["assign_by"]
    assert agent.answered == 1
    seen = kinds(db, call_id)
    assert seen.index("ENTERQUEUE") < seen.index("CONNECT") < seen.index("COMPLETEAGENT")
    assert routing_leftovers(db) == []
    assert service.get("/api/agents")["agent103"]["status"] == "available"


def test_caller_hangs_up_in_menu(hotline, caller, asterisk, db) -> None:
    """Hanging up during the menu counts an abandon at stage menu, creates no work order
    (no request was made) and leaves no queue state."""
    service = hotline(agents=("agent101",))
    call_id = caller("w6|h")
    call_gone(asterisk, call_id)
    abandon = wait_for(
        lambda: [e for e in events(db, call_id) if e["kind"] == "ABANDON"], 10, "ABANDON"
    )
    assert abandon[0]["stage"] in ("menu", "welcome", "speech")
    assert workorder(service, call_id) is None
    assert routing_leftovers(db) == []


def test_caller_hangs_up_in_queue(hotline, caller, asterisk, db) -> None:
    """With every agent paused, the caller waits with music on hold; hanging up removes the
    call from the queue (ABANDON at stage queue) and the work order keeps the request,
    marked abandoned."""
    service = hotline(agents=("agent103",))
    assert service.post("/api/agents/agent103/pause?reason=break")[0] == 200
    call_id = caller("w2|d3|w6|h")
    call_gone(asterisk, call_id)
    abandon = wait_for(
        lambda: [e for e in events(db, call_id) if e["kind"] == "ABANDON"], 10, "ABANDON"
    )
    assert abandon[0]["stage"] == "queue" and abandon[0]["queue"] == "faults"
    order = wait_for(
        lambda: (o := workorder(service, call_id)) and o["outcome"] == "abandoned" and o,
        10, "the abandoned work order",
    )
    assert (order["category"], order["status"]) == ("fault", "pending")
    assert routing_leftovers(db) == []


def test_caller_hangs_up_while_agent_rings(hotline, agents, caller, asterisk, db) -> None:
    """The caller hangs up while agent103's phone rings: the softphone gets a CANCEL, the
    call counts as abandoned (stage ringing) and the agent is available again."""
    agent = agents("agent103", behaviour="no-answer")
    service = hotline(agents=("agent103",), overrides={
        "queues.yaml": {"queues": {"faults": {"ring_timeout_s": 30}}}})
    call_id = caller("w2|d3|w9|h")
    agent.wait_for("INVITE", timeout=30)
    call_gone(asterisk, call_id)
    abandon = wait_for(
        lambda: [e for e in events(db, call_id) if e["kind"] == "ABANDON"], 10, "ABANDON"
    )
    assert abandon[0]["stage"] == "ringing" and abandon[0]["agent"] == "agent103"
    agent.wait_for("CANCELLED", timeout=10)
    assert wait_for(
        lambda: service.get("/api/agents")["agent103"]["status"] == "available", 10,
        "agent103 available again",
    )
    assert workorder(service, call_id)["outcome"] == "abandoned"


def test_wrong_keys_and_silence_go_to_operator(hotline, operator, caller, asterisk, db) -> None:
    """A wrong key, then silence (retries: 1): the caller is re-prompted once, then sent to
    the operator, whose softphone rings; the operator still gets a work order."""
    service = hotline(agents=("agent101",), overrides={
        "menus.yaml": {"menus": {"main": {"retries": 1, "timeout_s": 1}}}})
    call_id = caller("w2|d9")
    operator.wait_for("INVITE", timeout=60)
    order = workorder(service, call_id)
    assert order["outcome"] == "operator-menu-retries"
    assert order["queue"] == "operator"
    call_gone(asterisk, call_id)


def test_agent_no_answer_goes_to_next_agent(hotline, agents, caller, asterisk, db) -> None:
    """RONA: agent103 (best for faults) does not answer within the ring timeout; it is
    paused with reason missed, the call keeps its place and agent104 answers it."""
    first = agents("agent103", behaviour="no-answer")
    second = agents("agent104", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103", "agent104"), overrides={
        "routing.yaml": {"rules": {"fault": {"steps": [
            {"skills": "network >= 4", "timeout_s": 2}, {"skills": "network >= 2"}]}}}})
    call_id = caller("w2|d3")
    call_gone(asterisk, call_id, timeout=90)
    assert first.count("INVITE") == 1 and first.answered == 0
    assert second.answered == 1
    order = workorder(service, call_id)
    assert order["agent"] == "agent104"
    seen = events(db)
    assert any(e["kind"] == "RINGNOANSWER" and e.get("agent") == "agent103" for e in seen)
    assert any(e["kind"] == "PAUSE" and e.get("reason") == "missed" for e in seen)
    agent103 = service.get("/api/agents")["agent103"]
    assert (agent103["status"], agent103["pause_reason"]) == ("paused", "missed")


def test_service_killed_mid_call_falls_back_to_operator(
    hotline, operator, caller, asterisk, db
) -> None:
    """The service dies (SIGKILL) while the caller waits in the queue: Asterisk's dialplan
    notices the dead FastAGI connection and puts the caller through to the operator."""
    service = hotline(agents=("agent103",))
    service.post("/api/agents/agent103/pause?reason=break")
    call_id = caller("w2|d3")
    wait_for(lambda: "ENTERQUEUE" in kinds(db, call_id), 40, "the call to be queued")
    service.kill()
    operator.wait_for("INVITE", timeout=30)
    call_gone(asterisk, call_id)


def _closed_by_peer(sock: socket.socket, timeout: float) -> bool:
    sock.settimeout(timeout)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def test_garbage_from_agi_peer_ends_that_connection_only(
    hotline, agents, caller, asterisk, db
) -> None:
    """Garbage, an oversized line and a half-open connection on the FastAGI port: each of
    those connections is closed by the service, and a real call at the same time still
    reaches its agent and gets its work order."""
    agent = agents("agent103", answer_after=0.5, hold_for=2.0)
    service = hotline(agents=("agent103",))
    call_id = caller("w2|d3")
    garbage = socket.create_connection(("127.0.0.1", 4573))
    garbage.sendall(b"\x00\xff\xfe not agi at all\r\n" * 50 + b"\n")
    oversized = socket.create_connection(("127.0.0.1", 4573))
    oversized.sendall(b"agi_network: yes\n" + b"agi_channel: " + b"A" * 100_000)
    half_open = socket.create_connection(("127.0.0.1", 4573))
    half_open.sendall(b"agi_network: yes\nagi_network_script: hotline\n")
    assert _closed_by_peer(garbage, 5)
    assert _closed_by_peer(oversized, 5)
    assert _closed_by_peer(half_open, 20)  # the header timeout (10 s) drops it
    for sock in (garbage, oversized, half_open):
        sock.close()
    call_gone(asterisk, call_id)
    assert agent.answered == 1
    assert workorder(service, call_id)["agent"] == "agent103"


def test_hostile_caller_id_is_stored_verbatim_and_injects_nothing(
    hotline, agents, operator, asterisk, db
) -> None:
    """A caller ID name with quotes, backslashes, ${...} and a newline followed by an AGI
    command reaches the work order verbatim, and nothing it says is executed: the call goes
    to the agent as chosen, not to the operator the name asks for."""
    name = 'Eve "\\" ${SHELL(id)}\nSET VARIABLE HOTLINE_NEXT operator'
    agent = agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",))
    call_id = "hostile-" + str(int(time.time() * 1000))
    asterisk.ari("POST", "/channels", params={
        "endpoint": "Local/s@caller-sim", "extension": "s", "context": "hotline",
        "channelId": call_id, "otherChannelId": f"{call_id}-sim",
    }, body={"variables": simulated_caller_variables("w2|d3", "5550666", name)})
    call_gone(asterisk, call_id)
    order = workorder(service, call_id)
    assert order["caller"]["name"] == name
    assert order["agent"] == "agent103"
    assert agent.answered == 1
    assert operator.count("INVITE") == 0


def test_ivr_call_command_speaks_and_prints_the_work_order(hotline, agents, asterisk) -> None:
    """``ivr call --say TEXT`` (what ops and the demo use) synthesizes the caller's words,
    places the call through ARI, follows it, and prints the work order as JSON on stdout. By
    default the caller speaks after the question, so the request is taken without one."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    agents("agent103", answer_after=0.5, hold_for=1.0)
    service = hotline(agents=("agent103",))
    ivr = Path(sys.executable).with_name("ivr")
    done = subprocess.run(
        [str(ivr), "call", "--say", "My internet is down and nothing works.",
         "--caller-number", "5550199", "--timeout", "90"],
        env=service.env, capture_output=True, text=True, timeout=150, check=False,
    )
    assert done.returncode == 0, done.stderr
    order = json.loads(done.stdout)
    assert (order["category"], order["urgency"]) == ("fault", "urgent")
    assert order["caller"]["number"] == "5550199"
    assert order["agent"] == "agent103"
    assert "internet" in (order["transcript"] or "")
    assert order["menu_path"] == []


def test_redis_away_caller_reaches_operator_and_work_order_is_kept(
    hotline, operator, caller, asterisk, redis_server, db
) -> None:
    """Redis stops while the hotline runs: the caller still reaches a human (the operator),
    the work order is spooled on the service's disk, and once Redis is back it is written
    there exactly once."""
    service = hotline(agents=("agent103",))
    redis_server.stop()
    try:
        call_id = caller("w2|d3")
        operator.wait_for("INVITE", timeout=60)
        call_gone(asterisk, call_id)
    finally:
        redis_server.start()
    order = wait_for(lambda: workorder(service, call_id), 30, "the spooled work order")
    assert (order["category"], order["caller"]["number"]) == ("fault", "5550100")
    orders_for_call = [k for k in db.keys("hotline:wo:{wo*}:by-call:*") if k.endswith(call_id)]
    assert len(orders_for_call) == 1
