"""``ivr audit verify|list``: check the audit chain, read the audit log.

Reading the audit log is itself audited: each command first records an ``audit.read`` entry
(role ``auditor``) for the user named by ``--as``, by default the operating-system user, and
reads nothing when that entry cannot be written. (Once the CLI carries a token, the identity
comes from the token instead.)

Exit codes: 0 done (``verify``: the chain is intact), 1 ``verify`` found something, 2 a bad
command line or config, or the ``audit.read`` entry could not be written, 3 Redis unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from audit.chain import Action, Fields, parse_time
from audit.log import UNREACHABLE, AuditLog, AuditUnavailable
from audit.reading import Filters, entries, verify

EXIT_BROKEN = 1
EXIT_BAD_REQUEST = 2
EXIT_UNREACHABLE = 3

CLI_ADDRESS = "local"
"""The ``address`` of entries written by the command line."""


class AuditCommandError(Exception):
    """The command failed; ``exit_code`` says how (see the module docstring)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="audit_command", required=True)
    check = sub.add_parser("verify", help="recompute the hash chain; check the mirror files")
    check.add_argument(
        "--mirror", action="append", default=None, metavar="DIR",
        help="an audit directory to check against the stream (repeatable; "
        "default: this config's audit.dir)",
    )
    show = sub.add_parser("list", help="audit entries, oldest first, with filters")
    show.add_argument("--user", help="who")
    show.add_argument("--action", choices=[a.value for a in Action], help="what was done")
    show.add_argument("--object", dest="obj", help="which object (a trailing * matches a prefix)")
    show.add_argument("--since", help="from this ISO-8601 date or time (UTC unless given)")
    show.add_argument("--until", help="before this ISO-8601 date or time")
    show.add_argument("--limit", type=int, help="only the newest N matching entries")
    for command in (check, show):
        command.add_argument("--json", action="store_true", help="JSON output")
        command.add_argument(
            "--as", dest="as_user", help="who reads, for the audit.read entry (default: you)"
        )


def filters_of(args: argparse.Namespace) -> Filters:
    """``list``'s filters; :class:`AuditCommandError` for a bad time or limit."""
    bounds: dict[str, float | None] = {}
    for name in ("since", "until"):
        value = getattr(args, name)
        try:
            bounds[name] = parse_time(value) if value else None
        except ValueError:
            raise AuditCommandError(
                f"--{name} {value!r}: an ISO-8601 date or time, e.g. 2026-11-28T09:00Z",
                EXIT_BAD_REQUEST,
            ) from None
    if args.limit is not None and args.limit < 1:
        raise AuditCommandError("--limit: at least 1", EXIT_BAD_REQUEST)
    return Filters(
        user=args.user, action=args.action, obj=args.obj,
        since=bounds["since"], until=bounds["until"], limit=args.limit,
    )


async def run(
    args: argparse.Namespace,
    audit_log: AuditLog,
    redis: Redis,
    *,
    now: float,
    mirrors: list[Path],
    out: TextIO = sys.stdout,
) -> int:
    """Record the ``audit.read``, then carry out the command; its exit code. Raises
    :class:`AuditCommandError`."""
    filters = filters_of(args) if args.audit_command == "list" else None
    reader = args.as_user or getpass.getuser()
    details = {"command": args.audit_command}
    if filters is not None:
        details.update(
            (name, str(value)) for name, value in vars(filters).items() if value is not None
        )
    try:
        await audit_log.record(
            user=reader, role="auditor", action=Action.AUDIT_READ, obj="audit",
            address=CLI_ADDRESS, now=now, details=details,
        )
    except AuditUnavailable as exc:
        raise AuditCommandError(f"refused, the audit.read entry was not written: {exc}",
                                EXIT_BAD_REQUEST) from None
    try:
        if filters is not None:
            listed = await entries(redis, audit_log.prefix, filters)
            _print_entries(listed, args.json, out)
            return 0
        result = await verify(redis, audit_log.prefix, args.mirror or mirrors)
    except UNREACHABLE as exc:
        raise AuditCommandError(f"redis unreachable: {exc}", EXIT_UNREACHABLE) from None
    if args.json:
        print(json.dumps({
            "intact": result.intact, "entries": result.entries,
            "findings": [vars(f) for f in result.findings],
            "waiting": [vars(f) for f in result.waiting],
        }, ensure_ascii=False), file=out)
    else:
        for note in result.waiting:
            print(f"note: {note}", file=out)
        if result.intact:
            print(f"audit chain intact: {result.entries} entries", file=out)
        else:
            print(f"audit chain BROKEN: {len(result.findings)} finding(s) in "
                  f"{result.entries} entries, the first first:", file=out)
            for finding in result.findings:
                print(f"  {finding}", file=out)
    return 0 if result.intact else EXIT_BROKEN


def _print_entries(listed: list[tuple[str, Fields]], as_json: bool, out: TextIO) -> None:
    if as_json:
        for stream_id, fields in listed:
            print(json.dumps({"stream_id": stream_id, **fields}, ensure_ascii=False), file=out)
        return
    print(f"{'TIME':<28}{'USER':<14}{'ROLE':<12}{'ACTION':<18}{'OBJECT':<20}{'ADDRESS':<16}"
          "REASON", file=out)
    for _, fields in listed:
        row = {name: _printable(fields.get(name, "")) for name in
               ("time", "user", "role", "action", "object", "address", "reason")}
        print(f"{row['time']:<28}{row['user']:<14}{row['role']:<12}{row['action']:<18}"
              f"{row['object']:<20}{row['address']:<16}{row['reason']}".rstrip(), file=out)


def _printable(value: str) -> str:
    """Control characters escaped: a stated reason must not move the operator's cursor."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in value)


def main(
    args: argparse.Namespace,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    from hotline.redisclient import async_redis
    from ivr.config import ConfigError, load_config

    try:
        service = load_config(args.config, environ).service
    except ConfigError as exc:
        print(f"ivr audit: {exc}", file=err)
        return EXIT_BAD_REQUEST

    async def session() -> int:
        redis: Redis = async_redis(service.redis, socket_timeout=5, socket_connect_timeout=5)
        try:
            audit_log = AuditLog.from_config(redis, service)
            return await run(args, audit_log, redis, now=time.time(),
                             mirrors=[Path(audit_log.directory)], out=out)
        finally:
            await redis.aclose()

    try:
        return asyncio.run(session())
    except AuditCommandError as exc:
        print(f"ivr audit: {exc}", file=err)
        return exc.exit_code
    except (OSError, redis_errors.RedisError) as exc:
        print(f"ivr audit: {exc}", file=err)
        return EXIT_UNREACHABLE
