"""Recognizer CPU work off the reactor thread, with a hard cap on concurrent calls.

Decoding is CPU-bound C code (it releases the GIL), so it runs on a thread pool of one thread
per core. A call takes a *lease* for its whole utterance; when every lease is taken,
:meth:`SpeechPool.try_acquire` returns ``None`` at once and the call flow offers the DTMF menu
instead of letting the caller wait behind other callers' audio.

Work of one lease runs in submission order, one job at a time: a recognizer is not
thread-safe, and audio must reach it in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

T = TypeVar("T")
Runner = Callable[[Callable[[], Any]], Deferred]
# Streams one core keeps in real time with margin (pocketsphinx domain LM: about 0.05 x real
# time per stream measured, so 4 per core leaves room for bursts and the rest of the service).
STREAMS_PER_CORE = 4


class Lease:
    """One call's share of the pool: a serial queue of jobs, released exactly once."""

    def __init__(self, pool: SpeechPool) -> None:
        self._pool = pool
        self._tail: Deferred = defer.succeed(None)
        self.released = False

    def submit(self, job: Callable[[], T]) -> Deferred[T]:
        """Run ``job`` on a worker after this lease's earlier jobs; fires with its result."""
        result: Deferred[T] = Deferred()

        def run(_: object) -> Deferred:
            d = self._pool._run(job)
            d.addBoth(_fire)
            return d.addErrback(lambda _f: None)

        def _fire(outcome: object) -> object:
            if isinstance(outcome, Failure):
                result.errback(outcome)
            else:
                result.callback(outcome)
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


class SpeechPool:
    """At most ``max_streams`` calls recognized at once, on the workers of ``runner``."""

    def __init__(self, max_streams: int, runner: Runner) -> None:
        if max_streams < 1:
            raise ValueError("max_streams must be at least 1")
        self.max_streams = max_streams
        self._run = runner
        self._in_use = 0

    @classmethod
    def threaded(
        cls, reactor: Any, threads: int | None = None, max_streams: int | None = None
    ) -> SpeechPool:
        """Workers = ``threads`` (default: cores), stopped with the reactor."""
        threads = threads or os.cpu_count() or 1
        threadpool = ThreadPool(minthreads=threads, maxthreads=threads, name="speech")
        threadpool.start()
        reactor.addSystemEventTrigger("during", "shutdown", threadpool.stop)

        def runner(job: Callable[[], Any]) -> Deferred:
            return deferToThreadPool(reactor, threadpool, job)

        return cls(max_streams or threads * STREAMS_PER_CORE, runner)

    @classmethod
    def inline(cls, max_streams: int = 1) -> SpeechPool:
        """Jobs run at once on the calling thread: for unit tests and the ``classify`` CLI."""
        return cls(max_streams, lambda job: defer.maybeDeferred(job))

    @property
    def in_use(self) -> int:
        return self._in_use

    def try_acquire(self) -> Lease | None:
        """A lease, or ``None`` immediately when every slot is taken."""
        if self._in_use >= self.max_streams:
            return None
        self._in_use += 1
        return Lease(self)
