"""``GET /api/calls/<call_id>/workorder`` and ``GET /api/workorders/<id>``: one work order,
read by its agent, the agent's supervisor or ops, each read audited (``workorder.read``)."""

from __future__ import annotations

from typing import Any

from access import Permission
from api.errors import WorkOrderNotFound
from api.routes import Call, Route
from api.schemas import CallPath, WorkOrderAnswer, WorkOrderPath
from api.services import WorkOrderService


def routes(orders: WorkOrderService) -> list[Route]:
    async def of_call(call: Call) -> dict[str, Any]:
        assert isinstance(call.path, CallPath)
        return await orders.order_of_call(call.actor, call.path.call_id)

    async def by_id(call: Call) -> dict[str, Any]:
        assert isinstance(call.path, WorkOrderPath)
        return await orders.order(call.actor, call.path.order_id)

    return [
        Route("GET", "/api/calls/{call_id}/workorder", Permission.WORKORDERS_READ, of_call,
              "The work order of a call", WorkOrderAnswer, path_schema=CallPath, scoped=True,
              errors=(WorkOrderNotFound,), audit="workorder.read"),
        Route("GET", "/api/workorders/{order_id}", Permission.WORKORDERS_READ, by_id,
              "One work order", WorkOrderAnswer, path_schema=WorkOrderPath, scoped=True,
              errors=(WorkOrderNotFound,), audit="workorder.read"),
    ]
