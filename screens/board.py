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
from bisect import bisect_left
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from events.consumer import Entry
from hotline.report.compute import Report, compute_report, parse_time
from routing import core
from screens.risk import OrdersAtRisk
from screens.tally import REPORTED_KINDS

__all__ = ["DAY_S", "RECENT_S", "Board", "EventLog", "FeedEntry", "figures"]

NO_RISK_READ = OrdersAtRisk()  # a board where nothing reads the clocks at risk
DAY_S = 86400.0
RECENT_S = 1800.0
FEED_KEPT = 500


#: One entry of the events stream (its id and string fields): the events package's own.
FeedEntry = Entry


@dataclass
class EventLog:
    """Today's events as the figures need them (only the kinds ``ivr report`` counts) and the
    last :data:`FEED_KEPT` entries of every kind, for the screens' activity feeds."""

    day_start: float = 0.0
    reported: list[Mapping[str, str]] = field(default_factory=list)
    feed: deque[FeedEntry] = field(default_factory=lambda: deque(maxlen=FEED_KEPT))
    last_id: str = "0-0"
    # the time of each reported event (0 when unreadable), in stream order: nearly sorted
    reported_at: list[float] = field(default_factory=list)

    def add(self, entries: Iterable[FeedEntry], now: float) -> None:
        self.roll(now)
        for entry in entries:
            self.last_id = entry.id
            self.feed.append(entry)
            if entry.kind in REPORTED_KINDS:
                self.reported.append(entry.fields)
                self.reported_at.append(parse_time(entry.fields.get("time", "")) or 0.0)

    def reported_since(self, at: float) -> list[Mapping[str, str]]:
        """The reported events from about ``at`` on (the stream's order is the time's, give
        or take the clocks of the instances that wrote it)."""
        return self.reported[bisect_left(self.reported_at, at):]

    def roll(self, now: float) -> None:
        """A new UTC day starts the figures over (the calls of the last hour kept: a call
        that entered before midnight is counted by the report as it would count it)."""
        start = math.floor(now / DAY_S) * DAY_S
        if start != self.day_start:
            self.day_start = start
            keep_from = start - 3600.0
            kept = [(e, at) for e, at in zip(self.reported, self.reported_at, strict=True)
                    if at >= keep_from]
            self.reported = [e for e, _at in kept]
            self.reported_at = [at for _e, at in kept]


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

    @cached_property
    def last_connects(self) -> Mapping[str, str]:
        """Each agent's last CONNECT in the feed: its call id (found once per board, not
        once per desk)."""
        found: dict[str, str] = {}
        for entry in self.feed:
            if entry.kind == "CONNECT" and entry.agent:
                found[entry.agent] = entry.fields.get("call_id", "")
        return found


def figures(
    reported: Iterable[Mapping[str, str]], config: core.RoutingConfig, now: float,
    *, day_start: float, interval_s: float,
) -> tuple[Report, Report]:
    """Today's report in ``interval_s`` rows (the chart) and the last 30 minutes' totals."""
    events = list(reported)
    return today_figures(events, config, now, day_start=day_start, interval_s=interval_s), \
        recent_figures(events, config, now)


def today_figures(events: Iterable[Mapping[str, str]], config: core.RoutingConfig, now: float,
                  *, day_start: float, interval_s: float) -> Report:
    """Today's report in ``interval_s`` rows (the chart)."""
    end = max(now, day_start + 1.0)
    return compute_report(events, _targets(config), start=day_start, end=end,
                          interval_s=interval_s)


def recent_figures(events: Iterable[Mapping[str, str]], config: core.RoutingConfig,
                   now: float) -> Report:
    """The last 30 minutes' totals (``events``: those of the window, or more)."""
    return compute_report(events, _targets(config), start=now - RECENT_S, end=now + 1.0,
                          interval_s=60)


def _targets(config: core.RoutingConfig) -> dict[str, core.ServiceLevelTarget]:
    return {name: q.service_level for name, q in config.queues.items()}
