"""Two engines on one call: pocketsphinx streams while the caller speaks, Whisper decides
when pocketsphinx's words do not make a confident request, as long as it can in time.

    speech:
      engine: pocketsphinx+whisper
      second_opinion_below: 1.01          # classifier confidence under which Whisper is asked
      second_opinion_max_concurrent: 1    # Whisper decodings at once; beyond: pocketsphinx

pocketsphinx is fast (its decoding is done when the caller stops) but hears unfamiliar voices
and noisy lines badly; Whisper hears them far better but costs 0.15-0.3 CPU seconds after the
end of speech. Both recognizers get every frame (Whisper only keeps the audio, which is
cheap); at the end pocketsphinx's transcript is classified, and when that is no request or a
doubtful one (at 1.01, the shipped value: always) Whisper decodes, and then its words are the
transcript (Whisper hearing no speech included: it tells a cough or a TV from a request far
better).

Whisper's decodings share the speech workers with every caller's streaming: with all of them
decoding Whisper, the other callers' audio waits, their decisions come late, and past the
pool's wait bound they are sent to the menu. So at most ``max_concurrent`` decodings run at
once (default: one fewer than the workers); a caller who ends their sentence while they are
all taken gets pocketsphinx's words, which are ready. Load costs accuracy, never latency and
never dead air; each skip is counted (``hotline_speech_second_opinion_skipped_total{reason}``)
and logged. So is a Whisper decoding that fails (reason ``error``): pocketsphinx's words stand.

The choice is a pure function (:func:`who_decides`); the confidence rule alone
(:func:`second_opinion`) is measured offline on saved transcripts by
``benchmarks/speech/rescore.py --second``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from typing import Any, Literal

from prometheus_client import Counter

from ivr.speech.engines import Engine, Recognizer, Transcript

log = logging.getLogger(__name__)

# A threshold above any confidence: the second engine decodes every utterance.
ALWAYS = 1.01

Decision = Literal["first", "second", "busy"]
"""Whose words are the transcript: the first engine's (confident, or nothing to ask), the
second's, or the first's because every second-engine decoding slot is taken (``busy``)."""
SkipReason = Literal["busy", "error"]
SKIPPED = Counter(
    "hotline_speech_second_opinion_skipped",
    "Utterances whose second opinion (Whisper) was wanted but not used, so the first engine's "
    "words stood: its decodings all taken (busy), or its decoding failed (error)",
    ["reason"],
)
SKIPPED_REASONS: dict[SkipReason, Any] = {
    reason: SKIPPED.labels(reason) for reason in ("busy", "error")
}


def second_opinion(first: Transcript, confidence: float | None, below: float) -> bool:
    """Whether the second engine must decode: the first heard nothing, or its words make no
    request (``confidence`` None: no word the classifier knows) or one under ``below``."""
    return not first.text or confidence is None or confidence < below


def who_decides(wanted: bool, in_flight: int, max_concurrent: int | None) -> Decision:
    """Whose words end the utterance: the second engine's when its opinion is ``wanted`` and
    fewer than ``max_concurrent`` of its decodings are ``in_flight`` (None: no bound), else
    the first engine's (``busy`` when only the bound stood in the way)."""
    if not wanted:
        return "first"
    if max_concurrent is not None and in_flight >= max_concurrent:
        return "busy"
    return "second"


class CombinedEngine:
    """``first`` (streaming) on every call, ``second`` only when :func:`who_decides` says
    so; ``judge`` is the classifier's confidence in a transcript (None: no request).

    Recognizers finish on the speech pool's worker threads, so the count of the second
    engine's decodings in flight is kept under a lock. ``decided`` and ``skipped`` tally the
    outcomes for the benchmarks (the Prometheus counter is process-wide)."""

    def __init__(
        self,
        first: Engine,
        second: Engine,
        judge: Callable[[str], float | None],
        below: float,
        max_concurrent: int | None = None,
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1 (or None: no bound)")
        self.first = first
        self.second = second
        self.judge = judge
        self.below = below
        self.max_concurrent = max_concurrent
        self.name = f"{first.name}+{second.name}"
        self.model = f"{first.model}+{second.model}"
        self._lock = threading.Lock()
        self._in_flight = 0
        self.decided: Tally[str] = Tally()  # engine name -> utterances its words ended
        self.skipped: Tally[SkipReason] = Tally()

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> CombinedRecognizer:
        """Both engines' recognizers for one utterance."""
        return CombinedRecognizer(
            self, self.first.recognizer(rate, phrases), self.second.recognizer(rate, phrases)
        )

    @property
    def in_flight(self) -> int:
        """The second engine's decodings running now."""
        return self._in_flight

    def _claim(self, wanted: bool) -> Decision:
        """Decide, and take a decoding slot when the second engine is to decode."""
        with self._lock:
            decision = who_decides(wanted, self._in_flight, self.max_concurrent)
            if decision == "second":
                self._in_flight += 1
        return decision

    def _settle(self, decided_by: str, skipped: SkipReason | None, claimed: bool) -> None:
        with self._lock:
            if claimed:
                self._in_flight -= 1
            self.decided[decided_by] += 1
            if skipped is not None:
                self.skipped[skipped] += 1
        if skipped is not None:
            SKIPPED_REASONS[skipped].inc()


class CombinedRecognizer:
    """One utterance fed to both recognizers; the second decodes only when asked and free."""

    def __init__(self, engine: CombinedEngine, first: Recognizer, second: Recognizer) -> None:
        self._engine = engine
        self._first = first
        self._second = second
        # Which engine's words made the last transcript (the call's log, the benchmarks).
        self.decided_by = ""

    def accept(self, pcm: bytes) -> str | None:
        self._second.accept(pcm)
        return self._first.accept(pcm)

    def final(self) -> Transcript:
        engine = self._engine
        first = self._first.final()
        confidence = engine.judge(first.text) if first.text else None
        decision = engine._claim(second_opinion(first, confidence, engine.below))
        chosen = first
        skipped_why: SkipReason | None = None
        if decision == "second":
            try:
                chosen = self._second.final()
            except Exception:
                log.exception("speech: %s failed; %s's words stand (%r)",
                              engine.second.name, engine.first.name, first.text)
                skipped_why = "error"
        elif decision == "busy":
            skipped_why = "busy"
            log.info("speech: %d %s decodings already running; %s's words stand (%r)",
                     engine.in_flight, engine.second.name, engine.first.name, first.text)
        self.decided_by = engine.second.name if chosen is not first else engine.first.name
        engine._settle(self.decided_by, skipped_why, claimed=decision == "second")
        return Transcript(
            chosen.text, chosen.confidence, engine.name, engine.model, self.decided_by
        )

    def close(self) -> None:
        self._first.close()
        self._second.close()
