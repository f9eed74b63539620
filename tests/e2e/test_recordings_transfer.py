"""A recorded call that the agent blind-transfers, through the real Asterisk: the recording
follows the caller (MixMonitor on the caller's channel, ``capture.follow_max_s``) and is
stored once, whole, with what was said after the transfer in it.

The caller (caller-sim) presses 3 (a fault) and agent104 answers. A few seconds later the
agent blind-transfers the caller to the operator (AMI ``BlindTransfer`` on the agent's
channel: what the agent's phone does with a SIP REFER), which ends the flow while the caller's
channel lives on. The operator's phone answers; the caller then says a synthesized sentence,
which the operator's phone sends back (its RTP echo), and the operator hangs up.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydub.silence import detect_nonsilent
from test_recordings import agent_gone, ami, decrypted, words_in
from test_speech_calls import spoken

from recordings.metadata import RecordingMeta
from testbed.checks import call_gone, events, first_event, wait_for

SENTENCE = "My internet is down and I have no signal since this morning."


def test_blind_transfer_keeps_one_whole_recording(
    hotline, agents, caller, asterisk, db, tmp_path
) -> None:
    """Agent answers, blind-transfers the caller to the operator: one RECORDSTART, one stored
    recording (no RECORDSHORT or RECORDMISSING), as long as the caller's whole call, and the
    sentence the caller says to the operator after the transfer is recognizable in it, with
    the operator's side of it on the other channel."""
    agents("agent104", answer_after=0.5, hold_for=120.0)
    operator = agents("operator", behaviour="answer", answer_after=0.3, hold_for=25.0)
    raw_dir = asterisk.inside(asterisk.run_dir / "spool" / "monitor" / "hotline")
    service = hotline(agents=("agent104",), overrides={
        "recordings.yaml": {"capture": {"raw_dir": raw_dir}}})
    words = spoken(asterisk, SENTENCE)
    # Connected ~10-15 s after the key, transferred 3 s later; the sentence at ~32 s falls
    # after the transfer (checked below on the file).
    call_id = caller(f"w2|d3|w30|p{words}")
    recording_id = first_event(db, call_id, "RECORDSTART", timeout=30)["recording_id"]
    first_event(db, call_id, "CONNECT", timeout=30)
    time.sleep(3.0)  # caller and agent talk
    (agent_channel,) = [str(c["name"]) for c in asterisk.channels()
                        if str(c.get("name", "")).startswith("PJSIP/agent104")]
    transferred_at = time.time()
    (_, reply, _) = ami(asterisk, {"Action": "BlindTransfer", "Channel": agent_channel,
                                   "Context": "hotline", "Exten": "operator"})
    assert "Success" in reply, reply
    wait_for(lambda: agent_gone(asterisk, "agent104"), 15, "agent104 to leave the call")
    operator.wait_for("ANSWERED", timeout=15)
    call_gone(asterisk, call_id, timeout=60)
    ended_at = time.time()
    stored = first_event(db, call_id, "RECORDSTORED", timeout=90)
    assert stored["recording_id"] == recording_id

    kinds = [e["kind"] for e in events(db, call_id)]
    assert kinds.count("RECORDSTART") == 1 and kinds.count("RECORDSTORED") == 1, kinds
    assert not {"RECORDSHORT", "RECORDMISSING", "RECORDFAILED"} & set(kinds), kinds
    assert db.smembers(f"hotline:rec:by-call:{call_id}") == {recording_id}
    meta = RecordingMeta.from_hash(recording_id, db.hgetall(f"hotline:rec:{recording_id}"))
    assert meta.agent == "agent104" and meta.talk_seconds >= 2
    # The recording ends with the caller's channel, not with the flow at the transfer.
    assert meta.ended_at > transferred_at + 15, (meta, transferred_at)

    storage = Path(service.env["HOTLINE__SPOOL_DIR"]) / "recordings"
    (sealed_path,) = storage.rglob(f"{recording_id}.hlr")
    stereo = decrypted(meta, sealed_path.read_bytes())
    caller_leg, heard_leg = stereo.split_to_mono()
    # Whole: from the start of the recording to the caller's hangup, both parts.
    whole = ended_at - meta.started_at
    assert whole - 3.0 <= stereo.duration_seconds <= whole + 1.0, (
        stereo.duration_seconds, whole, meta)

    transfer_ms = (transferred_at - meta.started_at) * 1000
    spans = detect_nonsilent(caller_leg, min_silence_len=700, silence_thresh=-45)
    assert spans, "the caller's channel is silent"
    first, last = max(spans, key=lambda span: span[1] - span[0])
    assert first > transfer_ms, (spans, transfer_ms)
    heard = words_in(caller_leg, first, last)
    said = {"internet", "down", "signal", "morning", "no"}
    assert "internet" in heard and len(said & set(heard)) >= 3, (heard, spans)
    # The operator's side (what the caller hears: the operator's phone sends the sentence
    # back) is in the other channel, after the transfer.
    echoed = detect_nonsilent(heard_leg[int(transfer_ms):], min_silence_len=700,
                              silence_thresh=-45)
    assert any(end - start > 1500 for start, end in echoed), echoed
