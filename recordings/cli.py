"""``ivr recordings list|get|hold|release|purge|rewrap``: the recordings from the command line.

The command line acts as ops (it holds the master key) for the user named by ``--as``, by
default the operating-system user; every access states a ``--reason`` and is written to the
audit log first, like the API's. ``get`` writes the decrypted audio only where it is told
(``--output FILE`` or ``-`` for standard output), never to a file of its own.

Exit codes: 0 done, 1 no such recording or it does not open, 2 a bad command line, config or
key, 3 Redis or the recordings' object store (``storage.kind: s3``) unreachable.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
import time
from typing import Any, BinaryIO, TextIO

from redis import exceptions as redis_errors

from access import AccessDenied, Identity, Role
from recordings.library import RecordingNotFound, RecordingUnreadable, Requester
from recordings.metadata import iso
from recordings.purge import purge, rewrap
from recordings.storage import StorageUnavailable

EXIT_NOT_FOUND = 1
EXIT_BAD = 2
EXIT_UNREACHABLE = 3
CLI_ADDRESS = "local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="recordings_command", required=True)

    def access(p: argparse.ArgumentParser) -> None:
        p.add_argument("--reason", required=True, help="why (written to the audit log)")
        p.add_argument("--as", dest="as_user", help="who (default: the operating-system user)")

    show = sub.add_parser("list", help="the newest recordings' metadata")
    show.add_argument("--agent")
    show.add_argument("--call", dest="call_id")
    show.add_argument("--order", dest="order_id",
                      help="a work order's recordings: its call's and its callbacks'")
    show.add_argument("--limit", type=int, default=50)
    show.add_argument("--json", action="store_true")
    access(show)
    get = sub.add_parser("get", help="one recording: metadata, or its decrypted audio")
    get.add_argument("recording_id")
    get.add_argument("--output", help="write the decrypted audio to FILE ('-': stdout)")
    access(get)
    for name, text in (("hold", "put a recording on legal hold (no deletion)"),
                       ("release", "release a recording's legal hold")):
        p = sub.add_parser(name, help=text)
        p.add_argument("recording_id")
        access(p)
    pur = sub.add_parser("purge", help="delete (crypto-erase) what retention no longer keeps")
    pur.add_argument("--dry-run", action="store_true", help="count and list, delete nothing")
    pur.add_argument("--as", dest="as_user")
    sub.add_parser("rewrap", help="re-wrap every data key under the newest master key")


def main(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None,
         audio_out: BinaryIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    from ivr.config import ConfigError, load_config

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(str(exc), file=err)
        return EXIT_BAD
    try:
        return asyncio.run(_run(args, cfg, out, err, audio_out))
    except StorageUnavailable as exc:  # a ConnectionError too: name the store, not Redis
        print(f"error: recordings object store unreachable: {exc}", file=err)
        return EXIT_UNREACHABLE
    except (redis_errors.ConnectionError, redis_errors.TimeoutError, OSError) as exc:
        print(f"error: Redis unreachable: {exc}", file=err)
        return EXIT_UNREACHABLE


async def _run(args: argparse.Namespace, cfg: Any, out: TextIO, err: TextIO,
               audio_out: BinaryIO | None) -> int:
    from access.teams import team_of
    from audit.log import AuditLog
    from hotline.redisclient import async_redis
    from recordings.wiring import build_recordings
    from workorders.buckets import Buckets

    svc = cfg.service
    redis = async_redis(svc.redis, socket_timeout=5.0, socket_connect_timeout=5.0)
    routing = cfg.routing
    recs = build_recordings(
        cfg.recordings, redis=redis, prefix=svc.redis.key_prefix, spool_dir=svc.spool_dir,
        key_file=svc.keys.master_key_file, audit=AuditLog.from_config(redis, svc),
        teams=lambda agent: team_of(routing, agent),
        members=lambda team: [a for a, p in routing.agents.items() if p.team == team],
        clock=time.time,
        order_key=Buckets.of(redis, cfg.workorders.store.buckets, svc.redis.key_prefix).order_key,
    )
    try:
        return await _command(args, recs, out, err, audio_out)
    except (RecordingNotFound, RecordingUnreadable) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_NOT_FOUND
    except (AccessDenied, ValueError) as exc:
        print(f"error: {exc}", file=err)
        return EXIT_BAD
    finally:
        await redis.aclose()


async def _command(args: argparse.Namespace, recs: Any, out: TextIO, err: TextIO,
                   audio_out: BinaryIO | None) -> int:
    command = args.recordings_command
    user = getattr(args, "as_user", None) or getpass.getuser()
    now = time.time()
    if command == "purge":
        report = await purge(recs.catalog, recs.storage, recs.config.retention, now,
                             dry_run=args.dry_run, by=f"ivr recordings purge ({user})")
        for rid in report.due:
            print(("due     " if args.dry_run else "deleted ") + rid, file=out)
        verb = "due for deletion" if args.dry_run else "deleted"
        print(f"{report.checked} checked, {len(report.due)} {verb}, {report.held} on legal "
              f"hold, {report.kept} kept", file=out)
        if not args.dry_run:
            await recs.library.audit.record(
                user=user, role=Role.OPS.value, action="recording.purge", obj="recordings",
                address=CLI_ADDRESS, now=now, details={"deleted": str(len(report.due))})
        return 0
    if command == "rewrap":
        done = await rewrap(recs.catalog, recs.vault)
        for rid, reason in done.failed.items():
            print(f"FAILED  {rid}: {reason}", file=out)
        print(f"{done.rewrapped} re-wrapped, {done.current} already current, "
              f"{len(done.failed)} failed", file=out)
        return 1 if done.failed else 0
    who = Requester(Identity(user, Role.OPS), CLI_ADDRESS, now, args.reason)
    library = recs.library
    if command == "list":
        found = await library.list(who, agent=args.agent, call_id=args.call_id,
                                   limit=args.limit, order_id=args.order_id)
        for meta in found:
            if args.json:
                print(json.dumps(meta.shown()), file=out)
            else:
                hold = "  HOLD" if meta.legal_hold else ""
                leg = "  callback" if meta.leg == "callback" else ""
                print(f"{meta.recording_id}  {iso(meta.started_at)}  {meta.agent:<10} "
                      f"{meta.queue:<12} {meta.duration_seconds:7.1f}s{hold}{leg}", file=out)
        return 0
    if command == "get":
        if args.output is None:
            print(json.dumps((await library.metadata(who, args.recording_id)).shown(),
                             indent=2), file=out)
            return 0
        playback = await library.open(who, args.recording_id)
        if args.output == "-":
            sink = audio_out or sys.stdout.buffer
            for chunk in playback.chunks():
                sink.write(chunk)
            sink.flush()
        else:
            with open(args.output, "xb") as file:  # never over an existing file
                for chunk in playback.chunks():
                    file.write(chunk)
            print(f"{args.output}: {len(playback.audio)} bytes ({playback.meta.media_type})",
                  file=err)
        return 0
    held = command == "hold"
    meta = await (library.hold if held else library.release)(who, args.recording_id)
    print(f"{meta.recording_id}: {'on legal hold' if meta.legal_hold else 'released'}",
          file=out)
    return 0
