"""``/api/workorders``: list (filters, pages), export, one order, and its changes; and
``GET /api/calls/<call_id>/workorder``. Every read of an order and every change is audited
(:mod:`api.services.workorders`).

One route is one entry of the table in :func:`routes`: a new action on an order is a body
schema in :mod:`api.schemas`, a service method, a small handler and one ``action(...)``
line (``legal-hold`` is one such).

The literal paths (``/api/workorders/export``) come before ``/api/workorders/{order_id}``:
the table matches in order.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel

from access import Permission
from api.errors import (
    ApiError,
    BadRequest,
    WorkOrderChangeInvalid,
    WorkOrderNotFound,
    WorkOrderTransitionRefused,
)
from api.routes import Call, Handler, Route
from api.schemas import (
    AssignBody,
    CallPath,
    HoldBody,
    LegalHoldBody,
    MergeAnswer,
    MergeBody,
    NoteBody,
    StatusBody,
    WorkOrderAnswer,
    WorkOrderExport,
    WorkOrderListQuery,
    WorkOrderPage,
    WorkOrderPath,
)
from api.services import WorkOrderService

ORDER_ERRORS: tuple[type[ApiError], ...] = (
    WorkOrderNotFound, WorkOrderTransitionRefused, WorkOrderChangeInvalid,
)

Action = Callable[[WorkOrderService, Call, Any], Awaitable[Any]]


def routes(orders: WorkOrderService) -> list[Route]:
    def on_order(action: Action) -> Handler:
        """A handler of ``/api/workorders/{order_id}/...`` whose JSON body is required."""

        async def handle(call: Call) -> Any:
            assert isinstance(call.path, WorkOrderPath)
            if call.body is None:
                orders.may_some(call.actor, Permission.WORKORDERS_CHANGE)  # else 403, not 400
                raise BadRequest("body: a JSON object is required")
            return await action(orders, call, call.body)

        return handle

    def listing(read: Callable[..., Awaitable[dict[str, Any]]]) -> Handler:
        async def handle(call: Call) -> dict[str, Any]:
            assert isinstance(call.query, WorkOrderListQuery)
            return await read(call.actor, _params(call.query))

        return handle

    async def of_call(call: Call) -> dict[str, Any]:
        assert isinstance(call.path, CallPath)
        return await orders.order_of_call(call.actor, call.path.call_id)

    async def by_id(call: Call) -> dict[str, Any]:
        assert isinstance(call.path, WorkOrderPath)
        return await orders.order(call.actor, call.path.order_id)

    def order_id(call: Call) -> str:
        assert isinstance(call.path, WorkOrderPath)
        return call.path.order_id

    async def assign(s: WorkOrderService, call: Call, body: AssignBody) -> dict[str, Any]:
        extra = {"queue": body.queue} if body.queue is not None else {}
        return await s.change(call.actor, order_id(call), "assign", agent=body.agent, **extra)

    async def status(s: WorkOrderService, call: Call, body: StatusBody) -> dict[str, Any]:
        words = {k: v for k, v in (("outcome", body.outcome), ("reason", body.reason))
                 if v is not None}
        return await s.change(call.actor, order_id(call), body.event, **words)

    async def hold(s: WorkOrderService, call: Call, body: HoldBody) -> dict[str, Any]:
        return await s.change(call.actor, order_id(call), "hold", waiting_on=body.waiting_on,
                              reason=body.reason)

    async def note(s: WorkOrderService, call: Call, body: NoteBody) -> dict[str, Any]:
        return await s.change(call.actor, order_id(call), "note", text=body.text)

    async def merge(s: WorkOrderService, call: Call, body: MergeBody) -> dict[str, Any]:
        return await s.merge(call.actor, order_id(call), body.merged)

    async def legal_hold(s: WorkOrderService, call: Call, body: LegalHoldBody
                         ) -> dict[str, Any]:
        return await s.legal_hold(call.actor, order_id(call), body.held, body.reason)

    def action(name: str, handler: Action, summary: str, body: type[BaseModel],
               answer: Any = WorkOrderAnswer, audit: str = "workorder.change") -> Route:
        """``POST /api/workorders/{order_id}/<name>``, authorized by its service."""
        return Route("POST", f"/api/workorders/{{order_id}}/{name}",
                     Permission.WORKORDERS_CHANGE, on_order(handler), summary, answer,
                     path_schema=WorkOrderPath, body_schema=body, scoped=True,
                     errors=ORDER_ERRORS, audit=audit)

    read = Permission.WORKORDERS_READ
    return [
        Route("GET", "/api/calls/{call_id}/workorder", read, of_call,
              "The work order of a call", WorkOrderAnswer, path_schema=CallPath, scoped=True,
              errors=(WorkOrderNotFound,), audit="workorder.read"),
        Route("GET", "/api/workorders", read, listing(orders.orders),
              "Work orders by filters, newest first, a page at a time (next_cursor)",
              WorkOrderPage, query_schema=WorkOrderListQuery, scoped=True,
              audit="workorder.list"),
        Route("GET", "/api/workorders/export", read, listing(orders.export),
              "Whole work orders by filters, with histories (supervisors and ops)",
              WorkOrderExport, query_schema=WorkOrderListQuery, scoped=True,
              audit="workorder.export"),
        Route("GET", "/api/workorders/{order_id}", read, by_id,
              "One work order", WorkOrderAnswer, path_schema=WorkOrderPath, scoped=True,
              errors=(WorkOrderNotFound,), audit="workorder.read"),
        action("assign", assign, "Assign the order to an agent (or hand it over)", AssignBody),
        action("status", status, "A lifecycle transition: start, resolve, close, reopen, "
               "resume", StatusBody),
        action("hold", hold, "Put the order on hold, waiting on the customer or a third "
               "party", HoldBody),
        action("note", note, "Add a note to the order's history", NoteBody),
        action("merge", merge, "Fold another order (body: merged) into this one "
               "(supervisors and ops)", MergeBody, MergeAnswer, "workorder.merge"),
        action("legal-hold", legal_hold, "Set or release a legal hold: a held order is never "
               "purged (ops)", LegalHoldBody, audit="workorder.legal_hold"),
    ]


def _params(query: BaseModel) -> dict[str, str]:
    return {name: value for name, value in query.model_dump().items() if value}
