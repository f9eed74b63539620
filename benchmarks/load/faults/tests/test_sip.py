"""The SIP-fleet form of the fault campaign without a phone: what a fleet caller's call
becomes in the verdict (dead air it heard, who answered, whether the fault itself ended it)
and the recovery time."""

from __future__ import annotations

from pathlib import Path

from benchmarks.load.audio import PCMU, Packet
from benchmarks.load.evidence import TAG
from benchmarks.load.faults.scenario import Scenario
from benchmarks.load.faults.sip import (
    SipLoad,
    answered_by,
    dropped_by,
    heard_by_humans,
    judged,
    longest_quiet,
    recovery_s,
)
from benchmarks.load.fleet import CallOutcome
from benchmarks.load.mix import Sentence

T0 = 1_800_000_000.0


def _heard(*spans: tuple[float, float]) -> list[Packet]:
    """Audible 20 ms packets over each (from, to) span, seconds after T0."""
    packets = []
    for start, end in spans:
        at = start
        while at < end:
            packets.append(Packet(T0 + at, len(packets), 0, 1, False, PCMU, 4000))
            at += 0.02
    return packets


def _call(audio: list[Packet], **fields: object) -> CallOutcome:
    call = CallOutcome(0, "keys", "load-x-0", "fault", invite_at=T0, answered_at=T0 + 0.1,
                       **fields)  # type: ignore[arg-type]
    call.audio = audio
    call.packets = len(audio)
    call.first_prompt_at = audio[0].at if audio else None
    return call


def _scenario(drops_calls: bool = False) -> Scenario:
    return Scenario("asterisk-restart", "x", lambda _w: None, lambda _w: None,
                    drops_calls=drops_calls)


def test_the_longest_owed_quiet_is_measured_up_to_the_answer() -> None:
    """Prompt 0.5-4 s, 1.5 s of nothing, music 5.5-9 s, the agent answers at 9 s and the
    conversation is silent: the dead air is the 1.5 s gap, not the conversation."""
    call = _call(_heard((0.5, 4.0), (5.5, 9.0)), connected_at=T0 + 9.0, ended_at=T0 + 20)
    length, at = longest_quiet(call)  # type: ignore[misc]
    assert abs(length - 1.5) < 0.05 and abs(at - 4.0) < 0.05


def test_without_an_answer_the_quiet_runs_to_the_end_of_the_call() -> None:
    call = _call(_heard((0.5, 4.0)), ended_at=T0 + 10.0)
    length, _at = longest_quiet(call)  # type: ignore[misc]
    assert abs(length - 6.0) < 0.05


def test_a_caller_who_received_nothing_has_no_measure() -> None:
    assert longest_quiet(_call([], ended_at=T0 + 5)) is None


def test_only_a_scenario_that_drops_calls_drops_them_and_only_while_it_lasts() -> None:
    failed = _call([], ended_at=T0 + 12)
    failed.reached = "failed"
    assert not dropped_by(failed, _scenario(drops_calls=False), T0 + 10, T0 + 11)
    assert dropped_by(failed, _scenario(drops_calls=True), T0 + 10, T0 + 11)
    long_after = _call([], ended_at=T0 + 40)
    long_after.invite_at = T0 + 30
    assert not dropped_by(long_after, _scenario(drops_calls=True), T0 + 10, T0 + 11)
    reached = _call([], ended_at=T0 + 12)
    reached.reached = "operator"
    assert not dropped_by(reached, _scenario(drops_calls=True), T0 + 10, T0 + 11)


def test_recovery_is_the_first_agent_answer_of_a_call_placed_after_the_heal() -> None:
    before = _call([], connected_at=T0 + 15)  # placed before the heal: not a recovery
    before.reached = "agent"
    after = _call([], connected_at=T0 + 19)
    after.reached, after.invite_at = "agent", T0 + 12
    operator = _call([], connected_at=T0 + 14)
    operator.reached, operator.invite_at = "operator", T0 + 11
    assert recovery_s([before, after, operator], healed_at=T0 + 10) == 9.0
    assert recovery_s([before, operator], healed_at=T0 + 10) is None


def test_a_fleet_call_is_judged_as_the_verdict_reads_calls() -> None:
    call = _call(_heard((0.5, 4.0), (4.8, 6.0)), connected_at=T0 + 6.0)
    call.reached, call.agent = "agent", "agent203"
    outcome = judged(call, "1796.3", False, (1, 1, ()))
    assert (outcome.call_id, outcome.reached, outcome.orders, outcome.creations) == (
        "1796.3", "PJSIP/agent203", 1, 1)
    assert outcome.dead_air_s is not None and abs(outcome.dead_air_s - 0.8) < 0.05
    nobody = _call([], ended_at=T0 + 3)
    nobody.reached = "dropped"
    lost = judged(nobody, None, False, (0, 0, ()))
    assert (lost.call_id, lost.reached, lost.dead_air_s) == ("load-x-0", None, None)


def test_the_fleet_wants_humans_and_its_tags_are_matched() -> None:
    """Every caller of the fault mix speaks or presses a key (each must reach a human), the
    speech scenario's callers all speak, and every tag is one the evidence can match."""
    sentences = [Sentence("my internet is down", "fault")]
    load = SipLoad(concurrent=30, seconds=60, sentences=sentences, speech={},
                   log_dir=Path("/nonexistent"))
    plans = load.plans(_scenario())
    assert len(plans) == 72
    assert {p.kind for p in plans} == {"speak", "keys"}
    assert 20 <= sum(p.kind == "speak" for p in plans) <= 28
    assert all(TAG.fullmatch(p.tag) for p in plans)
    speech = Scenario("speech-saturated", "x", lambda _w: None, lambda _w: None,
                      callers="speech")
    assert {p.kind for p in load.plans(speech)} == {"speak"}


def test_fault_callers_answer_again_as_people_do() -> None:
    """A speaker presses 1 four seconds after their words ("yes" to the confirmation a
    request spoken over the question gets; billing in the menu, if the pool turned them
    away), once, and every caller presses 3 again at 25 s and 45 s (their call may have
    started over at the backup instance): the keys their own RTP endpoint sends."""
    from benchmarks.load.media import CallerMedia
    from benchmarks.load.tests.test_fleet import SentTo, loud_packet

    sentence = Sentence("my internet is down", "fault")
    words = [b"\xff" * 160] * 100  # 2 s
    load = SipLoad(concurrent=2, seconds=1, sentences=[sentence],
                   speech={sentence.text: words}, log_dir=Path("/nonexistent"))
    by_kind = {p.kind: p for p in load.plans(_scenario())}
    assert by_kind["speak"].keys == ((25.0, "3"), (45.0, "3"))
    assert by_kind["keys"].keys[1:] == ((25.0, "3"), (45.0, "3"))
    media = CallerMedia(by_kind["speak"], speech=words)
    media.connection_made(SentTo())
    media.answered(("127.0.0.1", 10000), 0.0)
    media.datagram_received(loud_packet(1), ("127.0.0.1", 10000))
    heard = media.heard_at
    assert heard is not None
    t = heard
    while t < heard + 50.0:
        media.tick(t)
        t += 0.02
    sent = [(round(at - heard, 1), key) for at, key in media.keys_sent]
    assert sent == [(11.0, "1"), (25.0, "3"), (45.0, "3")]


def test_the_phones_say_who_answered_and_when() -> None:
    """An agent's phone answered a caller the event stream lost (Redis was down): the call
    reached that agent, its owed dead air ends at the phone's answer; the earliest answer
    wins when two phones logged the tag."""
    logs = {
        "agent203": [("INVITE", "a1", '"load-x-0" <sip:x@127.0.0.1>'),
                     ("ANSWERED_AT", "a1", f"{T0 + 6.0:.6f}|0")],
        "operator": [("INVITE", "o1", '"load-x-0" <sip:x@127.0.0.1>'),
                     ("ANSWERED_AT", "o1", f"{T0 + 30.0:.6f}|0")],
    }
    humans = answered_by(logs)
    assert humans == {"load-x-0": ("agent203", T0 + 6.0)}
    call = _call(_heard((0.5, 4.0)), ended_at=T0 + 20)
    call.reached = "dropped"
    heard_by_humans([call], humans)
    assert (call.reached, call.agent, call.connected_at) == ("agent", "agent203", T0 + 6.0)
    ((start, end),) = call.dead_air  # up to the answer at 6 s, not the call's end at 20 s
    assert abs(start - (T0 + 4.0)) < 0.05 and end == T0 + 6.0
