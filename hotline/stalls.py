"""Reactor stalls: when the one thread every call shares stops turning, say where it stood.

Every call of ``ivr serve`` is served by the reactor thread. Code that blocks it (a
synchronous read, a long loop, many orders decrypted in one go) holds every caller's prompts,
keys and speech decisions at once; under load that shows as a p99 of seconds on every path
together, and nothing in the log says why. The watchdog says why, in production and in the
load benchmark alike:

- the reactor *beats* every :data:`BEAT_S` (a timer, nothing else);
- a daemon thread looks at the last beat every :data:`BEAT_S`; when the reactor has not
  beaten for ``service.stall_warning_ms``, it logs the reactor thread's stack as it stands
  (the code holding the thread), once per stall;
- the first beat after a stall ends it: its length is logged and observed in
  ``hotline_reactor_stall_seconds``.

:class:`StallWatch` is the pure part (beats and looks in, with explicit times);
:class:`Watchdog` runs it on the reactor and a thread. Cost: a 10 Hz timer and a thread waking
at 10 Hz. ``service.stall_warning_ms: 0`` turns it off.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from prometheus_client import Histogram
from twisted.internet import task

log = logging.getLogger(__name__)

BEAT_S = 0.1
"""How often the reactor beats, and how often the watching thread looks."""

STALLS = Histogram(
    "hotline_reactor_stall_seconds",
    "Reactor stalls over service.stall_warning_ms: how long the thread every call shares was "
    "held by one piece of code (the log has its stack)",
    buckets=(0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0),
)


@dataclass(frozen=True)
class Stalled:
    """The reactor has not beaten since ``since``: report it (once per stall)."""

    since: float
    held_s: float


@dataclass(frozen=True)
class Recovered:
    """A stall reported earlier ended with this beat, after ``held_s`` seconds."""

    held_s: float


class StallWatch:
    """Beats and looks in, as a state machine: *turning* (beats come) or *stalled* (no beat
    for ``threshold_s``, reported once); the next beat turns it back and gives the length."""

    def __init__(self, threshold_s: float, now: float) -> None:
        if threshold_s <= 0:
            raise ValueError("threshold_s must be positive")
        self.threshold_s = threshold_s
        self._last_beat = now
        self._stalled = False
        self._lock = threading.Lock()  # the reactor beats, the watching thread looks

    def beat(self, now: float) -> Recovered | None:
        """The reactor turned at ``now``; a :class:`Recovered` if that ends a reported stall."""
        with self._lock:
            held = now - self._last_beat
            self._last_beat = now
            if not self._stalled:
                return None
            self._stalled = False
        return Recovered(held)

    def look(self, now: float) -> Stalled | None:
        """A :class:`Stalled` the first time the reactor is found held past the threshold."""
        with self._lock:
            held = now - self._last_beat
            if self._stalled or held < self.threshold_s:
                return None
            self._stalled = True
            return Stalled(self._last_beat, held)


def thread_stack(thread_id: int) -> str:
    """Where ``thread_id`` stands now (innermost frame last), or a note if it is gone."""
    frame = sys._current_frames().get(thread_id)
    if frame is None:
        return "  (thread gone)"
    return "".join(traceback.format_stack(frame)).rstrip()


class Watchdog:
    """:class:`StallWatch` on a reactor (beats) and a daemon thread (looks)."""

    def __init__(self, reactor: Any, threshold_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.watch = StallWatch(threshold_s, clock())
        self._beats = task.LoopingCall(self._beat)
        self._beats.clock = reactor
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._reactor_thread = 0  # set by start, on the reactor's thread

    def start(self) -> None:
        """Beat on the reactor and look from a thread; call on the reactor's thread."""
        self._reactor_thread = threading.get_ident()
        self.watch.beat(self._clock())
        self._beats.start(BEAT_S, now=False)
        self._thread = threading.Thread(target=self._look_until_stopped,
                                        name="stall-watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._beats.running:
            self._beats.stop()
        self._stop.set()

    def _beat(self) -> None:
        recovered = self.watch.beat(self._clock())
        if recovered is not None:
            STALLS.observe(recovered.held_s)
            log.warning("reactor stall over: held %.2f s", recovered.held_s)

    def _look_until_stopped(self) -> None:
        while not self._stop.wait(BEAT_S):
            stalled = self.watch.look(self._clock())
            if stalled is not None:
                log.warning(
                    "reactor stalled: no turn for %.2f s (every call waits); it stands at:\n%s",
                    stalled.held_s, thread_stack(self._reactor_thread),
                )
