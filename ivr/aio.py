"""The seam between Twisted and asyncio code in the one process.

The service runs Twisted's asyncio reactor, so asyncio libraries (``redis.asyncio``) share its
loop. Their coroutines must run as asyncio Tasks (redis-py's timeouts need a current task),
while call flows are Twisted coroutines awaiting Deferreds: :func:`deferred` runs a coroutine
as a Task and hands back a Deferred (the flows' adapters in :mod:`hotline.adapters` use it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def deferred(coro: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run an asyncio coroutine as a Task on the reactor's loop; its result as a Deferred."""
    return Deferred.fromFuture(asyncio.ensure_future(coro))
