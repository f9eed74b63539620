"""One caller's recognizer as the AudioSocket server drives it, from the reactor's thread.

The engine interface (:mod:`ivr.speech.engines`) is blocking: ``accept`` and ``final`` do CPU
work. The reactor must never do it, so the server sees a *live* recognizer instead, whose
calls all return a Deferred at once, and :func:`open_live` picks how the work gets done:

- decoder processes attached to the reactor (pocketsphinx in ``ivr serve``,
  :mod:`ivr.speech.decoderstream`): the reactor writes the audio to the caller's decoder
  process and reads the answer; no thread in between;
- the same with Whisper as a second opinion (``pocketsphinx+whisper``): pocketsphinx as
  above, Whisper keeps the audio here (cheap) and the decision runs on the caller's lease,
  since it may wait for Whisper's decoding (:class:`LiveCombination`);
- an engine that hears the utterance whole (Moonshine, Whisper alone, Moonshine with Whisper as
  a second opinion): its recognizer keeps
  the audio here, and only the decoding at the end of speech is a job of the caller's lease
  on the speech pool's threads (:class:`WholeUtteranceLive`);
- any other engine (vosk, pocketsphinx in this process): each call is a job of the caller's
  lease on the speech pool's threads (:class:`PooledRecognizer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from prometheus_client import Counter
from twisted.internet import defer
from twisted.internet.defer import Deferred

from ivr.speech.combination import CombinedEngine
from ivr.speech.decoders import in_processes
from ivr.speech.engines import Engine, Recognizer, Transcript
from ivr.speech.pool import Lease
from ivr.speech.whisper import WholeUtteranceEngine

EARLY_DECODES = Counter(
    "hotline_speech_early_decodes",
    "Decodings a whole-utterance engine (Moonshine, Whisper) started when the caller paused: "
    "used (the utterance ended in that pause) or wasted (the caller went on speaking)",
    ["outcome"],
)
EARLY_DECODE_OUTCOMES: dict[str, Any] = {
    outcome: EARLY_DECODES.labels(outcome) for outcome in ("used", "wasted")
}


class LiveRecognizer(Protocol):
    """One utterance, every call answered by a Deferred. Audio must be fed one batch at a
    time (the next once the last is accepted), and ``final`` after the last batch."""

    def opened(self) -> Deferred[None]:
        """Fires once the decoder is ready; fails if it could not be made (:class:`
        ~ivr.speech.pool.RecognizerBusy`: no decoder in time, the caller goes to the menu)."""

    def accept(self, pcm: bytes) -> Deferred[None]:
        """Feed 16-bit mono PCM; fires once the decoder took it."""

    def paused(self) -> None:
        """The caller has gone quiet: the audio accepted so far may be the whole utterance,
        and an engine that decodes whole utterances may start on it now."""

    def final(self, *, after_pause: bool = False) -> Deferred[Transcript]:
        """End the utterance: what was said. ``after_pause``: it ended in the quiet stretch
        of the last :meth:`paused` (nothing was said since), so a decoding started then
        holds the answer."""

    def close(self) -> None:
        """Free the decoder, now or once the work before it is done; idempotent."""


class PooledRecognizer:
    """An engine's blocking recognizer, each call a job of the caller's lease (in order, on
    the speech pool's threads, bounded by its wait)."""

    def __init__(self, lease: Lease, engine: Engine, rate: int,
                 phrases: Sequence[str] | None) -> None:
        self._lease = lease
        self._recognizer: Recognizer | None = None
        self._closed = False

        def create() -> None:
            self._recognizer = engine.recognizer(rate=rate, phrases=phrases)

        self._opened: Deferred[None] = lease.submit(create)

    def opened(self) -> Deferred[None]:
        return self._opened

    def accept(self, pcm: bytes) -> Deferred[None]:
        def feed() -> None:
            if self._recognizer is not None:
                self._recognizer.accept(pcm)

        return self._lease.submit(feed)

    def paused(self) -> None:
        """A streaming engine has decoded as the audio came: nothing to start early."""

    def final(self, *, after_pause: bool = False) -> Deferred[Transcript]:
        def final() -> Transcript:
            if self._recognizer is None:
                raise RuntimeError("final() of a recognizer that was never made")
            return self._recognizer.final()

        return self._lease.submit(final)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True

        def close() -> None:
            if self._recognizer is not None:
                self._recognizer.close()
                self._recognizer = None

        self._lease.submit(close, bounded=False)


class WholeUtteranceLive:
    """A whole-utterance engine's recognizer: the audio is kept on the reactor (an upsampling
    filter and a list append per batch, as a combination keeps Whisper's), the decoding is a
    job of the lease. So a caller's frames never wait behind other callers' decodings for a
    worker, and a worker is busy only while it decodes.

    The decoding starts when the caller pauses (:meth:`paused`, ``early_decode_ms`` into a
    quiet stretch), not at the end of speech: while the endpointer waits out the rest of the
    trailing silence a worker is already at it, so the caller waits for what is left of the
    decoding, not all of it. If the caller goes on speaking, that decoding is wasted: a later
    pause starts another one (an earlier one not yet started is skipped) or the end of the
    utterance decodes it whole. Both are counted (``hotline_speech_early_decodes_total``)."""

    def __init__(self, lease: Lease, engine: WholeUtteranceEngine, rate: int,
                 phrases: Sequence[str] | None) -> None:
        self._lease = lease
        self._recognizer = engine.recognizer(rate, phrases)
        self._closed = False
        self._pauses = 0  # pauses so far: a decoding started for an earlier one is not needed
        self._early: Deferred[Transcript | None] | None = None  # the last pause's decoding
        self._started = self._used = 0  # early decodings run, and taken as the transcript

    def opened(self) -> Deferred[None]:
        return defer.succeed(None)

    def accept(self, pcm: bytes) -> Deferred[None]:
        if not self._closed:
            self._recognizer.accept(pcm)
        return defer.succeed(None)

    def paused(self) -> None:
        if self._closed:
            return
        self._drop_early()
        self._pauses += 1
        pause, audio = self._pauses, self._recognizer.audio()

        def decode() -> Transcript | None:
            if pause != self._pauses:  # the caller went on (and paused again, or ended)
                return None
            self._started += 1
            return self._recognizer.decode(audio)

        self._early = self._lease.submit(decode)

    def final(self, *, after_pause: bool = False) -> Deferred[Transcript]:
        if after_pause and self._early is not None:
            early, self._early = self._early, None
            self._used += 1
            return early.addCallback(_started_for_this_pause)
        self._drop_early()
        self._pauses += 1  # an early decoding not yet started is skipped
        return self._lease.submit(self._recognizer.final)

    def _drop_early(self) -> None:
        """The last pause's decoding is not the answer: its failure (shed, like every later
        job of the lease) reaches the caller through the final, not through it."""
        if self._early is not None:
            self._early.addErrback(lambda _failure: None)
            self._early = None

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._drop_early()

        def close() -> None:
            self._recognizer.close()
            EARLY_DECODE_OUTCOMES["used"].inc(self._used)
            EARLY_DECODE_OUTCOMES["wasted"].inc(max(0, self._started - self._used))

        # After a decoding still running on the lease, not under it.
        self._lease.submit(close, bounded=False)


def _started_for_this_pause(transcript: Transcript | None) -> Transcript:
    # The last pause's decoding skips itself only when a later pause or the final superseded
    # it, and then it is not the one returned.
    assert transcript is not None, "the last pause's decoding was skipped"
    return transcript


class LiveCombination:
    """A combination whose first engine is live (decoder processes): every batch goes to
    both, the first engine's transcript is judged, and Whisper asked, on the lease."""

    def __init__(self, engine: CombinedEngine, first: LiveRecognizer, lease: Lease, rate: int,
                 phrases: Sequence[str] | None) -> None:
        self._engine = engine
        self._first = first
        self._lease = lease
        # Whisper's recognizer only keeps the audio until its decoding: cheap on the reactor.
        self._second = engine.second.recognizer(rate, phrases)
        self._closed = False

    def opened(self) -> Deferred[None]:
        return self._first.opened()

    def accept(self, pcm: bytes) -> Deferred[None]:
        self._second.accept(pcm)
        return self._first.accept(pcm)

    def paused(self) -> None:
        """Whisper is asked only once pocketsphinx's words are judged: nothing to start."""

    def final(self, *, after_pause: bool = False) -> Deferred[Transcript]:
        def decide(first: Transcript) -> Deferred[Transcript]:
            return self._lease.submit(lambda: self._engine.decide(first, self._second.final))

        return self._first.final().addCallback(decide)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._first.close()
        # After a decision still running on the lease, not under it.
        self._lease.submit(self._second.close, bounded=False)


def open_live(engine: Engine, lease: Lease, rate: int,
              phrases: Sequence[str] | None) -> LiveRecognizer:
    """A live recognizer on ``engine`` for one utterance of the caller holding ``lease``;
    raises :class:`~ivr.speech.decoders.DecoderGone` when no decoder process runs."""
    processes = in_processes(engine)
    if processes is not None and processes.attached:
        first = processes.stream(rate, phrases)
        if isinstance(engine, CombinedEngine):
            return LiveCombination(engine, first, lease, rate, phrases)
        return first
    if isinstance(engine, WholeUtteranceEngine):
        return WholeUtteranceLive(lease, engine, rate, phrases)
    return PooledRecognizer(lease, engine, rate, phrases)
