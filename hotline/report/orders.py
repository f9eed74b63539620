"""``ivr report orders``: work-order KPIs per day, queue, category, urgency and agent.

The figures are :mod:`workorders.kpi`'s (definitions there and in the README), computed from
the orders created in the period (``wo:index``, read by ``WorkOrderStore.created_between``)
and their clocks at the time of the report. The report never opens personal data: the orders
are read with :class:`SealedView`, which leaves the caller's fields sealed.

``--from`` and ``--to`` are UTC days (``2026-03-02``; ``--to`` included) or ISO-8601 times;
without them, today (UTC). Output: a table per day for people, ``--json`` the whole report
(every group), ``--chart FILE`` a PNG (matplotlib, the ``charts`` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hotline.report.compute import parse_time
from hotline.report.render import ChartsUnavailable, require_charts
from workorders.clocks import ClockPolicy
from workorders.kpi import KpiReport, compute_kpis

if TYPE_CHECKING:
    from hotline.redisclient import RedisTarget

DAY = 86400.0


class SealedView:
    """A ``workorders.personal.FieldCipher`` that opens nothing: sealed fields stay sealed.
    What a reader needs that counts orders and never shows who called."""

    def seal(self, owner: str, field: str, value: str) -> str:
        raise RuntimeError("a sealed view writes nothing")

    def open(self, owner: str, field: str, text: str) -> str:
        return text

    def blind_index(self, number: str) -> str | None:
        return None

    def is_sealed(self, text: str) -> bool:
        return True


def period(start: str | None, end: str | None, now: float) -> tuple[float, float]:
    """``[start, end)`` from the options: days are whole UTC days (``--to`` included)."""

    def bound(text: str, *, upper: bool) -> float:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            moment = parse_time(text)
            if moment is None:
                raise ValueError(f"{text!r}: a day (2026-03-02) or an ISO-8601 time") from None
            return moment
        at = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return (at + timedelta(days=1) if upper else at).timestamp()

    today = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0,
                                                     microsecond=0).timestamp()
    low = bound(start, upper=False) if start else today
    high = bound(end, upper=True) if end else max(low, today) + DAY
    if high <= low:
        raise ValueError("--to must not be before --from")
    return low, high


async def read_report(redis: Any, prefix: str, policy: ClockPolicy, start: float, end: float,
                      now: float) -> KpiReport:
    """The KPIs of the orders created in ``[start, end)``, read from Redis."""
    from workorders.store import WorkOrderStore

    with tempfile.TemporaryDirectory(prefix="hotline-report-") as spool:
        # A spool of its own: the report never replays the service's.
        store = WorkOrderStore(redis, spool, cipher=SealedView(), prefix=prefix)
        orders = await store.created_between(start, end)
    return compute_kpis(orders, policy, start=start, end=end, now=now)


async def today_report(store: Any, policy: ClockPolicy, now: float) -> KpiReport:
    """The KPIs of the orders created today (UTC) up to ``now``, read through ``store``'s
    ``created_between`` (the service's own store): /metrics' gauges."""
    start = datetime.fromtimestamp(now, UTC).replace(hour=0, minute=0, second=0,
                                                     microsecond=0).timestamp()
    orders = await store.created_between(start, start + DAY)
    return compute_kpis(orders, policy, start=start, end=start + DAY, now=now)


COLUMNS = (
    ("created", "created", "{}"),
    ("assign %", "assignment_within_target_pct", "{:.1f}"),
    ("respond %", "response_within_target_pct", "{:.1f}"),
    ("resolve p50 h", "resolution_p50_s", "{:.1f}"),
    ("p90 h", "resolution_p90_s", "{:.1f}"),
    ("FCR %", "first_contact_resolution_pct", "{:.1f}"),
    ("reopen %", "reopen_pct", "{:.1f}"),
    ("repeat %", "repeat_contact_pct", "{:.1f}"),
    ("CSAT", "csat_average", "{:.2f}"),
    ("NPS", "nps", "{:.0f}"),
)


def table(report: dict[str, Any]) -> str:
    """The days and the total as a text table (hours for resolution times)."""
    rows = [("day", *(title for title, _, _ in COLUMNS))]
    for label, row in [*((d["day"], d) for d in report["days"]), ("total", report["total"])]:
        cells = []
        for _, key, fmt in COLUMNS:
            value = row[key]
            if value is not None and key.startswith("resolution_"):
                value = value / 3600
            cells.append("-" if value is None else fmt.format(value))
        rows.append((label, *cells))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.rjust(w) if i else cell.ljust(w) for i, (cell, w) in
                  enumerate(zip(row, widths, strict=True)))
        for row in rows
    )


@dataclass(frozen=True)
class OrdersReportOptions:
    start: float
    end: float
    as_json: bool
    chart: Path | None
    redis: RedisTarget  # --redis's URL, else service.yaml's redis section
    prefix: str
    policy: ClockPolicy


def options_from_args(args: argparse.Namespace, now: float) -> OrdersReportOptions:
    from ivr.config import load_config

    cfg = load_config(args.config)
    start, end = period(args.start, args.end, now)
    return OrdersReportOptions(
        start=start, end=end, as_json=args.json, chart=Path(args.chart) if args.chart else None,
        redis=args.redis or cfg.service.redis, prefix=cfg.service.redis.key_prefix,
        policy=cfg.workorders.clock_policy(),
    )


def main(args: argparse.Namespace) -> int:
    """Read the period's orders, compute, print (table or JSON), write the chart."""
    from redis import exceptions as redis_errors

    from hotline.redisclient import async_redis, describe
    from ivr.config import ConfigError

    now = time.time()
    try:
        opts = options_from_args(args, now)
    except ConfigError as exc:
        print("ivr report orders: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ivr report orders: {exc}", file=sys.stderr)
        return 2
    if opts.chart is not None:
        if opts.chart.suffix.lower() != ".png":
            print(f"ivr report orders: --chart {opts.chart}: write a .png", file=sys.stderr)
            return 2
        try:
            require_charts()
        except ChartsUnavailable as exc:
            print(f"ivr report orders: --chart {opts.chart}: {exc}", file=sys.stderr)
            return 2

    async def read() -> KpiReport:
        client = async_redis(opts.redis, socket_timeout=30, socket_connect_timeout=5)
        try:
            return await read_report(client, opts.prefix, opts.policy, opts.start, opts.end,
                                     now)
        finally:
            await client.aclose()

    try:
        report = asyncio.run(read())
    except (redis_errors.RedisError, OSError) as exc:
        print(f"ivr report orders: cannot read the work orders from {describe(opts.redis)}: {exc}",
              file=sys.stderr)
        return 3
    data = report.as_dict()
    if opts.chart is not None:
        from hotline.report.orders_chart import render_orders_png

        opts.chart.write_bytes(render_orders_png(report))
        data["chart"] = str(opts.chart)
    if opts.as_json:
        json.dump(data, sys.stdout, indent=2)
        print()
    else:
        print(f"Work orders created {data['from']} to {data['to']} (UTC), figures at "
              f"{data['at']}:")
        print(table(data))
    return 0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``ivr report orders``'s options."""
    parser.add_argument("--from", dest="start", help="first day (2026-03-02, UTC) or ISO time "
                        "(default: today)")
    parser.add_argument("--to", dest="end", help="last day, included, or ISO time (end)")
    parser.add_argument("--json", action="store_true", help="the whole report as JSON "
                        "(per queue, category, urgency and agent too)")
    parser.add_argument("--chart", help="write a chart of the days: report.png")
    parser.add_argument("--redis", help="Redis URL (default: service.yaml redis.url)")
