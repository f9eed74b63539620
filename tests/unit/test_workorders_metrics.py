"""Today's work-order KPIs as Prometheus gauges: read on refresh, served from the copy, each
gauge labelled by group (all, queue, category, urgency, agent); nothing counted: absent."""

from __future__ import annotations

from datetime import UTC, datetime

from prometheus_client import CollectorRegistry, generate_latest

from hotline.metrics import OrderKpiMetrics
from ivr.testing import on_asyncio
from workorders.clocks import ClockPolicy
from workorders.kpi import KpiReport, compute_kpis
from workorders.model import Event, Policy, WorkOrder, apply, create_order

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).timestamp()
MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC).timestamp()


def orders() -> list[WorkOrder]:
    policy = Policy()
    resolved = create_order("1", "c1", "+49", "K", T0, policy, queue="billing")
    for at, event, changes in ((T0 + 60, Event.ASSIGN, {"agent": "agent101"}),
                               (T0 + 120, Event.START, {}), (T0 + 1800, Event.RESOLVE, {}),
                               (T0 + 1900, Event.UPDATE, {"csat": 4, "nps": 10})):
        resolved = apply(resolved, event, at, "agent101", policy, **changes)
    return [resolved, create_order("2", "c2", "+49", "L", T0 + 60, policy)]


def text(metrics: OrderKpiMetrics) -> str:
    registry = CollectorRegistry()
    registry.register(metrics)
    return generate_latest(registry).decode()


@on_asyncio
async def test_gauges_show_todays_kpis_per_group():
    """After a refresh the gauges show the day's figures for all orders and per group, the
    ratios as 0-1, the resolution quantiles in seconds, the age of the figures."""
    now = [T0 + 3600.0]
    reads = []

    async def read() -> KpiReport:
        reads.append(now[0])
        return compute_kpis(orders(), ClockPolicy(), start=MIDNIGHT, end=MIDNIGHT + 86400,
                            now=now[0])

    metrics = OrderKpiMetrics(read, lambda: now[0])
    assert "hotline_orders_created_today{" not in text(metrics)  # nothing read yet
    await metrics.refresh()
    now[0] += 30
    out = text(metrics)
    assert 'hotline_orders_created_today{by="all",name="all"} 2.0' in out
    assert 'hotline_orders_created_today{by="queue",name="billing"} 1.0' in out
    assert 'hotline_orders_created_today{by="agent",name="-"} 1.0' in out
    assert 'hotline_orders_assignment_within_target_ratio{by="all",name="all"} 1.0' in out
    assert 'hotline_orders_resolution_seconds{by="all",name="all",quantile="0.5"} 1800.0' in out
    assert 'hotline_orders_csat_average{by="queue",name="billing"} 4.0' in out
    assert 'hotline_orders_nps{by="all",name="all"} 100.0' in out
    # The order without a queue has no survey: no CSAT gauge for its group.
    assert 'hotline_orders_csat_average{by="queue",name="-"}' not in out
    assert "hotline_orders_kpi_age_seconds 30.0" in out
    assert reads == [T0 + 3600.0]  # a scrape reads nothing
