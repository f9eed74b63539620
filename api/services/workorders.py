"""Work orders through the API: read one, list and export by filters, change (assign, status
transitions, hold, note) and merge.

Orders hold personal data (the caller's number and name, the transcript, notes), so every
answer is authorized against the order's agent and team (:meth:`Actor.authorize`) and
recorded in the audit trail before it is handed out: ``workorder.read`` (one order),
``workorder.list`` (a page, with its count and filters; the caller's number is left out),
``workorder.export``, ``workorder.change`` and ``workorder.merge``.

Scopes: an agent reads and changes its own orders, a supervisor its team's, ops all. A list
is narrowed to the agents the token reaches; asking for an agent outside them is refused
(403), never silently emptied. An unassigned order belongs to no agent and no team, so only
ops reach it, with one exception: a supervisor may *assign* it to an agent of the team (the
target agent's scope is what is authorized). Merge and export are for supervisors and ops.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from access import Permission, Role, Scope
from api.errors import (
    BadRequest,
    Forbidden,
    Unavailable,
    WorkOrderChangeInvalid,
    WorkOrderNotFound,
    WorkOrderTransitionRefused,
)
from api.routes import Actor
from api.seams import AuditTrail, Teams, WorkOrderDesk
from workorders.model import TransitionRefused, WorkOrder, WorkOrderError, overdue
from workorders.query import Cursor, FilterError, OrderFilter, parse_filter
from workorders.retention import legal_hold_command
from workorders.store import StoreUnavailable, UnknownWorkOrder

#: Who may merge orders and export them (beyond the scope rules of the role table).
SUPERVISING = frozenset({Role.SUPERVISOR, Role.OPS})

#: The fields of a list row (``api.schemas.WorkOrderRow``), from the order's ``to_dict``.
ROW_FIELDS = ("id", "call_id", "caller", "category", "urgency", "queue", "agent", "status",
              "outcome", "created_at", "updated_at", "deadlines", "merged_into")

DEFAULT_LIMIT = 50
LIST_MAX = 200
EXPORT_MAX = 1000


def row(order: WorkOrder, now: float) -> dict[str, Any]:
    """One order as a list shows it (``--json`` of ``ivr orders list`` prints the same)."""
    data = order.to_dict()
    out = {name: data[name] for name in ROW_FIELDS}
    out["overdue"] = [breach.deadline for breach in overdue(order, now)]
    return out


class WorkOrderService:
    def __init__(self, store: WorkOrderDesk, audit: AuditTrail, teams: Teams,
                 agents: Callable[[], Iterable[str]] = tuple) -> None:
        self.store = store
        self.audit = audit
        self.teams = teams
        self.agents = agents  # every agent id the config knows: a supervisor's team members

    def scope(self, agent: str | None) -> Scope:
        return Scope(agent=agent, team=self.teams(agent) if agent else None)

    # -- reads --------------------------------------------------------------------------

    async def order(self, actor: Actor, order_id: str) -> dict[str, Any]:
        order = await self.store.get(order_id)
        return await self._hand_out(actor, order, f"no work order {order_id}")

    async def order_of_call(self, actor: Actor, call_id: str) -> dict[str, Any]:
        order = await self.store.get_by_call(call_id)
        return await self._hand_out(actor, order, f"no work order for call {call_id}")

    async def orders(self, actor: Actor, params: dict[str, str]) -> dict[str, Any]:
        """One page of the orders matching the filters that the token may read."""
        f, limit, after = _query(params, LIST_MAX)
        visible = self._visible(actor, f, Permission.WORKORDERS_READ)
        if visible is None:
            return {"orders": [], "next_cursor": None}
        found, following = await self.store.find(
            visible, actor.now, limit=limit, after=after, history=False
        )
        await self._record(actor, "workorder.list", "workorders", f, len(found))
        return {"orders": [row(o, actor.now) for o in found],
                "next_cursor": following.encode() if following else None}

    async def export(self, actor: Actor, params: dict[str, str]) -> dict[str, Any]:
        """Like :meth:`orders`, whole orders with their histories, for supervisors and ops."""
        self._supervising(actor, "export work orders")
        f, limit, after = _query(params, EXPORT_MAX)
        visible = self._visible(actor, f, Permission.WORKORDERS_READ)
        if visible is None:
            return {"orders": [], "next_cursor": None}
        found, following = await self.store.find(visible, actor.now, limit=limit, after=after)
        await self._record(actor, "workorder.export", "workorders", f, len(found))
        return {"orders": [o.to_dict() for o in found],
                "next_cursor": following.encode() if following else None}

    # -- changes ------------------------------------------------------------------------

    async def change(self, actor: Actor, order_id: str, event: str,
                     **changes: Any) -> dict[str, Any]:
        """Apply a lifecycle event (assign, start, resolve, close, reopen, resume, hold,
        note) as the token's user; 409 when the order's status refuses it."""
        order = await self._order_to_change(actor, order_id)
        if event == "assign":
            # The target agent must be within reach; a reassignment also needs the current one.
            identity = actor.authorize(Permission.WORKORDERS_CHANGE, self.scope(changes["agent"]))
            if order.agent is not None:
                actor.authorize(Permission.WORKORDERS_CHANGE, self.scope(order.agent))
        else:
            identity = actor.authorize(Permission.WORKORDERS_CHANGE, self.scope(order.agent))
        try:
            changed = await self.store.update(order.id, actor.now, event, identity.user,
                                              **changes)
        except UnknownWorkOrder:
            raise WorkOrderNotFound(f"no work order {order_id}") from None
        except TransitionRefused as exc:
            raise WorkOrderTransitionRefused(str(exc), order.id, event) from None
        except WorkOrderError as exc:
            raise WorkOrderChangeInvalid(f"work order {order.id}: {exc}") from None
        if changed is None:
            raise Unavailable("Redis is unreachable: the change is spooled and applied when it "
                              "is back")
        await self.audit.record(
            user=identity.user, role=str(identity.role), action="workorder.change",
            obj=f"workorder:{order.id}", address=actor.address, now=actor.now,
            details={"event": event},
        )
        return changed.to_dict()

    async def merge(self, actor: Actor, survivor_id: str, merged_id: str) -> dict[str, Any]:
        """Fold ``merged_id`` into ``survivor_id``; both must be within the token's reach."""
        self._supervising(actor, "merge work orders")
        survivor = await self._order_to_change(actor, survivor_id)
        merged = await self._order_to_change(actor, merged_id)
        identity = actor.authorize(Permission.WORKORDERS_CHANGE, self.scope(survivor.agent))
        actor.authorize(Permission.WORKORDERS_CHANGE, self.scope(merged.agent))
        try:
            kept, folded = await self.store.merge(survivor.id, merged.id, actor.now,
                                                  identity.user)
        except UnknownWorkOrder as exc:
            raise WorkOrderNotFound(f"no work order {exc}") from None
        except TransitionRefused as exc:
            raise WorkOrderTransitionRefused(str(exc), merged.id, "merge") from None
        except WorkOrderError as exc:
            raise WorkOrderChangeInvalid(str(exc)) from None
        await self.audit.record(
            user=identity.user, role=str(identity.role), action="workorder.merge",
            obj=f"workorder:{kept.id}", address=actor.address, now=actor.now,
            details={"merged": folded.id},
        )
        return {"survivor": kept.to_dict(), "merged": folded.to_dict()}

    async def legal_hold(self, actor: Actor, order_id: str, held: bool, reason: str
                         ) -> dict[str, Any]:
        """Set or release the order's legal hold (``workorders.retention``): ops only, as
        it overrides the retention policy; recorded in the audit log with the reason."""
        self.may_some(actor, Permission.WORKORDERS_CHANGE)
        own = actor.identity
        assert own is not None  # authenticated route
        if own.role is not Role.OPS:
            raise Forbidden(f"{own.role} {own.user} may not set or release a legal hold: "
                            "ops only")
        try:
            order = await legal_hold_command(
                self.store, order_id, held=held, now=actor.now, actor=own.user, reason=reason,
                audit=self.audit, role=str(own.role), address=actor.address,
            )
        except UnknownWorkOrder:
            raise WorkOrderNotFound(f"no work order {order_id}") from None
        except StoreUnavailable as exc:
            raise Unavailable(f"Redis is unreachable: the legal hold is not changed ({exc})"
                              ) from None
        except WorkOrderError as exc:
            raise WorkOrderChangeInvalid(str(exc)) from None
        return order.to_dict()

    # -- scope and audit ----------------------------------------------------------------

    def may_some(self, actor: Actor, permission: Permission) -> None:
        """A role without the permission learns nothing, not even that an order is absent."""
        own = actor.identity
        assert own is not None  # authenticated route
        actor.authorize(permission, Scope(agent=own.user, team=own.team))

    def _supervising(self, actor: Actor, what: str) -> None:
        own = actor.identity
        assert own is not None  # authenticated route
        if own.role not in SUPERVISING:
            raise Forbidden(f"{own.role} {own.user} may not {what}: supervisors and ops only")

    def _visible(self, actor: Actor, f: OrderFilter, permission: Permission
                 ) -> OrderFilter | None:
        """``f`` narrowed to the agents the token reaches (None: to nobody)."""
        if actor.may(permission):
            return f  # the whole collection (ops)
        self.may_some(actor, permission)
        if f.agents:
            for agent in sorted(f.agents):
                actor.authorize(permission, self.scope(agent))  # 403 naming the agent
            return f
        own = actor.identity
        assert own is not None
        reach = {a for a in {*self.agents(), own.user} if actor.may(permission, self.scope(a))}
        return f.within(reach) if reach else None

    async def _order_to_change(self, actor: Actor, order_id: str) -> WorkOrder:
        order = await self.store.get(order_id)
        if order is None:
            self.may_some(actor, Permission.WORKORDERS_CHANGE)
            raise WorkOrderNotFound(f"no work order {order_id}")
        return order

    async def _record(self, actor: Actor, action: str, obj: str, f: OrderFilter,
                      count: int) -> None:
        identity = actor.identity
        assert identity is not None
        shown = {k: v for k, v in f.as_params().items() if k != "caller"}
        if f.caller:
            shown["caller"] = "(given)"  # a number is personal data: not in the trail
        await self.audit.record(
            user=identity.user, role=str(identity.role), action=action, obj=obj,
            address=actor.address, now=actor.now,
            details={"count": str(count), "filters": json.dumps(shown, sort_keys=True)},
        )

    async def _hand_out(self, actor: Actor, order: WorkOrder | None,
                        missing: str) -> dict[str, Any]:
        if order is None:
            self.may_some(actor, Permission.WORKORDERS_READ)
            raise WorkOrderNotFound(missing)
        identity = actor.authorize(Permission.WORKORDERS_READ, self.scope(order.agent))
        await self.audit.record(
            user=identity.user, role=str(identity.role), action="workorder.read",
            obj=f"workorder:{order.id}", address=actor.address, now=actor.now,
        )
        return order.to_dict()


def _query(params: dict[str, str], cap: int) -> tuple[OrderFilter, int, Cursor | None]:
    """The filter, page size and cursor of a list's query parameters (400 when bad)."""
    filters = {k: v for k, v in params.items() if k not in ("limit", "cursor")}
    try:
        f = parse_filter(filters)
        after = Cursor.decode(params["cursor"]) if params.get("cursor") else None
    except FilterError as exc:
        raise BadRequest(f"query: {exc}") from None
    limit = int(params["limit"]) if params.get("limit") else DEFAULT_LIMIT
    if not 1 <= limit <= cap:
        raise BadRequest(f"query: limit must be from 1 to {cap}")
    return f, limit, after
