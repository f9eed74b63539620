"""The report's arithmetic, pure: stream events in, per-queue figures per interval out.

The definitions (offered, answered within target, short abandons, ...) are in
:mod:`hotline.report`; the counting is the routing core's (:class:`routing.core.QueueStats`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from routing import core

RING_FAILURES = frozenset({"RINGNOANSWER", "RINGCANCELED", "RINGBUSY", "RINGUNAVAILABLE"})
OUTCOMES = frozenset({"CONNECT", "ABANDON", "EXITWITHTIMEOUT"})

#: One figure of :meth:`Figures.as_dict` / :meth:`Report.as_dict` (JSON-ready).
FigureValue = str | int | float | None


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

    def as_dict(self) -> dict[str, FigureValue]:
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

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data: the totals per queue, the intervals with calls."""
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
    totals = {q: queue_totals(q, start, rows[q]) for q in names}
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


def queue_totals(queue: str, start: float, rows: Sequence[Figures]) -> Figures:
    """A queue's figures summed over its intervals: the report's totals, and the screens'
    tally's."""
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


def parse_time(text: str) -> float | None:
    """``2026-11-28T12:00:00.000000Z`` (the stream's ``time``) as epoch seconds."""
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


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
