"""``ivr webhooks dead|redrive``: what was given up, and sending it again.

- ``ivr webhooks dead <name> [--count N]``: the webhook's dead letters, oldest first, one JSON
  line each (``webhook``, ``id``, ``event``, ``reason``, ``attempts``, ``failed_at``).
- ``ivr webhooks redrive <name> [--count N]``: sends the oldest N (default: every) dead
  letters back; the running service delivers them before its new events (retries and all)
  and a letter that fails again comes back to the dead list with its new reason.

Exit codes: 0 done, 2 a bad config or an unknown webhook, 3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from redis import exceptions as redis_errors

EXIT_BAD_REQUEST = 2
EXIT_UNREACHABLE = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="webhooks_command", required=True)
    dead = sub.add_parser("dead", help="a webhook's dead letters, oldest first (JSON lines)")
    redrive = sub.add_parser("redrive", help="send dead letters back for delivery")
    for command in (dead, redrive):
        command.add_argument("name", help="the webhook (webhooks.yaml)")
        command.add_argument("--count", type=int, default=None,
                             help="the oldest N only (default: dead 100, redrive every one)")


def main(args: argparse.Namespace) -> int:
    from ivr.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_BAD_REQUEST
    known = cfg.webhooks.webhooks if cfg.webhooks is not None else {}
    if args.name not in known:
        print(f"no webhook {args.name!r} in {cfg.directory / 'webhooks.yaml'} "
              f"(configured: {', '.join(known) or 'none'})", file=sys.stderr)
        return EXIT_BAD_REQUEST
    try:
        return asyncio.run(run(args, cfg.service))
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        print(f"redis unreachable ({cfg.service.redis.url}): {exc}", file=sys.stderr)
        return EXIT_UNREACHABLE


async def run(args: argparse.Namespace, service: Any) -> int:
    from redis.asyncio import Redis

    from webhooks.deadletter import DeadLetters

    redis = Redis.from_url(service.redis.url, socket_timeout=5, socket_connect_timeout=5)
    letters = DeadLetters(redis, service.redis.key_prefix)
    try:
        if args.webhooks_command == "dead":
            for letter in await letters.read(args.name, args.count or 100):
                print(letter.to_json())
        else:
            moved = await letters.redrive(args.name, args.count)
            print(f"{moved} dead letters of {args.name} sent back for delivery "
                  "(the running service delivers them first)")
    finally:
        await redis.aclose()
    return 0
