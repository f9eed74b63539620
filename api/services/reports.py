"""Work-order KPIs for ``GET /api/reports/orders``: counts and percentages, no personal data
(:mod:`workorders.kpi`), over the orders created in the asked period."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from api.errors import BadRequest, Unavailable
from workorders.clocks import ClockPolicy
from workorders.kpi import compute_kpis
from workorders.model import WorkOrder

MAX_DAYS = 92  # a quarter: bounds the orders one request reads


@runtime_checkable
class OrdersByCreation(Protocol):
    """The store's read of the orders created in a period (``WorkOrderStore``)."""

    async def created_between(self, start: float, end: float) -> list[WorkOrder]: ...


class OrderReports:
    def __init__(self, store: object, clock_policy: Callable[[], ClockPolicy]) -> None:
        self.store = store
        self.clock_policy = clock_policy

    async def orders(self, now: float, first: str | None, last: str | None) -> dict[str, Any]:
        """The KPIs of the orders created from day ``first`` to day ``last`` (UTC, both
        included; default today), with their clocks at ``now``."""
        if not isinstance(self.store, OrdersByCreation):
            raise Unavailable("this service's work-order store cannot list orders by date")
        today = datetime.fromtimestamp(now, UTC).date()
        start = _day(first, "from") if first else today
        end = _day(last, "to") if last else max(start, today)
        if end < start:
            raise BadRequest("query: to is before from")
        if (end - start).days + 1 > MAX_DAYS:
            raise BadRequest(f"query: at most {MAX_DAYS} days per request")
        low = datetime(start.year, start.month, start.day, tzinfo=UTC).timestamp()
        high = (datetime(end.year, end.month, end.day, tzinfo=UTC)
                + timedelta(days=1)).timestamp()
        orders = await self.store.created_between(low, high)
        return compute_kpis(orders, self.clock_policy(), start=low, end=high,
                            now=now).as_dict()


def _day(text: str, name: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise BadRequest(f"query: {name}: a day like 2026-03-02") from None
