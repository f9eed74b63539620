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
- an engine that hears the utterance whole (Moonshine, Whisper alone): its recognizer keeps
  the audio here, and only the decoding at the end of speech is a job of the caller's lease
  on the speech pool's threads (:class:`WholeUtteranceLive`);
- any other engine (vosk, pocketsphinx in this process): each call is a job of the caller's
  lease on the speech pool's threads (:class:`PooledRecognizer`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from twisted.internet import defer
from twisted.internet.defer import Deferred

from ivr.speech.combination import CombinedEngine
from ivr.speech.decoders import in_processes
from ivr.speech.engines import Engine, Recognizer, Transcript
from ivr.speech.pool import Lease
from ivr.speech.whisper import WholeUtteranceEngine


class LiveRecognizer(Protocol):
    """One utterance, every call answered by a Deferred. Audio must be fed one batch at a
    time (the next once the last is accepted), and ``final`` after the last batch."""

    def opened(self) -> Deferred[None]:
        """Fires once the decoder is ready; fails if it could not be made (:class:`
        ~ivr.speech.pool.RecognizerBusy`: no decoder in time, the caller goes to the menu)."""

    def accept(self, pcm: bytes) -> Deferred[None]:
        """Feed 16-bit mono PCM; fires once the decoder took it."""

    def final(self) -> Deferred[Transcript]:
        """End the utterance: what was said."""

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

    def final(self) -> Deferred[Transcript]:
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
    filter and a list append per batch, as a combination keeps Whisper's), the decoding is the
    lease's one job. So a caller's frames never wait behind other callers' decodings for a
    worker, and a worker is busy only while it decodes."""

    def __init__(self, lease: Lease, engine: WholeUtteranceEngine, rate: int,
                 phrases: Sequence[str] | None) -> None:
        self._lease = lease
        self._recognizer = engine.recognizer(rate, phrases)
        self._closed = False

    def opened(self) -> Deferred[None]:
        return defer.succeed(None)

    def accept(self, pcm: bytes) -> Deferred[None]:
        if not self._closed:
            self._recognizer.accept(pcm)
        return defer.succeed(None)

    def final(self) -> Deferred[Transcript]:
        return self._lease.submit(self._recognizer.final)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        # After a decoding still running on the lease, not under it.
        self._lease.submit(self._recognizer.close, bounded=False)


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

    def final(self) -> Deferred[Transcript]:
        def decide(first: Transcript) -> Deferred[Transcript]:
            return self._lease.submit(lambda: self._engine.decide(first, self._second))

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
