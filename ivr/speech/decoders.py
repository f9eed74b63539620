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

Wire: each message is a 4-byte big-endian length and a pickle (a private pipe between the
service and the child it started); one request at a time per process, under a lock. A worker
that dies fails the calls of its recognizers with :class:`DecoderGone` (those callers get the
DTMF menu, as for any recognizer error) and is replaced in the background; new recognizers
go to the live ones meanwhile. A worker exits when its pipe closes, so it does not outlive
the service, even one killed with ``kill -9``.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import logging
import os
import pickle
import signal
import struct
import subprocess
import sys
import threading
import weakref
from collections.abc import Sequence
from typing import IO, Any

from ivr.speech.engines import EngineLoadError, Transcript
from ivr.speech.pool import MAX_WAIT_S, SHED_REASONS, RecognizerBusy

log = logging.getLogger(__name__)

_LENGTH = struct.Struct(">I")
START_TIMEOUT_S = 60.0
"""How long a worker may take to load its engine (a language model build takes 1-2 s)."""


class DecoderGone(Exception):
    """The worker process of a recognizer died or its pipe broke."""


def _write(pipe: IO[bytes], message: object) -> None:
    data = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    pipe.write(_LENGTH.pack(len(data)) + data)
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


class _Worker:
    """One decoding process: its pipe, its lock, the recognizers open on it."""

    def __init__(self, loader: str, args: tuple[Any, ...]) -> None:
        # A heap trace of the service (PYTHONTRACEMALLOC, hotline.heapdiff) is not wanted in
        # the decoders: it would only slow them.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONTRACEMALLOC"}
        self._process = subprocess.Popen(
            [sys.executable, "-m", "ivr.speech.decoders"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, env=env,
        )
        assert self._process.stdin is not None and self._process.stdout is not None
        self._to, self._from = self._process.stdin, self._process.stdout
        self._lock = threading.Lock()
        self.open = 0  # recognizers open on this worker (the least busy gets the next one)
        self.alive = True
        self.name = self.model = ""
        # A worker no engine and no recognizer refers to any more (a reload replaced its
        # engine, its last caller hung up) is stopped; so is every worker at exit.
        weakref.finalize(self, _stop, self._process, self._to)
        try:
            _write(self._to, ("load", loader, args))
        except OSError:
            self.alive = False

    def ready(self) -> None:
        """Wait until the worker has loaded its engine; EngineLoadError if it could not."""
        self.name, self.model = self.call(None, timeout_s=START_TIMEOUT_S)

    @property
    def pid(self) -> int:
        return self._process.pid

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
        status, value = reply
        if status == "ok":
            return value
        if status == "load-error":
            self.alive = False
            raise EngineLoadError(value)
        raise RuntimeError(f"decoder process {self.pid}: {value}")

    def _exchange(self, request: tuple[Any, ...] | None, timeout_s: float | None) -> Any:
        """One request and its reply, under the lock."""
        if not self.alive:
            raise DecoderGone(f"decoder process {self.pid} is gone")
        timer = threading.Timer(timeout_s, self._process.kill) if timeout_s else None
        try:
            if timer is not None:
                timer.start()
            if request is not None:
                _write(self._to, request)
            reply = _read(self._from)
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

    def stop(self) -> None:
        self.alive = False
        _stop(self._process, self._to)


def _stop(process: subprocess.Popen[bytes], pipe: IO[bytes]) -> None:
    """Close the worker's pipe (it exits on that) and reap it; kill it if it lingers."""
    with contextlib.suppress(OSError):
        pipe.close()
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

    def recognizer(self, rate: int = 8000, phrases: Sequence[str] | None = None
                   ) -> RemoteRecognizer:
        """A recognizer on the live worker with the fewest open ones (in a pool job: it
        waits for that worker's answer). Workers found dead, here or by an earlier call, are
        replaced and the next live one tried: this caller has not spoken into it yet."""
        while True:
            with self._choice:
                for dead in [w for w in self.workers if not w.alive]:
                    self._replace(dead)
                if not self.workers:
                    raise DecoderGone("no decoder process is running")
                worker = min(self.workers, key=lambda w: w.open)
                worker.open += 1
            rid = next(self._ids)
            try:
                worker.call(("open", rid, rate, list(phrases) if phrases is not None else None),
                            wait_s=self.max_wait_s)
            except DecoderGone:
                self._closed(worker)
                continue
            except Exception:
                self._closed(worker)
                raise
            return RemoteRecognizer(self, worker, rid)

    def stop(self) -> None:
        """Stop every worker (the service is stopping)."""
        for worker in self.workers:
            worker.stop()

    def _closed(self, worker: _Worker) -> None:
        with self._choice:
            worker.open -= 1

    def _replace(self, dead: _Worker) -> None:
        """Take ``dead`` out and start its replacement off the pool's threads (loading takes
        a second or two); under ``_choice``."""
        self.workers.remove(dead)
        log.error("speech decoder process %d died; starting another", dead.pid)

        def replace() -> None:
            try:
                fresh = _Worker(self._loader, self._args)
                fresh.ready()
            except Exception as exc:  # logged: the live workers go on serving
                log.error("speech decoder process not replaced: %s", exc)
                return
            with self._choice:
                self.workers.append(fresh)

        threading.Thread(target=replace, name="decoder-restart", daemon=True).start()


def in_processes(engine: object) -> ProcessEngine | None:
    """The decoder processes ``engine`` (or a combination's first engine) decodes in."""
    for part in (engine, getattr(engine, "first", None)):
        if isinstance(part, ProcessEngine):
            return part
    return None


def decodes_in_processes(engine: object) -> bool:
    """Whether ``engine`` (or a combination's first engine) decodes in decoder processes."""
    return in_processes(engine) is not None


class RemoteRecognizer:
    """One utterance on a worker process; the same calls as a local recognizer."""

    def __init__(self, engine: ProcessEngine, worker: _Worker, rid: int) -> None:
        self._engine = engine
        self._worker = worker
        self._rid = rid
        self._closed = False

    def _call(self, request: tuple[Any, ...]) -> Any:
        # A worker found dead here is replaced when the next recognizer is opened.
        return self._worker.call(request, wait_s=self._engine.max_wait_s)

    def accept(self, pcm: bytes) -> str | None:
        text: str | None = self._call(("accept", self._rid, pcm))
        return text

    def final(self) -> Transcript:
        transcript: Transcript = self._call(("final", self._rid))
        return transcript

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._engine._closed(self._worker)
        # Gone with its process, or already closed there: nothing left to free.
        with contextlib.suppress(DecoderGone, RuntimeError):
            self._worker.call(("close", self._rid))


# --- the worker process --------------------------------------------------------------------


def serve(requests: IO[bytes], replies: IO[bytes]) -> int:
    """The worker's loop: load the engine, then open, feed, finish and close recognizers
    until the pipe closes."""
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
        op, rid, *rest = request
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
    # The service's Ctrl-C reaches its whole process group: the worker ends when its pipe
    # closes instead, after the service let go of it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The pipe to the service is this process's stdout; anything a library prints goes to
    # stderr instead, so that it cannot corrupt a message.
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    return serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    sys.exit(main())
