"""Group commit of creations: create-script calls that arrive while a round trip is in flight
go to Redis together in the next round trip, packed and written at once (``evalsha``).

Why: every round trip costs the client a write, a read and their loop turns, and Redis a
parse, a reply and (``appendfsync always``) an fsync per event-loop turn.
Under load creations arrive while one is in flight anyway; sent together they share all of
that. A creation that finds nothing in flight is sent at once, alone: none waits for more
than the round trip in flight before its own.

Each call keeps its own outcome: its own reply, or its own error (a script error of one call
is that call's only). Idempotency and the spool are untouched: the calls are the same create
script with the same keys and arguments, so a batch that fails is spooled caller by caller,
and replayed once each by its operation id.

No task of its own: the caller that finds nothing in flight leads. It sends its batch, hands
the replies to their callers and the lead to the first caller that queued meanwhile, which
then sends everything queued by the time it runs. States:

- idle (``_busy`` False): the next call leads at once, a batch of one;
- sending (``_busy`` True): a leader's round trip is in flight; calls queue in ``_queue``;
- handing over (``_busy`` True): the replies are in, the first queued caller is told to lead
  and has not run yet; calls still queue and go in its batch;
- back to idle when a round trip ends with nothing queued.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import hiredis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection
from redis.commands.core import AsyncScript
from redis.exceptions import NoScriptError, ResponseError
from redis.typing import EncodableT, KeyT

from workorders.store.errors import UNREACHABLE, OutageWhileQueued

#: One script call: its keys and its arguments.
Call = tuple[Sequence[KeyT], Sequence[EncodableT]]
#: Sends calls in one round trip: a reply or an exception per call, in their order; raises
#: when the round trip itself fails (Redis unreachable, cancelled).
Send = Callable[[list[Call]], Awaitable[list[Any]]]

_LEAD = object()  # what a queued caller is told when the lead passes to it


@dataclass(slots=True)
class _Queued:
    call: Call
    answer: asyncio.Future[Any] = field(repr=False)


class GroupCommit:
    """Calls through ``send``, those that arrive while one round trip is in flight batched
    into the next (at most ``limit`` per round trip)."""

    def __init__(self, send: Send, *, limit: int = 128) -> None:
        self._send = send
        self._limit = max(1, limit)
        self._busy = False
        self._queue: deque[_Queued] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.round_trips = 0  # how many batches went out, for tests and the benchmark

    async def call(self, keys: Sequence[KeyT], args: Sequence[EncodableT]) -> Any:
        """The reply to this call; raises its error, or the round trip's."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a store used from a new loop: nothing of the old is live
            self._loop, self._busy, self._queue = loop, False, deque()
        if not self._busy:
            self._busy = True
            return await self._lead([(keys, args)], [])
        queued = _Queued((keys, args), loop.create_future())
        self._queue.append(queued)
        try:
            answer = await queued.answer
        except asyncio.CancelledError:
            # Told to lead just as it was cancelled: the lead goes on to the next in line,
            # else those queued would wait for ever. (Cancelled while queued: the leader skips
            # it; while its batch was in flight: its reply is dropped, as for a lone timeout.)
            if queued.answer.done() and not queued.answer.cancelled() and (
                queued.answer.exception() is None and queued.answer.result() is _LEAD
            ):
                self._hand_over()
            raise
        if answer is not _LEAD:
            return answer
        followers: list[_Queued] = []
        while self._queue and len(followers) + 1 < self._limit:
            waiting = self._queue.popleft()
            if not waiting.answer.done():
                followers.append(waiting)
        return await self._lead([queued.call, *(f.call for f in followers)], followers)

    async def _lead(self, calls: list[Call], followers: list[_Queued]) -> Any:
        """Send ``calls`` (this caller's first), answer the followers, pass the lead on."""
        self.round_trips += 1
        try:
            replies = await self._send(calls)
            if len(replies) != len(calls):  # else some caller would never be answered
                raise RuntimeError(f"{len(replies)} replies to {len(calls)} calls")
        except BaseException as exc:
            failure = _for_followers(exc)
            for follower in followers:
                if not follower.answer.done():
                    follower.answer.set_exception(failure)
            self._hand_over()
            raise
        self._hand_over()
        for follower, reply in zip(followers, replies[1:], strict=True):
            if follower.answer.done():
                continue  # cancelled meanwhile (its own timeout): nobody waits for it
            if isinstance(reply, BaseException):
                follower.answer.set_exception(reply)
            else:
                follower.answer.set_result(reply)
        if isinstance(replies[0], BaseException):
            raise replies[0]
        return replies[0]

    def _hand_over(self) -> None:
        """The first caller still waiting leads next; none: idle."""
        while self._queue:
            waiting = self._queue.popleft()
            if not waiting.answer.done():
                waiting.answer.set_result(_LEAD)
                return
        self._busy = False


def _for_followers(exc: BaseException) -> BaseException:
    """What the followers of a failed round trip get. Redis unreachable or the leader's
    timeout: ``OutageWhileQueued``, so each caller spools (or tries once more) without
    counting the outage again; the leader counts it. Anything else: the same error."""
    if isinstance(exc, (asyncio.CancelledError, *UNREACHABLE)):
        return OutageWhileQueued(f"the round trip carrying this creation failed: {exc!r}")
    return exc


def pipelined(redis: Redis, script: AsyncScript) -> Send:
    """``send`` for ``GroupCommit``: ``script`` once per call, the calls of a batch packed
    and written at once on one pooled connection, their replies read in order (a batch of
    one the same way). A server that lost the script (restart, ``SCRIPT FLUSH``) gets it
    loaded and the calls it refused sent again, in one more round trip."""

    async def send(calls: list[Call]) -> list[Any]:
        replies = await evalsha(redis, script.sha, calls)
        refused = [n for n, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if refused:
            script.sha = await redis.script_load(script.script)
            again = await evalsha(redis, script.sha, [calls[n] for n in refused])
            for n, reply in zip(refused, again, strict=True):
                replies[n] = reply
        return replies

    return send


async def evalsha(redis: Redis, sha: str, calls: list[Call]) -> list[Any]:
    """``EVALSHA`` of each call in one round trip: the replies (a ``ResponseError`` in the
    place of a call Redis refused) that ``pipeline(transaction=False)`` answers with
    ``execute(raise_on_error=False)``, on the same pool, retries and disconnects.

    Why not that pipeline: redis-py encodes a call's some thirty arguments one by one in
    Python (some 20 µs of client CPU a creation, the most of any step); hiredis packs the
    whole call in C (2.5 µs), to the same bytes (the tests compare them)."""
    packed = [pack_call(sha, call) for call in calls]
    pool = redis.connection_pool
    connection = await pool.get_connection()  # type: ignore[no-untyped-call]  # no hints
    try:
        # As the pipeline does: a connection error (a server restarted under a pooled
        # connection) disconnects and sends the batch again, as the client's retry policy
        # says; safe, each creation is applied once by its operation id.
        replies: list[Any] = await connection.retry.call_with_retry(
            lambda: _round_trip(connection, packed, len(calls)),
            lambda _error: connection.disconnect(),
        )
        return replies
    finally:
        await pool.release(connection)


def pack_call(sha: str, call: Call) -> bytes:
    """One ``EVALSHA`` of ``call`` in the Redis protocol."""
    keys, args = call
    # (hiredis' stub types the tuple as of one item, its return not at all.)
    packed: bytes = hiredis.pack_command(
        ("EVALSHA", sha, len(keys), *keys, *args)  # type: ignore[arg-type]
    )
    return packed


async def _round_trip(connection: Connection, packed: list[bytes], count: int) -> list[Any]:
    # A cancellation or a timeout while reading disconnects (redis-py's read_response), so
    # no reply of this batch is left on the socket for the connection's next user.
    await connection.send_packed_command(packed)
    replies: list[Any] = []
    for _ in range(count):
        try:
            replies.append(await connection.read_response())
        except ResponseError as exc:  # that call's own error, as in a pipeline
            replies.append(exc)
    return replies
