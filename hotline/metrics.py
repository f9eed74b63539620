"""Prometheus gauges per queue, from the live routing state.

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
