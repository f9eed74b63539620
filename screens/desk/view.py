"""The desk's view model, pure: the agent's live hash, the call offered or connected, its work
order and the caller's other orders in; the state panel, the screen pop, the order panel and
my open orders out.

The screen pop shows while the agent's softphone rings (``offered``), talks (``on_call``)
and wraps up (``wrap_up``: the call of the agent's last CONNECT), so the order can be noted
and resolved after the caller hung up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing.core.agents import SYSTEM_PAUSE_REASONS
from screens.board import Board
from screens.i18n import Strings
from screens.risk import clock_level
from screens.settings import ScreensSettings
from workorders.clocks import ClockPolicy, clocks_of
from workorders.model import TRANSITIONS, Event, Status, WorkOrder

__all__ = [
    "CallFacts",
    "ClockRow",
    "DeskData",
    "DeskView",
    "OrderPanel",
    "OrderRow",
    "ScreenPop",
    "StatePanel",
    "current_call",
    "desk_view",
    "order_panel",
]

POP_STATES = frozenset({"offered", "on_call", "wrap_up"})
OPEN = frozenset({Status.PENDING, Status.ASSIGNED, Status.IN_PROGRESS, Status.ON_HOLD})


@dataclass(frozen=True)
class CallFacts:
    """The call's routing record as the desk needs it (``P{rt}:call:<id>``)."""

    call_id: str
    queue: str = ""
    entered_at: float | None = None
    answered_at: float | None = None
    callback_number: str = ""

    @classmethod
    def from_hash(cls, call_id: str, row: Mapping[str, str]) -> CallFacts:
        def num(name: str) -> float | None:
            try:
                return float(row[name]) if row.get(name) else None
            except ValueError:
                return None

        callback = row.get("callback") == "1"
        return cls(call_id, row.get("queue", ""), num("entered_at"), num("answered_at"),
                   row.get("callback_number", "") if callback else "")


@dataclass(frozen=True)
class DeskData:
    """What the aggregate read for one agent's desk beside the board."""

    call: CallFacts | None = None
    order: WorkOrder | None = None
    caller_orders: tuple[WorkOrder, ...] = ()  # the caller's orders, the current one included
    my_orders: tuple[WorkOrder, ...] = ()  # the agent's orders, any status


@dataclass(frozen=True)
class StatePanel:
    """The agent's state. Time in state and the wrap-up countdown run in the browser
    (:mod:`screens.running`): their texts are as of the board and left out of equality."""

    status: str
    label: str
    in_state: str = field(compare=False)
    pause_reason: str
    wrap_left: str = field(compare=False)  # the wrap-up countdown ("" outside wrap-up)
    actions: tuple[str, ...]  # login, ready, resume, logout
    pause_reasons: tuple[tuple[str, str], ...]  # (reason, label) the agent may pick
    since: float | None = None  # in the state since (time in state counts up from it)
    wrap_until: float | None = None  # the wrap-up ends (its countdown counts down to it)


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    created: str
    category: str
    status: str
    status_label: str
    urgency: str


@dataclass(frozen=True)
class ScreenPop:
    call_id: str
    phase: str  # offered (ringing), on_call, wrap_up
    caller_number: str
    caller_name: str
    callback_number: str
    transcript: str
    category: str
    urgency: str
    confidence: str
    menu_path: str
    waited: str = field(compare=False)  # as of the board; runs in the browser while ringing
    queue: str
    open_orders: tuple[OrderRow, ...]
    recent_contacts: tuple[OrderRow, ...]
    waited_since: float | None = None  # the call queued (``waited`` counts up until answered)


@dataclass(frozen=True)
class ClockRow:
    clock: str
    label: str
    state: str
    due: str
    level: str


@dataclass(frozen=True)
class OrderPanel:
    order_id: str
    status: str
    status_label: str
    category: str
    urgency: str
    outcome: str
    actions: tuple[str, ...]  # of note, hold, resume, resolve
    clocks: tuple[ClockRow, ...]
    notes: tuple[tuple[str, str, str], ...]  # (time, actor, text), newest first
    dispositions: tuple[str, ...]


@dataclass(frozen=True)
class DeskView:
    agent_id: str
    agent_name: str
    state: StatePanel
    pop: ScreenPop | None
    order: OrderPanel | None
    my_orders: tuple[OrderRow, ...]


def current_call(board: Board, agent_id: str) -> str | None:
    """The call the desk pops: the one offered to or connected with the agent, else in
    wrap-up the call of the agent's last CONNECT (the routing hash forgets it at hang-up)."""
    live = board.agents.get(agent_id, {})
    status = live.get("status", "")
    if status not in POP_STATES:
        return None
    if live.get("call_id"):
        return live["call_id"]
    return board.last_connects.get(agent_id) or None


def state_panel(board: Board, agent_id: str, t: Strings) -> StatePanel:
    live = board.agents.get(agent_id, {})
    status = live.get("status", "logged_out")
    state = board.snapshot.agents.get(agent_id)
    shown = board.snapshot.shown_status(state) if state else status
    since = _num(live.get("since"))
    wrap_until = _num(live.get("wrap_until"))
    actions = {
        "logged_out": ("login",),
        "available": ("logout",),
        "off_schedule": ("logout",),
        "paused": ("resume", "logout"),
        "wrap_up": ("ready", "logout"),
    }.get(shown, ())
    may_pause = shown in ("available", "off_schedule", "paused", "wrap_up")
    reasons = tuple(
        (r, t.label("reason", r))
        for r in sorted(board.config.pause_reasons - SYSTEM_PAUSE_REASONS)
    ) if may_pause else ()
    reason = live.get("pause_reason", "") if status == "paused" else ""
    wrapping = status == "wrap_up" and wrap_until is not None
    return StatePanel(
        status=shown, label=t(f"status.{shown}"),
        in_state=t.duration(board.now - since if since is not None else None),
        pause_reason=t.label("reason", reason) if reason else "",
        wrap_left=t.duration(max(0.0, wrap_until - board.now))
        if wrap_until is not None and wrapping else "",
        actions=actions, pause_reasons=reasons,
        since=since, wrap_until=wrap_until if wrapping else None,
    )


def _num(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def order_row(order: WorkOrder, t: Strings) -> OrderRow:
    return OrderRow(order.id, order.created_at.strftime("%Y-%m-%d %H:%M"),
                    t.category(order.category.value), order.status.value,
                    t(f"order.status.{order.status.value}"), order.urgency.value)


def screen_pop(board: Board, agent_id: str, data: DeskData, t: Strings) -> ScreenPop | None:
    call_id = current_call(board, agent_id)
    if call_id is None:
        return None
    order = data.order if data.order is not None and data.order.call_id == call_id else None
    call = data.call if data.call is not None and data.call.call_id == call_id else None
    waited = None
    waiting_since = None  # not answered yet: the time waited still runs
    if call is not None and call.entered_at is not None:
        waited = (call.answered_at or board.now) - call.entered_at
        waiting_since = call.entered_at if call.answered_at is None else None
    others = [o for o in data.caller_orders if order is None or o.id != order.id]
    return ScreenPop(
        call_id=call_id,
        phase=board.agents.get(agent_id, {}).get("status", ""),
        caller_number=order.caller_number if order else "",
        caller_name=order.caller_name if order else "",
        callback_number=call.callback_number if call else "",
        transcript=(order.transcript or "") if order else "",
        category=t.category(order.category.value) if order else "",
        urgency=t(f"urgency.{order.urgency.value}") if order else "",
        confidence=t.percent(order.confidence) if order and order.confidence is not None
        else "",
        menu_path=" \u203a ".join(order.menu_path) if order else "",
        waited=t.duration(waited),
        queue=call.queue if call else (order.queue or "" if order else ""),
        open_orders=tuple(order_row(o, t) for o in reversed(others) if o.status in OPEN),
        recent_contacts=tuple(order_row(o, t) for o in list(reversed(others))[:5]),
        waited_since=waiting_since,
    )


def order_panel(order: WorkOrder, policy: ClockPolicy, now: float, settings: ScreensSettings,
                t: Strings) -> OrderPanel:
    """The order as the agent works it: status, the actions its status accepts, its clocks
    (due time, and a colour as the due time nears: :func:`screens.risk.clock_level`, as the
    wallboard counts them), its notes."""
    accepted = TRANSITIONS[order.status]
    actions = tuple(a for a, e in (("note", Event.NOTE), ("hold", Event.HOLD),
                                   ("resume", Event.RESUME), ("resolve", Event.RESOLVE))
                    if e in accepted)
    rows = []
    for kind, clock in clocks_of(order, policy, now).clocks.items():
        # the wallboard's rule (screens.risk): the same clock has the same colour on both
        level = clock_level(clock, now, settings.clock_warning_s)
        rows.append(ClockRow(kind.value, t(f"clock.{kind.value}"),
                             t(f"clock.state.{clock.state.value}"), _when(clock.due), level))
    notes = tuple((_when(h.time), h.actor, text) for h in reversed(order.history)
                  if (text := _note_text(h.event, h.details, t)))
    return OrderPanel(
        order_id=order.id, status=order.status.value,
        status_label=t(f"order.status.{order.status.value}"),
        category=t.category(order.category.value), urgency=t(f"urgency.{order.urgency.value}"),
        outcome=order.outcome or "", actions=actions, clocks=tuple(rows), notes=notes,
        dispositions=settings.dispositions,
    )


def _note_text(event: str, details: Mapping[str, Any], t: Strings) -> str:
    """What the notes list says of a history entry ("" for entries it leaves out)."""
    words = str(details.get("text") or details.get("reason") or "")
    if event == "note":
        return words
    if event in ("hold", "resume", "resolve"):
        label = t(f"desk.history.{event}")
        said = words or str(details.get("outcome") or "")
        return f"{label}: {said}" if said else label
    return ""


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at is not None else "\u2014"


def my_orders(orders: Sequence[WorkOrder], t: Strings, status: str | None = None
              ) -> tuple[OrderRow, ...]:
    """The agent's open orders, newest first; ``status`` filters to one status."""
    rows = [o for o in orders if o.status in OPEN and (status is None or o.status == status)]
    rows.sort(key=lambda o: o.created_at, reverse=True)
    return tuple(order_row(o, t) for o in rows)


def desk_view(board: Board, agent_id: str, data: DeskData, policy: ClockPolicy,
              settings: ScreensSettings, t: Strings) -> DeskView:
    profile = board.config.agents.get(agent_id)
    pop = screen_pop(board, agent_id, data, t)
    order = data.order if pop is not None and data.order is not None else None
    return DeskView(
        agent_id=agent_id,
        agent_name=profile.name if profile else agent_id,
        state=state_panel(board, agent_id, t),
        pop=pop,
        order=order_panel(order, policy, board.now, settings, t) if order else None,
        my_orders=my_orders(data.my_orders, t),
    )
