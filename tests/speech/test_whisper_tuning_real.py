"""Whisper fine-tuned for real: JAX's forward pass on the model file's own variables is
CTranslate2's, a few steps of training lower the loss, and the written model is one the
engine loads and hears with."""

from __future__ import annotations

from pathlib import Path

import ct2_file
import numpy as np
import pytest
import training_set
import tune_whisper
import voices as voice_cache

from ivr.speech.audio import MODEL_RATE, Upsampler
from ivr.speech.whisper import WhisperEngine, plain_words, start_tokens

pytestmark = pytest.mark.slow

SENTENCE = "i want to cancel my broadband contract"


@pytest.fixture(scope="module")
def source() -> Path:
    return tune_whisper.package_model()


@pytest.fixture(scope="module")
def whisper(source: Path):
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer

    model = WhisperModel(str(source), device="cpu", compute_type="float32", cpu_threads=1)
    return model, Tokenizer(model.hf_tokenizer, False, task="transcribe", language="en")


def spoken(text: str) -> np.ndarray:
    pcm = voice_cache.render("piper:joe", [text])[text]
    return np.frombuffer(Upsampler(8000, MODEL_RATE).convert(pcm), np.int16) / 32768.0


def test_the_model_file_reads_and_writes_back_byte_for_byte(source: Path, tmp_path: Path) -> None:
    model = ct2_file.read(source / "model.bin")
    assert model.spec == "WhisperSpec"
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    assert model.variables["decoder/embeddings/weight"].shape == (51864, 384)
    ct2_file.write(model, tmp_path / "same.bin", {})
    assert (tmp_path / "same.bin").read_bytes() == (source / "model.bin").read_bytes()
    with pytest.raises(ValueError, match="shape"):
        ct2_file.write(model, tmp_path / "x.bin", {"encoder/conv1/bias": np.zeros(3)})
    with pytest.raises(KeyError, match="not a variable"):
        ct2_file.write(model, tmp_path / "x.bin", {"encoder/nothing": np.zeros(3)})
    (tmp_path / "cut.bin").write_bytes((source / "model.bin").read_bytes()[:-7])
    with pytest.raises(ValueError):
        ct2_file.read(tmp_path / "cut.bin")


def test_jax_hears_what_ctranslate2_hears(source: Path, whisper) -> None:
    import ctranslate2
    import jax.numpy as jnp
    import whisper_jax as wj

    model, tokenizer = whisper
    variables = ct2_file.read(source / "model.bin").variables
    params = {k: (jnp.asarray(v.astype(np.float32)) if v.ndim else v) for k, v in variables.items()}
    mel = model.feature_extractor(spoken(SENTENCE).astype(np.float32), padding=0)
    window = np.zeros((80, 1000), np.float32)
    window[:, : mel.shape[1]] = mel
    theirs = np.array(model.model.encode(ctranslate2.StorageView.from_array(window[None]),
                                         to_cpu=True))
    ours = np.array(wj.encoder(params, jnp.asarray(window[None]), 4, wj.heads(params, "encoder")))
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()

    start = start_tokens(tokenizer, None)
    said = model.model.generate(ctranslate2.StorageView.from_array(theirs), [start],
                                max_length=30)[0].sequences_ids[0]
    tokens = list(start)
    for _ in range(30):
        logits = wj.decoder(params, jnp.asarray([tokens]), jnp.asarray(theirs), 4,
                            wj.heads(params, "decoder"))
        token = int(np.asarray(logits)[0, -1].argmax())
        if token == tokenizer.eot:
            break
        tokens.append(token)
    assert tokens[len(start):] == said
    assert tokenizer.decode(said).strip().lower().rstrip(".") == SENTENCE


def test_fine_tuning_lowers_the_loss_and_writes_a_model_the_engine_hears_with(
    source: Path, whisper, tmp_path: Path
) -> None:
    model, tokenizer = whisper
    sentences = training_set.tune_sentences(4)
    plan = tune_whisper.training_plan(sentences,
                                      list(voice_cache.DEV_VOICES), ["band+gsm", "ulaw"], 2)
    calls = tune_whisper.training_calls(plan, 2, model.feature_extractor, tokenizer,
                                        list(voice_cache.DEV_VOICES))
    assert len(calls.mels) == 10 and calls.nonspeech.sum() == 2
    # a call without words is an empty transcript
    assert list(calls.targets[-1][:2]) == [tokenizer.eot, -1]
    file = ct2_file.read(source / "model.bin")
    learnt, losses = tune_whisper.fine_tune(
        file, calls, start_tokens(tokenizer, "bill, refund, broadband"),
        no_speech=tokenizer.no_speech, no_timestamps=tokenizer.no_timestamps,
        frozen_encoder_layers=3, epochs=4, lr=1e-4, batch=16, log=lambda line: None)
    # every step's batch is the same nine calls: the model learns them
    assert losses["steps"] == 4
    assert losses["last_step_loss"] < losses["first_step_loss"]
    assert "decoder/embeddings/weight" not in learnt
    assert "encoder/layer_2/ffn/linear_0/weight" not in learnt
    assert "encoder/layer_3/ffn/linear_0/weight" in learnt

    out = tmp_path / "tuned"
    tune_whisper.write_model(source, out, file, learnt)
    written = ct2_file.read(out / "model.bin")
    moved = "decoder/layer_0/ffn/linear_0/weight"
    assert not np.array_equal(written.variables[moved], file.variables[moved])
    assert np.array_equal(written.variables["encoder/layer_0/ffn/linear_0/weight"],
                          file.variables["encoder/layer_0/ffn/linear_0/weight"])
    # the engine loads it and hears, word for word, a sentence it was tuned on
    engine = WhisperEngine.load(out)
    learnt_sentence = sentences[1]
    text, confidence = engine.transcribe(spoken(learnt_sentence).astype(np.float32), None)
    assert plain_words(text) == learnt_sentence
    assert confidence > 0.5


def test_blind_voices_never_tune_the_model(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        tune_whisper.main(["--voices", "flite:slt", "--out", str(tmp_path)])
