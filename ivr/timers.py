"""The reactor's time as the service's protocols use it, typed.

Twisted declares the reactor's time and its timers as zope Interfaces (``IReactorTime``,
``IDelayedCall``), which mypy cannot read as types; these Protocols say what our code uses of
them. The reactor and ``twisted.internet.task.Clock`` (tests) both fit.
"""

from __future__ import annotations

import typing
from collections.abc import Callable

__all__ = ["Clock", "DelayedCall"]


class DelayedCall(typing.Protocol):
    """A timer from L{Clock.callLater} (Twisted's C{IDelayedCall})."""

    def getTime(self) -> float: ...

    def reset(self, secondsLater: float) -> None: ...

    def active(self) -> bool: ...

    def cancel(self) -> None: ...


class Clock(typing.Protocol):
    """The reactor's time (C{IReactorTime}), or a C{task.Clock} in tests."""

    def seconds(self) -> float: ...

    def callLater(
        self, delay: float, callable: Callable[..., object], *args: object, **kw: object
    ) -> DelayedCall: ...
