"""The seam between Twisted and asyncio code in the one process.

The service runs Twisted's asyncio reactor, so asyncio libraries (``redis.asyncio``) share its
loop. Their coroutines must run as asyncio Tasks (redis-py's timeouts need a current task),
while call flows are Twisted coroutines awaiting Deferreds: :func:`deferred` runs a coroutine
as a Task and hands back a Deferred, and :class:`Bridged` does that for every coroutine
method of an object.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def deferred(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run an asyncio coroutine as a Task on the reactor's loop; its result as a Deferred."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))


class Bridged:
    """Wraps an object whose coroutine methods return Deferreds instead (other attributes
    pass through), so Twisted code can ``await`` them."""

    def __init__(self, target: Any) -> None:
        self._target = target

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        @functools.wraps(attr)
        def call(*args: Any, **kwargs: Any) -> Deferred[Any]:
            return deferred(attr(*args, **kwargs))

        return call
