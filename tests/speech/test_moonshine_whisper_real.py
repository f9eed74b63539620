"""Moonshine base and Whisper tiny.en as one engine (``speech.engine: moonshine+whisper``) on
caller audio through the production path: both models load from their packages, the
combination is driven as a whole-utterance engine, Moonshine's confident words stand alone
and a doubtful utterance carries both engines' words."""

from __future__ import annotations

import pytest
from synthesize import ensure_audio, load_eval_set
from twisted.internet.task import Clock

from ivr.speech.audio import read_wav
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import IntentClassifier
from ivr.speech.combination import WholeUtteranceCombination
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import stream_call

pytestmark = pytest.mark.slow

HELDOUT = [u for u in load_eval_set() if u["split"] == "heldout"]
SAMPLE = HELDOUT[:: len(HELDOUT) // 16][:16]
BILL = "yeah hi i just want to know what my bill is this month"  # a held-out inquiry


@pytest.fixture(scope="module")
def combination(intents):
    from ivr.speech.engines import load_engine

    speech = intents.speech.model_copy(update={
        "engine": "moonshine+whisper", "second_opinion_below": 0.6,
        "second_opinion_joins": True, "second_opinion_wait_ms": 0,
    })
    config = intents.model_copy(update={"speech": speech})
    return load_engine(config), config


def hear(engine, intents, text: str):
    pcm, rate = read_wav(ensure_audio([text])[text])
    assert rate == 8000
    server = AudioSocketServer(engine, IntentClassifier(intents), SpeechPool.inline(), Clock(),
                               intents.speech.endpointing)
    d, _ = stream_call(server, server.clock, pcm)
    return d.result


def test_held_out_requests_reach_their_categories(combination) -> None:
    """Held-out sentences (piper voice, 8 kHz mu-law) are speech of the combination, and at
    least 14 of 16 reach the right category (the familiar voice: 250/257 through
    ``evaluate.py``); Moonshine is sure of most of them, so Whisper decodes few."""
    engine, intents = combination
    assert isinstance(engine, WholeUtteranceCombination)
    right = 0
    for utterance in SAMPLE:
        result = hear(engine, intents, utterance["text"])
        assert result.outcome == "speech", utterance["text"]
        assert result.engine == "moonshine+whisper"
        right += result.classification.category == utterance["category"]
    assert right >= 14
    assert engine.decided["moonshine"] >= len(SAMPLE) // 2


def test_a_doubtful_utterance_carries_both_engines_words(combination) -> None:
    """Asked on every utterance (threshold above 1), the transcript is Moonshine's words
    followed by Whisper's, each engine's decoding of the same audio."""
    engine, intents = combination
    below, engine.below = engine.below, 1.01
    try:
        result = hear(engine, intents, BILL)
    finally:
        engine.below = below
    assert result.decided_by == "moonshine+whisper"
    assert result.text.count("bill") == 2, result.text
    assert result.classification.category == "inquiry"
