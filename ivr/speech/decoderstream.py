"""Decoder processes driven by the reactor: requests written without waiting, replies read
as they come.

A worker (:mod:`ivr.speech.decoders`) answers its requests one at a time and in order, so
the reactor's side of its socket is a queue of Deferreds, one per request in flight, fired
by the replies in turn. A caller's audio thus reaches its decoder with no thread between:
the reactor writes each batch to the worker's socket and reads the acknowledgement when it
comes, while serving every other call. Each request carries a start-by time
(``recognizer_wait_ms`` from now); a worker that reaches it later answers ``busy``, and the
caller goes to the DTMF menu (counted as ``hotline_speech_shed_total{reason="workers"}``).
"""

from __future__ import annotations

import socket
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.protocol import Factory, Protocol
from twisted.python.failure import Failure

from ivr.speech.decoders import DecoderGone, answer, decode_stream, encode
from ivr.speech.engines import Transcript
from ivr.speech.pool import SHED_REASONS, RecognizerBusy

if TYPE_CHECKING:
    from ivr.speech.decoders import ProcessEngine, _Worker

FINAL_TIMEOUT_S = 10.0
"""A final transcript not answered by then means a hung worker: the caller goes to the menu
and the worker is killed (and replaced). pocketsphinx answers in milliseconds."""


class Replies(Protocol):
    """The reactor's end of one worker's socket: requests out, replies matched in order.

    It refers to its worker weakly: the reactor holds this protocol for as long as the
    socket is open, and a worker no engine uses any more must still be collected, its
    finalizer closing the socket (a reload replaced the engine)."""

    def __init__(self, worker: _Worker) -> None:
        self._worker = weakref.ref(worker)
        self.pid = worker.pid
        self._buffer = bytearray()
        self._waiting: deque[Deferred[Any]] = deque()
        self.closed = False

    def request(self, message: tuple[Any, ...]) -> Deferred[Any]:
        """Send ``message``; fires with its reply's value, or fails with what the reply
        stands for (:class:`RecognizerBusy`, RuntimeError) or :class:`DecoderGone`."""
        if self.closed:
            return defer.fail(DecoderGone(f"decoder process {self.pid} is gone"))
        answered: Deferred[Any] = Deferred()
        self._waiting.append(answered)
        self._transport.write(encode(message))
        return answered

    @property
    def _transport(self) -> Any:
        # Twisted's ITransport is a zope interface that mypy cannot check calls against.
        return self.transport

    def close(self) -> None:
        """Close the socket (the worker exits on that)."""
        self._transport.loseConnection()

    def dataReceived(self, data: bytes) -> None:
        self._buffer += data
        try:
            replies = decode_stream(self._buffer)
        except Exception as exc:  # not our worker talking: no reply can be trusted now
            self._broken(f"unreadable reply ({type(exc).__name__})")
            return
        for reply in replies:
            if not self._waiting:
                self._broken("a reply nobody asked for")
                return
            answered = self._waiting.popleft()
            if answered.called:  # given up on (a final past its timeout)
                continue
            try:
                value = answer(reply, self.pid)
            except Exception as exc:
                answered.errback(exc)
            else:
                answered.callback(value)

    def _broken(self, why: str) -> None:
        self._dead()
        self._transport.abortConnection()
        self._fail_waiting(f"decoder process {self.pid}: {why}")

    def connectionLost(self, reason: Failure | None = None) -> None:
        self._dead()
        self._fail_waiting(f"decoder process {self.pid} is gone")

    def _dead(self) -> None:
        """No more requests; the worker is replaced when the next recognizer is opened."""
        self.closed = True
        worker = self._worker()
        if worker is not None:
            worker.alive = False

    def _fail_waiting(self, why: str) -> None:
        waiting, self._waiting = self._waiting, deque()
        for answered in waiting:
            if not answered.called:
                answered.errback(DecoderGone(why))


class _Adopting(Factory):
    def __init__(self, replies: Replies) -> None:
        self.replies = replies

    def buildProtocol(self, addr: Any) -> Replies:
        return self.replies


def adopt(reactor: Any, fd: int, worker: _Worker) -> Replies:
    """Hand the worker's connected, non-blocking socket ``fd`` to ``reactor`` (it keeps a
    duplicate of its own)."""
    replies = Replies(worker)
    reactor.adoptStreamConnection(fd, socket.AF_UNIX, _Adopting(replies))
    return replies


class StreamRecognizer:
    """One utterance on a worker process, driven by the reactor (a ``LiveRecognizer``,
    :mod:`ivr.speech.live`): each call writes its request and returns a Deferred of the
    reply. The open is sent at once; audio and the final may follow before it is answered
    (the worker serves them in order)."""

    def __init__(self, engine: ProcessEngine, worker: _Worker, rid: int, rate: int,
                 phrases: list[str] | None) -> None:
        self._engine = engine
        self._worker = worker
        self._rid = rid
        self._closed = False
        self._shed = False
        self._opened = self._send("open", rate, phrases)

    def _send(self, op: str, *args: Any) -> Deferred[Any]:
        replies = self._worker.replies
        if replies is None:
            return defer.fail(DecoderGone(f"decoder process {self._worker.pid} is gone"))
        start_by = time.monotonic() + self._engine.max_wait_s
        return replies.request((op, self._rid, start_by, *args)).addErrback(self._count_shed)

    def _count_shed(self, failure: Failure) -> Failure:
        # One caller shed once, however many of its requests the worker reached too late.
        if isinstance(failure.value, RecognizerBusy) and not self._shed:
            self._shed = True
            SHED_REASONS["workers"].inc()
        return failure

    def opened(self) -> Deferred[None]:
        return self._opened

    def accept(self, pcm: bytes) -> Deferred[None]:
        return self._send("accept", pcm).addCallback(lambda _partial: None)

    def paused(self) -> None:
        """pocketsphinx decodes as the audio comes: nothing to start early."""

    def final(self, timeout_s: float = FINAL_TIMEOUT_S, *,
              after_pause: bool = False) -> Deferred[Transcript]:
        """The transcript; past ``timeout_s`` the worker counts as hung: it is killed (the
        next recognizer opened replaces it) and this fails with :class:`DecoderGone`."""
        transcript: Deferred[Transcript] = self._send("final")
        reactor = self._engine._reactor

        def hung(failure: Failure) -> Failure:
            if isinstance(failure.value, defer.TimeoutError):
                worker = self._worker
                worker.alive = False
                worker.retire()
                raise DecoderGone(f"decoder process {worker.pid} gave no transcript in "
                                  f"{timeout_s:g} s: killed")
            return failure

        return transcript.addTimeout(timeout_s, reactor).addErrback(hung)

    def close(self) -> None:
        """Free the decoder (its worker frees it when it gets there); idempotent."""
        if self._closed:
            return
        self._closed = True
        self._engine._closed(self._worker)
        replies = self._worker.replies
        if replies is not None and not replies.closed:
            replies.request(("close", self._rid, None)).addErrback(lambda _failure: None)
