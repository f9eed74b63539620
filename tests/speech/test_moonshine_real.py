"""Moonshine base-en (the moonshine-cpp wheel's model) on caller audio through the telephone
path: the model loads from the package, its folded ONNX decodes what the wheel's files
decode, its int8 build (the engine as loaded) hears what the float one hears, and the
held-out requests reach their categories: as the shipped engine it holds the line that
pocketsphinx held before it."""

from __future__ import annotations

import numpy as np
import pytest
from synthesize import ensure_audio, load_eval_set
from twisted.internet.task import Clock

from ivr.speech.audio import read_wav
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import IntentClassifier
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import stream_call

pytestmark = pytest.mark.slow

# The held-out set (heldout-8, 257 utterances): 248 right (96.5%) through the production
# path, the decoding started at the caller's pause (2026-12-07, evaluate.py --split heldout).
SAMPLE = [u for u in load_eval_set() if u["split"] == "heldout"]
FLOOR = 0.93


@pytest.fixture(scope="module")
def moonshine(intents):
    from ivr.speech.engines import load_engine

    speech = intents.speech.model_copy(update={"engine": "moonshine"})
    with_moonshine = intents.model_copy(update={"speech": speech})
    return load_engine(with_moonshine), with_moonshine


def test_held_out_requests_stream_to_their_categories(moonshine) -> None:
    """Held-out sentences (piper voice, 8 kHz mu-law) streamed in 20 ms frames through the
    AudioSocket protocol, the endpointer (its pause starting the decoding) and Moonshine are
    speech, decided by Moonshine, and at least 93% reach the right category."""
    engine, intents = moonshine
    audio = ensure_audio([u["text"] for u in SAMPLE])
    right, misses = 0, []
    for utterance in SAMPLE:
        pcm, rate = read_wav(audio[utterance["text"]])
        assert rate == 8000
        server = AudioSocketServer(
            engine, IntentClassifier(intents), SpeechPool.inline(), Clock(),
            intents.speech.endpointing,
        )
        d, _ = stream_call(server, server.clock, pcm)
        result = d.result
        assert result.outcome == "speech", utterance["text"]
        assert result.engine == "moonshine"
        assert 0.0 < result.confidence <= 1.0
        if result.classification.category == utterance["category"]:
            right += 1
        else:
            misses.append((utterance["text"], result.text, result.classification.category))
    assert right / len(SAMPLE) >= FLOOR, misses


def _clip(text: str) -> np.ndarray:
    """The sentence's telephone audio as the model hears it: 16 kHz float samples."""
    from ivr.speech.audio import MODEL_RATE, resample

    pcm, rate = read_wav(ensure_audio([text])[text])
    return (np.frombuffer(resample(pcm, rate, MODEL_RATE), dtype="<i2") / 32768.0).astype(
        np.float32
    )


def test_the_folded_model_decodes_as_the_wheel_s_files(moonshine) -> None:
    """The ONNX built at load with the int8 weights folded into floats gives the same tokens
    as the wheel's own ``.ort`` files run as they are."""
    import onnxruntime  # type: ignore[import-untyped]

    from ivr.speech.moonshine import OnnxMoonshine, model_files, read_tokens

    _, intents = moonshine
    audio = _clip("my internet is not working at all")
    directory = model_files(intents.speech.moonshine_model)
    as_shipped = OnnxMoonshine(
        *(onnxruntime.InferenceSession(str(directory / name), providers=["CPUExecutionProvider"])
          for name in ("encoder_model.ort", "decoder_model_merged.ort")),
        read_tokens((directory / "tokenizer.bin").read_bytes()),
    )
    folded = OnnxMoonshine.load(directory, int8=False).decode(audio, max_new_tokens=40)
    shipped = as_shipped.decode(audio, max_new_tokens=40)
    # The same tokens; the probabilities differ in the last float digits (folded weights).
    assert shipped.text == folded.text
    assert shipped.avg_logprob == pytest.approx(folded.avg_logprob, abs=1e-5)
    assert "internet" in folded.text.lower()


def test_the_int8_model_hears_what_the_float_model_hears(moonshine) -> None:
    """The engine's int8 build (MatMuls on the int8 weights, activations quantized per call)
    gives the float model's words on held-out requests, with nearly its confidence, in the
    greedy decoding that shows the weights alone; decoding as shipped (a beam of three with
    the domain fused in, where near ties between hypotheses may fall either way) the two make
    the same request."""
    import copy

    from ivr.speech.moonshine import OnnxMoonshine, model_files

    engine, intents = moonshine
    classifier = IntentClassifier(intents)
    shipped_int8 = engine.decoder
    assert shipped_int8.beam == 3 and shipped_int8.bias is not None  # the shipped decoding
    greedy_int8 = copy.copy(shipped_int8)
    greedy_int8.bias, greedy_int8.beam = None, 1
    greedy_floats = OnnxMoonshine.load(model_files(intents.speech.moonshine_model), int8=False)
    shipped_floats = copy.copy(greedy_floats)
    shipped_floats.bias, shipped_floats.beam = shipped_int8.bias, shipped_int8.beam
    for utterance in SAMPLE[:6]:
        audio = _clip(utterance["text"])
        int8 = greedy_int8.decode(audio, max_new_tokens=60)
        folded = greedy_floats.decode(audio, max_new_tokens=60)
        assert int8.text == folded.text, utterance["text"]
        assert int8.avg_logprob == pytest.approx(folded.avg_logprob, abs=0.03)
        heard = [m.decode(audio, max_new_tokens=60).text for m in (shipped_int8, shipped_floats)]
        assert len({classifier.classify(text).category for text in heard}) == 1, heard
