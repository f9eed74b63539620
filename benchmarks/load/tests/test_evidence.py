"""Matching the stack's records (events, work orders, logs) to the fleet's callers."""

from __future__ import annotations

import time
from datetime import datetime

from benchmarks.load.audio import PCMU, Packet
from benchmarks.load.evidence import answers_by_tag, apply_evidence, decisions_from_log, gather
from benchmarks.load.fleet import CallOutcome


def _log_time(at: float) -> str:
    return datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S,%f")[:-3]


def test_decisions_from_the_service_log() -> None:
    """Each speech attempt line gives the call, the instant (ms) and the outcome."""
    at = 1_800_000_000.25
    log = (f"{_log_time(at)} INFO ivr.speech.gateway: call 1712.4: speech attempt 1: "
           "speech 'my internet is down' (0.91)\nnoise line\n")
    assert decisions_from_log(log) == {"1712.4": [(at, "speech")]}


def test_outcomes_are_filled_from_events_orders_and_operator() -> None:
    """A work order's caller name links a Redis call to its caller: CONNECT gives the agent
    and the queue wait, CALLBACKREQUEST a callback, the operator's INVITE the operator; a
    caller who hung up themselves is 'hung-up', one the hotline hung up on is 'dropped', and
    the speech decision is the first one after the caller stopped speaking."""
    now = time.time()
    events = [
        {"kind": "WOCREATE", "call_id": "c0"}, {"kind": "WOCREATE", "call_id": "c1"},
        {"kind": "CONNECT", "call_id": "c0", "agent": "agent201", "holdtime": "3.500",
         "time": "2027-01-15T08:00:00.250000Z"},
        {"kind": "CALLBACKREQUEST", "call_id": "c1"},
        {"kind": "ABANDON", "call_id": "c1", "waittime": "9.000", "queue": "billing"},
    ]
    orders = {"c0": {"caller": {"name": "load-s-0"}, "category": "fault"},
              "c1": {"caller": {"name": "load-s-1"}, "category": "inquiry"}}
    log = (f"{_log_time(now - 10)} INFO x: call c0: speech attempt 1: silence '' (0.00)\n"
           f"{_log_time(now + 0.9)} INFO x: call c0: speech attempt 2: speech 'x' (0.9)\n")
    evidence = gather(events, orders.get, log,
                      [("INVITE", "sip-2", '"load-s-2" <sip:loadcaller@127.0.0.1>')])
    outs = [CallOutcome(i, "speak", f"load-s-{i}", None, answered_at=now) for i in range(5)]
    outs[0].speech_end_at = now
    outs[3].hung_up_by = "local"
    outs[4].hung_up_by = "remote"
    apply_evidence(outs, evidence)
    assert [o.reached for o in outs] == ["agent", "callback", "operator", "hung-up", "dropped"]
    assert (outs[0].agent, outs[0].queue_wait_s, outs[0].category) == ("agent201", 3.5, "fault")
    assert outs[1].queue_wait_s == 9.0
    connected = datetime.fromisoformat("2027-01-15T08:00:00.250+00:00").timestamp()
    assert outs[0].connected_at == connected
    assert outs[0].decided_at is not None and abs(outs[0].decided_at - (now + 0.9)) < 0.002


def test_a_call_never_answered_failed() -> None:
    """No SIP answer is a set-up failure, whatever else happened."""
    out = CallOutcome(0, "keys", "load-s-0", "fault")
    apply_evidence([out], gather([], lambda _c: None, "", []))
    assert out.reached == "failed"


def test_the_operators_answer_ends_the_owed_dead_air() -> None:
    """The operator's phone logs the wall clock of its answer; joined to the fleet's tag by
    the INVITE's From, it is the caller's ``connected_at``: the silent conversation after it
    is not dead air (before, it was, up to the end of the call)."""
    phone = [
        ("INVITE", "sip-1", '"load-s-0" <sip:loadcaller@127.0.0.1>;tag=abc'),
        ("ANSWERED_AT", "sip-1", "1800000010.000000|500000.000000"),
        ("ANSWERED", "sip-1", ""),
        ("ANSWERED_AT", "sip-unknown", "1800000011|0"),
        ("ANSWERED_AT", "sip-1", "garbage"),
    ]
    answers = answers_by_tag(phone)
    assert answers == {"load-s-0": 1800000010.5}
    out = CallOutcome(0, "keys", "load-s-0", "fault", answered_at=1800000000.0,
                      ended_at=1800000030.0)
    out.audio = [Packet(1800000000.5 + i * 0.02, i, 0, 1, False, PCMU, 4000)
                 for i in range(450)]  # a prompt up to 9.5 s, then 1 s of ringing silence
    out.first_prompt_at = out.audio[0].at
    out.dead_air = out.owed_dead_air()
    assert out.dead_air, "the silent conversation counts until the answer is known"
    apply_evidence([out], gather([], lambda _c: None, "", phone))
    assert out.reached == "operator"
    assert out.connected_at == 1800000010.5
    assert out.dead_air == []
