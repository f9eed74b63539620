"""Engine plumbing that needs no speech model: the domain LM, audio conversion, load errors,
and the ``ivr classify`` command over the fake engine."""

from __future__ import annotations

import io
import json
import math
import re
import tempfile

import numpy as np
import pytest

from ivr.speech import cli
from ivr.speech.audio import (
    MODEL_RATE,
    TELEPHONE_RATE,
    Upsampler,
    read_wav,
    resample,
    telephone_path,
    write_wav,
)
from ivr.speech.engines import EngineLoadError, VoskEngine, grammar_phrases, load_engine
from ivr.speech.lm import build_arpa
from ivr.speech.schema import load_intents
from ivr.speech.testing import FakeEngine


def parse_arpa(text: str) -> dict[int, dict[tuple[str, ...], float]]:
    grams: dict[int, dict[tuple[str, ...], float]] = {}
    order = 0
    for line in text.splitlines():
        if m := re.match(r"\\(\d)-grams:", line):
            order = int(m.group(1))
            grams[order] = {}
        elif order and line and not line.startswith("\\"):
            parts = line.split()
            grams[order][tuple(parts[1 : 1 + order])] = float(parts[0])
    return grams


def test_arpa_header_counts_match_and_unigrams_are_a_distribution() -> None:
    """The ARPA text declares as many n-grams as it lists, and the unigram probabilities
    (with the smoothing floor for unseen words) sum to about one."""
    text = build_arpa([["my", "internet", "is", "down"], ["my", "bill"]], order=3)
    grams = parse_arpa(text)
    for n in (1, 2, 3):
        declared = int(re.search(rf"ngram {n}=(\d+)", text).group(1))
        assert declared == len(grams[n])
    total = sum(10**p for g, p in grams[1].items() if g != ("<s>",))
    assert total == pytest.approx(1.0, abs=0.01)
    assert ("my", "internet", "is") in grams[3]


def test_extra_words_are_known_but_unlikely() -> None:
    """Vocabulary words with no sentence get only the smoothing floor: decodable, but below
    every word the domain sentences contain."""
    grams = parse_arpa(build_arpa([["my", "bill"], ["my", "plan"]], extra_words=["yesterday"]))[1]
    assert ("yesterday",) in grams
    counted = [p for (w,), p in grams.items() if w in ("my", "bill", "plan", "</s>")]
    assert grams[("yesterday",)] < min(counted)


def test_arpa_loads_in_pocketsphinx() -> None:
    """pocketsphinx's own reader accepts the model built from the shipped intents, and it
    prefers the domain's word order ("my internet") to the reverse."""
    from pocketsphinx import Config, LogMath, NGramModel

    from ivr.speech.engines import lm_sentences

    arpa = build_arpa(lm_sentences(load_intents()))

    with tempfile.NamedTemporaryFile("w", suffix=".arpa") as f:
        f.write(arpa)
        f.flush()
        model = NGramModel(Config(), LogMath(), f.name)
    # pocketsphinx takes the word first, then its history
    assert model.prob(["internet", "my"]) > model.prob(["my", "internet"])


def sine(rate: int, hz: float, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (8000 * np.sin(2 * math.pi * hz * t)).astype("<i2").tobytes()


def test_resample_keeps_duration_and_removes_what_8k_cannot_carry() -> None:
    """Down to 8 kHz the length scales with the rate, a 1 kHz tone survives and a 5 kHz tone
    (above the 4 kHz Nyquist limit) is filtered out instead of aliasing."""
    low = resample(sine(22050, 1000, 1.0), 22050, TELEPHONE_RATE)
    high = resample(sine(22050, 5000, 1.0), 22050, TELEPHONE_RATE)
    assert len(low) == 2 * TELEPHONE_RATE
    rms = lambda pcm: float(np.sqrt(np.mean(np.frombuffer(pcm, "<i2").astype(float) ** 2)))  # noqa: E731
    assert rms(low) > 5000
    assert rms(high) < 100


def test_telephone_path_is_8k_mu_law_and_close_to_the_input() -> None:
    """G.711 mu-law keeps the waveform within a few percent."""
    pcm = sine(16000, 440, 0.5)
    tel = telephone_path(pcm, 16000)
    ref = np.frombuffer(resample(pcm, 16000, 8000), "<i2").astype(float)
    out = np.frombuffer(tel, "<i2").astype(float)
    assert len(out) == 4000
    assert np.max(np.abs(out - ref)) < 0.05 * 8000


def test_streaming_upsampler_matches_one_shot_conversion() -> None:
    """20 ms chunks converted one by one join exactly like the whole signal converted once."""
    pcm = sine(8000, 300, 0.2)
    whole = Upsampler(TELEPHONE_RATE).convert(pcm)
    up = Upsampler(TELEPHONE_RATE)
    chunked = b"".join(up.convert(pcm[i : i + 320]) for i in range(0, len(pcm), 320))
    assert chunked == whole
    assert len(whole) == 2 * len(pcm)


def test_wav_round_trip(tmp_path) -> None:
    """What write_wav writes, read_wav reads back with its rate."""
    path = tmp_path / "x.wav"
    write_wav(path, b"\x01\x00" * 80, 8000)
    assert read_wav(path) == (b"\x01\x00" * 80, 8000)


def test_missing_vosk_model_is_a_clear_error_at_load(tmp_path) -> None:
    """A vosk model directory that does not exist, or is not a model, fails at load with the
    path in the message (at start and in check-config, not at the first call)."""
    with pytest.raises(EngineLoadError, match="does not exist"):
        VoskEngine.load(tmp_path / "nope")
    with pytest.raises(EngineLoadError, match="is not a vosk model"):
        VoskEngine.load(tmp_path)
    intents = load_intents()
    settings = intents.speech.model_copy(update={"engine": "vosk", "vosk_model": tmp_path})
    with pytest.raises(EngineLoadError, match=str(tmp_path)):
        load_engine(intents, settings)


def test_broken_vosk_model_is_a_clear_error_at_load(tmp_path) -> None:
    """A directory that looks like a model but whose files are garbage: vosk's failure is
    reported as EngineLoadError naming the directory."""
    (tmp_path / "am").mkdir()
    (tmp_path / "am" / "final.mdl").write_bytes(b"garbage")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "model.conf").write_text("--sample-frequency=16000\n")
    with pytest.raises(EngineLoadError, match="could not load"):
        VoskEngine.load(tmp_path)


def test_grammar_phrases_are_the_intent_words() -> None:
    """Grammar mode restricts vosk to the words of the intents config."""
    words = grammar_phrases(load_intents())
    assert {"internet", "bill", "operator", "roaming"} <= set(words)
    assert words == sorted(set(words))


def wav_file(tmp_path, name: str, rate: int) -> str:
    path = tmp_path / name
    write_wav(path, sine(rate, 300, 0.3), rate)
    return str(path)


def test_classify_command_prints_one_json_object_per_file(tmp_path, monkeypatch) -> None:
    """``ivr classify`` takes 8 kHz and 16 kHz WAV files and prints, per file, a JSON line with
    file, text, category, urgency, confidence and engine; an unreadable file gets an error
    line and exit status 1."""
    engine = FakeEngine(["my internet is down", "how much is my bill"])
    monkeypatch.setattr(cli, "load_engine", lambda intents: engine)
    out = io.StringIO()
    files = [wav_file(tmp_path, "a.wav", TELEPHONE_RATE), wav_file(tmp_path, "b.wav", MODEL_RATE)]
    assert cli.classify_main(files, out=out) == 0
    rows = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["file"], r["category"], r["urgency"]) for r in rows] == [
        (files[0], "fault", "urgent"),
        (files[1], "inquiry", "normal"),
    ]
    assert {"file", "text", "category", "urgency", "confidence", "engine"} <= set(rows[0])
    assert all(r.closed for r in engine.recognizers)
    out = io.StringIO()
    assert cli.classify_main([str(tmp_path / "missing.wav")], out=out) == 1
    assert "error" in json.loads(out.getvalue())


def test_an_unknown_pocketsphinx_decoder_option_is_a_clear_error_at_load() -> None:
    """A typo in speech.decoder_options stops the service at start and names the option."""
    intents = load_intents()
    speech = intents.speech.model_copy(
        update={"engine": "pocketsphinx", "decoder_options": {"filprob": 0.01}})
    with pytest.raises(EngineLoadError, match=r"decoder_options.*filprob"):
        load_engine(intents.model_copy(update={"speech": speech}))


class _Segment:
    def __init__(self, word: str, prob: float) -> None:
        self.word, self.prob = word, prob


class _FakeDecoder:
    """pocketsphinx 5's decoder as its binding answers: posteriors already probabilities."""

    def __init__(self, text: str, segments: list[_Segment]) -> None:
        self.text, self.segments = text, segments

    def reinit_feat(self) -> None: ...
    def set_cmn(self, cmn: str) -> None: ...
    def start_utt(self) -> None: ...
    def process_raw(self, data: bytes, no_search: bool, full_utt: bool) -> int:
        return len(data)

    def hyp(self) -> object:
        return type("Hyp", (), {"hypstr": self.text})()

    def end_utt(self) -> None: ...
    def seg(self) -> list[_Segment]:
        return self.segments


class _FakePocketsphinx:
    name, model, cmn_init = "pocketsphinx", "test", "40,3,-1"

    def _release(self, decoder: object) -> None: ...


def test_pocketsphinx_confidence_is_the_mean_posterior_of_its_words() -> None:
    """The words' posteriors (silence and sentence marks left out), as the binding gives
    them; they used to go through logmath.exp again, which made every transcript 1.00."""
    from ivr.speech.engines import PocketsphinxRecognizer

    segments = [_Segment("<s>", 1.0), _Segment("my", 0.2), _Segment("<sil>", 1.0),
                _Segment("bill", 0.8), _Segment("[NOISE]", 1.0), _Segment("</s>", 1.0)]
    recognizer = PocketsphinxRecognizer(
        _FakePocketsphinx(), _FakeDecoder("my bill", segments), 8000  # type: ignore[arg-type]
    )
    recognizer.accept(b"\0" * 320)
    transcript = recognizer.final()
    assert transcript.text == "my bill"
    assert transcript.confidence == pytest.approx(0.5)


def test_cached_model_files_are_written_whole_by_concurrent_builders(tmp_path) -> None:
    """Two builders of the same cached language model at once (test workers, the service and
    `ivr check-config`): each writes a file of its own and renames it into place, so neither
    finds its temporary file renamed away by the other, and no partial file is left."""
    from concurrent.futures import ThreadPoolExecutor

    from ivr.speech.engines import _write_atomic

    target = tmp_path / "domain.arpa"
    texts = [f"model {i}\n" * 5000 for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda text: _write_atomic(target, text), texts * 4))
    assert target.read_text() in texts
    assert [p.name for p in tmp_path.iterdir()] == ["domain.arpa"]
