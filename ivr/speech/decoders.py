"""Decoders in processes of their own, for an engine that holds the GIL while it decodes.

pocketsphinx's Python binding calls ``ps_process_raw`` without releasing the GIL (its
``_pocketsphinx.pyx`` has no ``nogil``). On the speech pool's threads every batch of a
caller's audio then holds the interpreter, and the reactor thread, which serves every call,
waits for it at each turn. Measured on the 2-core box (load average 4): two decoding threads
made a 1 ms sleep of the main thread overshoot by 9.9 ms at the median and 39 ms at p99; two
decoding *processes*, 0.09 and 2.4 ms. At 60 load callers the reactor stood still for up to
2 s at a time (``hotline.stalls`` logged it), the p99 of the first prompt and of the speech
decision.

So such an engine is served from worker processes (``python -m ivr.speech.decoders``):
each loads the engine itself and hosts the recognizers opened on it; the speech pool's
threads call them over a pipe and wait for the answer without the GIL. The engine interface
is the same (:class:`ProcessEngine` is an ``Engine``). vosk (cffi) and Whisper (CTranslate2)
release the GIL and stay in the service's process.

Two ways to talk to the workers, over the same socket and the same worker loop:
- blocking, from any thread (:meth:`ProcessEngine.recognizer`: the CLIs, the benchmarks,
  the tests): one request at a time per process, under a lock;
- from the reactor (:meth:`ProcessEngine.attach`, then :meth:`ProcessEngine.stream`, what
  ``ivr serve`` does): requests are written without waiting and the replies read as they
  come (:mod:`ivr.speech.decoderstream`). No thread moves a caller's audio: at 60 callers
  a pool thread per stream, each waking for every batch, fought the reactor for the GIL
  (ten streams a core were worse than four, README "Load").

Wire: each message is a 4-byte big-endian length and a pickle (a private socket pair between
the service and the child it started); requests are ``(op, id, start_by, *args)`` and each
gets one reply, in order. ``start_by`` (a ``time.monotonic()`` deadline, the same clock in
both processes, or None) bounds how long a request may wait behind other callers' audio: one
the worker reaches later is answered ``busy`` without being done, and its caller goes to the
DTMF menu rather than wait in silence. A worker that dies fails the calls of its recognizers
with :class:`DecoderGone` (those callers get the DTMF menu, as for any recognizer error) and
is replaced in the background; new recognizers go to the live ones meanwhile. A worker exits
when its socket closes, so it does not outlive the service, even one killed with ``kill -9``.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING, Any, cast

from ivr.speech.engines import EngineLoadError, Transcript
from ivr.speech.pool import MAX_WAIT_S, SHED_REASONS, RecognizerBusy

if TYPE_CHECKING:
    from ivr.speech.decoderstream import Replies, StreamRecognizer

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
START_TIMEOUT_S = 60.0
"""How long a worker may take to load its engine (a language model build takes 1-2 s)."""


class DecoderGone(Exception):
    """The worker process of a recognizer died or its socket broke."""


def encode(message: object) -> bytes:
    """One message on the wire: its length, then its pickle."""
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


def decode_stream(buffer: bytearray) -> list[Any]:
    """The whole messages at the front of ``buffer``, taken out of it (a partial one stays)."""
    messages = []
    start = 0
    while len(buffer) - start >= _LENGTH.size:
        (size,) = _LENGTH.unpack_from(buffer, start)
        end = start + _LENGTH.size + size
        if len(buffer) < end:
            break
        messages.append(pickle.loads(buffer[start + _LENGTH.size : end]))
        start = end
    del buffer[:start]
    return messages


def _write(pipe: IO[bytes], message: object) -> None:
    pipe.write(encode(message))
    pipe.flush()


def _read(pipe: IO[bytes]) -> Any:
    """The next message, or None when the other end closed the pipe."""
    head = pipe.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    data = pipe.read(size)
    if len(data) < size:
        return None
    return pickle.loads(data)


def _resolve(loader: str) -> Any:
    """``"package.module:Name.attr"`` -> that object."""
    module, _, path = loader.partition(":")
    target: Any = importlib.import_module(module)
    for name in path.split("."):
        target = getattr(target, name)
    return target


class _Link:
    """What closes a worker's socket: the blocking file, or once attached the reactor's
    transport. Held apart from the worker, so that its finalizer can close it (from
    whichever thread the garbage collector runs on)."""

    def __init__(self, sock: socket.socket, file: IO[bytes]) -> None:
        self.sock: socket.socket | None = sock
        self.file: IO[bytes] | None = file
        self.replies: Replies | None = None
        self.reactor: Any = None

    def close(self) -> None:
        if self.replies is not None:
            self.reactor.callFromThread(self.replies.close)
        for closable in (self.file, self.sock):
            if closable is not None:
                with contextlib.suppress(OSError):
                    closable.close()
        self.file = self.sock = None


def answer(reply: tuple[str, Any], pid: int) -> Any:
    """The value of worker ``pid``'s reply, or the exception it stands for."""
    status, value = reply
    if status == "ok":
        return value
    if status == "load-error":
        raise EngineLoadError(value)
    if status == "busy":
        raise RecognizerBusy(f"decoder process {pid}: {value}")
    raise RuntimeError(f"decoder process {pid}: {value}")


class _Worker:
    """One decoding process: its socket, its lock, the recognizers open on it."""

    def __init__(self, loader: str, args: tuple[Any, ...]) -> None:
        # A heap trace of the service (PYTHONTRACEMALLOC, hotline.heapdiff) is not wanted in
        # the decoders: it would only slow them.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}
        ours, theirs = socket.socketpair()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "ivr.speech.decoders"],
                stdin=theirs.fileno(), stdout=theirs.fileno(), close_fds=True, env=env,
            )
        finally:
            theirs.close()
        self._link = _Link(ours, cast(IO[bytes], ours.makefile("rwb")))
        self._lock = threading.Lock()
        self.open = 0  # recognizers open on this worker (the least busy gets the next one)
        self.alive = True
        self.name = self.model = ""
        # A worker no engine and no recognizer refers to any more (a reload replaced its
        # engine, its last caller hung up) is stopped; so is every worker at exit.
        weakref.finalize(self, _stop, self._process, self._link)
        try:
            _write(self._file, ("load", loader, args))
        except OSError:
            self.alive = False

    @property
    def _file(self) -> IO[bytes]:
        if self._link.file is None:
            raise DecoderGone(f"decoder process {self.pid} is attached to the reactor")
        return self._link.file

    def ready(self) -> None:
        """Wait until the worker has loaded its engine; EngineLoadError if it could not."""
        self.name, self.model = self.call(None, timeout_s=START_TIMEOUT_S)

    @property
    def pid(self) -> int:
        pid: int = self._process.pid
        return pid

    @property
    def replies(self) -> Replies | None:
        """The reactor's side of the socket, once attached."""
        return self._link.replies

    def attach(self, reactor: Any) -> None:
        """From now on ``reactor`` reads and writes this worker's socket (on its thread);
        the blocking calls are over."""
        from ivr.speech.decoderstream import adopt

        link = self._link
        assert link.sock is not None and link.file is not None
        link.sock.setblocking(False)
        link.reactor = reactor
        link.replies = adopt(reactor, link.sock.fileno(), self)
        # The reactor holds its own duplicate of the socket.
        link.file.close()
        link.sock.close()
        link.file = link.sock = None

    def call(self, request: tuple[Any, ...] | None, timeout_s: float | None = None,
             wait_s: float | None = None) -> Any:
        """Send ``request`` (None: only wait for the load's answer) and wait for its answer
        (without the GIL); raises :class:`DecoderGone` if the process is gone,
        :class:`EngineLoadError` for a load that failed, RuntimeError for a recognizer error
        it reported. ``wait_s``: the process (it serves one request at a time) must be free
        within it, else :class:`RecognizerBusy`: the caller goes to the DTMF menu rather
        than wait in silence. ``timeout_s``: the answer must come within it, else the
        process is killed (a load that hangs)."""
        if not self._lock.acquire(timeout=-1 if wait_s is None else wait_s):
            SHED_REASONS["workers"].inc()
            raise RecognizerBusy(f"decoder process {self.pid} still busy after {wait_s:g} s")
        try:
            reply = self._exchange(request, timeout_s)
        finally:
            self._lock.release()
        return self.answer(reply)

    def answer(self, reply: tuple[str, Any]) -> Any:
        """The value of a reply, or the exception it stands for."""
        if reply[0] == "load-error":
            self.alive = False
        return answer(reply, self.pid)

    def _exchange(self, request: tuple[Any, ...] | None, timeout_s: float | None) -> Any:
        """One request and its reply, under the lock."""
        if not self.alive:
            raise DecoderGone(f"decoder process {self.pid} is gone")
        timer = threading.Timer(timeout_s, self._process.kill) if timeout_s else None
        try:
            if timer is not None:
                timer.start()
            if request is not None:
                _write(self._file, request)
            reply = _read(self._file)
        except (OSError, ValueError):
            reply = None
        finally:
            if timer is not None:
                timer.cancel()
        if reply is None:
            self.alive = False
            raise DecoderGone(f"decoder process {self.pid} is gone "
                              f"(exit status {self._process.poll()})")
        return reply

    def retire(self) -> None:
        """A worker found dead (or whose socket broke): make sure, and collect its exit
        status, so that no zombie and no stray decoder is left behind."""
        with contextlib.suppress(OSError):
            self._process.kill()
        self.stop()

    def stop(self) -> None:
        self.alive = False
        _stop(self._process, self._link)


def _stop(process: subprocess.Popen[bytes], link: _Link) -> None:
    """Close the worker's socket (it exits on that) and reap it; kill it if it lingers."""
    attached = link.replies is not None
    link.close()
    if attached:
        # The reactor closes the socket on its next turn: the exit is awaited off its thread.
        threading.Thread(target=_reap, args=(process,), name="decoder-reap", daemon=True).start()
    else:
        _reap(process)


def _reap(process: subprocess.Popen[bytes]) -> None:
    try:
        process.wait(timeout=2)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class ProcessEngine:
    """An engine served by ``processes`` worker processes, each loading it with
    ``loader(*args)`` (``loader``: ``"module:attribute"``, resolved in the worker)."""

    def __init__(self, loader: str, args: tuple[Any, ...], processes: int,
                 max_wait_s: float = MAX_WAIT_S) -> None:
        if processes < 1:
            raise ValueError("processes must be at least 1")
        self._loader, self._args = loader, args
        self.max_wait_s = max_wait_s  # speech.recognizer_wait_ms: a busy process sheds
        self._choice = threading.Lock()
        self._ids = itertools.count(1)
        self._reactor: Any = None
        self.workers: list[_Worker] = []
        try:
            # Started together, so they load their engines side by side.
            self.workers = [_Worker(loader, args) for _ in range(processes)]
            for worker in self.workers:
                worker.ready()
        except BaseException:
            for worker in self.workers:
                worker.stop()
            raise
        self.name, self.model = self.workers[0].name, self.workers[0].model

    @property
    def attached(self) -> bool:
        """Whether the reactor drives the workers (:meth:`stream`) instead of threads."""
        return self._reactor is not None

    def attach(self, reactor: Any) -> None:
        """Hand every worker's socket to ``reactor`` (on its thread): recognizers are opened
        with :meth:`stream` from now on, and replacements are attached as they start."""
        with self._choice:
            if self._reactor is not None:
                return
            self._reactor = reactor
            for worker in self.workers:
                worker.attach(reactor)

    def _pick(self) -> _Worker:
        """The live worker with the fewest open recognizers, one more counted on it; dead
        ones are replaced on the way."""
        with self._choice:
            for dead in [w for w in self.workers if not w.alive]:
                self._replace(dead)
            if not self.workers:
                raise DecoderGone("no decoder process is running")
            worker = min(self.workers, key=lambda w: w.open)
            worker.open += 1
            return worker

    def recognizer(self, rate: int = 8000, phrases: Sequence[str] | None = None
                   ) -> RemoteRecognizer:
        """A recognizer on the live worker with the fewest open ones (in a pool job: it
        waits for that worker's answer). Workers found dead, here or by an earlier call, are
        replaced and the next live one tried: this caller has not spoken into it yet."""
        while True:
            worker = self._pick()
            rid = next(self._ids)
            try:
                worker.call(("open", rid, None, rate, _listed(phrases)),
                            wait_s=self.max_wait_s)
            except DecoderGone:
                self._closed(worker)
                continue
            except Exception:
                self._closed(worker)
                raise
            return RemoteRecognizer(self, worker, rid)

    def stream(self, rate: int = 8000, phrases: Sequence[str] | None = None
               ) -> StreamRecognizer:
        """A recognizer driven by the reactor (after :meth:`attach`; on its thread): every
        call returns a Deferred at once. Its open is sent now, its audio behind it."""
        from ivr.speech.decoderstream import StreamRecognizer

        assert self._reactor is not None, "stream() before attach()"
        worker = self._pick()
        return StreamRecognizer(self, worker, next(self._ids), rate, _listed(phrases))

    def stop(self) -> None:
        """Stop every worker (the service is stopping)."""
        for worker in self.workers:
            worker.stop()

    def _closed(self, worker: _Worker) -> None:
        with self._choice:
            worker.open -= 1

    def _replace(self, dead: _Worker) -> None:
        """Take ``dead`` out and start its replacement off the pool's threads and the
        reactor (loading takes a second or two); under ``_choice``."""
        self.workers.remove(dead)
        dead.retire()
        log.error("speech decoder process %d died; starting another", dead.pid)

        def replace() -> None:
            try:
                fresh = _Worker(self._loader, self._args)
                fresh.ready()
            except Exception as exc:  # logged: the live workers go on serving
                log.error("speech decoder process not replaced: %s", exc)
                return
            if self._reactor is not None:
                self._reactor.callFromThread(self._adopt, fresh)
            else:
                with self._choice:
                    self.workers.append(fresh)

        threading.Thread(target=replace, name="decoder-restart", daemon=True).start()

    def _adopt(self, fresh: _Worker) -> None:
        """A replacement joins an attached engine (on the reactor's thread)."""
        with self._choice:
            fresh.attach(self._reactor)
            self.workers.append(fresh)


def _listed(phrases: Sequence[str] | None) -> list[str] | None:
    return list(phrases) if phrases is not None else None


def in_processes(engine: object) -> ProcessEngine | None:
    """The decoder processes ``engine`` (or a combination's first engine) decodes in."""
    for part in (engine, getattr(engine, "first", None)):
        if isinstance(part, ProcessEngine):
            return part
    return None


class RemoteRecognizer:
    """One utterance on a worker process, by blocking calls; the same calls as a local
    recognizer."""

    def __init__(self, engine: ProcessEngine, worker: _Worker, rid: int) -> None:
        self._engine = engine
        self._worker = worker
        self._rid = rid
        self._closed = False

    def _call(self, op: str, *args: Any) -> Any:
        # A worker found dead here is replaced when the next recognizer is opened.
        return self._worker.call((op, self._rid, None, *args), wait_s=self._engine.max_wait_s)

    def accept(self, pcm: bytes) -> str | None:
        text: str | None = self._call("accept", pcm)
        return text

    def final(self) -> Transcript:
        transcript: Transcript = self._call("final")
        return transcript

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._engine._closed(self._worker)
        # Gone with its process, or already closed there: nothing left to free.
        with contextlib.suppress(DecoderGone, RuntimeError):
            self._worker.call(("close", self._rid, None))


# --- the worker process --------------------------------------------------------------------


def serve(requests: IO[bytes], replies: IO[bytes], clock: Any = time.monotonic) -> int:
    """The worker's loop: load the engine, then open, feed, finish and close recognizers
    until the socket closes. A request reached after its ``start_by`` is answered ``busy``
    (a close is always done: it only frees)."""
    first = _read(requests)
    if first is None:
        return 0
    _, loader, args = first
    try:
        engine = _resolve(loader)(*args)
    except Exception as exc:
        _write(replies, ("load-error", str(exc) or type(exc).__name__))
        return 1
    _write(replies, ("ok", (engine.name, engine.model)))
    recognizers: dict[int, Any] = {}
    while (request := _read(requests)) is not None:
        op, rid, start_by, *rest = request
        if start_by is not None and op != "close" and clock() > start_by:
            late_ms = round((clock() - start_by) * 1000)
            _write(replies, ("busy", f"{op} reached {late_ms} ms after its start-by time"))
            continue
        try:
            if op == "open":
                recognizers[rid] = engine.recognizer(rest[0], rest[1])
                value: Any = None
            elif op == "accept":
                value = recognizers[rid].accept(rest[0])
            elif op == "final":
                value = recognizers[rid].final()
            elif op == "close":
                recognizer = recognizers.pop(rid, None)
                value = recognizer.close() if recognizer is not None else None
            else:
                raise ValueError(f"unknown request {op!r}")
        except Exception as exc:
            _write(replies, ("error", f"{type(exc).__name__}: {exc}"))
            continue
        _write(replies, ("ok", value))
    return 0


def main() -> int:
    # The service's Ctrl-C reaches its whole process group: the worker ends when its socket
    # closes instead, after the service let go of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The socket to the service is this process's stdin and stdout; anything a library
    # prints goes to stderr instead, so that it cannot corrupt a message.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    try:
        return serve(sys.stdin.buffer, replies)
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the service closed the socket while a reply was on its way: it is gone


if __name__ == "__main__":
    sys.exit(main())
