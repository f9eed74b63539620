"""The desk's side of the fan-out and the agent's acts (state, work order).

A view is one agent's desk (the agent id). Beside the board, a desk reads the work order of
the call on screen, the caller's other orders and the agent's own orders; those reads are
made for a desk when its call changes or a work-order event (``WO*``: they name the order,
its call and its agent) touches what it shows, and kept otherwise; its own open orders come
from the ``wo:agent-open:<agent>`` index (``open_orders``), not from a scan. Showing an
order's personal data to the agent is recorded in the audit trail (``workorder.read``), once
per agent and order while this instance runs, like the API records each read it hands out.

State changes go through the API's :class:`api.services.AgentService` (the routing scripts,
the same checks); order changes through the work-order store, authorized against the order's
agent and team like the API's reads (``workorders:change``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from access import Identity, Permission, Role, authorize
from api.errors import BadRequest, WorkOrderNotFound
from api.routes import Actor
from api.seams import AuditTrail
from api.services import AgentService
from routing import core
from screens.board import Board, FeedEntry
from screens.desk.view import (
    OPEN,
    CallFacts,
    DeskData,
    current_call,
    desk_view,
    my_orders,
    order_panel,
)
from screens.render import Fragments, Renderer, Rows
from screens.settings import ScreensSettings
from screens.sse import stream_id_key
from screens.viewer import agent_scope
from screens.wallboard.view import feed_row, visible
from workorders.clocks import ClockPolicy
from workorders.model import Event, WorkOrder

__all__ = ["AgentOrders", "CallReader", "DeskPage", "OrderStore"]

RECENT_ORDERS = 500  # the newest orders scanned for "my open orders"
_AUDITED_KEPT = 10_000


class OrderStore(Protocol):
    """The part of :class:`workorders.store.WorkOrderStore` the desk uses."""

    async def get(self, order_id: str) -> WorkOrder | None: ...

    async def get_by_call(self, call_id: str) -> WorkOrder | None: ...

    async def by_caller(self, number: str) -> list[WorkOrder]: ...

    async def list_recent(self, n: int) -> list[WorkOrder]: ...

    async def update(self, order_id: str, now: float, event: Event | str, actor: str,
                     **changes: Any) -> WorkOrder | None: ...


class CallReader(Protocol):
    async def __call__(self, call_id: str) -> CallFacts | None: ...


class AgentOrders(Protocol):
    """An agent's open orders (``screens.wiring.OpenOrders``: the ``wo:agent-open:<agent>``
    index)."""

    async def __call__(self, agent_id: str) -> list[WorkOrder]: ...


ACTIONS = {"login": "login", "logout": "logout", "pause": "pause", "resume": "resume",
           "ready": "wrapup_end"}
ORDER_EVENTS = {"note": Event.NOTE, "hold": Event.HOLD, "resume": Event.RESUME,
                "resolve": Event.RESOLVE}


@dataclass
class _Kept:
    """One desk's reads: for which call, what they found, which orders they show."""

    call_id: str
    data: DeskData
    order_ids: frozenset[str]
    stale: bool = False


class DeskPage:
    def __init__(self, renderer: Renderer, settings: ScreensSettings, agents: AgentService,
                 orders: OrderStore, calls: CallReader, audit: AuditTrail,
                 clock_policy: Callable[[], ClockPolicy],
                 open_orders: AgentOrders | None = None) -> None:
        """``open_orders``: an agent's open orders from an index; without it, the
        :data:`RECENT_ORDERS` newest orders are scanned (fine for a few orders)."""
        self.renderer = renderer
        self.settings = settings
        self.agents = agents
        self.orders = orders
        self.calls = calls
        self.audit = audit
        self.clock_policy = clock_policy
        self.open_orders = open_orders
        self._fragments = Fragments(renderer)
        self._lines = Rows(renderer, "_activity.html", kept=2_000)
        # agent -> what its desk was made from (inputs, reads, config) and the fragments made
        self._shown: dict[str, tuple[tuple[Any, ...], DeskData, core.RoutingConfig,
                                     Mapping[str, str]]] = {}
        self._board_id: int | None = None  # the board whose work-order events were seen
        self._seen = ""  # the last stream entry seen
        self._data: dict[str, _Kept] = {}  # agent -> its desk's reads
        self._audited: OrderedDict[tuple[str, str], None] = OrderedDict()

    # --- the fan-out ------------------------------------------------------------------------

    def _note_changes(self, board: Board) -> None:
        """Once per board: the desks whose orders the new work-order events touch (the
        agent's, the order on screen, the caller's, one created for the call on screen)
        read theirs again; the others keep what they read."""
        if self._board_id == id(board):
            return
        self._board_id = id(board)
        if not board.feed:
            return
        seen = stream_id_key(self._seen) if self._seen else None
        if seen is not None and stream_id_key(board.feed[0].id) > seen:
            for kept in self._data.values():  # more happened than the feed keeps
                kept.stale = True
        agents: set[str] = set()
        orders: set[str] = set()
        calls: set[str] = set()
        for entry in reversed(board.feed):
            if seen is not None and stream_id_key(entry.id) <= seen:
                break
            if entry.kind.startswith("WO"):
                agents.add(entry.agent)
                orders.add(entry.fields.get("order_id", ""))
                calls.add(entry.fields.get("call_id", ""))
        self._seen = board.feed[-1].id
        for touched in (agents, orders, calls):
            touched.discard("")  # an event that does not say: nothing to match
        for agent_id, kept in self._data.items():
            if agent_id in agents or kept.order_ids & orders or kept.call_id in calls:
                kept.stale = True

    async def data(self, board: Board, agent_id: str) -> DeskData:
        self._note_changes(board)
        call_id = current_call(board, agent_id) or ""
        kept = self._data.get(agent_id)
        if kept is not None and not kept.stale and kept.call_id == call_id:
            return kept.data
        order = await self.orders.get_by_call(call_id) if call_id else None
        call = await self.calls(call_id) if call_id else None
        caller = tuple(await self.orders.by_caller(order.caller_number)) if order else ()
        data = DeskData(call, order, caller, tuple(await self._my_orders(agent_id)))
        shown = {o.id for o in (*caller, *data.my_orders)} | ({order.id} if order else set())
        self._data[agent_id] = _Kept(call_id, data, frozenset(shown))
        if order is not None:
            await self._audit_read(agent_id, order.id, board.now)
        return data

    async def _my_orders(self, agent_id: str) -> list[WorkOrder]:
        if self.open_orders is not None:
            return await self.open_orders(agent_id)
        return [o for o in await self.orders.list_recent(RECENT_ORDERS) if o.agent == agent_id]

    async def _audit_read(self, agent_id: str, order_id: str, now: float) -> None:
        if (agent_id, order_id) in self._audited:
            return
        await self.audit.record(user=agent_id, role=Role.AGENT.value, action="workorder.read",
                                obj=f"workorder:{order_id}", address="screens:desk", now=now)
        self._audited[(agent_id, order_id)] = None
        while len(self._audited) > _AUDITED_KEPT:
            self._audited.popitem(last=False)

    async def fragments(self, board: Board, key: Hashable) -> Mapping[str, str]:
        agent_id = str(key)
        data = await self.data(board, agent_id)
        # What a desk shows changes with the agent's state, the reads above, the config and
        # the second (durations, countdowns, clocks): the same inputs, the same fragments.
        state = board.snapshot.agents.get(agent_id)
        inputs = (tuple(sorted(board.agents.get(agent_id, {}).items())),
                  board.snapshot.shown_status(state) if state else "",
                  current_call(board, agent_id), int(board.now))
        kept = self._shown.get(agent_id)
        if (kept is not None and kept[0] == inputs and kept[1] is data
                and kept[2] is board.config):
            return kept[3]
        view = desk_view(board, agent_id, data, self.clock_policy(), self.settings,
                         self.renderer.strings)
        r = self._fragments.render
        fragments = {
            "state": r(agent_id, "_state.html", s=view.state),
            "pop": r(agent_id, "_pop.html", pop=view.pop),
            "order": r(agent_id, "_order.html", order=view.order),
            "orders": r(agent_id, "_orders.html", orders=view.my_orders),
        }
        self._shown[agent_id] = (inputs, data, board.config, fragments)
        return fragments

    def notice(self, since: float | None) -> str:
        return self.renderer.notice(since)

    def activity(self, board: Board, entry: FeedEntry, key: Hashable) -> str | None:
        agent_id = str(key)
        viewer = Identity(agent_id, Role.AGENT)
        if not visible(entry, viewer, board, agent=agent_id):
            return None
        return self._lines.render(feed_row(entry, self.renderer.strings))

    async def orders_list(self, agent_id: str, status: str | None) -> str:
        """My open orders, filtered to one status (the back-office list's filter)."""
        if status is not None and status not in {s.value for s in OPEN}:
            raise BadRequest(f"unknown status {status!r}; one of {sorted(s.value for s in OPEN)}")
        orders = [o for o in await self.orders.list_recent(RECENT_ORDERS) if o.agent == agent_id]
        return self.renderer.render("_orders.html",
                                    orders=my_orders(orders, self.renderer.strings, status))

    # --- the agent's acts -------------------------------------------------------------------

    async def change_state(self, actor: Actor, action: str, reason: str) -> str:
        identity = actor.identity
        assert identity is not None
        if action not in ACTIONS:
            raise BadRequest(f"unknown action {action!r}")
        await self.agents.act(actor, identity.user, ACTIONS[action], reason)
        return ""  # done: the live state panel shows the new state; only refusals are said

    async def _order_for(self, actor: Actor, order_id: str, permission: Permission,
                         board: Board) -> WorkOrder:
        identity = actor.identity
        assert identity is not None
        order = await self.orders.get(order_id)
        if order is None:
            # a role that may touch no order learns nothing, not even that it is absent
            authorize(identity, permission, agent_scope(board.config, identity.user))
            raise WorkOrderNotFound(f"no work order {order_id}")
        actor.authorize(permission, agent_scope(board.config, order.agent))
        return order

    async def show_order(self, actor: Actor, order_id: str, board: Board) -> str:
        order = await self._order_for(actor, order_id, Permission.WORKORDERS_READ, board)
        identity = actor.identity
        assert identity is not None
        await self.audit.record(user=identity.user, role=str(identity.role),
                                action="workorder.read", obj=f"workorder:{order.id}",
                                address=actor.address, now=actor.now)
        return self._panel(order, actor.now)

    async def change_order(self, actor: Actor, order_id: str, action: str,
                           form: Mapping[str, str], board: Board) -> str:
        """Note, hold, resume or resolve (with a disposition) the order, as the agent."""
        event = ORDER_EVENTS.get(action)
        if event is None:
            raise BadRequest(f"unknown order action {action!r}")
        order = await self._order_for(actor, order_id, Permission.WORKORDERS_CHANGE, board)
        changes: dict[str, Any] = {}
        if event is Event.NOTE:
            changes["text"] = _required(form, "text", 2000)
        elif event is Event.HOLD:
            changes["waiting_on"] = form.get("waiting_on", "")
            changes["reason"] = _required(form, "reason", 200)
        elif event is Event.RESOLVE:
            outcome = form.get("outcome", "")
            if outcome not in self.settings.dispositions:
                raise BadRequest(f"unknown disposition {outcome!r}")
            changes["outcome"] = outcome
        identity = actor.identity
        assert identity is not None
        changed = await self.orders.update(order.id, actor.now, event, identity.user, **changes)
        return self._panel(changed or order, actor.now)

    def _panel(self, order: WorkOrder, now: float) -> str:
        panel = order_panel(order, self.clock_policy(), now, self.settings,
                            self.renderer.strings)
        # beside the live panel (or in place of it until the next frame): ids of its own
        return self.renderer.render("_order.html", order=panel, suffix=f"-{order.id}")


def _required(form: Mapping[str, str], name: str, limit: int) -> str:
    value = form.get(name, "").strip()
    if not value:
        raise BadRequest(f"{name} is required")
    if len(value) > limit:
        raise BadRequest(f"{name}: at most {limit} characters")
    return value

