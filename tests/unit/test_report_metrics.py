"""The Prometheus collector of live queue figures (``hotline/metrics.py``), on its own registry."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from twisted.internet import defer, task

from hotline.metrics import QueueMetrics

FIGURES = {
    "faults": {
        "waiting": 2, "longest_wait_s": 41.5, "agents": {"available": 1, "paused": 2},
        "service_level_today": 0.75, "answered": 3, "abandoned": 1,
        "target": {"percent": 90.0, "within_s": 20},
    },
    "billing": {
        "waiting": 0, "longest_wait_s": 0, "agents": {}, "service_level_today": None,
        "answered": 0, "abandoned": 0, "target": {"percent": 80.0, "within_s": 20},
    },
}


def scrape(metrics: QueueMetrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


def test_gauges_per_queue_from_the_cached_figures() -> None:
    """Waiting calls, longest wait, agents by state (every state, zeros included), service
    level and target as ratios, answered and abandoned today, and the figures' age."""
    clock = task.Clock()
    clock.advance(100)
    metrics = QueueMetrics(lambda: None, clock.seconds)  # type: ignore[arg-type, return-value]
    metrics.update(FIGURES, read_at=99.0)
    text = scrape(metrics)
    for line in (
        'hotline_queue_calls_waiting{queue="faults"} 2.0',
        'hotline_queue_longest_wait_seconds{queue="faults"} 41.5',
        'hotline_queue_agents{queue="faults",state="paused"} 2.0',
        'hotline_queue_agents{queue="faults",state="on_call"} 0.0',
        'hotline_queue_agents{queue="billing",state="available"} 0.0',
        'hotline_queue_service_level{queue="faults"} 0.75',
        'hotline_queue_service_level_target{queue="faults"} 0.9',
        'hotline_queue_answered_today{queue="faults"} 3.0',
        'hotline_queue_abandoned_today{queue="faults"} 1.0',
        "hotline_queue_report_age_seconds 1.0",
    ):
        assert line in text.splitlines(), line


def test_no_service_level_before_the_first_counted_call() -> None:
    """A queue without calls today has no service-level sample (absent, not a fake 0 or 1
    that would fire or silence an alert)."""
    metrics = QueueMetrics(lambda: None, lambda: 0.0)  # type: ignore[arg-type, return-value]
    metrics.update(FIGURES, read_at=0.0)
    assert 'hotline_queue_service_level{queue="billing"}' not in scrape(metrics)


def test_refresh_reads_through_the_router_and_keeps_old_figures_on_error() -> None:
    """``refresh`` replaces the cache with what the reader returns; when the reader fails
    (Redis away) the previous figures stay and their age grows."""
    clock = task.Clock()
    answers: list[Any] = [FIGURES, ConnectionError("redis away")]

    async def read() -> Any:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    metrics = QueueMetrics(read, clock.seconds)
    assert "hotline_queue_calls_waiting{" not in scrape(metrics)
    defer.ensureDeferred(metrics.refresh())
    clock.advance(5)
    failed = defer.ensureDeferred(metrics.refresh())
    failures: list[Any] = []
    failed.addErrback(failures.append)
    assert failures and failures[0].check(ConnectionError)
    text = scrape(metrics)
    assert 'hotline_queue_calls_waiting{queue="faults"} 2.0' in text
    assert "hotline_queue_report_age_seconds 5.0" in text
