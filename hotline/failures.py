"""Warnings for failures that repeat every round, said once and then summed up.

The service's loops (the dispatcher every 0.25 s, the metrics every second, the spool replay
every 5 s) all fail together while Redis is away. Logging each failure wrote about four lines
a second per instance for the dispatcher alone, drowning the line that matters: when it
started, what the error is, and when it ended. :class:`RepeatedFailure` logs the first
failure at once, then at most one summary every ``every_s`` seconds while it goes on, and one
line when the loop succeeds again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

DEFAULT_SUMMARY_EVERY_S = 30.0


@dataclass
class RepeatedFailure:
    """The failures of one repeating task (``what``: "dispatch", "metrics", ...)."""

    what: str
    clock: Callable[[], float]
    log: logging.Logger
    every_s: float = DEFAULT_SUMMARY_EVERY_S
    _since: float | None = field(default=None, init=False)  # first failure of this run
    _count: int = field(default=0, init=False)  # failures since then
    _unsaid: int = field(default=0, init=False)  # failures since the last line logged
    _last_said: float = field(default=0.0, init=False)
    _last_error: str = field(default="", init=False)

    @property
    def failing(self) -> bool:
        return self._since is not None

    def failed(self, error: str) -> None:
        """One more failure, ``error`` its message."""
        now = self.clock()
        self._count += 1
        if self._since is None:
            self._since, self._last_said, self._unsaid = now, now, 0
            self._last_error = error
            self.log.warning("%s failed: %s (repeats are summed up every %.0f s)",
                             self.what, error, self.every_s)
            return
        self._unsaid += 1
        self._last_error = error
        if now - self._last_said >= self.every_s:
            self.log.warning("%s still failing: %d more failures in the last %.0f s, last: %s",
                             self.what, self._unsaid, now - self._last_said, error)
            self._last_said, self._unsaid = now, 0

    def succeeded(self) -> None:
        """The task ran through: a failing run ends with one line saying how long it lasted."""
        if self._since is None:
            return
        self.log.warning("%s recovered after %d failures over %.0f s (last: %s)", self.what,
                         self._count, self.clock() - self._since, self._last_error)
        self._since, self._count, self._unsaid = None, 0, 0
