"""``ivr events tail|groups``: watch the events stream, see how far each consumer group is.

- ``ivr events tail``: new events as JSON lines (``{"id": ..., "kind": ..., ...}``) until
  Ctrl-C or ``--count``; ``--from-start`` begins with the oldest kept. Reading only (XREAD):
  nothing is acknowledged, no group is created.
- ``ivr events tail --group NAME``: the same through a consumer group (created if missing,
  consumer ``--consumer``, default ``ivr-tail``), each event acknowledged once printed: what
  another system's reader does (``events.consumer``).
- ``ivr events groups``: each group on the stream with its consumers, pending entries (read,
  not acknowledged), lag (entries not read yet) and last delivered id, as JSON lines. A
  webhook's group is ``webhooks:<name>``.

Exit codes: 0 done, 2 a bad config, 3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from events import stream_key
from events.consumer import ConsumerGroup, Entry, consume, decode_entries, stream_rows

if TYPE_CHECKING:
    from hotline.redisclient import RedisTarget

EXIT_BAD_REQUEST = 2
EXIT_UNREACHABLE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="events_command", required=True)
    tail = sub.add_parser("tail", help="print new events as JSON lines")
    tail.add_argument("--group", help="read through this consumer group, acknowledging")
    tail.add_argument("--consumer", default="ivr-tail", help="consumer name in the group")
    tail.add_argument("--from-start", action="store_true", help="begin with the oldest event")
    tail.add_argument("--count", type=int, default=None, help="stop after N events")
    sub.add_parser("groups", help="consumer groups: consumers, pending, lag (JSON lines)")


def main(args: argparse.Namespace) -> int:
    def work(cfg: Any) -> Awaitable[int]:
        return run(args, cfg.service.redis, cfg.service.redis.key_prefix)

    return command(args, work)


def command(
    args: argparse.Namespace, work: Callable[[Any], Awaitable[int]],
    refuse: Callable[[Any], str | None] = lambda cfg: None,
) -> int:
    """A command on Redis: the config loaded (exit 2 if it does not validate, or when
    ``refuse(config)`` gives a reason), then ``work(config)`` on its own asyncio loop; its
    exit code, 3 when Redis is unreachable, 0 after Ctrl-C."""
    from ivr.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_REQUEST
    reason = refuse(cfg)
    if reason is not None:
        print(reason, file=sys.stderr)
        return EXIT_BAD_REQUEST

    async def guarded() -> int:
        return await work(cfg)

    try:
        return asyncio.run(guarded())
    except KeyboardInterrupt:
        return 0
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        print(f"redis unreachable ({cfg.service.redis.describe()}): {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


def line(entry: Entry) -> str:
    return json.dumps({"id": entry.id, **entry.fields}, ensure_ascii=False)


async def run(args: argparse.Namespace, target: RedisTarget, prefix: str) -> int:
    """``target``: the ``redis`` section of ``service.yaml``, or a URL."""
    from hotline.redisclient import async_redis

    redis = async_redis(target, socket_timeout=5, socket_connect_timeout=5)
    try:
        if args.events_command == "groups":
            for group in await groups(redis, prefix):
                print(json.dumps(group))
        elif args.group:
            await tail_group(redis, prefix, args)
        else:
            await tail(redis, prefix, args)
    finally:
        await redis.aclose()
    return 0


async def groups(redis: Redis, prefix: str) -> list[dict[str, Any]]:
    """XINFO GROUPS of the stream, as plain JSON values."""
    try:
        rows = await redis.xinfo_groups(stream_key(prefix))
    except redis_errors.ResponseError:  # no stream yet
        return []
    return [
        {str(k): v.decode() if isinstance(v, bytes) else v for k, v in row.items()}
        for row in rows
    ]


async def tail(redis: Redis, prefix: str, args: argparse.Namespace) -> None:
    stream, after, printed = stream_key(prefix), "0" if args.from_start else "$", 0
    while args.count is None or printed < args.count:
        reply = await redis.xread({stream: after}, count=100, block=1000)
        for entry in decode_entries(stream_rows(reply, stream)):
            print(line(entry), flush=True)
            after, printed = entry.id, printed + 1
            if args.count is not None and printed >= args.count:
                return


async def tail_group(redis: Redis, prefix: str, args: argparse.Namespace) -> None:
    group = ConsumerGroup(redis, group=args.group, consumer=args.consumer, clock=time.time,
                          prefix=prefix, start="0" if args.from_start else "$")
    stop = asyncio.Event()
    printed = 0

    async def show(entry: Entry) -> None:
        nonlocal printed
        print(line(entry), flush=True)
        printed += 1
        if args.count is not None and printed >= args.count:
            stop.set()

    def failed(exc: BaseException) -> None:
        print(f"error: {exc!r}", file=sys.stderr)

    await consume(group, show, stop=stop, on_error=failed)
