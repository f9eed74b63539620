"""``ivr keys init|check|rotate|migrate-orders``: the master key and the data keys it wraps.

- ``init`` prints a new master key as a key-file line (``version:base64``); nothing else is
  touched. Put it first in the key file (or in ``HOTLINE_MASTER_KEY``), keep the old line.
- ``check`` opens every data key in Redis with the configured master keys; exit 1 if one
  does not open.
- ``rotate`` re-wraps every data key under the newest master key (no personal data is
  re-encrypted); atomic per key and safe to run again. Drop the old key after ``check``.
- ``migrate-orders`` seals the personal fields of work orders written before encryption.

Exit codes: 0 done, 1 a key did not open, 2 no usable master key or config.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any, TextIO

from privacy.datakeys import DataKeys
from privacy.keys import KeyRing, PrivacyError, key_file_line

EXIT_FAILED = 1
EXIT_NO_KEY = 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="keys_command", required=True)
    init = sub.add_parser("init", help="print a new master key line for the key file")
    init.add_argument("--key-version", help="the key's version (default: the UTC time)")
    sub.add_parser("check", help="verify that every wrapped data key opens")
    sub.add_parser("rotate", help="re-wrap every data key under the newest master key")
    sub.add_parser(
        "migrate-orders", help="seal the personal fields of orders written before encryption"
    )


def main(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    if args.keys_command == "init":
        print(key_file_line(args.key_version), file=out)
        print("# the newest key goes first in the key file; keep it readable by its owner only "
              "(chmod 600)", file=err)
        return 0
    from ivr.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
        ring = KeyRing.load(key_file=cfg.service.keys.master_key_file)
    except ConfigError as exc:
        print(str(exc), file=err)
        return EXIT_NO_KEY
    except PrivacyError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_NO_KEY
    target, prefix = cfg.service.redis, cfg.service.redis.key_prefix

    async def run() -> int:
        from hotline.redisclient import async_redis

        redis = async_redis(target, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            if args.keys_command == "check":
                return await check(redis, ring, prefix, out)
            if args.keys_command == "rotate":
                return await rotate(redis, ring, prefix, out)
            return await migrate_orders(redis, ring, prefix, out)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(run())
    except PrivacyError as exc:
        print(f"error: {exc}", file=err)
        return EXIT_FAILED


async def check(redis: Any, ring: KeyRing, prefix: str, out: TextIO) -> int:
    """Open every data key; print one line per key and a count."""
    report = await DataKeys(redis, ring, prefix=prefix).check()
    for name, master in report.opened.items():
        print(f"ok      {name} (master key {master})", file=out)
    summary = (f"{len(report.opened)} data key(s) open, {len(report.failed)} failed "
               f"(key ring: {ring.source}, versions {', '.join(ring.versions)})")
    return _finish(report.failed, summary, out)


async def rotate(redis: Any, ring: KeyRing, prefix: str, out: TextIO) -> int:
    """Re-wrap every data key under the newest master key; print the counts."""
    report = await DataKeys(redis, ring, prefix=prefix).rotate()
    summary = (f"master key {report.master_version}: {len(report.rewrapped)} data key(s) "
               f"re-wrapped, {len(report.current)} already current, {len(report.failed)} failed")
    return _finish(report.failed, summary, out)


def _finish(failed: dict[str, str], summary: str, out: TextIO) -> int:
    """Print each failed data key with its reason, then the summary; the exit code."""
    for name, reason in failed.items():
        print(f"FAILED  {name}: {reason}", file=out)
    print(summary, file=out)
    return EXIT_FAILED if failed else 0


async def migrate_orders(redis: Any, ring: KeyRing, prefix: str, out: TextIO) -> int:
    """Seal what plaintext orders still hold; print the counts."""
    from privacy.fields import FieldCipher
    from workorders.migrate import seal_plaintext_orders

    cipher = await FieldCipher.load(DataKeys(redis, ring, prefix=prefix))
    sealed, already = await seal_plaintext_orders(redis, cipher, prefix=prefix)
    print(f"{sealed} order(s) sealed, {already} already sealed", file=out)
    return 0
