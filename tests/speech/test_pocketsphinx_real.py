"""pocketsphinx with the domain language model, on caller audio through the telephone path."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from synthesize import ROOT, ensure_audio, load_eval_set
from twisted.internet.task import Clock

from ivr.speech.audio import MODEL_RATE, read_wav, resample, write_wav
from ivr.speech.audiosocket import AudioSocketServer
from ivr.speech.classifier import IntentClassifier
from ivr.speech.pool import SpeechPool
from ivr.speech.testing import stream_call

pytestmark = pytest.mark.slow


def first_heldout_per_category() -> list[dict]:
    """The first held-out utterance of each category, in file order (not hand-picked)."""
    seen: dict[str, dict] = {}
    for u in load_eval_set():
        if u["split"] == "heldout":
            seen.setdefault(u["category"], u)
    return list(seen.values())


HELDOUT = first_heldout_per_category()


@pytest.mark.parametrize("utterance", HELDOUT, ids=[u["category"] for u in HELDOUT])
def test_heldout_sentence_streams_to_the_right_category(
    utterance, intents, pocketsphinx_engine
) -> None:
    """A held-out caller sentence (piper voice, 8 kHz mu-law), streamed in 20 ms frames
    through the AudioSocket protocol, the endpointer and pocketsphinx, gets its category."""
    pcm, rate = read_wav(ensure_audio([utterance["text"]])[utterance["text"]])
    assert rate == 8000
    server = AudioSocketServer(
        pocketsphinx_engine,
        IntentClassifier(intents),
        SpeechPool.inline(),
        Clock(),
        intents.speech.endpointing,
    )
    d, _ = stream_call(server, server.clock, pcm)
    result = d.result
    assert result.outcome == "speech"
    assert result.engine == "pocketsphinx"
    assert result.classification.category == utterance["category"], result.text
    assert 0.0 < result.confidence <= 1.0


def test_classify_command_reads_8k_and_16k_wav(tmp_path) -> None:
    """``ivr classify`` (the module's entry point) on the same sentence recorded at 8 kHz and
    at 16 kHz prints one JSON line per file with the right category and urgency."""
    text = "my internet is not working at all"
    pcm, _ = read_wav(ensure_audio([text])[text])
    wide = tmp_path / "wide.wav"
    write_wav(wide, resample(pcm, 8000, MODEL_RATE), MODEL_RATE)
    narrow = str(ensure_audio([text])[text])
    out = subprocess.run(
        [sys.executable, "-m", "ivr.speech.cli", narrow, str(wide)],
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
