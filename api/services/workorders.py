"""Reading work orders: personal data (the caller's number and name, the transcript), so
each read is authorized against the order's agent and team and recorded in the audit trail
as ``workorder.read`` before the order is handed out."""

from __future__ import annotations

from typing import Any

from access import Permission, Scope
from api.errors import WorkOrderNotFound
from api.routes import Actor
from api.seams import AuditTrail, Teams, WorkOrderReader
from workorders.model import WorkOrder


class WorkOrderService:
    def __init__(self, store: WorkOrderReader, audit: AuditTrail, teams: Teams) -> None:
        self.store = store
        self.audit = audit
        self.teams = teams

    async def order(self, actor: Actor, order_id: str) -> dict[str, Any]:
        order = await self.store.get(order_id)
        return await self._hand_out(actor, order, f"no work order {order_id}")

    async def order_of_call(self, actor: Actor, call_id: str) -> dict[str, Any]:
        order = await self.store.get_by_call(call_id)
        return await self._hand_out(actor, order, f"no work order for call {call_id}")

    def _may_read_some(self, actor: Actor) -> None:
        """A role without the permission learns nothing, not even that an order is absent."""
        own = actor.identity
        assert own is not None  # authenticated route
        actor.authorize(Permission.WORKORDERS_READ, Scope(agent=own.user, team=own.team))

    async def _hand_out(self, actor: Actor, order: WorkOrder | None,
                        missing: str) -> dict[str, Any]:
        if order is None:
            self._may_read_some(actor)
            raise WorkOrderNotFound(missing)
        team = self.teams(order.agent) if order.agent else None
        identity = actor.authorize(Permission.WORKORDERS_READ, Scope(agent=order.agent, team=team))
        await self.audit.record(
            user=identity.user, role=str(identity.role), action="workorder.read",
            obj=f"workorder:{order.id}", address=actor.address, now=actor.now,
        )
        return order.to_dict()
