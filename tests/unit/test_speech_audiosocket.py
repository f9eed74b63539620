"""The AudioSocket server: framing, endpointing on the clock, barge-in, DTMF, hangup, garbage."""

from __future__ import annotations

import struct
import uuid as uuidlib
from itertools import pairwise

import pytest
from twisted.internet.defer import CancelledError, Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ivr.speech.audiosocket import (
    FRAME_GAP_S,
    FRAME_WATCHDOG_S,
    KIND_AUDIO,
    KIND_DTMF,
    KIND_ERROR,
    KIND_HANGUP,
    MAX_PAYLOAD,
    AudioSocketProtocol,
    AudioSocketServer,
    SpeechResult,
    encode_frame,
)
from ivr.speech.classifier import IntentClassifier
from ivr.speech.engines import Transcript
from ivr.speech.pool import SpeechPool
from ivr.speech.schema import EndpointingConfig, IntentsConfig
from ivr.speech.testing import (
    FRAME_BYTES,
    FakeEngine,
    audio_frames,
    silence_frame,
    stream_call,
    tone_frame,
    uuid_frame,
)

INTENTS = IntentsConfig.model_validate(
    {
        "categories": {
            "fault": {"urgency": "urgent", "examples": ["my internet is down"]},
            "inquiry": {"urgency": "normal", "examples": ["how much is my bill"]},
            "other": {"urgency": "normal", "examples": ["where is your store"]},
            "operator": {"urgency": "normal", "keywords": {"agent": 3}},
        }
    }
)
ENDPOINTING = EndpointingConfig(trailing_silence_ms=700, no_speech_timeout_ms=5000)
LOUD, QUIET = tone_frame(), silence_frame()


class Harness:
    def __init__(self, transcripts=("my internet is down",), max_streams: int = 4) -> None:
        self.clock = Clock()
        self.engine = FakeEngine(transcripts)
        self.pool = SpeechPool.inline(max_streams)
        self.server = AudioSocketServer(
            self.engine, IntentClassifier(INTENTS), self.pool, self.clock, ENDPOINTING
        )

    def connect(self) -> tuple[AudioSocketProtocol, StringTransport]:
        proto = self.server.buildProtocol(None)
        transport = StringTransport()
        proto.makeConnection(transport)
        return proto, transport

    def expect(self, prompt: bytes = b"") -> tuple[str, list[SpeechResult]]:
        call_uuid = str(uuidlib.uuid4())
        results: list[SpeechResult] = []
        self.server.expect(call_uuid, prompt=prompt).addCallback(results.append)
        return call_uuid, results

    def frames(self, proto: AudioSocketProtocol, frame: bytes, count: int) -> None:
        """Send ``count`` audio frames, 20 ms apart on the clock."""
        for _ in range(count):
            proto.dataReceived(encode_frame(KIND_AUDIO, frame))
            self.clock.advance(0.02)


def undecided(monkeypatch: pytest.MonkeyPatch) -> Deferred[Transcript]:
    """Make every recognizer of the AudioSocket server one that takes every frame and has
    not decided: the transcript comes when the test fires the Deferred returned."""
    from twisted.internet import defer

    from ivr.speech import audiosocket

    pending: Deferred[Transcript] = defer.Deferred()

    class Undecided:
        def opened(self) -> Deferred[None]:
            return defer.succeed(None)

        def accept(self, pcm: bytes) -> Deferred[None]:
            return defer.succeed(None)

        def paused(self) -> None:
            pass

        def final(self, *, after_pause: bool = False) -> Deferred[Transcript]:
            return pending

        def close(self) -> None:
            pass

    monkeypatch.setattr(audiosocket, "open_live", lambda *a, **k: Undecided())
    return pending


def sent_frames(transport: StringTransport) -> list[tuple[int, bytes]]:
    data, out = transport.value(), []
    while data:
        kind, length = struct.unpack(">BH", data[:3])
        out.append((kind, data[3 : 3 + length]))
        data = data[3 + length :]
    return out


def test_utterance_is_recognized_and_classified_right_after_the_caller_stops() -> None:
    """Speech, then 700 ms of silence: the result comes on the frame that completes the
    silence, with transcript, category, urgency, engine, timings; the socket is closed, the
    recognizer freed and the pool slot returned."""
    h = Harness()
    call_uuid, results = h.expect()
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, QUIET, 10)
    h.frames(proto, LOUD, 50)
    h.frames(proto, QUIET, 34)
    assert results == []
    h.frames(proto, QUIET, 1)
    [result] = results
    assert result.outcome == "speech"
    assert result.text == "my internet is down"
    assert result.classification is not None
    assert (result.classification.category, result.classification.urgency) == ("fault", "urgent")
    assert (result.engine, result.model) == ("fake", "fake")
    assert result.timings["end_of_speech"] - result.timings["speech_start"] == pytest.approx(
        (50 - 5 + 35) * 0.02
    )
    assert result.timings["latency_ms"] == 0.0  # inline pool: no decoding wait
    assert transport.disconnecting
    [rec] = h.engine.recognizers
    assert rec.finished and rec.closed
    # pre-roll (300 ms, taken at the 5th loud frame) + the rest of the speech + the silence
    assert len(rec.audio) == FRAME_BYTES * (15 + 45 + 35)
    assert h.pool.in_use == 0


def test_frames_split_across_reads_are_reassembled() -> None:
    """TCP may cut frames anywhere: feeding the call one byte at a time gives the same
    result as whole frames."""
    h = Harness()
    call_uuid, results = h.expect()
    proto, _ = h.connect()
    wire = uuid_frame(call_uuid) + audio_frames(LOUD * 40 + QUIET * 40)
    for i in range(len(wire)):
        proto.dataReceived(wire[i : i + 1])
    [result] = results
    assert result.outcome == "speech"


def test_whole_call_through_the_testing_driver() -> None:
    """stream_call (what the evaluation uses) plays a call with its trailing silence."""
    h = Harness()
    d, transport = stream_call(h.server, h.clock, LOUD * 50)
    assert d.result.outcome == "speech"
    assert transport.disconnecting


def test_the_testing_driver_plays_a_prompt_before_arming_the_endpointer() -> None:
    """stream_call with a prompt (the evaluation's caller listening to the speech prompt):
    the prompt goes out to the caller and the no-speech timeout starts when it ends, so a
    caller who says nothing is silence 5 s after the prompt, not 5 s after the call began."""
    h = Harness()
    prompt = silence_frame() * 150  # 3 s
    quiet_7s = silence_frame() * 350
    d, _ = stream_call(h.server, h.clock, quiet_7s, trailing_silence_s=0)
    assert d.called and d.result.outcome == "silence"  # 5 s after the call began
    d, transport = stream_call(h.server, h.clock, quiet_7s, prompt=prompt, trailing_silence_s=0)
    assert not d.called  # 4 s after the prompt: still the caller's turn
    assert len(transport.value()) >= len(prompt)  # the prompt went out to the caller
    d, _ = stream_call(h.server, h.clock, quiet_7s + silence_frame() * 60, prompt=prompt,
                       trailing_silence_s=0)
    assert d.called and d.result.outcome == "silence"  # 5 s after the prompt


def test_unknown_call_uuid_is_closed_without_touching_expected_calls() -> None:
    """A stream for a call nobody expects is closed at once; the expected call still waits."""
    h = Harness()
    _, results = h.expect()
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(str(uuidlib.uuid4())))
    assert transport.disconnecting
    assert results == [] and h.server.expected == 1


@pytest.mark.parametrize(
    ("uuid_first", "garbage"),
    [
        (False, encode_frame(KIND_AUDIO, LOUD)),  # audio before the UUID
        (True, struct.pack(">BH", KIND_AUDIO, MAX_PAYLOAD + 1)),  # absurd length
        (True, encode_frame(0x42, b"??")),  # unknown kind
        (True, encode_frame(KIND_ERROR, b"\x01")),  # Asterisk reports an error
    ],
)
def test_garbage_closes_that_stream_only(uuid_first: bool, garbage: bytes) -> None:
    """A bad frame ends its own stream (outcome error when the call was known, the socket
    closed) while another call's stream carries on."""
    h = Harness()
    other_uuid, other_results = h.expect()
    other, _ = h.connect()
    other.dataReceived(uuid_frame(other_uuid))
    call_uuid, results = h.expect()
    proto, transport = h.connect()
    if uuid_first:
        proto.dataReceived(uuid_frame(call_uuid))
    proto.dataReceived(garbage)
    assert transport.disconnecting
    assert [r.outcome for r in results] == (["error"] if uuid_first else [])
    h.frames(other, LOUD, 30)
    h.frames(other, QUIET, 35)
    assert [r.outcome for r in other_results] == ["speech"]


def test_hangup_mid_sentence_frees_the_recognizer() -> None:
    """A hangup frame while the caller speaks ends the step as hangup: no final decode, the
    recognizer closed, the slot returned."""
    h = Harness()
    call_uuid, results = h.expect()
    proto, _ = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, LOUD, 20)
    proto.dataReceived(encode_frame(KIND_HANGUP))
    assert [r.outcome for r in results] == ["hangup"]
    [rec] = h.engine.recognizers
    assert rec.closed and not rec.finished
    assert h.pool.in_use == 0


def test_connection_lost_mid_sentence_is_a_hangup() -> None:
    """The socket dropping without a hangup frame is treated the same way."""
    h = Harness()
    call_uuid, results = h.expect()
    proto, _ = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, LOUD, 20)
    proto.connectionLost(None)
    assert [r.outcome for r in results] == ["hangup"]
    assert h.engine.recognizers[0].closed


def test_dtmf_ends_the_step_with_the_digit_and_stops_the_prompt() -> None:
    """A key press during the prompt returns outcome dtmf with the digit; no more prompt
    audio is sent after it."""
    h = Harness()
    call_uuid, results = h.expect(prompt=LOUD * 50)
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, QUIET, 5)
    proto.dataReceived(encode_frame(KIND_DTMF, b"5"))
    [result] = results
    assert (result.outcome, result.digits) == ("dtmf", "5")
    played = len(sent_frames(transport))
    h.clock.advance(1)
    assert len(sent_frames(transport)) == played < 50


def test_prompt_is_paced_by_the_clock_and_barge_in_stops_it() -> None:
    """The prompt goes out as 20 ms audio frames, one per 20 ms of clock; when the caller
    starts speaking, the prompt stops at once."""
    h = Harness()
    prompt = bytes(range(256)) * 50  # 12800 bytes = 40 frames = 800 ms
    call_uuid, results = h.expect(prompt=prompt)
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    assert len(sent_frames(transport)) == 1
    h.clock.advance(0.02)
    assert len(sent_frames(transport)) == 2
    h.frames(proto, LOUD, 5)  # speech starts on the 5th frame
    played = sent_frames(transport)
    assert all(kind == KIND_AUDIO and len(body) == FRAME_BYTES for kind, body in played)
    assert b"".join(body for _, body in played) == prompt[: len(played) * FRAME_BYTES]
    h.clock.advance(1)
    after = sent_frames(transport)[len(played):]
    assert len(played) < 40
    # nothing more of the prompt: only the keep-alive's silent frames (the peer went quiet)
    assert all(body == bytes(FRAME_BYTES) for _, body in after)
    h.frames(proto, QUIET, 35)
    assert [r.outcome for r in results] == ["speech"]


def test_silence_times_out_counting_from_the_end_of_the_prompt() -> None:
    """Nobody speaks: 5 s after the prompt finished (not after it started) the outcome is
    silence, and no recognizer was ever created."""
    h = Harness()
    call_uuid, results = h.expect(prompt=QUIET * 100)  # 2 s prompt
    proto, _ = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, QUIET, 100 + 248)
    assert results == []
    h.frames(proto, QUIET, 3)
    assert [r.outcome for r in results] == ["silence"]
    assert h.engine.recognizers == []
    assert h.pool.in_use == 0


def test_speech_with_no_recognized_words_is_silence() -> None:
    """Noise loud enough to start an utterance, but no words: outcome silence (re-prompt)."""
    h = Harness(transcripts=[""])
    d, _ = stream_call(h.server, h.clock, LOUD * 30)
    assert d.result.outcome == "silence"
    assert h.engine.recognizers[0].closed


def test_every_slot_busy_gives_busy_at_once() -> None:
    """With all recognizer slots taken, expect() fires immediately with busy: the flow goes
    to the DTMF menu without starting AudioSocket."""
    h = Harness(max_streams=1)
    h.expect()
    _, results = h.expect()
    assert [r.outcome for r in results] == ["busy"]


def test_asterisk_never_connecting_is_an_error_and_frees_the_slot() -> None:
    """If no stream arrives within the connect timeout, the step ends with error."""
    h = Harness(max_streams=1)
    _, results = h.expect()
    h.clock.advance(h.server.connect_timeout)
    assert [r.outcome for r in results] == ["error"]
    assert h.pool.in_use == 0


def test_cancelling_withdraws_the_expectation() -> None:
    """The flow may give up (its EXEC failed): cancel frees the slot and a late stream for
    that call is refused."""
    h = Harness(max_streams=1)
    call_uuid = str(uuidlib.uuid4())
    d = h.server.expect(call_uuid)
    d.cancel()
    assert d.called
    d.addErrback(lambda f: f.trap(CancelledError))
    assert h.pool.in_use == 0
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    assert transport.disconnecting


def test_no_frames_after_speech_count_as_silence_and_end_the_utterance() -> None:
    """A caller's phone with silence suppression (or a Local channel) sends no frames while
    the caller is quiet: the gap counts as silence, so the utterance ends and is recognized
    instead of waiting for frames that never come."""
    h = Harness()
    call_uuid, results = h.expect()
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, LOUD, 30)
    for _ in range(10):
        h.clock.advance(FRAME_GAP_S)
    assert [r.outcome for r in results] == ["speech"]
    assert transport.disconnecting
    assert h.engine.recognizers[0].closed


def test_a_stream_that_never_starts_ends_with_error() -> None:
    """Connected but no UUID frame: the socket is closed after the watchdog, and the flow
    waiting for the call gets an error (its connect timeout) instead of hanging."""
    h = Harness()
    _call_uuid, results = h.expect()
    _proto, transport = h.connect()
    for _ in range(round(FRAME_WATCHDOG_S / FRAME_GAP_S)):
        h.clock.advance(FRAME_GAP_S)
    assert transport.disconnecting
    assert [r.outcome for r in results] == ["error"]


def test_recognizer_failure_is_an_error_not_a_crash() -> None:
    """An exception in the engine gives outcome error; the slot is still returned."""

    class Exploding(FakeEngine):
        def recognizer(self, rate=8000, phrases=None):
            raise RuntimeError("model gone")

    h = Harness()
    h.server.engine = Exploding()
    d, _ = stream_call(h.server, h.clock, LOUD * 30)
    assert d.result.outcome == "error"
    assert h.pool.in_use == 0


def test_audio_the_recognizer_refused_ends_the_utterance_with_an_error() -> None:
    """A recognizer that fails on a batch of audio (its decoder process died, say) loses
    that audio, so its transcript could only be wrong: the caller gets outcome error (the
    menu), not a decision on the words it still heard; the slot is returned."""

    class Refusing(FakeEngine):
        def recognizer(self, rate=8000, phrases=None):
            recognizer = super().recognizer(rate, phrases)

            def accept(pcm: bytes) -> str | None:
                raise RuntimeError("decoder process gone")

            recognizer.accept = accept  # type: ignore[method-assign]
            return recognizer

    h = Harness()
    h.server.engine = Refusing(["my bill is wrong"])
    d, _ = stream_call(h.server, h.clock, LOUD * 30)
    assert d.result.outcome == "error"
    assert h.pool.in_use == 0


def _gaps(transport: StringTransport, times: list[float], clock: Clock, seconds: float) -> None:
    """Advance ``clock`` by ``seconds`` in frame gaps, noting when the peer was written to."""
    for _ in range(round(seconds / FRAME_GAP_S)):
        before = len(transport.value())
        clock.advance(FRAME_GAP_S)
        if len(transport.value()) > before:
            times.append(clock.seconds())


def test_a_quiet_caller_and_a_listening_service_keep_asterisks_stream_up() -> None:
    """Asterisk ends AudioSocket after 2 s with no frame either way: a caller whose phone
    sends nothing while quiet (DTX) met a service that sent nothing after its prompt. The
    service now sends a silent frame each frame gap, up to the no-speech timeout."""
    h = Harness()
    call_uuid, results = h.expect(prompt=QUIET * 10)  # a 200 ms prompt
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    for _ in range(10):
        h.clock.advance(0.02)  # the prompt, frame by frame
    played, ended = len(sent_frames(transport)), h.clock.seconds()
    written: list[float] = []
    _gaps(transport, written, h.clock, 4.6)
    assert results == []
    keep_alive = sent_frames(transport)[played:]
    assert keep_alive and all(kind == KIND_AUDIO and body == bytes(FRAME_BYTES)
                              for kind, body in keep_alive)
    assert max(b - a for a, b in pairwise([ended, *written])) <= 0.5
    _gaps(transport, written, h.clock, 0.6)
    assert [r.outcome for r in results] == ["silence"]  # the no-speech timeout, as before


def test_the_stream_is_kept_up_while_the_recognizer_decides(monkeypatch) -> None:
    """The caller stopped speaking and the decoder takes its time (a busy worker): the
    service keeps writing frames (silence, then the thinking cue) until the decision, then
    closes the stream."""
    from ivr.speech.engines import Transcript

    pending = undecided(monkeypatch)
    h = Harness()
    call_uuid, results = h.expect()
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, LOUD, 30)
    h.frames(proto, QUIET, 36)  # the end of the utterance: recognizing
    assert results == []
    written: list[float] = []
    start = h.clock.seconds()
    _gaps(transport, written, h.clock, 3.0)
    assert written and written[0] - start <= FRAME_GAP_S + 1e-9
    assert max(b - a for a, b in pairwise(written)) <= 0.5
    pending.callback(Transcript("my internet is down", 0.9, "fake", "fake"))
    assert [r.outcome for r in results] == ["speech"]
    assert transport.disconnecting
    count = len(transport.value())
    h.clock.advance(1.0)
    assert len(transport.value()) == count  # nothing after the stream closed


def test_a_slow_decision_plays_the_thinking_cue_not_dead_air(monkeypatch) -> None:
    """The recognizer takes 3 s to decide (a saturated pool, a starved core): 300 ms after
    the end of speech the caller hears the thinking cue, never more than half a second of
    quiet in it, until the decision; then it stops with the stream."""
    import numpy as np

    from ivr.speech.audiosocket import THINKING_AFTER_S
    from ivr.speech.engines import Transcript

    pending = undecided(monkeypatch)
    h = Harness()
    call_uuid, results = h.expect()
    proto, transport = h.connect()
    proto.dataReceived(uuid_frame(call_uuid))
    h.frames(proto, LOUD, 30)
    h.frames(proto, QUIET, 35)  # the end of speech: recognizing
    transport.clear()
    frames: list[tuple[float, int]] = []  # (when, loudest sample) of each frame sent
    seen = 0
    start = h.clock.seconds()
    for _ in range(150):  # 3 s
        h.clock.advance(0.02)
        sent = sent_frames(transport)
        for kind, payload in sent[seen:]:
            if kind == KIND_AUDIO:
                peak = int(np.abs(np.frombuffer(payload, dtype="<i2")).max())
                frames.append((h.clock.seconds(), peak))
        seen = len(sent)
    audible = [at for at, peak in frames if peak >= 512]
    assert audible and audible[0] - start <= THINKING_AFTER_S + 0.03
    assert max(b - a for a, b in pairwise(audible)) <= 0.52 + 1e-9  # frame to frame
    assert results == []
    pending.callback(Transcript("my internet is down", 0.9, "fake", "fake"))
    assert [r.outcome for r in results] == ["speech"]
    assert "thinking" in results[0].timings
    count = len(transport.value())
    h.clock.advance(1.0)
    assert len(transport.value()) == count  # the cue stopped with the decision
