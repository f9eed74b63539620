"""Whisper tiny.en with the measured decoding options (``speech.whisper_beam``,
``speech.whisper_fallback``) on real caller audio: the package's model takes a beam and
the sampled fallback, and the fallback keeps the likelier words."""

from __future__ import annotations

import numpy as np
import pytest
from synthesize import ensure_audio, load_eval_set

from ivr.speech.audio import read_wav
from ivr.speech.classifier import IntentClassifier
from ivr.speech.whisper import FALLBACK_TEMPERATURES, compression_ratio, needs_fallback

pytestmark = pytest.mark.slow

HELDOUT = [u for u in load_eval_set() if u["split"] == "heldout"]
SAMPLE = HELDOUT[:: len(HELDOUT) // 4][:4]


@pytest.fixture(scope="module")
def beam_whisper(intents):
    from ivr.speech.engines import load_engine

    speech = intents.speech.model_copy(update={
        "engine": "whisper", "whisper_beam": 3, "whisper_fallback": True,
    })
    config = intents.model_copy(update={"speech": speech})
    return load_engine(config), IntentClassifier(config)


def test_beam_search_with_fallback_hears_held_out_requests(beam_whisper) -> None:
    """Held-out requests (piper voice, 8 kHz) decoded with a beam of 3 and the fallback on
    are heard, and reach their categories."""
    engine, classifier = beam_whisper
    assert engine.beam_size == 3 and engine.fallback == FALLBACK_TEMPERATURES
    right = 0
    for utterance in SAMPLE:
        pcm, rate = read_wav(ensure_audio([utterance["text"]])[utterance["text"]])
        rec = engine.recognizer(rate=rate)
        rec.accept(pcm)
        text = rec.final().text
        assert text, utterance["text"]
        right += classifier.classify(text).category == utterance["category"]
    assert right >= 3


def test_the_fallback_keeps_a_likelier_decoding_than_greedy(beam_whisper) -> None:
    """A request under noise 5 dB louder than the voice, which greedy decoding hears unsure
    of its words (not a loop), goes through the sampled fallback: what comes out is a
    decoding that passes, or the likeliest of the tries, never less likely than greedy's."""
    engine, _classifier = beam_whisper
    text = "checking how many minutes i have used"
    assert text in {u["text"] for u in HELDOUT}
    pcm, _rate = read_wav(ensure_audio([text])[text])
    voice = np.repeat(np.frombuffer(pcm, "<i2").astype(np.float32) / 32768, 2)  # 16 kHz
    rms = float(np.sqrt(np.mean(voice**2)))
    noisy = voice + (np.random.default_rng(1).standard_normal(len(voice)) * rms * 10 ** 0.25
                     ).astype(np.float32)
    options = {"frames": 1000, "prompt": engine.prompt, "max_new_tokens": 40,
               "language": "en"}
    greedy = engine._model.decode(noisy, **options)
    assert needs_fallback(greedy) and compression_ratio(greedy.text) <= 2.4
    for _ in range(3):
        fallback = engine._model.decode(noisy, **options, fallback=FALLBACK_TEMPERATURES)
        assert fallback.avg_logprob >= greedy.avg_logprob
