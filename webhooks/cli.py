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
from typing import Any

from events.cli import command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="webhooks_command", required=True)
    dead = sub.add_parser("dead", help="a webhook's dead letters, oldest first (JSON lines)")
    redrive = sub.add_parser("redrive", help="send dead letters back for delivery")
    for parser_of in (dead, redrive):
        parser_of.add_argument("name", help="the webhook (webhooks.yaml)")
        parser_of.add_argument("--count", type=int, default=None,
                             help="the oldest N only (default: dead 100, redrive every one)")


def main(args: argparse.Namespace) -> int:
    return command(args, lambda cfg: run(args, cfg), refuse=lambda cfg: unknown(args.name, cfg))


def unknown(name: str, cfg: Any) -> str | None:
    """Why ``name`` is refused: not a webhook of ``webhooks.yaml``; None when it is one."""
    known = cfg.webhooks.webhooks if cfg.webhooks is not None else {}
    if name in known:
        return None
    return (f"no webhook {name!r} in {cfg.directory / 'webhooks.yaml'} "
            f"(configured: {', '.join(known) or 'none'})")


async def run(args: argparse.Namespace, cfg: Any) -> int:
    from hotline.redisclient import async_redis, is_cluster_client
    from webhooks.deadletter import DeadLetters

    service = cfg.service
    redis = async_redis(service.redis, socket_timeout=5, socket_connect_timeout=5)
    letters = DeadLetters(redis, service.redis.key_prefix, cluster=is_cluster_client(redis))
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
