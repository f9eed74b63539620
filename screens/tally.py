"""Today's figures kept up to date event by event, instead of ``ivr report``'s arithmetic over
the whole day every second.

:class:`TodayTally` follows each call's stay in a queue as :func:`hotline.report.compute.
compute_report` assembles it (the same rules: the first outcome counts, ring failures add up,
a call whose entry was not read is placed by its outcome's time less its wait), and keeps the
report's rows per queue and interval. An event marks its call's row (and the row it left, when
a late ``ENTERQUEUE`` moves it) to be made again; a row is made by ``compute_report`` itself
over that row's calls, so the arithmetic stays the report's and a day of events is not read
again. At start (and at midnight, and when the config changes) a tally reads the day's events
once; the from-scratch report (:func:`screens.board.today_figures`) stays the check: over the
same events both give equal reports (``tests/unit/test_screens_tally.py``).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hotline.report.compute import (
    OUTCOMES,
    RING_FAILURES,
    Figures,
    Report,
    compute_report,
    parse_time,
    queue_totals,  # the report's own totals of a queue's rows
)
from routing import core

#: The kinds the report counts (the others are passed over, as it passes them over).
REPORTED_KINDS = OUTCOMES | RING_FAILURES | {"ENTERQUEUE"}

__all__ = ["TodayTally"]

_Key = tuple[str, str]  # (call id, queue)
_Row = tuple[str, int]  # (queue, interval index)


@dataclass
class _Stay:
    """One call's stay in one queue as read so far, and its events (to make its row)."""

    seq: int  # first seen: the order the report adds calls in (float sums agree)
    entered_at: float | None = None
    outcome: bool = False
    outcome_at: float = 0.0
    wait_s: float = 0.0
    events: list[Mapping[str, str]] = field(default_factory=list)
    row: _Row | None = None

    def entered(self) -> float | None:
        if self.entered_at is not None:
            return self.entered_at
        return self.outcome_at - self.wait_s if self.outcome else None


class TodayTally:
    """Today's report (``start``: the day's start, rows of ``interval_s``), event by event."""

    def __init__(self, targets: Mapping[str, core.ServiceLevelTarget], *, start: float,
                 interval_s: float) -> None:
        self.targets = dict(targets)
        self.interval_s = interval_s
        self.start = math.floor(start / interval_s) * interval_s
        self.seen = 0  # how many events were added (the caller's place in its list)
        self._stays: dict[_Key, _Stay] = {}
        self._rows: dict[_Row, dict[_Key, None]] = {}  # the stays each row counts
        self._made: dict[_Row, Figures] = {}  # the rows made, with every stay in them counted
        self._queues: set[str] = set()
        self._before_queue: list[float] = []  # abandons before any queue, their times sorted
        self._skipped = 0

    def add(self, events: Iterable[Mapping[str, str]]) -> None:
        """Reported events, in stream order (the kinds ``compute_report`` reads; others are
        passed over as it passes them over)."""
        for event in events:
            self.seen += 1
            self._add(event)

    def _add(self, event: Mapping[str, str]) -> None:
        kind = event.get("kind", "")
        if kind not in REPORTED_KINDS:
            return
        call_id, queue = event.get("call_id", ""), event.get("queue", "")
        at = parse_time(event.get("time", ""))
        if at is None or not call_id:
            self._skipped += 1
            return
        if not queue:
            if kind == "ABANDON":
                insort(self._before_queue, at)
            return
        key = (call_id, queue)
        stay = self._stays.get(key)
        if stay is None:
            stay = self._stays[key] = _Stay(seq=len(self._stays))
            self._queues.add(queue)
        stay.events.append(event)
        if kind == "ENTERQUEUE":
            if stay.entered_at is None:
                stay.entered_at = at
        elif kind in OUTCOMES and not stay.outcome:
            wait = _number(event.get("holdtime" if kind == "CONNECT" else "waittime"))
            if wait is None:
                self._skipped += 1
                return
            stay.outcome, stay.outcome_at, stay.wait_s = True, at, wait
        self._place(key, stay)

    def _place(self, key: _Key, stay: _Stay) -> None:
        """Mark the stay's row to be made again (and the row it leaves, if it moves)."""
        entered = stay.entered()
        row = None
        if entered is not None and entered >= self.start:
            row = (key[1], int((entered - self.start) // self.interval_s))
        if stay.row is not None and stay.row != row:
            self._rows[stay.row].pop(key, None)
            self._made.pop(stay.row, None)
        stay.row = row
        if row is not None:
            self._rows.setdefault(row, {})[key] = None
            self._made.pop(row, None)

    def report(self, now: float) -> Report:
        """The report from the day's start to ``now``, as :func:`screens.board.today_figures`
        makes it from scratch."""
        end = max(now, self.start + 1.0)
        count = max(1, math.ceil((end - self.start) / self.interval_s))
        names = list(dict.fromkeys([*self.targets, *sorted(self._queues)]))
        intervals = {q: [self._row(q, i, end) for i in range(count)] for q in names}
        low, high = (bisect_left(self._before_queue, t) for t in (self.start, end))
        return Report(
            start=self.start, end=end, interval_s=self.interval_s, targets=dict(self.targets),
            intervals=intervals,
            totals={q: queue_totals(q, self.start, intervals[q]) for q in names},
            abandoned_before_queue=high - low, skipped_events=self._skipped,
        )

    def _row(self, queue: str, i: int, end: float) -> Figures:
        """A row, made again when a stay in it changed (or, while ``end`` cuts a stay
        off it, at every report)."""
        made = self._made.get((queue, i))
        if made is not None:
            return made
        row_start = self.start + i * self.interval_s
        row_end = min(end, row_start + self.interval_s)
        stays = sorted((self._stays[k] for k in self._rows.get((queue, i), ())),
                       key=lambda s: s.seq)
        if not stays:
            return Figures(queue, row_start)
        one = compute_report([e for s in stays for e in s.events],
                             {queue: self.targets.get(queue, core.ServiceLevelTarget())},
                             start=row_start, end=row_end, interval_s=self.interval_s)
        figures = one.intervals[queue][0]
        if all((s.entered() or 0.0) < row_end for s in stays):  # none cut off by ``end``
            self._made[(queue, i)] = figures
        return figures


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None
