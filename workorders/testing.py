"""An in-memory work-order store for unit tests of call flows: the real model, no Redis."""

from __future__ import annotations

from typing import Any

from workorders.model import Policy, Status, WorkOrder, apply, create_order


class InMemoryWorkOrders:
    """Same coroutine API as :class:`workorders.store.WorkOrderStore` for what flows use."""

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or Policy()
        self.orders: dict[str, WorkOrder] = {}
        self.by_call: dict[str, str] = {}
        self.answers: set[tuple[str, str]] = set()  # (call, agent) answers applied

    async def create_for_call(
        self, call_id: str, caller_number: str, caller_name: str, now: float,
        *, actor: str = "ivr", **fields: Any,
    ) -> WorkOrder:
        if call_id in self.by_call:
            return self.orders[self.by_call[call_id]]
        order_id = f"WO-{len(self.orders) + 1:06d}"
        order = create_order(
            order_id, call_id, caller_number, caller_name, now, self.policy, actor, **fields
        )
        self.orders[order_id] = order
        self.by_call[call_id] = order_id
        return order

    async def update(
        self, order_id: str, now: float, event: str, actor: str, **changes: Any
    ) -> WorkOrder:
        order = apply(self.orders[order_id], event, now, actor, self.policy, **changes)
        self.orders[order_id] = order
        return order

    async def get(self, order_id: str) -> WorkOrder | None:
        return self.orders.get(order_id)

    async def get_by_call(self, call_id: str) -> WorkOrder | None:
        order_id = self.by_call.get(call_id)
        return self.orders.get(order_id) if order_id else None

    async def answered(self, call_id: str, agent: str, now: float) -> WorkOrder | None:
        """As the store: assign, start unless already worked on; once per call and agent."""
        order = await self.get_by_call(call_id)
        if order is None or (call_id, agent) in self.answers:
            return order
        self.answers.add((call_id, agent))
        order = await self.update(order.id, now, "assign", "router", agent=agent)
        if order.status is Status.ASSIGNED:
            order = await self.update(order.id, now, "start", agent)
        return order
