"""Prometheus gauges per queue, from the live routing state, and today's work-order KPIs.

``/metrics`` is rendered by prometheus_client in a thread of the reactor's pool, while the
routing state lives in Redis behind ``redis.asyncio`` on the reactor thread. So the reactor
refreshes a cached copy of the per-queue figures every second (:meth:`QueueMetrics.refresh`,
the same :func:`api.queue_report` that ``GET /api/queues`` answers) and ``collect()``
only reads that copy; ``hotline_queue_report_age_seconds`` says how fresh it is, so a scrape
during a Redis outage shows stale figures as stale rather than failing.

=============================================  ===============================================
``hotline_queue_calls_waiting{queue}``         calls waiting now
``hotline_queue_longest_wait_seconds{queue}``  wait so far of the longest-waiting call
``hotline_queue_agents{queue,state}``          agents whose skills match the queue, by state
                                               (``off_schedule``: available, outside their
                                               schedule, offered nothing)
``hotline_queue_service_level{queue}``         today's (UTC) service level, 0-1; absent
                                               before the first counted call
``hotline_queue_service_level_target{queue}``  the configured target, 0-1
``hotline_queue_answered_today{queue}``        answered today (UTC)
``hotline_queue_abandoned_today{queue}``       abandoned today, short abandons left out
``hotline_queue_report_age_seconds``           seconds since the figures were read
=============================================  ===============================================

Work orders: ``hotline_workorder_escalations_total{clock,level}`` counts the SLA warnings and
breaches this instance fired (``workorders.watch``; each fires on one instance only, so sum
over instances).

Work orders created today (UTC), :mod:`workorders.kpi`'s figures (:class:`OrderKpiMetrics`,
refreshed every minute by the reactor, like the queue figures, from
:class:`hotline.report.today.TodayKpis`: the day's orders read once, then only those changed
since the last read, so a read costs the minute's changes, not the day): each gauge has the labels
``by`` (``all``, ``queue``, ``category``, ``urgency``, ``agent``) and ``name`` (the queue,
category... ``all`` for ``by="all"``); a ratio with nothing to count yet is absent.

=================================================  ===========================================
``hotline_orders_created_today``                   orders created today
``hotline_orders_assignment_within_target_ratio``  assigned within 2 h, of those decided (0-1)
``hotline_orders_response_within_target_ratio``    answered within target, of those decided
``hotline_orders_resolution_seconds{quantile}``    creation to resolution, p50 and p90
``hotline_orders_first_contact_resolution_ratio``  resolved, never reopened, one contact
``hotline_orders_reopen_ratio``                    reopened, of those resolved
``hotline_orders_repeat_contact_ratio``            more than one contact, of those created
``hotline_orders_csat_average``                    CSAT average (1-5)
``hotline_orders_nps``                             NPS, -100 to 100
``hotline_orders_kpi_age_seconds``                 seconds since the KPIs were read
=================================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from routing.core import SHOWN_STATUSES
from workorders.clocks import ClockKind
from workorders.escalation import Escalation, Level
from workorders.kpi import DIMENSIONS, Figures, KpiReport

QueueFigures = Mapping[str, Mapping[str, Any]]

ESCALATIONS = Counter(
    "hotline_workorder_escalations",
    "SLA warnings and breaches of work orders fired by this instance",
    ["clock", "level"],
)
# Every clock and level up front: a scrape shows zeros rather than nothing.
for _clock in ClockKind:
    for _level in Level:
        ESCALATIONS.labels(_clock.value, _level.value)


def count_escalation(escalation: Escalation) -> None:
    """One more fired warning or breach (``workorders.watch.EscalationWatch``'s on_fired)."""
    ESCALATIONS.labels(escalation.clock.value, escalation.level.value).inc()


class QueueMetrics(Collector):
    """A collector over the last per-queue figures (``queue_report``'s dict)."""

    def __init__(self, read: Callable[[], Awaitable[QueueFigures]],
                 clock: Callable[[], float]) -> None:
        self._read = read
        self._clock = clock
        self._figures: QueueFigures = {}
        self._read_at: float | None = None

    async def refresh(self) -> None:
        """Read the figures now (on the reactor thread); on error the old ones stay."""
        figures = await self._read()
        # one reference swap: collect() in another thread sees the old dict or the new one
        self._figures, self._read_at = figures, self._clock()

    def update(self, figures: QueueFigures, read_at: float) -> None:
        self._figures, self._read_at = figures, read_at

    def collect(self) -> Iterator[GaugeMetricFamily]:
        figures, read_at = self._figures, self._read_at
        waiting = GaugeMetricFamily(
            "hotline_queue_calls_waiting", "Calls waiting in the queue", labels=["queue"])
        longest = GaugeMetricFamily(
            "hotline_queue_longest_wait_seconds", "Wait so far of the longest-waiting call",
            labels=["queue"])
        agents = GaugeMetricFamily(
            "hotline_queue_agents", "Agents whose skills match the queue, by state",
            labels=["queue", "state"])
        level = GaugeMetricFamily(
            "hotline_queue_service_level",
            "Service level today (UTC): answered within target / (answered + abandoned + "
            "overflowed)", labels=["queue"])
        target = GaugeMetricFamily(
            "hotline_queue_service_level_target", "Configured service-level target",
            labels=["queue"])
        answered = GaugeMetricFamily(
            "hotline_queue_answered_today", "Calls answered today (UTC)", labels=["queue"])
        abandoned = GaugeMetricFamily(
            "hotline_queue_abandoned_today",
            "Calls abandoned today (UTC), short abandons left out", labels=["queue"])
        for queue, row in sorted(figures.items()):
            waiting.add_metric([queue], row.get("waiting", 0))
            longest.add_metric([queue], row.get("longest_wait_s", 0.0))
            states = row.get("agents", {})
            for state in SHOWN_STATUSES:
                agents.add_metric([queue, state], states.get(state, 0))
            if row.get("service_level_today") is not None:
                level.add_metric([queue], row["service_level_today"])
            goal = row.get("target") or {}
            if goal.get("percent") is not None:
                target.add_metric([queue], goal["percent"] / 100)
            answered.add_metric([queue], row.get("answered", 0))
            abandoned.add_metric([queue], row.get("abandoned", 0))
        yield from (waiting, longest, agents, level, target, answered, abandoned)
        if read_at is not None:
            age = GaugeMetricFamily(
                "hotline_queue_report_age_seconds", "Seconds since the queue figures were read")
            age.add_metric([], max(0.0, self._clock() - read_at))
            yield age


#: Gauge name, help, and the figure (``Figures.as_dict()`` key, scale) it shows.
_ORDER_GAUGES: tuple[tuple[str, str, str, float], ...] = (
    ("created_today", "Work orders created today (UTC)", "created", 1.0),
    ("assignment_within_target_ratio", "Assigned within the target, of those decided",
     "assignment_within_target_pct", 0.01),
    ("response_within_target_ratio", "Answered within the target, of those decided",
     "response_within_target_pct", 0.01),
    ("first_contact_resolution_ratio", "Resolved, never reopened, one contact",
     "first_contact_resolution_pct", 0.01),
    ("reopen_ratio", "Reopened, of those resolved", "reopen_pct", 0.01),
    ("repeat_contact_ratio", "More than one contact, of those created", "repeat_contact_pct",
     0.01),
    ("csat_average", "CSAT average (1-5)", "csat_average", 1.0),
    ("nps", "NPS: promoters minus detractors, percent points", "nps", 1.0),
)


class OrderKpiMetrics(Collector):
    """A collector over the last KPIs of today's work orders (``read``: a ``KpiReport``)."""

    def __init__(self, read: Callable[[], Awaitable[KpiReport]],
                 clock: Callable[[], float]) -> None:
        self._read = read
        self._clock = clock
        self._groups: list[tuple[str, str, Figures]] = []
        self._read_at: float | None = None

    async def refresh(self) -> None:
        """Read today's KPIs now (on the reactor thread); on error the old ones stay."""
        report = await self._read()
        groups = [("all", "all", report.period.total)]
        groups += [(by, name, figures) for by in DIMENSIONS
                   for name, figures in sorted(report.period.by[by].items())]
        self._groups, self._read_at = groups, self._clock()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        groups, read_at = self._groups, self._read_at
        for suffix, text, key, scale in _ORDER_GAUGES:
            gauge = GaugeMetricFamily(f"hotline_orders_{suffix}", text, labels=["by", "name"])
            for by, name, figures in groups:
                value = figures.as_dict()[key]
                if value is not None:
                    gauge.add_metric([by, name], value * scale)
            yield gauge
        resolution = GaugeMetricFamily(
            "hotline_orders_resolution_seconds", "Creation to resolution, of those resolved",
            labels=["by", "name", "quantile"])
        for by, name, figures in groups:
            for quantile in (50, 90):
                value = figures.resolution_percentile(quantile)
                if value is not None:
                    resolution.add_metric([by, name, str(quantile / 100)], value)
        yield resolution
        if read_at is not None:
            age = GaugeMetricFamily(
                "hotline_orders_kpi_age_seconds", "Seconds since the work-order KPIs were read")
            age.add_metric([], max(0.0, self._clock() - read_at))
            yield age
