"""The service's repeating jobs: one table instead of a LoopingCall wired by hand per task.

``ivr serve`` runs a dozen tasks on the reactor's clock: the dispatcher every 0.25 s, the
spool replays, the back office, the SLA watch, the event relay, the metrics, the retention
passes. Each is a name, a period and one round (a coroutine, or ``None`` when the round has
nothing to do, e.g. a job switched off by config). :class:`Jobs` starts them, reports a
round's failure through :class:`~hotline.failures.RepeatedFailure` (Redis away fails every
round: said once, then summed up) and stops them together.

A round that is still running when the next tick comes is not started twice: LoopingCall
waits for the Deferred a round returns.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from twisted.internet import task
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure

from hotline.failures import RepeatedFailure
from ivr.aio import deferred

# One round: a coroutine to run, or None when this round has nothing to do.
Round = Callable[[], Coroutine[Any, Any, object] | None]


@dataclass(frozen=True)
class Job:
    """One row of the table: ``what`` names it in the log, ``every_s`` is its period."""

    what: str
    every_s: float
    round: Round
    now: bool = False  # run a first round at once instead of after one period


class Jobs:
    """The running jobs of one service instance and the failures of their rounds."""

    def __init__(self, clock: IReactorTime, now: Callable[[], float],
                 log: logging.Logger) -> None:
        self.clock = clock  # the loops' scheduler
        self.now = now  # its time, for the failure summaries (zope's seconds is untyped)
        self.log = log
        self.loops: dict[str, task.LoopingCall] = {}
        self._failures: dict[str, RepeatedFailure] = {}

    def start(self, job: Job) -> task.LoopingCall:
        """Run ``job`` every ``job.every_s`` seconds until :meth:`stop`."""
        if job.what in self.loops:
            raise ValueError(f"job {job.what!r} runs already")

        def one_round() -> Deferred[object] | None:
            coro = job.round()
            if coro is None:
                return None
            return self.watch(deferred(coro), job.what)

        loop = task.LoopingCall(one_round)
        loop.clock = self.clock
        loop.start(job.every_s, now=job.now)
        self.loops[job.what] = loop
        return loop

    def watch(self, d: Deferred[Any], what: str) -> Deferred[Any]:
        """``d``'s failure counted as one of ``what``'s repeated failures (its success ends
        such a run). The failure is consumed: a loop goes on with its next round."""

        def ok(result: object) -> object:
            self.failures_of(what).succeeded()
            return result

        def failed(failure: Failure) -> None:
            self.failures_of(what).failed(failure.getErrorMessage())

        return d.addCallbacks(ok, failed)

    def failures_of(self, what: str) -> RepeatedFailure:
        if what not in self._failures:
            self._failures[what] = RepeatedFailure(what, self.now, self.log)
        return self._failures[what]

    @property
    def running(self) -> bool:
        return any(loop.running for loop in self.loops.values())

    def stop(self) -> None:
        for loop in self.loops.values():
            if loop.running:
                loop.stop()
