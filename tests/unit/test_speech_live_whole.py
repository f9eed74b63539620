"""A whole-utterance engine (Moonshine, Whisper) on the live path: the audio stays on the
reactor, the decoding at the end of speech is the caller's one job on the speech workers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport

from ivr.speech import audiosocket
from ivr.speech.audiosocket import KIND_AUDIO, AudioSocketServer, encode_frame
from ivr.speech.classifier import IntentClassifier
from ivr.speech.engines import Transcript
from ivr.speech.gateway import stream_kind
from ivr.speech.live import PooledRecognizer, WholeUtteranceLive, open_live
from ivr.speech.pool import RecognizerBusy, SpeechPool
from ivr.speech.schema import EndpointingConfig, IntentsConfig
from ivr.speech.testing import ManualRunner, silence_frame, tone_frame, uuid_frame
from ivr.speech.whisper import WholeUtterance, WholeUtteranceEngine

INTENTS = IntentsConfig.model_validate({"categories": {
    "fault": {"urgency": "urgent", "examples": ["my internet is down"]},
    "other": {"urgency": "normal", "examples": ["where is your store"]},
    "operator": {"urgency": "normal", "keywords": {"agent": 3}},
}})


class HeardSamples:
    """A whole-utterance engine whose 'decoding' says how many 16 kHz samples it was given."""

    name = "fake-whole"
    model = "fake"
    hears_whole_utterances = True

    def recognizer(self, rate: int = 8000,
                   phrases: Sequence[str] | None = None) -> WholeUtterance:
        return WholeUtterance(self.name, self.model, rate,
                              lambda audio: (f"samples {len(audio)}", 0.9))


class Streaming:
    """An engine fed batch by batch on the workers (vosk, pocketsphinx in this process)."""

    name = "fake-streaming"
    model = "fake"

    def recognizer(self, rate: int = 8000, phrases: Sequence[str] | None = None) -> object:
        raise AssertionError("not made in this test")


def test_whole_utterance_engines_are_told_apart_from_streaming_ones() -> None:
    assert isinstance(HeardSamples(), WholeUtteranceEngine)
    assert not isinstance(Streaming(), WholeUtteranceEngine)
    assert stream_kind(HeardSamples(), attached=False) == "whole"
    assert stream_kind(Streaming(), attached=False) == "threads"
    assert stream_kind(Streaming(), attached=True) == "processes"


def test_the_audio_is_kept_without_a_worker_and_decoded_as_one_job() -> None:
    """Every batch is accepted at once, while both workers are busy with other callers; the
    end of speech is the only job this caller gives them."""
    runner = ManualRunner()
    lease = SpeechPool(4, runner).try_acquire()
    assert lease is not None
    live = open_live(HeardSamples(), lease, 8000, None)  # type: ignore[arg-type]
    assert isinstance(live, WholeUtteranceLive)
    assert live.opened().called
    silence = np.zeros(160, dtype="<i2").tobytes()  # 20 ms at 8 kHz
    for _ in range(50):
        accepted = live.accept(silence)
        assert accepted.called
    assert runner.queued == []
    heard: list[str] = []
    live.final().addCallback(lambda t: heard.append(t.text))
    assert len(runner.queued) == 1
    runner.run_next()
    assert heard == ["samples 16000"]  # 1 s of caller audio at the model's 16 kHz
    live.close()
    live.close()
    runner.run_next()  # the close, after the decoding
    assert runner.queued == []


def test_a_decoding_that_finds_no_worker_in_time_sheds_the_caller() -> None:
    """The pool's wait bound holds for the decoding: no worker within it, the caller gets
    RecognizerBusy (the call flow's DTMF menu) instead of waiting in silence."""
    clock = Clock()
    runner = ManualRunner()
    lease = SpeechPool(4, runner, clock=clock, max_wait_s=0.5).try_acquire()
    assert lease is not None
    live = WholeUtteranceLive(lease, HeardSamples(), 8000, None)  # type: ignore[arg-type]
    live.accept(np.ones(1600, dtype="<i2").tobytes())
    failures: list[type[BaseException]] = []
    live.final().addErrback(lambda f: failures.append(f.type))
    clock.advance(0.6)
    assert failures == [RecognizerBusy]


def test_streaming_engines_keep_their_jobs_on_the_workers() -> None:
    runner = ManualRunner()
    lease = SpeechPool(1, runner).try_acquire()
    assert lease is not None
    assert isinstance(open_live(Streaming(), lease, 8000, None),  # type: ignore[arg-type]
                      PooledRecognizer)




def _open(runner: ManualRunner, **pool: object) -> WholeUtteranceLive:
    lease = SpeechPool(4, runner, **pool).try_acquire()  # type: ignore[arg-type]
    assert lease is not None
    return WholeUtteranceLive(lease, HeardSamples(), 8000, None)  # type: ignore[arg-type]


SECOND = np.zeros(8000, dtype="<i2").tobytes()  # 1 s at 8 kHz: 16,000 samples at 16 kHz


def test_a_pause_starts_the_decoding_and_the_end_of_speech_takes_it() -> None:
    """The caller pauses: a worker decodes what they said so far while the endpointer waits
    out the trailing silence; the end of speech in that pause costs no second decoding, and
    the trailing silence fed after the pause is not in the transcript."""
    runner = ManualRunner()
    live = _open(runner)
    live.accept(SECOND)
    live.paused()
    assert len(runner.queued) == 1
    runner.run_next()  # decoded before the trailing silence is over
    live.accept(SECOND[:3200])  # the rest of the trailing silence
    heard: list[str] = []
    live.final(after_pause=True).addCallback(lambda t: heard.append(t.text))
    assert heard == ["samples 16000"]
    assert runner.queued == []


def test_a_caller_who_goes_on_after_a_pause_gets_the_later_decoding() -> None:
    """Two pauses before any worker was free: the first decoding is skipped, the second is
    the transcript and holds everything said before it."""
    runner = ManualRunner()
    live = _open(runner)
    live.accept(SECOND)
    live.paused()
    live.accept(SECOND)
    live.paused()
    heard: list[str] = []
    live.final(after_pause=True).addCallback(lambda t: heard.append(t.text))
    runner.run_next()  # the first pause's job: superseded, no decoding
    assert heard == []
    runner.run_next()
    assert heard == ["samples 32000"]


def test_an_utterance_cut_at_the_maximum_is_decoded_whole() -> None:
    """The end came mid-word (max length), not in the pause: the early decoding is not the
    transcript, everything fed is."""
    runner = ManualRunner()
    live = _open(runner)
    live.accept(SECOND)
    live.paused()
    live.accept(SECOND)
    heard: list[str] = []
    live.final(after_pause=False).addCallback(lambda t: heard.append(t.text))
    runner.run_next()  # the pause's job: skipped, the final came first
    runner.run_next()
    assert heard == ["samples 32000"]


def test_early_decodings_are_counted_used_or_wasted() -> None:
    from ivr.speech.live import EARLY_DECODE_OUTCOMES

    used, wasted = (EARLY_DECODE_OUTCOMES[k]._value.get() for k in ("used", "wasted"))
    runner = ManualRunner()
    live = _open(runner)
    live.accept(SECOND)
    live.paused()
    runner.run_next()  # decoded: then the caller went on
    live.accept(SECOND)
    live.paused()
    runner.run_next()
    live.final(after_pause=True)
    live.close()
    runner.run_next()
    assert EARLY_DECODE_OUTCOMES["used"]._value.get() == used + 1
    assert EARLY_DECODE_OUTCOMES["wasted"]._value.get() == wasted + 1


def test_an_early_decoding_with_no_worker_in_time_sheds_the_caller_at_the_end() -> None:
    clock = Clock()
    runner = ManualRunner()
    live = _open(runner, clock=clock, max_wait_s=0.5)
    live.accept(SECOND)
    live.paused()
    clock.advance(0.6)  # no worker took it
    failures: list[type[BaseException]] = []
    live.final(after_pause=True).addErrback(lambda f: failures.append(f.type))
    assert failures == [RecognizerBusy]


def test_the_audiosocket_starts_the_decoding_at_the_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Through the AudioSocket protocol: the endpointer's pause (300 ms of quiet) reaches
    the recognizer, and the end of speech 400 ms later asks for the transcript as one that
    ended in that pause."""
    calls: list[str] = []

    class Recording:
        def opened(self) -> defer.Deferred[None]:
            return defer.succeed(None)

        def accept(self, pcm: bytes) -> defer.Deferred[None]:
            calls.append("accept")
            return defer.succeed(None)

        def paused(self) -> None:
            calls.append("paused")

        def final(self, *, after_pause: bool = False) -> defer.Deferred[Transcript]:
            calls.append(f"final after_pause={after_pause}")
            return defer.succeed(Transcript("my internet is down", 0.9, "fake", "fake"))

        def close(self) -> None:
            calls.append("close")

    clock = Clock()
    server = AudioSocketServer(
        HeardSamples(), IntentClassifier(INTENTS), SpeechPool.inline(2),  # type: ignore[arg-type]
        clock, EndpointingConfig(trailing_silence_ms=700, early_decode_ms=300),
    )
    monkeypatch.setattr(audiosocket, "open_live", lambda *a, **k: Recording())
    results: list[object] = []
    server.expect("11111111-2222-3333-4444-555555555555").addCallback(results.append)
    proto = server.buildProtocol(None)
    proto.makeConnection(StringTransport())
    proto.dataReceived(uuid_frame("11111111-2222-3333-4444-555555555555"))
    for frame, count in ((tone_frame(), 30), (silence_frame(), 35)):
        for _ in range(count):
            proto.dataReceived(encode_frame(KIND_AUDIO, frame))
            clock.advance(0.02)
    decisions = [c for c in calls if c != "accept"]
    assert decisions == ["paused", "final after_pause=True", "close"]
    assert len(results) == 1
