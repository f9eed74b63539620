"""The latency figures every work-order benchmark reports, from one run's sorted seconds."""

from __future__ import annotations

from collections.abc import Sequence

from workorders.kpi import percentile


def latency_ms(latencies: Sequence[float]) -> dict[str, float]:
    """p50, p99 and max of ``latencies`` (seconds, sorted) in milliseconds, as the JSON has
    them (``p50_ms``, ``p99_ms``, ``max_ms``; 0.0 for an empty run)."""
    def ms(seconds: float | None) -> float:
        return round((seconds or 0.0) * 1000, 3)

    return {
        "p50_ms": ms(percentile(latencies, 50)),
        "p99_ms": ms(percentile(latencies, 99)),
        "max_ms": ms(latencies[-1] if latencies else None),
    }
