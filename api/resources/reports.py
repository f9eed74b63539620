"""``GET /api/reports/orders``: work-order KPIs per day, queue, category, urgency and agent
(``ivr report orders --json``'s answer). Aggregates only, read with the queue figures'
permission."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from access import Permission
from api.errors import BadRequest, Unavailable
from api.routes import Call, Route
from api.services.reports import OrderReports

DAY_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class OrdersReportQuery(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, populate_by_name=True)

    start: str | None = Field(None, alias="from", pattern=DAY_PATTERN,
                              description="first day (UTC), e.g. 2026-03-02; default today")
    end: str | None = Field(None, alias="to", pattern=DAY_PATTERN,
                            description="last day (UTC), included; default the first day "
                                        "or today")


class OrdersReport(BaseModel):
    """``workorders.kpi.KpiReport.as_dict()``: ``total`` and each of ``days`` carry the
    figures and ``by`` (queue, category, urgency, agent -> name -> figures)."""

    model_config = ConfigDict(extra="allow")

    from_: str = Field(alias="from")
    to: str
    at: str = Field(description="when the clocks were evaluated")
    total: dict[str, Any]
    days: list[dict[str, Any]]


def routes(reports: OrderReports) -> list[Route]:
    async def orders(call: Call) -> dict[str, Any]:
        assert isinstance(call.query, OrdersReportQuery)
        return await reports.orders(call.actor.now, call.query.start, call.query.end)

    return [Route("GET", "/api/reports/orders", Permission.QUEUES_READ, orders,
                  "Work-order KPIs per day, queue, category, urgency and agent", OrdersReport,
                  query_schema=OrdersReportQuery, errors=(BadRequest, Unavailable))]
