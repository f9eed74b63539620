"""The group commit of creations (``workorders.store.groupcommit``) against a fake round trip:
who leads, what goes in which batch, and what each caller gets when a batch or a call fails
or a caller gives up. No Redis: the fake ``send`` holds each round trip until the test ends it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from ivr.testing import on_asyncio
from workorders.store.errors import OutageWhileQueued
from workorders.store.groupcommit import Call, GroupCommit


class FakeRoundTrips:
    """A ``send`` whose round trips stay in flight until ``finish`` ends the oldest one."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []  # the first key of each call, per round trip
        self._open: list[tuple[list[str], asyncio.Future[list[Any]]]] = []

    async def __call__(self, calls: list[Call]) -> list[Any]:
        self.batches.append([str(keys[0]) for keys, _ in calls])
        reply: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._open.append((self.batches[-1], reply))
        return await reply

    def finish(self, replies: list[Any] | None = None, error: BaseException | None = None
               ) -> None:
        """End the oldest round trip in flight: ``replies`` (default: each call's key, as
        its reply), or ``error`` for the whole round trip."""
        self._open = [(keys, reply) for keys, reply in self._open if not reply.done()]
        keys, reply = self._open.pop(0)  # (a cancelled sender's round trip is gone)
        if error is not None:
            reply.set_exception(error)
        else:
            reply.set_result(replies if replies is not None else [f"done:{k}" for k in keys])


async def turn(times: int = 3) -> None:
    """Let the loop run what is ready (no time passes)."""
    for _ in range(times):
        await asyncio.sleep(0)


def start(group: GroupCommit, key: str) -> asyncio.Task[Any]:
    return asyncio.ensure_future(group.call([key], ["arg"]))


async def batch_of_b_and_c_in_flight() -> tuple[FakeRoundTrips, GroupCommit,
                                                list[asyncio.Task[Any]]]:
    """Calls a, b, c at once: a's lone round trip done, the batch [b, c] in flight."""
    sent = FakeRoundTrips()
    group = GroupCommit(sent)
    tasks = [start(group, key) for key in "abc"]
    await turn()
    sent.finish()
    await turn()
    assert sent.batches == [["a"], ["b", "c"]]
    return sent, group, tasks


@on_asyncio
async def test_a_call_with_nothing_in_flight_goes_at_once_alone() -> None:
    """With nothing in flight a call is sent at once in a round trip of its own: a lone
    creation never waits to be grouped."""
    sent = FakeRoundTrips()
    group = GroupCommit(sent)
    first = start(group, "a")
    await turn()
    assert sent.batches == [["a"]]
    sent.finish()
    assert await first == "done:a"
    second = start(group, "b")
    await turn()
    assert sent.batches == [["a"], ["b"]]  # idle again: sent alone, at once
    sent.finish()
    assert await second == "done:b" and group.round_trips == 2


@on_asyncio
async def test_calls_arriving_during_a_round_trip_go_together_in_the_next() -> None:
    """Calls that arrive while a round trip is in flight wait for its end only, then go in
    one round trip, in the order they arrived, each caller getting its own reply."""
    sent = FakeRoundTrips()
    group = GroupCommit(sent)
    tasks = [start(group, "a")]
    await turn()
    tasks += [start(group, key) for key in "bcd"]
    await turn()
    assert sent.batches == [["a"]]  # b, c, d wait for a's round trip
    sent.finish()
    await turn()
    tasks.append(start(group, "e"))  # arrives while b's batch is in flight
    await turn()
    assert sent.batches == [["a"], ["b", "c", "d"]]
    sent.finish()
    await turn()
    assert sent.batches[-1] == ["e"]
    sent.finish()
    assert await asyncio.gather(*tasks) == [f"done:{key}" for key in "abcde"]
    assert group.round_trips == 3


@on_asyncio
async def test_the_limit_caps_a_batch_and_the_rest_goes_next() -> None:
    """At most ``limit`` calls go in one round trip; those beyond go in the following one,
    still in their order."""
    sent = FakeRoundTrips()
    group = GroupCommit(sent, limit=2)
    tasks = [start(group, key) for key in "abcd"]
    await turn()
    for _ in range(3):
        sent.finish()
        await turn()
    assert sent.batches == [["a"], ["b", "c"], ["d"]]
    assert await asyncio.gather(*tasks) == [f"done:{key}" for key in "abcd"]


@on_asyncio
async def test_an_error_of_one_call_is_that_callers_only() -> None:
    """A call that Redis answers with an error (a script error) raises it in its own caller;
    the others of the batch get their replies."""
    sent, _group, tasks = await batch_of_b_and_c_in_flight()
    sent.finish(["done:b", ResponseError("script failed for c")])
    assert await tasks[1] == "done:b"
    with pytest.raises(ResponseError, match="for c"):
        await tasks[2]
    await tasks[0]


@on_asyncio
async def test_a_failed_round_trip_fails_every_caller_of_its_batch() -> None:
    """Redis unreachable during a batch: its leader gets the error itself (and counts the
    outage), every other caller of the batch ``OutageWhileQueued`` (so each spools without
    counting it again); the next call is sent afresh."""
    sent, group, tasks = await batch_of_b_and_c_in_flight()
    sent.finish(error=RedisConnectionError("reset"))
    with pytest.raises(RedisConnectionError):
        await tasks[1]
    with pytest.raises(OutageWhileQueued):
        await tasks[2]
    assert await tasks[0] == "done:a"
    later = start(group, "d")
    await turn()
    assert sent.batches[-1] == ["d"]
    sent.finish()
    assert await later == "done:d"


@on_asyncio
async def test_a_leader_that_times_out_fails_its_followers_and_frees_the_queue() -> None:
    """The leader cancelled in flight (its caller's timeout): the followers of its batch get
    ``OutageWhileQueued`` at once rather than wait for their own timeouts, and callers queued
    behind get the lead, so nothing hangs."""
    sent, group, tasks = await batch_of_b_and_c_in_flight()
    late = start(group, "d")  # queued behind b's batch [b, c]
    await turn()
    tasks[1].cancel()  # b's caller gives up with its batch in flight
    await turn()
    with pytest.raises(OutageWhileQueued):
        await tasks[2]
    assert sent.batches == [["a"], ["b", "c"], ["d"]]
    sent.finish()
    assert await late == "done:d"
    assert await tasks[0] == "done:a"
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]


@on_asyncio
async def test_a_caller_giving_up_while_queued_is_left_out() -> None:
    """A queued caller cancelled (its timeout) before its batch goes is not sent; the others
    are."""
    sent = FakeRoundTrips()
    group = GroupCommit(sent)
    tasks = [start(group, key) for key in "abc"]
    await turn()
    tasks[1].cancel()
    await turn()
    sent.finish()
    await turn()
    assert sent.batches == [["a"], ["c"]]
    sent.finish()
    assert await tasks[2] == "done:c"


@on_asyncio
async def test_a_caller_cancelled_as_it_is_told_to_lead_passes_the_lead_on() -> None:
    """The lead passes to the first queued caller; cancelled in the same loop turn, before it
    could send, it hands the lead to the next in line instead of leaving the queue stuck."""
    sent = FakeRoundTrips()
    group = GroupCommit(sent)
    tasks = [start(group, key) for key in "abc"]
    await turn()
    sent.finish()
    await asyncio.sleep(0)  # a's task runs: b is told to lead, b has not run yet
    tasks[1].cancel()
    await turn()
    assert sent.batches == [["a"], ["c"]]
    sent.finish()
    assert await tasks[2] == "done:c"
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]


@on_asyncio
async def test_a_round_trip_with_replies_missing_fails_every_caller() -> None:
    """A round trip that answers fewer replies than calls fails each caller of the batch
    (none is left waiting for a reply that will not come), and the next call goes afresh."""
    sent, group, tasks = await batch_of_b_and_c_in_flight()
    sent.finish(["done:b"])
    with pytest.raises(RuntimeError, match="1 replies to 2 calls"):
        await tasks[1]
    with pytest.raises(RuntimeError):
        await tasks[2]
    later = start(group, "d")
    await turn()
    sent.finish()
    assert await later == "done:d"
