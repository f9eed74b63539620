"""A recorded callback in which the customer speaks, through the real Asterisk: the callback
leg is recorded (``leg: callback``, same call id and work order) and the customer's words are
recognizable in the decrypted recording.

The caller asks for a callback while agent103 is on a break and hangs up. When the agent is
back, the callback rings the agent's phone, then the customer's (trunk ``customer``, a SIPp
phone that says a synthesized sentence right after it answers), and bridges them.
"""

from __future__ import annotations

from pathlib import Path

from pydub import AudioSegment
from pydub.silence import detect_nonsilent
from test_recordings import decrypted, words_in

from recordings.metadata import RecordingMeta
from testbed.checks import call_gone, first_event, kinds, wait_for
from testbed.utterances import spoken

SENTENCE = "My internet is down and I have no signal since this morning."


def customer_says(asterisk, folder: Path) -> tuple[Path, float]:
    """The sentence as the customer's phone sends it: a second of silence, the sentence, two
    seconds of silence (a phone sends RTP all along), 16-bit 8 kHz mono; its seconds."""
    words = Path(asterisk.sounds_dir) / "testcalls" / (Path(spoken(asterisk, SENTENCE)).name
                                                       + ".wav")
    audio = (AudioSegment.silent(1000, 8000) + AudioSegment.from_wav(words)
             + AudioSegment.silent(2000, 8000))
    audio = audio.set_frame_rate(8000).set_channels(1).set_sample_width(2)
    target = folder / "customer-says.wav"
    audio.export(target, format="wav")
    return target, audio.duration_seconds


def test_callback_customer_words_are_in_its_recording(
    hotline, agents, caller, asterisk, db, tmp_path
) -> None:
    """The callback's recording (``leg: callback``, the caller's call id and work order, no
    RECORDSHORT or RECORDMISSING) holds what the customer said: the project's recognizer
    finds the sentence on the customer's channel of the decrypted audio."""
    says, seconds = customer_says(asterisk, tmp_path)
    agents("agent103", answer_after=0.3, hold_for=60.0)
    customer = agents("customer", port=5079, behaviour="speak", say=says, answer_after=0.5,
                      hold_for=seconds + 1.0)
    raw_dir = asterisk.inside(asterisk.run_dir / "spool" / "monitor" / "hotline")
    service = hotline(agents=("agent103",), overrides={
        "recordings.yaml": {"capture": {"raw_dir": raw_dir}}})
    service.post("/api/agents/agent103/pause?reason=break")
    # 1 on hold for a callback, then 1 once the caller ID has been read back: confirmed.
    call_id = caller("w2|d3|w10|d1|w9|d1", number="5550199")
    wait_for(lambda: "CALLBACKREQUEST" in kinds(db, call_id), 60, "the callback request")
    call_gone(asterisk, call_id, timeout=20)
    service.post("/api/agents/agent103/resume")
    customer.wait_for("ANSWERED", timeout=30)
    start = first_event(db, call_id, "RECORDSTART", timeout=10)
    stored = first_event(db, call_id, "RECORDSTORED", timeout=90)
    assert start["leg"] == "callback" and stored["recording_id"] == start["recording_id"]
    assert not {"RECORDSHORT", "RECORDMISSING", "RECORDFAILED"} & set(kinds(db, call_id))
    rid = start["recording_id"]
    assert db.smembers(f"hotline:rec:by-call:{call_id}") == {rid}
    meta = RecordingMeta.from_hash(rid, db.hgetall(f"hotline:rec:{rid}"))
    assert (meta.leg, meta.agent) == ("callback", "agent103")
    assert meta.work_order_id and db.smembers(f"hotline:rec:by-order:{meta.work_order_id}") == {
        rid}

    storage = Path(service.env["HOTLINE__SPOOL_DIR"]) / "recordings"
    (sealed_path,) = storage.rglob(f"{rid}.hlr")
    stereo = decrypted(meta, sealed_path.read_bytes())
    customer_leg, _agent_leg = stereo.split_to_mono()  # stored caller (customer) left
    # From right before the customer is dialled to the end of the agent's leg: the customer's
    # words and little more (an RTP stream the recording mistimed would be far longer).
    assert seconds - 1.0 <= stereo.duration_seconds <= seconds + 15, (
        stereo.duration_seconds, meta)
    spans = detect_nonsilent(customer_leg, min_silence_len=700, silence_thresh=-45)
    assert spans, "the customer's channel is silent"
    first, last = max(spans, key=lambda span: span[1] - span[0])
    heard = words_in(customer_leg, first, last)
    said = {"internet", "down", "signal", "morning", "no"}
    assert "internet" in heard and len(said & set(heard)) >= 3, (heard, spans)
