"""``ivr report``'s command line: options resolved against the config, the stream read, the
report computed, the chart written, the JSON summary printed."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from hotline.report.compute import compute_report, parse_time
from hotline.report.render import ChartsUnavailable, render_html, render_png, require_charts
from hotline.report.stream import read_events
from routing import core

if TYPE_CHECKING:
    from hotline.redisclient import RedisTarget


def parse_interval(text: str) -> float:
    """``15m``, ``1h``, ``30s``, ``900`` (seconds) as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"interval {text!r}: a positive number with s, m, h or d (e.g. 15m)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


@dataclass
class ReportOptions:
    """The command line resolved: the period, the output, where the stream is, the targets."""

    since: float
    until: float
    interval_s: float
    out: Path | None
    redis: RedisTarget  # --redis's URL, else service.yaml's redis section
    key: str
    targets: dict[str, core.ServiceLevelTarget] = field(default_factory=dict)


def options_from_args(args: argparse.Namespace, now: float | None = None) -> ReportOptions:
    """Resolve the command line against the config (targets, Redis URL, key prefix)."""
    from events import stream_key
    from ivr.config import load_config

    now = time.time() if now is None else now
    cfg = load_config(args.config)
    if args.since:
        since = parse_time(args.since)
        if since is None:
            raise ValueError(f"--since {args.since!r}: not an ISO-8601 time")
    else:
        since = now - args.hours * 3600
    return ReportOptions(
        since=since,
        until=now,
        interval_s=parse_interval(args.interval),
        out=Path(args.out) if args.out else None,
        redis=args.redis or cfg.service.redis,
        key=stream_key(cfg.service.redis.key_prefix),
        targets={name: q.service_level for name, q in cfg.routing.queues.items()},
    )


def main(args: argparse.Namespace) -> int:
    """Read, compute, write the chart (``.png`` or ``.html``), print the JSON summary."""
    import redis as redis_sync

    from hotline.redisclient import describe, sync_redis
    from ivr.config import ConfigError

    try:
        opts = options_from_args(args)
    except ConfigError as exc:
        print("ivr report: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ivr report: {exc}", file=sys.stderr)
        return 2
    if opts.out is not None:
        if opts.out.suffix.lower() not in (".png", ".html", ".htm"):
            print(f"ivr report: --out {opts.out}: write .png or .html", file=sys.stderr)
            return 2
        try:  # before reading the stream, which may take a while
            require_charts()
        except ChartsUnavailable as exc:
            print(f"ivr report: --out {opts.out}: {exc}", file=sys.stderr)
            return 2
    client = sync_redis(opts.redis, socket_timeout=10, socket_connect_timeout=5)
    try:
        events = read_events(client, opts.key, opts.since, opts.until)
    except redis_sync.RedisError as exc:
        print(f"ivr report: cannot read {opts.key} from {describe(opts.redis)}: {exc}",
              file=sys.stderr)
        return 3
    finally:
        client.close()
    report = compute_report(events, opts.targets, start=opts.since, end=opts.until,
                            interval_s=opts.interval_s)
    summary = report.as_dict()
    summary["events_read"] = len(events)
    if opts.out is not None:
        png = render_png(report)
        if opts.out.suffix.lower() == ".png":
            opts.out.write_bytes(png)
        else:
            opts.out.write_text(render_html(report, png), encoding="utf-8")
        summary["output"] = str(opts.out)
    json.dump(summary, sys.stdout, indent=2)
    print()
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ivr report``'s options (``hotline.cli`` builds the parser)."""
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", help="start time, ISO-8601 (UTC unless an offset is given)")
    when.add_argument("--hours", type=float, default=24.0,
                      help="the last N hours (default 24)")
    parser.add_argument("--interval", default="15m", help="interval length: 15m, 1h, 30s ...")
    parser.add_argument("--out", help="write the chart: report.png or report.html")
    parser.add_argument("--redis", help="Redis URL (default: service.yaml redis.url)")
    # `ivr report orders`: the work-order KPIs (without a subcommand: the queue report).
    sub = parser.add_subparsers(dest="report_command", metavar="{orders}")
    from hotline.report import orders

    p = sub.add_parser("orders", help="work-order KPIs per day, queue, category, urgency, "
                       "agent")
    orders.add_arguments(p)
    p.set_defaults(func=orders.main)
