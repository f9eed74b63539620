"""Two engines on one call: a first engine on every utterance, Whisper decides when the first
engine's words do not make a confident request, as long as it can in time.

    speech:
      engine: moonshine+whisper           # or pocketsphinx+whisper
      second_opinion_below: 0.6           # classifier confidence under which Whisper is asked
      second_opinion_joins: true          # one classification of both engines' words
      second_opinion_max_concurrent: 1    # Whisper decodings at once; beyond: the first's words
      second_opinion_wait_ms: 300         # Whisper's words only if ready by then

Whisper has every frame of the utterance (it only keeps the audio, which is cheap); at the end
the first engine's transcript is classified by the first engine's own classifier, and when
that is no request or one under ``second_opinion_below`` (1.01: always) Whisper decodes. Its
words then replace the first's, or with ``second_opinion_joins`` join them: the transcript is
both engines' words and the classifier weighs the evidence of both (naive Bayes sums their
log-scores), which is what gains over Moonshine alone, whose words are seldom all wrong
where it is unsure (docs/speech-conditions.md, "Ninth session"). Whisper, asked, hearing no
speech makes the call no speech in both forms: it tells a cough or a TV from a request
better than the first engine's doubtful words do.

- ``pocketsphinx+whisper``: pocketsphinx is fast (its decoding is done when the caller stops)
  but hears unfamiliar voices and noisy lines badly; Whisper hears them far better but costs
  0.15-0.3 CPU seconds after the end of speech.
- ``moonshine+whisper``: both hear whole utterances, so the combination is one too
  (:class:`WholeUtteranceCombination`): its audio is kept once, on the reactor, and the
  decoding, Moonshine's and Whisper's when asked, is one job, started early when the caller
  pauses as a single engine's is (:class:`ivr.speech.live.WholeUtteranceLive`).

Whisper is only worth the caller's wait while it is fast, and how fast depends on the box:
0.17 s on an idle core, seconds on a starved one. So the first engine's words, which are
ready, stand when Whisper cannot decide in time:
- ``busy``: ``max_concurrent`` decodings already run (default: one fewer than the speech
  workers), so Whisper never takes every worker from the other callers' streaming;
- ``late``: its decoding (on a thread of its own, :class:`ThreadedOpinions`) is not done
  ``wait_s`` after it started; it finishes in the background, holding its slot, and its words
  are dropped;
- ``error``: it failed.
Load costs accuracy, never latency and never dead air; each skip is counted
(``hotline_speech_second_opinion_skipped_total{reason}``) and logged.

The choice is a pure function (:func:`who_decides`); the confidence rule alone
(:func:`second_opinion`) is measured offline on saved transcripts by
``benchmarks/speech/rescore.py --second`` and ``benchmarks/speech/combine.py``.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Literal, Protocol

from prometheus_client import Counter

from ivr.speech.engines import Engine, Recognizer, Transcript
from ivr.speech.whisper import WholeUtteranceEngine, WholeUtteranceRecognizer

log = logging.getLogger(__name__)

# A threshold above any confidence: the second engine decodes every utterance.
ALWAYS = 1.01

Decision = Literal["first", "second", "busy"]
"""Whose words are the transcript: the first engine's (confident, or nothing to ask), the
second's, or the first's because every second-engine decoding slot is taken (``busy``)."""
SkipReason = Literal["busy", "late", "error"]
SKIPPED = Counter(
    "hotline_speech_second_opinion_skipped",
    "Utterances whose second opinion (Whisper) was wanted but not used, so the first engine's "
    "words stood: its decodings all taken (busy), not done in time (late), or failed (error)",
    ["reason"],
)
SKIPPED_REASONS: dict[SkipReason, Any] = {
    reason: SKIPPED.labels(reason) for reason in ("busy", "late", "error")
}


class SecondOpinions(Protocol):
    """Where the second engine decodes: ``ask`` runs ``decode`` and returns its transcript,
    or None when it was not done within ``timeout`` seconds (None: no bound); ``done`` runs
    once the decoding has ended either way (it gives the slot back)."""

    def ask(
        self, decode: Callable[[], Transcript], timeout: float | None, done: Callable[[], None]
    ) -> Transcript | None: ...


class InlineOpinions:
    """The decoding on the calling thread, never late: offline evaluations, and no bound."""

    def ask(
        self, decode: Callable[[], Transcript], timeout: float | None, done: Callable[[], None]
    ) -> Transcript | None:
        try:
            return decode()
        finally:
            done()


class ThreadedOpinions:
    """Decodings on threads of their own, so the speech worker can give up waiting at the
    bound while the decoding runs to its end (CTranslate2 cannot be interrupted)."""

    def __init__(self, threads: int) -> None:
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="whisper")

    def ask(
        self, decode: Callable[[], Transcript], timeout: float | None, done: Callable[[], None]
    ) -> Transcript | None:
        future = self._executor.submit(decode)
        future.add_done_callback(lambda _future: done())
        try:
            return future.result(timeout)
        except FutureTimeout:
            return None


def second_opinion(first: Transcript, confidence: float | None, below: float) -> bool:
    """Whether the second engine must decode: the first heard nothing, or its words make no
    request (``confidence`` None: no word the classifier knows) or one under ``below``."""
    return not first.text or confidence is None or confidence < below


def joined(first: Transcript, second: Transcript) -> str:
    """Both engines' words as one transcript (either alone when the other heard nothing)."""
    return " ".join(text for text in (first.text, second.text) if text)


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
    """``first`` on every call, ``second`` only when :func:`who_decides` says so and only if
    its words are ready within ``wait_s``; ``judge`` is the classifier's confidence in the
    first engine's words (None: no request). ``joins``: the second engine's words join the
    first's instead of replacing them.

    Recognizers finish on the speech pool's worker threads, so the count of the second
    engine's decodings in flight is kept under a lock. ``decided`` and ``skipped`` tally the
    outcomes for the benchmarks (the Prometheus counter is process-wide). Without
    ``opinions`` the second engine decodes on the calling thread with no time bound."""

    def __init__(
        self,
        first: Engine,
        second: Engine,
        judge: Callable[[str], float | None],
        below: float,
        max_concurrent: int | None = None,
        wait_s: float | None = None,
        opinions: SecondOpinions | None = None,
        joins: bool = False,
    ) -> None:
        if max_concurrent is not None and max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1 (or None: no bound)")
        self.first = first
        self.second = second
        self.judge = judge
        self.below = below
        self.max_concurrent = max_concurrent
        self.wait_s = wait_s
        self.opinions: SecondOpinions = opinions or InlineOpinions()
        self.joins = joins
        self.name = f"{first.name}+{second.name}"
        self.model = f"{first.model}+{second.model}"
        self._lock = threading.Lock()
        self._in_flight = 0
        self.decided: Tally[str] = Tally()  # engine name -> utterances its words ended
        self.skipped: Tally[SkipReason] = Tally()

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> Recognizer:
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

    def _release(self) -> None:
        """A decoding of the second engine has ended (in time or not)."""
        with self._lock:
            self._in_flight -= 1

    def _settle(self, decided_by: str, skipped: SkipReason | None) -> None:
        with self._lock:
            self.decided[decided_by] += 1
            if skipped is not None:
                self.skipped[skipped] += 1
        if skipped is not None:
            SKIPPED_REASONS[skipped].inc()

    def decide(self, first: Transcript, second_decoding: Callable[[], Transcript]) -> Transcript:
        """The utterance's transcript, given the first engine's: its own, or (when wanted,
        free and in time) the second's, or both joined; ``second_decoding`` decodes the same
        audio with the second engine. Blocks up to ``wait_s`` for it: call it off the
        reactor."""
        confidence = self.judge(first.text) if first.text else None
        decision = self._claim(second_opinion(first, confidence, self.below))
        chosen = first
        skipped_why: SkipReason | None = None
        if decision == "second":
            try:
                second = self.opinions.ask(second_decoding, self.wait_s, self._release)
            except Exception:
                log.exception("speech: %s failed; %s's words stand (%r)",
                              self.second.name, self.first.name, first.text)
                skipped_why = "error"
            else:
                if second is None:
                    skipped_why = "late"
                    log.info("speech: %s not done within %d ms; %s's words stand (%r)",
                             self.second.name, round((self.wait_s or 0) * 1000),
                             self.first.name, first.text)
                else:
                    chosen = second
        elif decision == "busy":
            skipped_why = "busy"
            log.info("speech: %d %s decodings already running; %s's words stand (%r)",
                     self.in_flight, self.second.name, self.first.name, first.text)
        if chosen is first:
            decided_by = self.first.name
        elif self.joins and chosen.text:
            decided_by = self.name
            chosen = Transcript(joined(first, chosen), max(first.confidence, chosen.confidence),
                                self.name, self.model)
        else:
            decided_by = self.second.name
        self._settle(decided_by, skipped_why)
        return Transcript(chosen.text, chosen.confidence, self.name, self.model, decided_by)


class CombinedRecognizer:
    """One utterance fed to both recognizers; the second decodes only when asked and free."""

    def __init__(self, engine: CombinedEngine, first: Recognizer, second: Recognizer) -> None:
        self._engine = engine
        self._first = first
        self._second = second

    def accept(self, pcm: bytes) -> str | None:
        self._second.accept(pcm)
        return self._first.accept(pcm)

    def final(self) -> Transcript:
        return self._engine.decide(self._first.final(), self._second.final)

    def close(self) -> None:
        self._first.close()
        self._second.close()


class WholeUtteranceCombination(CombinedEngine):
    """A combination whose engines both hear whole utterances (``moonshine+whisper``): so
    does it, and the server drives it as it drives one of them (the audio kept on the
    reactor, the decoding a job of the caller's lease, started early at a pause)."""

    hears_whole_utterances: Literal[True] = True

    def __init__(self, first: WholeUtteranceEngine, second: WholeUtteranceEngine,
                 judge: Callable[[str], float | None], below: float,
                 max_concurrent: int | None = None, wait_s: float | None = None,
                 opinions: SecondOpinions | None = None, joins: bool = False) -> None:
        super().__init__(first, second, judge, below, max_concurrent, wait_s, opinions, joins)
        self._first_whole, self._second_whole = first, second

    def recognizer(
        self, rate: int = 8000, phrases: Sequence[str] | None = None
    ) -> CombinedWholeUtterance:
        return CombinedWholeUtterance(
            self, self._first_whole.recognizer(rate, phrases),
            self._second_whole.recognizer(rate, phrases),
        )


class CombinedWholeUtterance:
    """One utterance of a :class:`WholeUtteranceCombination`: the audio is kept once, by the
    first engine's recognizer (both take the same 16 kHz audio), and the second decodes it
    only when asked. A decoding started at a pause that turns out not to be the end is
    counted in ``decided`` like any other."""

    def __init__(self, engine: CombinedEngine, first: WholeUtteranceRecognizer,
                 second: WholeUtteranceRecognizer) -> None:
        self._engine = engine
        self._first = first
        self._second = second

    def accept(self, pcm: bytes) -> str | None:
        return self._first.accept(pcm)

    def audio(self) -> bytes:
        return self._first.audio()

    def decode(self, pcm: bytes) -> Transcript:
        return self._engine.decide(self._first.decode(pcm), lambda: self._second.decode(pcm))

    def final(self) -> Transcript:
        pcm = self._first.audio()
        return self._engine.decide(self._first.final(), lambda: self._second.decode(pcm))

    def close(self) -> None:
        self._first.close()
        self._second.close()


def combine_engines(
    first: Engine, second: Engine, judge: Callable[[str], float | None], below: float,
    max_concurrent: int | None = None, wait_s: float | None = None,
    opinions: SecondOpinions | None = None, joins: bool = False,
) -> CombinedEngine:
    """The combination of ``first`` and ``second``: one that hears whole utterances when
    both do, else one whose first engine streams."""
    if isinstance(first, WholeUtteranceEngine) and isinstance(second, WholeUtteranceEngine):
        return WholeUtteranceCombination(first, second, judge, below, max_concurrent, wait_s,
                                         opinions, joins)
    return CombinedEngine(first, second, judge, below, max_concurrent, wait_s, opinions, joins)
