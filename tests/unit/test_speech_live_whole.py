"""A whole-utterance engine (Moonshine, Whisper) on the live path: the audio stays on the
reactor, the decoding at the end of speech is the caller's one job on the speech workers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from twisted.internet.task import Clock

from ivr.speech.gateway import stream_kind
from ivr.speech.live import PooledRecognizer, WholeUtteranceLive, open_live
from ivr.speech.pool import RecognizerBusy, SpeechPool
from ivr.speech.whisper import WholeUtterance, WholeUtteranceEngine
from tests.unit.test_speech_pool import ManualRunner


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


