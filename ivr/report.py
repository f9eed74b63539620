"""``ivr report``: service level, speed of answer and abandonment per queue and interval.

Read from the events stream (``hotline:events``, schema in ``events``), so a
report covers every instance that shared the agent pool. The arithmetic is the routing core's
(:class:`routing.core.QueueStats`), so the report, the live ``/api/queues`` figures and the
simulator agree on what "answered in time" means.

Definitions (per queue, per interval):

- A call belongs to the interval in which it **entered the queue** (``ENTERQUEUE``), whatever
  the interval of its outcome; so ``offered`` = answered + abandoned + short abandons +
  overflowed + still waiting, in every row. A call overflowed into another queue is offered
  there again, as a call of that queue.
- **Answered** (``CONNECT``): its ``holdtime`` (queue entry to agent answer, ring time
  included) is the speed of answer; it counts *within* when ``holdtime <= within_s``.
- **Abandoned** (``ABANDON`` with a queue, in the queue or while an agent rang): callers who
  waited less than ``exclude_abandons_under_s`` are *short abandons*, left out of the service
  level and the abandonment rate. Hang-ups before any queue (welcome, menu) are counted
  apart (``abandoned_before_queue``).
- **Overflowed** (``EXITWITHTIMEOUT``): sent to the overflow destination; not answered in time.
- **Service level** = answered within / (answered + abandoned + overflowed).
- **Average speed of answer** (ASA) = mean ``holdtime`` of the answered calls.
- **Abandonment rate** = abandoned / (offered - short abandons).

Only the first outcome of a call in a queue counts (a caller who hangs up while being sent to
the operator produced ``EXITWITHTIMEOUT`` then ``ABANDON``: it is one overflowed call).
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import re
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from routing import core

RING_FAILURES = frozenset({"RINGNOANSWER", "RINGCANCELED", "RINGBUSY", "RINGUNAVAILABLE"})
OUTCOMES = frozenset({"CONNECT", "ABANDON", "EXITWITHTIMEOUT"})

READ_MARGIN_S = 3600.0
"""Events are read from this long before the report starts: a call that entered the queue
before ``--since`` is left out, and its ENTERQUEUE is needed to know that."""


# --------------------------------------------------------------------------- the arithmetic


@dataclass(frozen=True)
class Figures:
    """One queue over one interval (or the whole report, for the totals)."""

    queue: str
    start: float
    offered: int = 0
    stats: core.QueueStats = field(default_factory=core.QueueStats)
    answer_time_total: float = 0.0
    ring_failures: int = 0

    @property
    def service_level(self) -> float | None:
        return self.stats.service_level

    @property
    def asa_s(self) -> float | None:
        return self.answer_time_total / self.stats.answered if self.stats.answered else None

    @property
    def abandon_rate(self) -> float | None:
        counted = self.offered - self.stats.abandoned_short
        return self.stats.abandoned / counted if counted > 0 else None

    @property
    def waiting(self) -> int:
        s = self.stats
        return self.offered - s.answered - s.abandoned - s.abandoned_short - s.overflowed

    def as_dict(self) -> dict[str, Any]:
        s = self.stats
        return {
            "queue": self.queue,
            "start": iso(self.start),
            "offered": self.offered,
            "answered": s.answered,
            "answered_within": s.answered_within,
            "abandoned": s.abandoned,
            "abandoned_short": s.abandoned_short,
            "overflowed": s.overflowed,
            "still_waiting": self.waiting,
            "ring_failures": self.ring_failures,
            "service_level": _round(self.service_level, 4),
            "asa_s": _round(self.asa_s, 1),
            "abandon_rate": _round(self.abandon_rate, 4),
        }


@dataclass
class _QueueCall:
    """One call's stay in one queue, assembled from its events."""

    entered_at: float | None = None
    outcome: str | None = None
    wait_s: float = 0.0
    outcome_at: float = 0.0
    ring_failures: int = 0


@dataclass(frozen=True)
class Report:
    """Per queue: every interval of ``[start, end)`` (empty ones too) and the totals."""

    start: float
    end: float
    interval_s: float
    targets: Mapping[str, core.ServiceLevelTarget]
    intervals: Mapping[str, Sequence[Figures]]
    totals: Mapping[str, Figures]
    abandoned_before_queue: int = 0
    skipped_events: int = 0

    def active_queues(self) -> list[str]:
        return [q for q, t in self.totals.items() if t.offered]

    def as_dict(self) -> dict[str, Any]:
        return {
            "from": iso(self.start),
            "to": iso(self.end),
            "interval_s": self.interval_s,
            "queues": {
                name: {
                    **{k: v for k, v in totals.as_dict().items() if k not in ("queue", "start")},
                    "target": _target_dict(self.targets.get(name)),
                }
                for name, totals in self.totals.items()
            },
            "intervals": [
                row.as_dict()
                for name in self.active_queues()
                for row in self.intervals[name]
                if row.offered
            ],
            "abandoned_before_queue": self.abandoned_before_queue,
            "skipped_events": self.skipped_events,
        }


def compute_report(
    events: Iterable[Mapping[str, str]],
    targets: Mapping[str, core.ServiceLevelTarget],
    *,
    start: float,
    end: float,
    interval_s: float = 900.0,
) -> Report:
    """The report over ``events`` (stream entries as string maps, in stream order).

    ``targets``: the service-level target of each configured queue (every configured queue
    gets a row, even without calls; a queue seen in events but no longer configured is
    measured against the default target). ``start`` is aligned down to a multiple of
    ``interval_s`` (UTC), so 15-minute rows start at :00, :15, :30 and :45.
    """
    if interval_s <= 0:
        raise ValueError("the interval must be positive")
    if end <= start:
        raise ValueError("the report must end after it starts")
    start = math.floor(start / interval_s) * interval_s
    calls: dict[tuple[str, str], _QueueCall] = {}
    before_queue = 0
    skipped = 0
    for event in events:
        kind = event.get("kind", "")
        if kind not in OUTCOMES and kind != "ENTERQUEUE" and kind not in RING_FAILURES:
            continue
        at = parse_time(event.get("time", ""))
        call_id, queue = event.get("call_id", ""), event.get("queue", "")
        if at is None or not call_id:
            skipped += 1
            continue
        if not queue:
            if kind == "ABANDON" and start <= at < end:
                before_queue += 1
            continue
        call = calls.setdefault((call_id, queue), _QueueCall())
        if kind == "ENTERQUEUE":
            call.entered_at = at if call.entered_at is None else call.entered_at
        elif kind in RING_FAILURES:
            call.ring_failures += 1
        elif call.outcome is None:
            wait = _float(event.get("holdtime" if kind == "CONNECT" else "waittime"))
            if wait is None:
                skipped += 1
                continue
            call.outcome, call.wait_s, call.outcome_at = kind, wait, at

    count = max(1, math.ceil((end - start) / interval_s))
    names = list(dict.fromkeys([*targets, *sorted({q for _c, q in calls})]))
    rows = {q: [Figures(q, start + i * interval_s) for i in range(count)] for q in names}
    for (_call_id, queue), call in calls.items():
        entered = call.entered_at
        if entered is None:  # entered before the events read: derive it from the wait
            if call.outcome is None:
                continue
            entered = call.outcome_at - call.wait_s
        if not start <= entered < end:
            continue
        i = int((entered - start) // interval_s)
        target = targets.get(queue, core.ServiceLevelTarget())
        rows[queue][i] = _add(rows[queue][i], call, target)
    totals = {q: _sum(q, start, rows[q]) for q in names}
    return Report(
        start=start, end=end, interval_s=interval_s, targets=dict(targets), intervals=rows,
        totals=totals, abandoned_before_queue=before_queue, skipped_events=skipped,
    )


def _add(row: Figures, call: _QueueCall, target: core.ServiceLevelTarget) -> Figures:
    stats, answer_time = row.stats, row.answer_time_total
    if call.outcome == "CONNECT":
        stats, answer_time = stats.with_answer(call.wait_s, target), answer_time + call.wait_s
    elif call.outcome == "ABANDON":
        stats = stats.with_abandon(call.wait_s, target)
    elif call.outcome == "EXITWITHTIMEOUT":
        stats = stats.with_overflow()
    return Figures(
        queue=row.queue, start=row.start, offered=row.offered + 1, stats=stats,
        answer_time_total=answer_time, ring_failures=row.ring_failures + call.ring_failures,
    )


def _sum(queue: str, start: float, rows: Sequence[Figures]) -> Figures:
    s = [r.stats for r in rows]
    return Figures(
        queue=queue,
        start=start,
        offered=sum(r.offered for r in rows),
        stats=core.QueueStats(
            answered=sum(x.answered for x in s),
            answered_within=sum(x.answered_within for x in s),
            abandoned=sum(x.abandoned for x in s),
            abandoned_short=sum(x.abandoned_short for x in s),
            overflowed=sum(x.overflowed for x in s),
        ),
        answer_time_total=sum(r.answer_time_total for r in rows),
        ring_failures=sum(r.ring_failures for r in rows),
    )


# --------------------------------------------------------------------------- parsing


def parse_time(text: str) -> float | None:
    """``2026-11-28T12:00:00.000000Z`` (the stream's ``time``) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_interval(text: str) -> float:
    """``15m``, ``1h``, ``30s``, ``900`` (seconds) as seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match or float(match[1]) <= 0:
        raise ValueError(f"interval {text!r}: a positive number with s, m, h or d (e.g. 15m)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


def _target_dict(target: core.ServiceLevelTarget | None) -> dict[str, float] | None:
    if target is None:
        return None
    return {"percent": round(target.target * 100, 2), "within_s": target.threshold_s,
            "exclude_abandons_under_s": target.short_abandon_s}


# --------------------------------------------------------------------------- rendering


def render_png(report: Report) -> bytes:
    """Four panels sharing the time axis: offered, service level (with targets), ASA,
    abandonment rate; one colour per queue that had calls."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    queues = report.active_queues()
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True, constrained_layout=True)
    minutes = report.interval_s / 60
    fig.suptitle(
        f"Hotline queues, {_span(report.start, report.end)} UTC: "
        f"{minutes:g}-minute intervals, calls by the time they entered the queue",
        fontsize=12,
    )
    offered_ax, sl_ax, asa_ax, ab_ax = axes
    colours = plt.get_cmap("tab10")
    width_days = report.interval_s / 86400 * 0.8 / max(1, len(queues))
    for n, queue in enumerate(queues):
        colour = colours(n % 10)
        rows = report.intervals[queue]
        mids = [datetime.fromtimestamp(r.start + report.interval_s / 2, UTC) for r in rows]
        offset = (n - (len(queues) - 1) / 2) * width_days
        offered_ax.bar([mdates.date2num(m) + offset for m in mids], [r.offered for r in rows],
                       width=width_days, color=colour, label=queue)
        _line(sl_ax, mids, [_pct(r.service_level) for r in rows], colour, queue)
        target = report.targets.get(queue)
        if target is not None:
            sl_ax.axhline(target.target * 100, color=colour, linestyle="--", linewidth=1,
                          alpha=0.7)
        _line(asa_ax, mids, [r.asa_s for r in rows], colour, queue)
        _line(ab_ax, mids, [_pct(r.abandon_rate) for r in rows], colour, queue)
    offered_ax.set_ylabel("calls offered")
    offered_ax.yaxis.get_major_locator().set_params(integer=True)
    sl_ax.set_ylabel("service level %\n(dashed: target)")
    sl_ax.set_ylim(-5, 105)
    asa_ax.set_ylabel("avg speed of\nanswer (s)")
    asa_ax.set_ylim(bottom=0)
    ab_ax.set_ylabel("abandoned %")
    ab_ax.set_ylim(-5, 105)
    ab_ax.set_xlabel("UTC")
    ab_ax.set_xlim(datetime.fromtimestamp(report.start, UTC),
                   datetime.fromtimestamp(report.end, UTC))
    locator = mdates.AutoDateLocator()
    ab_ax.xaxis.set_major_locator(locator)
    ab_ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    for ax in axes:
        ax.grid(True, alpha=0.3)
    if queues:
        offered_ax.legend(loc="upper left", ncols=min(len(queues), 6), fontsize=9)
    else:
        offered_ax.text(0.5, 0.5, "no calls in this period", transform=offered_ax.transAxes,
                        ha="center", va="center", fontsize=14, color="grey")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _span(start: float, end: float) -> str:
    a, b = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    return f"{a:%Y-%m-%d %H:%M} to {b:%H:%M}" if a.date() == b.date() else (
        f"{a:%Y-%m-%d %H:%M} to {b:%Y-%m-%d %H:%M}")


def _line(ax: Any, x: Sequence[datetime], y: Sequence[float | None], colour: Any,
          label: str) -> None:
    # None leaves a gap: an interval without calls has no service level, not 0 %.
    ax.plot(x, [math.nan if v is None else v for v in y], marker="o", markersize=4,
            color=colour, label=label)


def _pct(value: float | None) -> float | None:
    return None if value is None else value * 100


def render_html(report: Report, png: bytes | None = None) -> str:
    """A self-contained page: the chart (embedded PNG) and the figures as tables."""
    png = render_png(report) if png is None else png
    head = ("<tr><th>queue</th><th>interval (UTC)</th><th>offered</th><th>answered</th>"
            "<th>within target</th><th>service level</th><th>ASA (s)</th><th>abandoned</th>"
            "<th>short abandons</th><th>overflowed</th><th>abandonment</th></tr>")

    def row(name: str, label: str, f: Figures) -> str:
        s = f.stats
        cells = [name, label, f.offered, s.answered, s.answered_within,
                 _fmt_pct(f.service_level), "" if f.asa_s is None else f"{f.asa_s:.1f}",
                 s.abandoned, s.abandoned_short, s.overflowed, _fmt_pct(f.abandon_rate)]
        return "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"

    totals = "".join(
        row(q, "total", t) for q, t in report.totals.items()
    )
    detail = "".join(
        row(q, iso(r.start), r)
        for q in report.active_queues() for r in report.intervals[q] if r.offered
    )
    targets = "".join(
        f"<li>{html.escape(q)}: {t.target * 100:g}% within {t.threshold_s:g} s, abandons "
        f"under {t.short_abandon_s:g} s not counted</li>"
        for q, t in report.targets.items()
    )
    title = f"Hotline queue report {iso(report.start)} to {iso(report.end)}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,td:nth-child(2){{text-align:left}}</style></head><body>
<h1>{html.escape(title)}</h1>
<img alt="service level, speed of answer and abandonment per interval"
 src="data:image/png;base64,{base64.b64encode(png).decode()}">
<h2>Totals</h2><table>{head}{totals}</table>
<p>Callers who hung up before reaching a queue: {report.abandoned_before_queue}</p>
<h2>Targets</h2><ul>{targets}</ul>
<h2>Per interval</h2><table>{head}{detail}</table>
<p>Calls count in the interval in which they entered the queue. Service level = answered
within target / (answered + abandoned + overflowed); abandonment = abandoned / (offered -
short abandons).</p>
</body></html>
"""


def _fmt_pct(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.1f}%"


# --------------------------------------------------------------------------- I/O edge


def read_events(redis: Any, key: str, since: float, until: float,
                batch: int = 10_000) -> list[dict[str, str]]:
    """Stream entries received between ``since - READ_MARGIN_S`` and ``until`` (sync
    redis-py client), decoded, in stream order."""
    low = f"{int((since - READ_MARGIN_S) * 1000)}-0"
    high = f"{int(until * 1000)}-999999"
    out: list[dict[str, str]] = []
    while True:
        rows = redis.xrange(key, min=low, max=high, count=batch)
        for _entry_id, fields in rows:
            out.append({_text(k): _text(v) for k, v in fields.items()})
        if len(rows) < batch:
            return out
        low = "(" + _text(rows[-1][0])


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class ReportOptions:
    since: float
    until: float
    interval_s: float
    out: Path | None
    redis_url: str
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
        redis_url=args.redis or cfg.service.redis.url,
        key=stream_key(cfg.service.redis.key_prefix),
        targets={name: q.service_level for name, q in cfg.routing.queues.items()},
    )


def main(args: argparse.Namespace) -> int:
    """Read, compute, write the chart (``.png`` or ``.html``), print the JSON summary."""
    import redis as redis_sync

    from ivr.config import ConfigError

    try:
        opts = options_from_args(args)
    except ConfigError as exc:
        print("ivr report: " + "\n  ".join(exc.problems), file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"ivr report: {exc}", file=sys.stderr)
        return 2
    if opts.out is not None and opts.out.suffix.lower() not in (".png", ".html", ".htm"):
        print(f"ivr report: --out {opts.out}: write .png or .html", file=sys.stderr)
        return 2
    client = redis_sync.Redis.from_url(opts.redis_url, socket_timeout=10,
                                       socket_connect_timeout=5)
    try:
        events = read_events(client, opts.key, opts.since, opts.until)
    except redis_sync.RedisError as exc:
        print(f"ivr report: cannot read {opts.key} from {opts.redis_url}: {exc}",
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
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--since", help="start time, ISO-8601 (UTC unless an offset is given)")
    when.add_argument("--hours", type=float, default=24.0,
                      help="the last N hours (default 24)")
    parser.add_argument("--interval", default="15m", help="interval length: 15m, 1h, 30s ...")
    parser.add_argument("--out", help="write the chart: report.png or report.html")
    parser.add_argument("--redis", help="Redis URL (default: service.yaml redis.url)")
