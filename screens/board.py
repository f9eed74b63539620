"""What every screen is drawn from, as plain data: the :class:`Board` one aggregate per
instance builds (``screens.aggregate``) and every connected screen reads. Pure: the events
kept for today's figures, the recent feed, the figures themselves, the order clocks at risk
(``screens.risk``).

The board's figures: today's counters per queue are the routing counters in Redis (those of
``/api/queues`` and /metrics, so every view agrees); ASA, the last 30 minutes and the chart's
intervals are ``ivr report``'s arithmetic (:func:`hotline.report.compute.compute_report`)
over today's events.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from hotline.report.compute import OUTCOMES, RING_FAILURES, Report, compute_report, parse_time
from routing import core
from screens.risk import OrdersAtRisk

__all__ = ["DAY_S", "RECENT_S", "Board", "EventLog", "FeedEntry", "figures"]

NO_RISK_READ = OrdersAtRisk()  # a board where nothing reads the clocks at risk
DAY_S = 86400.0
RECENT_S = 1800.0
FEED_KEPT = 500
_REPORTED = OUTCOMES | RING_FAILURES | {"ENTERQUEUE"}


@dataclass(frozen=True)
class FeedEntry:
    """One entry of the events stream: its id and its fields (strings)."""

    entry_id: str
    fields: Mapping[str, str]

    @property
    def kind(self) -> str:
        return self.fields.get("kind", "")

    @property
    def agent(self) -> str:
        return self.fields.get("agent", "")

    @property
    def queue(self) -> str:
        return self.fields.get("queue", "")


@dataclass
class EventLog:
    """Today's events as the figures need them (only the kinds ``ivr report`` counts) and the
    last :data:`FEED_KEPT` entries of every kind, for the screens' activity feeds."""

    day_start: float = 0.0
    reported: list[Mapping[str, str]] = field(default_factory=list)
    feed: deque[FeedEntry] = field(default_factory=lambda: deque(maxlen=FEED_KEPT))
    last_id: str = "0-0"

    def add(self, entries: Iterable[FeedEntry], now: float) -> None:
        self.roll(now)
        for entry in entries:
            self.last_id = entry.entry_id
            self.feed.append(entry)
            if entry.kind in _REPORTED:
                self.reported.append(entry.fields)

    def roll(self, now: float) -> None:
        """A new UTC day starts the figures over (the calls of the last hour kept: a call
        that entered before midnight is counted by the report as it would count it)."""
        start = math.floor(now / DAY_S) * DAY_S
        if start != self.day_start:
            self.day_start = start
            keep_from = start - 3600.0
            self.reported = [
                e for e in self.reported if (parse_time(e.get("time", "")) or 0.0) >= keep_from
            ]


@dataclass(frozen=True)
class Board:
    """The live picture at ``now``: config, routing snapshot, agents' hashes, figures, feed,
    the order clocks at risk; ``last_id`` is the last stream entry it includes (the SSE id of
    its frames)."""

    now: float
    last_id: str
    config: core.RoutingConfig
    snapshot: core.Snapshot
    agents: Mapping[str, Mapping[str, str]]
    today: Report
    recent: Report
    feed: tuple[FeedEntry, ...] = ()
    at_risk: OrdersAtRisk = NO_RISK_READ


def figures(
    reported: Iterable[Mapping[str, str]], config: core.RoutingConfig, now: float,
    *, day_start: float, interval_s: float,
) -> tuple[Report, Report]:
    """Today's report in ``interval_s`` rows (the chart) and the last 30 minutes' totals."""
    events = list(reported)
    targets = {name: q.service_level for name, q in config.queues.items()}
    end = max(now, day_start + 1.0)
    today = compute_report(events, targets, start=day_start, end=end, interval_s=interval_s)
    recent = compute_report(events, targets, start=now - RECENT_S, end=now + 1.0, interval_s=60)
    return today, recent
