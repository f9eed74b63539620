"""pocketsphinx with the domain language model, on caller audio through the telephone path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from synthesize import ROOT, ensure_audio, load_eval_set
from twisted.internet.task import Clock

from ivr.speech.audio import MODEL_RATE, read_wav, resample, write_wav
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import IntentClassifier
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import stream_call

pytestmark = pytest.mark.slow


HELDOUT = [u for u in load_eval_set() if u["split"] == "heldout"]
HELDOUT_FLOOR = 0.93
"""The held-out set (heldout-8, 257 utterances), measured blind once with the config frozen,
scored 95.3% (README, Benchmarks, with every earlier blind figure). Below the floor is a
regression; the margin is for audio synthesized on another machine."""


def test_heldout_set_streams_to_the_right_categories(intents, pocketsphinx_engine) -> None:
    """Every held-out caller sentence (piper voice, 8 kHz mu-law with line noise), streamed
    in 20 ms frames through the AudioSocket protocol, the endpointer and pocketsphinx, is
    recognized as speech with a confidence; top-1 accuracy of the categories stays above the
    floor, and every category is recognized at least once."""
    audio = ensure_audio([u["text"] for u in HELDOUT])
    right = 0
    hit: set[str] = set()
    misses = []
    for utterance in HELDOUT:
        pcm, rate = read_wav(audio[utterance["text"]])
        assert rate == 8000
        server = AudioSocketServer(
            pocketsphinx_engine, IntentClassifier(intents), SpeechPool.inline(), Clock(),
            intents.speech.endpointing,
        )
        d, _ = stream_call(server, server.clock, pcm)
        result = d.result
        assert result.outcome == "speech", utterance["text"]
        assert result.engine == "pocketsphinx"
        assert 0.0 < result.confidence <= 1.0
        if result.classification.category == utterance["category"]:
            right += 1
            hit.add(utterance["category"])
        else:
            misses.append((utterance["text"], result.text, result.classification.category))
    accuracy = right / len(HELDOUT)
    assert accuracy >= HELDOUT_FLOOR, (accuracy, misses)
    assert hit == {u["category"] for u in HELDOUT}


def test_classify_command_reads_8k_and_16k_wav(tmp_path) -> None:
    """``ivr classify`` (the module's entry point) on the same sentence recorded at 8 kHz and
    at 16 kHz prints one JSON line per file with the right category and urgency."""
    text = "my internet is not working at all"
    pcm, _ = read_wav(ensure_audio([text])[text])
    wide = tmp_path / "wide.wav"
    write_wav(wide, resample(pcm, 8000, MODEL_RATE), MODEL_RATE)
    narrow = str(ensure_audio([text])[text])
    # pocketsphinx alone, whatever the shipped default is: the shipped file, its
    # corpus files found where they are.
    config = yaml.safe_load((ROOT / "config" / "intents.yaml").read_text())
    config["speech"]["engine"] = "pocketsphinx"
    config["corpus"] = str(ROOT / "config" / config["corpus"])
    config["heard_corpus"] = {
        engine: str(ROOT / "config" / name) for engine, name in config["heard_corpus"].items()
    }
    alone = tmp_path / "intents.yaml"
    alone.write_text(yaml.safe_dump(config, allow_unicode=True))
    out = subprocess.run(
        [sys.executable, "-m", "ivr.speech.cli", "--intents", str(alone), narrow, str(wide)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["file"] for r in rows] == [narrow, str(wide)]
    assert {(r["category"], r["urgency"], r["engine"]) for r in rows} == {
        ("fault", "urgent", "pocketsphinx")
    }


def _transcribe(engine, pcm: bytes) -> str:
    rec = engine.recognizer(8000)
    try:
        for i in range(0, len(pcm), 320):
            rec.accept(pcm[i : i + 320])
        return rec.final().text
    finally:
        rec.close()


def test_a_caller_hears_the_same_from_a_fresh_or_a_reused_decoder(intents) -> None:
    """Decoders are pooled across calls. Each caller starts from the telephone cepstral mean,
    so what one caller is heard to say does not depend on who used the decoder before: the
    same audio gives the same transcript on a new decoder and right after a caller on a
    rumbling line (which, carried over, changes the words heard)."""
    import numpy as np

    from ivr.speech.engines import PocketsphinxEngine

    texts = [
        "hi um i got my bill and i do not understand some of the charges",
        "i want to know if my payment went through",
        "so where can i find my statements",
    ]
    audio = ensure_audio(texts)
    rumble = np.cumsum(np.random.default_rng(7).normal(0, 1, 8000 * 12))
    rumble -= np.convolve(rumble, np.ones(400) / 400, mode="same")
    bad_line = (rumble / np.abs(rumble).max() * 12000).astype("<i2").tobytes()
    engine = PocketsphinxEngine.load(intents)
    for text in texts:
        pcm = read_wav(audio[text])[0]
        fresh = _transcribe(engine, pcm)
        assert fresh
        _transcribe(engine, bad_line)
        assert _transcribe(engine, pcm) == fresh, text
    assert len(engine._idle) == 1  # one decoder served every caller
