"""The consumer-group reader of the events stream against a real redis-server: idempotent
creation, acknowledgement after the handler, a restarted consumer's pending entries first,
a dead consumer's entries taken over, a live one's kept, trimmed entries skipped."""

from __future__ import annotations

import asyncio
import json
import time

import redis.asyncio as aioredis

import events
from events.consumer import ConsumerGroup, Entry, consume
from ivr.testing import on_asyncio

T0 = 1_764_321_600.0


def group_of(client: aioredis.Redis, prefix: str, consumer: str, **options) -> ConsumerGroup:
    options.setdefault("block_ms", 100)
    return ConsumerGroup(client, group="crm", consumer=consumer, clock=time.monotonic,
                         prefix=prefix, **options)


async def emit(client: aioredis.Redis, prefix: str, n: int) -> list[str]:
    return [
        (await events.emit(client, "WOCREATE", T0 + i, prefix=prefix, order_id=str(i))).decode()
        for i in range(n)
    ]


@on_asyncio
async def test_creation_is_idempotent_and_makes_the_stream(redis_server, prefix) -> None:
    """The first ensure() creates the group and the stream (MKSTREAM); a second one, or
    another instance's, finds it and changes nothing."""
    client = aioredis.Redis.from_url(redis_server.url)
    group = group_of(client, prefix, "hotline-1")
    assert await group.ensure() is True
    assert await group_of(client, prefix, "hotline-2").ensure() is False
    assert await client.exists(f"{prefix}events") == 1
    (info,) = await client.xinfo_groups(f"{prefix}events")
    assert info["name"] == b"crm"
    await client.aclose()


@on_asyncio
async def test_a_restarted_consumer_gets_its_unacknowledged_entries_first(
    redis_server, prefix
) -> None:
    """A consumer reads three entries, acknowledges one and dies; started again under the
    same name it gets the two others first, oldest first, then the entries added since."""
    client = aioredis.Redis.from_url(redis_server.url)
    first = group_of(client, prefix, "hotline-1")
    await first.ensure()
    ids = await emit(client, prefix, 3)
    assert [e.id for e in await first.next_batch()] == ids
    await first.ack(ids[0])
    later = await emit(client, prefix, 1)
    again = group_of(client, prefix, "hotline-1")
    batch = await again.next_batch()
    assert [e.id for e in batch] == ids[1:]
    assert batch[0].fields["kind"] == "WOCREATE" and batch[0].fields["order_id"] == "1"
    await again.ack(*ids[1:])
    assert [e.id for e in await again.next_batch()] == later  # the PEL is done
    await client.aclose()


@on_asyncio
async def test_a_dead_consumers_entries_are_taken_over(redis_server, prefix) -> None:
    """Entries read by hotline-1, which then died, are claimed by hotline-2 once idle past
    claim_idle_s; hotline-2 handles and acknowledges them, and the PEL is empty."""
    client = aioredis.Redis.from_url(redis_server.url)
    dead = group_of(client, prefix, "hotline-1")
    await dead.ensure()
    ids = await emit(client, prefix, 2)
    await dead.next_batch()
    other = group_of(client, prefix, "hotline-2", claim_idle_s=0.05, claim_every_s=0)
    assert await other.next_batch() == []  # not idle long enough yet: nothing new either
    await asyncio.sleep(0.1)
    claimed = await other.next_batch()
    assert [e.id for e in claimed] == ids
    await other.ack(*ids)
    assert (await client.xpending(f"{prefix}events", "crm"))["pending"] == 0
    await client.aclose()


@on_asyncio
async def test_a_live_consumer_keeps_its_entries(redis_server, prefix) -> None:
    """An entry whose consumer calls keep() (it is still working on it) is not idle, so
    another consumer does not claim it."""
    client = aioredis.Redis.from_url(redis_server.url)
    busy = group_of(client, prefix, "hotline-1")
    await busy.ensure()
    (entry_id,) = await emit(client, prefix, 1)
    await busy.next_batch()
    await asyncio.sleep(0.1)
    await busy.keep(entry_id)
    other = group_of(client, prefix, "hotline-2", claim_idle_s=0.08, claim_every_s=0)
    assert await other.next_batch() == []
    (row,) = await client.xpending_range(f"{prefix}events", "crm", "-", "+", 10)
    assert row["consumer"] == b"hotline-1"
    await client.aclose()


@on_asyncio
async def test_entries_trimmed_while_pending_are_skipped(redis_server, prefix) -> None:
    """Pending entries trimmed from the stream (MAXLEN) come back without fields: they are
    acknowledged and not handed out."""
    client = aioredis.Redis.from_url(redis_server.url)
    group = group_of(client, prefix, "hotline-1")
    await group.ensure()
    await emit(client, prefix, 2)
    await group.next_batch()
    await client.xtrim(f"{prefix}events", maxlen=0)
    assert await group_of(client, prefix, "hotline-1").next_batch() == []
    assert (await client.xpending(f"{prefix}events", "crm"))["pending"] == 0
    await client.aclose()


@on_asyncio
async def test_a_lost_group_is_created_again(redis_server, prefix) -> None:
    """A group lost with Redis's data (here destroyed) is created again on the next read,
    which then goes on with new entries."""
    client = aioredis.Redis.from_url(redis_server.url)
    group = group_of(client, prefix, "hotline-1")
    await group.ensure()
    await client.xgroup_destroy(f"{prefix}events", "crm")
    assert await group.next_batch() == []
    ids = await emit(client, prefix, 1)
    assert [e.id for e in await group.next_batch()] == ids
    await client.aclose()


@on_asyncio
async def test_consume_acknowledges_after_the_handler_and_retries_a_failure(
    redis_server, prefix
) -> None:
    """consume() hands entries over in order; an entry whose handler raised is handed over
    again (before the next one) and acknowledged only once the handler returned."""
    client = aioredis.Redis.from_url(redis_server.url)
    group = group_of(client, prefix, "hotline-1", start="0")
    ids = await emit(client, prefix, 2)
    seen: list[str] = []
    stop = asyncio.Event()

    async def handler(entry: Entry) -> None:
        seen.append(entry.id)
        if len(seen) == 1:
            raise RuntimeError("receiver away")
        pending = (await client.xpending(f"{prefix}events", "crm"))["pending"]
        assert pending >= 1  # not acknowledged before the handler returned
        if len(seen) == 3:
            stop.set()

    errors: list[BaseException] = []
    await asyncio.wait_for(consume(group, handler, stop=stop, retry_after_s=0.01,
                                   on_error=errors.append), 10)
    assert seen == [ids[0], ids[0], ids[1]]
    assert [str(e) for e in errors] == ["receiver away"]
    assert (await client.xpending(f"{prefix}events", "crm"))["pending"] == 0
    await client.aclose()


@on_asyncio
async def test_ops_can_tail_the_stream_and_see_the_groups(redis_server, prefix, capsys) -> None:
    """``ivr events tail --from-start --count 2`` prints the two oldest events as JSON lines
    (read only: no group appears); ``--group`` reads them through a group and acknowledges
    them; ``ivr events groups`` then shows that group with nothing pending."""
    from argparse import Namespace

    from events.cli import run

    client = aioredis.Redis.from_url(redis_server.url)
    ids = await emit(client, prefix, 3)
    tail = Namespace(events_command="tail", group=None, consumer="ivr-tail", from_start=True,
                     count=2)
    await run(tail, redis_server.url, prefix)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["id"], line["kind"]) for line in lines] == [(i, "WOCREATE") for i in ids[:2]]
    assert await client.xinfo_groups(f"{prefix}events") == []
    await run(Namespace(**{**vars(tail), "group": "ops", "count": 3}), redis_server.url, prefix)
    assert len(capsys.readouterr().out.splitlines()) == 3
    await run(Namespace(events_command="groups"), redis_server.url, prefix)
    (group,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (group["name"], group["pending"], group["consumers"]) == ("ops", 0, 1)
    await client.aclose()
