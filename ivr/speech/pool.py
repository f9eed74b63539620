"""Recognizer CPU work off the reactor thread, with a hard cap on concurrent calls.

Decoding is CPU-bound C code (vosk, Whisper and Moonshine release the GIL), so it runs on a
thread pool of one thread per core; pocketsphinx, which holds the GIL, decodes in processes of
its own that the reactor drives (:mod:`ivr.speech.live`), and there the lease is the slot and
carries only a combination's decision; an engine that hears the utterance whole (Moonshine,
Whisper) keeps the audio on the reactor and has one job here, the decoding. A call takes a
*lease* for its whole utterance; when every lease is taken, :meth:`SpeechPool.try_acquire`
returns ``None`` at once and the call flow offers the DTMF menu
instead of letting the caller wait behind other callers' audio.

Work of one lease runs in submission order, one job at a time: a recognizer is not
thread-safe, and audio must reach it in order.

A slot is not a worker: with more leases out than the workers keep up with (a saturated
box, a slow model), a job can wait in the workers' queue while its caller hears nothing. So
a lease's job must *start* within ``max_wait_s`` (``speech.recognizer_wait_ms``): one that
does not is dropped, the lease is *starved* (its later recognizer jobs fail at once with
:class:`RecognizerBusy`, and the call flow sends the caller to the DTMF menu), and until
every starved lease is given back no new lease is granted. Both ways of shedding a caller
are counted (``hotline_speech_shed_total{reason}``): load is shed, never turned into dead
air.
"""

from __future__ import annotations

import os
import threading
from collections import Counter as Tally
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar, cast

from prometheus_client import Counter
from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from ivr.timers import Clock, DelayedCall

T = TypeVar("T")
Runner = Callable[[Callable[[], Any]], Deferred[Any]]
# How an engine's callers are recognized, which sets how many one core takes at once:
# "threads": every batch of audio a job on the pool's threads (vosk, pocketsphinx with
# ``decoder_processes: 0``); "processes": pocketsphinx in decoder processes driven by the
# reactor (ivr.speech.live), the default; "whole": an engine that hears the utterance whole
# (Moonshine, Whisper), the audio kept on the reactor and only the decoding on a thread.
StreamKind = Literal["threads", "processes", "whole"]
STREAMS_PER_CORE: dict[StreamKind, int] = {
    # Ten a core on pool threads, before the reactor drove the processes, was worse than
    # four (p99s of 1.4-1.5 s at 60 load callers: twenty threads fought the reactor for the
    # GIL).
    "threads": 4,
    # 60 load callers, a third speaking, on the 2-core box (benchmarks.load.run, README
    # "Load", 2026-12-06, load average 1.1-2.9): with 8 streams 12 of 48 speakers found every
    # slot taken and went to the menu (accuracy 79 %, decision p99 175 ms); with 24, 6 and 1
    # of 48 were shed and accuracy was 85 and 92 % (decision p99 862 and 655 ms).
    "processes": 12,
    # Moonshine int8 on a quiet 2-core box (benchmarks/speech/bench_engines.py, 2026-12-07,
    # load average 0.7-1.2): end of speech -> decision p95 250 ms at 16 streams, 241 at 20,
    # 315 at 24, every call answered; 0.73-1.09 of one core's CPU.
    "whole": 12,
}


def default_streams(cores: int, kinds: Iterable[StreamKind]) -> int:
    """How many callers are recognized at once when ``speech.max_streams`` is not set: the
    most any of the menu languages' engines takes (they share the pool)."""
    per_core = max((STREAMS_PER_CORE[kind] for kind in kinds), default=STREAMS_PER_CORE["threads"])
    return cores * per_core


MAX_WAIT_S = 0.5
"""How long a recognizer job may wait for a worker before its caller goes to the menu."""

ShedReason = Literal["slots", "workers"]
SHED = Counter(
    "hotline_speech_shed",
    "Callers sent to the DTMF menu because no recognizer was free: every slot taken (slots), "
    "or no worker took their audio in time (workers)",
    ["reason"],
)
SHED_REASONS: dict[ShedReason, Any] = {
    reason: SHED.labels(reason) for reason in ("slots", "workers")
}


class RecognizerBusy(Exception):
    """No worker started the lease's job within the pool's wait bound (or an earlier job of
    the lease already waited too long): the caller goes to the DTMF menu."""


class _Queued:
    """A job handed to the workers. It either starts on a worker or is dropped because it
    waited too long, whichever comes first: the worker thread and the reactor's timer race
    for it, hence the lock."""

    DROPPED = object()  # what a dropped job returns when a worker finally reaches it

    def __init__(self, work: Callable[[], Any]) -> None:
        self._work = work
        self._lock = threading.Lock()
        self._state = "queued"  # queued -> running | dropped

    def drop(self) -> bool:
        """Drop the job if no worker started it yet; whether it was dropped."""
        with self._lock:
            if self._state != "queued":
                return False
            self._state = "dropped"
            return True

    def __call__(self) -> Any:
        with self._lock:
            if self._state != "queued":
                return self.DROPPED
            self._state = "running"
        return self._work()


class Lease:
    """One call's share of the pool: a serial queue of jobs, released exactly once."""

    def __init__(self, pool: SpeechPool) -> None:
        self._pool = pool
        self._tail: Deferred[Any] = defer.succeed(None)
        self.released = False
        self.starved = False  # a job of this lease waited past the bound: it is shed

    def submit(self, job: Callable[[], T], *, bounded: bool = True) -> Deferred[T]:
        """Run ``job`` on a worker after this lease's earlier jobs; fires with its result.

        ``bounded`` (recognition work): the job must start within the pool's wait bound, else
        it fails with :class:`RecognizerBusy` without running, and so does every later
        bounded job of the lease. Clean-up (closing the recognizer) is not bounded: it runs
        whenever a worker gets to it."""
        result: Deferred[T] = Deferred()

        def run(_: object) -> Deferred[Any] | None:
            if bounded and self.starved:
                result.errback(RecognizerBusy("an earlier job waited too long for a worker"))
                return None
            queued = _Queued(job)
            timer = self._pool._bound(queued, result, self) if bounded else None

            def done(outcome: object) -> object:
                if timer is not None and timer.active():
                    timer.cancel()
                if outcome is not _Queued.DROPPED:
                    _fire(outcome)
                return outcome

            d = self._pool._run(queued)
            d.addBoth(done)
            return d.addErrback(lambda _f: None)

        def _fire(outcome: object) -> object:
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(cast(T, outcome))
            return outcome

        self._tail = self._tail.addCallback(run)
        return result

    def drained(self) -> Deferred[None]:
        """Fires when every job submitted so far has run."""
        d: Deferred[None] = Deferred()
        self._tail.addCallback(lambda _: d.callback(None))
        return d

    def release(self) -> None:
        """Give the slot back (idempotent)."""
        if not self.released:
            self.released = True
            self._pool._in_use -= 1
            if self.starved:
                self._pool._starved -= 1

    def _starve(self) -> None:
        if not self.starved:
            self.starved = True
            self._pool._starved += 1
            self._pool._shed("workers")


class SpeechPool:
    """At most ``max_streams`` calls recognized at once, on the workers of ``runner``; with
    a ``clock``, a job that no worker starts within ``max_wait_s`` is shed (module doc)."""

    def __init__(self, max_streams: int, runner: Runner, clock: Clock | None = None,
                 max_wait_s: float = MAX_WAIT_S) -> None:
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        if max_wait_s <= 0:
            raise ValueError("max_wait_s must be positive")
        self.max_streams = max_streams
        self._run = runner
        self.clock = clock
        self.max_wait_s = max_wait_s
        self._in_use = 0
        self._starved = 0  # leases out whose job waited past the bound
        self.shed: Tally[ShedReason] = Tally()  # callers sent to the menu, by reason

    def _bound(self, queued: _Queued, result: Deferred[Any], lease: Lease) -> DelayedCall | None:
        """Arm the wait bound of a job just handed to the workers (None without a clock)."""
        if self.clock is None:
            return None

        def too_late() -> None:
            if queued.drop():
                lease._starve()
                result.errback(RecognizerBusy(
                    f"no recognizer worker within {self.max_wait_s:g} s"))

        return self.clock.callLater(self.max_wait_s, too_late)

    def _shed(self, reason: ShedReason) -> None:
        self.shed[reason] += 1
        SHED_REASONS[reason].inc()

    @classmethod
    def threaded(
        cls, reactor: Any, threads: int | None = None, max_streams: int | None = None,
        max_wait_s: float = MAX_WAIT_S,
    ) -> SpeechPool:
        """Workers = ``threads`` (default: cores), stopped with the reactor; a job waits at
        most ``max_wait_s`` for one."""
        threads = threads or os.cpu_count() or 1
        threadpool = ThreadPool(minthreads=threads, maxthreads=threads, name="speech")
        threadpool.start()
        reactor.addSystemEventTrigger("during", "shutdown", threadpool.stop)

        def runner(job: Callable[[], Any]) -> Deferred[Any]:
            return deferToThreadPool(reactor, threadpool, job)

        return cls(max_streams or default_streams(threads, ["threads"]), runner, reactor,
                   max_wait_s)

    @classmethod
    def inline(cls, max_streams: int = 1) -> SpeechPool:
        """Jobs run at once on the calling thread: for unit tests and the ``classify`` CLI."""
        return cls(max_streams, lambda job: defer.maybeDeferred(job))

    @property
    def in_use(self) -> int:
        return self._in_use

    def try_acquire(self) -> Lease | None:
        """A lease, or ``None`` immediately when every slot is taken or the workers are
        behind (a lease out was starved): the caller goes to the DTMF menu, counted."""
        if self._in_use >= self.max_streams:
            self._shed("slots")
            return None
        if self._starved:
            self._shed("workers")
            return None
        self._in_use += 1
        return Lease(self)
