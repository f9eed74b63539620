"""Two engines on one call: pocketsphinx streams while the caller speaks, Whisper decides
when pocketsphinx's words do not make a confident request.

    speech:
      engine: pocketsphinx+whisper
      second_opinion_below: 0.95   # classifier confidence under which Whisper is asked

pocketsphinx is fast (its decoding is done when the caller stops) but hears unfamiliar voices
and noisy lines badly; Whisper hears them far better but costs 0.15-0.3 CPU seconds after the
end of speech. Both recognizers get every frame (Whisper only keeps the audio, which is
cheap); at the end pocketsphinx's transcript is classified, and only when that is no request
or a doubtful one does Whisper decode, and then its words are the transcript (Whisper
hearing no speech included: it tells a cough or a TV from a request far better). The choice is a
pure function (:func:`second_opinion`), measured offline on saved transcripts by
``benchmarks/speech/rescore.py --second``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ivr.speech.engines import Engine, Recognizer, Transcript

# A threshold above any confidence: the second engine decodes every utterance.
ALWAYS = 1.01


def second_opinion(first: Transcript, confidence: float | None, below: float) -> bool:
    """Whether the second engine must decode: the first heard nothing, or its words make no
    request (``confidence`` None: no word the classifier knows) or one under ``below``."""
    return not first.text or confidence is None or confidence < below


class CombinedEngine:
    """``first`` (streaming) on every call, ``second`` only when :func:`second_opinion` says
    so; ``judge`` is the classifier's confidence in a transcript (None: no request)."""

    def __init__(
        self,
        first: Engine,
        second: Engine,
        judge: Callable[[str], float | None],
        below: float,
    ) -> None:
        self.first = first
        self.second = second
        self.judge = judge
        self.below = below
        self.name = f"{first.name}+{second.name}"
        self.model = f"{first.model}+{second.model}"

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> CombinedRecognizer:
        """Both engines' recognizers for one utterance."""
        return CombinedRecognizer(
            self, self.first.recognizer(rate, phrases), self.second.recognizer(rate, phrases)
        )


class CombinedRecognizer:
    """One utterance fed to both recognizers; the second decodes only when asked."""

    def __init__(self, engine: CombinedEngine, first: Recognizer, second: Recognizer) -> None:
        self._engine = engine
        self._first = first
        self._second = second
        # Which engine's words made the last transcript (for the benchmarks' figures).
        self.decided_by = ""

    def accept(self, pcm: bytes) -> str | None:
        self._second.accept(pcm)
        return self._first.accept(pcm)

    def final(self) -> Transcript:
        engine = self._engine
        first = self._first.final()
        confidence = engine.judge(first.text) if first.text else None
        if second_opinion(first, confidence, engine.below):
            chosen, self.decided_by = self._second.final(), engine.second.name
        else:
            chosen, self.decided_by = first, engine.first.name
        return Transcript(chosen.text, chosen.confidence, engine.name, engine.model)

    def close(self) -> None:
        self._first.close()
        self._second.close()
