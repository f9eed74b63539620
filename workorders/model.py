"""The work order as pure data: lifecycle, deadlines by urgency, history, JSON.

No I/O and no clock here: every function that needs the time takes ``now`` (seconds since the
epoch, UTC), so the store, the simulator and the tests drive the same code.

Lifecycle (``TRANSITIONS``; every event a state accepts is declared, anything else raises
``TransitionRefused``)::

    pending      assign -> assigned          (every status: update, note and contact keep it;
                                              every open one: repeat keeps it)
    assigned     assign -> assigned (reassign), unassign -> pending, start -> in_progress,
                 hold -> on_hold, back_office -> pending
    in_progress  assign -> in_progress (handover), resolve -> resolved, hold -> on_hold,
                 back_office -> pending
    on_hold      resume -> the status the hold left (assigned or in_progress),
                 assign -> on_hold (handover while waiting)
    resolved     close -> closed, reopen -> in_progress
    closed       reopen -> pending
    (not closed) merge -> closed (folded into another order), absorb -> the same status
                 (another order was folded into this one)

On hold, decided: the order waits on the customer or a third party (``waiting_on`` and a
``reason`` are required, both kept in the history). The response and resolution clocks pause
(``workorders.clocks``). ``resume`` goes back to the status the hold left, read from the hold's
history entry; the table names ``in_progress`` for it, the usual case. A 24x7 ``respond_by``
moves on by the time spent on hold when the hold began before it was due.

Contact, decided: ``contact`` logs a conversation with the customer (``channel``, ``reached``,
optional ``text``; history only, every status accepts it). A reached contact answers the
caller (response clock) and, after a resolution, closes the feedback duty (feedback clock).

Back office, decided: ``back_office`` (``reason``, one of ``BACK_OFFICE_REASONS``, optional
``text``) sends an order that was not handled live back to pending without an agent, its reason
kept in ``back_office``; pending itself accepts it (an order never taken, e.g. out of hours).
``back_office_reason`` tells the back office which pending orders are its own: those so marked
and those whose call ended without an agent (outcome abandoned, callback-failed, overflow-*,
operator-*). ``workorders.backoffice`` assigns them.

Repeat contact, decided: ``repeat`` (``call_id`` of the new call) counts one more call about an
open order (``contacts``) instead of a second order; the store links the call atomically at
creation (``WorkOrderStore.create_for_call``), the model only defines the entry.

Legal hold, decided: ``legal_hold`` (``legal_hold`` true or false, a ``reason``; every status
accepts it and keeps its status) sets or releases the hold. Setting it again (or releasing an
order that is not held) changes nothing but is recorded too: a retried command is harmless,
and a second reason for the hold is kept. Who and why are in the history. A held order is
never purged (``workorders.retention``); the hold does not move ``retain_until``.

Reopen, decided:
- ``resolved -> in_progress``: the answer did not hold but the agent who resolved it still owns
  the order (it is not closed yet), so it goes straight back to that agent's desk.
- ``closed -> pending``: the order is archived work; it goes back to assignment like a new
  request, the agent and the outcome are cleared.
Both restart the deadlines from the reopen time (a reopen is a new promise to the caller).

Merge, decided (:func:`merge_orders`): a supervisor folds a duplicate into the order that
survives. The merged order gets ``merged_into`` = the survivor's id, is closed with outcome
``merged`` (from any status but closed: archived work is not folded) and keeps its history;
the survivor gets an ``absorb`` entry naming the merged order and how many contacts and notes
it had. A
merged order cannot be merged again, and nothing is merged into a closed or merged order.
Reopening a merged order makes it stand alone again (``merged_into`` cleared, both histories
say what happened).

Deadlines (``Policy``):
- ``assign_by`` = start + assignment target (2 h): breached while the order is still pending.
- ``respond_by`` = start + response target of the urgency (1 h / 24 h / 48 h): the caller must
  have an answer by then; breached while the order is not yet resolved or closed.
- ``retain_until`` = at least ``retention_years`` after creation, extended to that many years
  after the last close: the order must be kept that long.
"start" is the creation, or the last reopen. A change of urgency recomputes ``respond_by``
from that start.

``caller_number`` and ``caller_name`` come from the caller's side of the call: they are stored
verbatim (quotes, backslashes, ``${...}``, newlines and all) and only ever escaped where they
leave for another protocol.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

# The field values live in workorders.values; the model keeps exporting their names.
from workorders.values import CHANNELS as CHANNELS
from workorders.values import DEFAULT_CATEGORIES as DEFAULT_CATEGORIES
from workorders.values import WAITING_ON as WAITING_ON
from workorders.values import Category as Category
from workorders.values import TransitionRefused as TransitionRefused
from workorders.values import UnknownCategory as UnknownCategory
from workorders.values import Urgency as Urgency
from workorders.values import WorkOrderError as WorkOrderError
from workorders.values import check_history_words, coerce


class Status(StrEnum):
    PENDING = "pending"
    ASSIGNED = "assigned"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"  # waiting on the customer or a third party: clocks paused
    RESOLVED = "resolved"
    CLOSED = "closed"


class Event(StrEnum):
    """What can happen to an existing order (creation is ``create_order``, not an event)."""

    ASSIGN = "assign"  # an agent takes it (again: reassignment or handover)
    UNASSIGN = "unassign"  # the agent gives it back (did not answer, went offline)
    START = "start"  # the agent starts working on it
    RESOLVE = "resolve"  # the caller has an answer
    CLOSE = "close"  # archived
    REOPEN = "reopen"  # the answer did not hold
    UPDATE = "update"  # reclassification, transcript, survey scores: no status change
    NOTE = "note"  # a remark in the history only
    HOLD = "hold"  # waiting on the customer or a third party
    RESUME = "resume"  # the wait is over: back to the status the hold left
    CONTACT = "contact"  # a logged contact with the customer (history only)
    BACK_OFFICE = "back_office"  # not handled live: back to pending, for the back office
    REPEAT = "repeat"  # the caller called again about it: one more contact (the new call id)
    LEGAL_HOLD = "legal_hold"  # set or release a legal hold: the order may not be purged
    MERGE = "merge"  # folded into another order (merge_orders): closed, merged_into set
    ABSORB = "absorb"  # another order was folded into this one (history only)


#: The whole state machine: for each status, the events it accepts and the status they lead to.
TRANSITIONS: Mapping[Status, Mapping[Event, Status]] = {
    Status.PENDING: {
        Event.ASSIGN: Status.ASSIGNED,
        Event.UPDATE: Status.PENDING,
        Event.NOTE: Status.PENDING,
        Event.CONTACT: Status.PENDING,
        Event.BACK_OFFICE: Status.PENDING,
        Event.REPEAT: Status.PENDING,
        Event.LEGAL_HOLD: Status.PENDING,
        Event.MERGE: Status.CLOSED,
        Event.ABSORB: Status.PENDING,
    },
    Status.ASSIGNED: {
        Event.ASSIGN: Status.ASSIGNED,
        Event.UNASSIGN: Status.PENDING,
        Event.START: Status.IN_PROGRESS,
        Event.UPDATE: Status.ASSIGNED,
        Event.NOTE: Status.ASSIGNED,
        Event.HOLD: Status.ON_HOLD,
        Event.CONTACT: Status.ASSIGNED,
        Event.BACK_OFFICE: Status.PENDING,
        Event.REPEAT: Status.ASSIGNED,
        Event.LEGAL_HOLD: Status.ASSIGNED,
        Event.MERGE: Status.CLOSED,
        Event.ABSORB: Status.ASSIGNED,
    },
    Status.IN_PROGRESS: {
        Event.ASSIGN: Status.IN_PROGRESS,
        Event.RESOLVE: Status.RESOLVED,
        Event.UPDATE: Status.IN_PROGRESS,
        Event.NOTE: Status.IN_PROGRESS,
        Event.HOLD: Status.ON_HOLD,
        Event.CONTACT: Status.IN_PROGRESS,
        Event.BACK_OFFICE: Status.PENDING,
        Event.REPEAT: Status.IN_PROGRESS,
        Event.LEGAL_HOLD: Status.IN_PROGRESS,
        Event.MERGE: Status.CLOSED,
        Event.ABSORB: Status.IN_PROGRESS,
    },
    Status.ON_HOLD: {
        Event.RESUME: Status.IN_PROGRESS,  # or assigned: the status the hold left (apply)
        Event.ASSIGN: Status.ON_HOLD,
        Event.UPDATE: Status.ON_HOLD,
        Event.NOTE: Status.ON_HOLD,
        Event.CONTACT: Status.ON_HOLD,
        Event.REPEAT: Status.ON_HOLD,
        Event.LEGAL_HOLD: Status.ON_HOLD,
        Event.MERGE: Status.CLOSED,
        Event.ABSORB: Status.ON_HOLD,
    },
    Status.RESOLVED: {
        Event.CLOSE: Status.CLOSED,
        Event.REOPEN: Status.IN_PROGRESS,
        Event.UPDATE: Status.RESOLVED,
        Event.NOTE: Status.RESOLVED,
        Event.CONTACT: Status.RESOLVED,
        Event.LEGAL_HOLD: Status.RESOLVED,
        Event.MERGE: Status.CLOSED,
        Event.ABSORB: Status.RESOLVED,
    },
    Status.CLOSED: {
        Event.REOPEN: Status.PENDING,
        Event.UPDATE: Status.CLOSED,  # a survey score may arrive after closing
        Event.NOTE: Status.CLOSED,
        Event.CONTACT: Status.CLOSED,
        Event.LEGAL_HOLD: Status.CLOSED,
    },
}

#: Fields of the order an event may change, and words it may only record in the history.
_UPDATABLE = frozenset(
    {"category", "urgency", "queue", "menu_path", "transcript", "confidence", "engine",
     "language", "outcome", "csat", "nps"}
)
CHANGES: Mapping[Event, frozenset[str]] = {
    Event.ASSIGN: frozenset({"agent", "queue"}),
    Event.UNASSIGN: frozenset({"reason"}),
    Event.START: frozenset(),
    Event.RESOLVE: frozenset({"outcome"}),
    Event.CLOSE: frozenset({"outcome"}),
    Event.REOPEN: frozenset({"reason"}),
    Event.UPDATE: _UPDATABLE,
    Event.NOTE: frozenset({"text"}),
    Event.HOLD: frozenset({"waiting_on", "reason"}),
    Event.RESUME: frozenset({"reason"}),
    Event.CONTACT: frozenset({"channel", "reached", "text"}),
    Event.BACK_OFFICE: frozenset({"reason", "text"}),
    Event.REPEAT: frozenset({"call_id"}),
    Event.LEGAL_HOLD: frozenset({"legal_hold", "reason"}),
    Event.MERGE: frozenset({"into"}),
    Event.ABSORB: frozenset({"merged", "contacts", "notes", "calls"}),
}
_HISTORY_ONLY = frozenset(
    {"reason", "text", "waiting_on", "channel", "reached", "call_id", "into", "merged",
     "contacts", "notes", "calls"}
)

#: Why an order waits for the back office (``back_office_reason``): the reasons the
#: ``back_office`` event takes, and those read from the outcome of a call not handled live.
BACK_OFFICE_REASONS = (
    "needs-back-office",  # the agent marked it: someone must work on it after the call
    "out-of-hours",  # taken while nobody was on duty
    "abandoned",  # the caller hung up before an agent answered
    "callback-failed",  # the callback's attempts are spent
    "overflow",  # the queue overflowed to the operator
    "operator",  # the caller went to the operator, who does not own work orders
)

#: Statuses in which the response deadline still runs.
RESPONSE_OPEN = frozenset({Status.PENDING, Status.ASSIGNED, Status.IN_PROGRESS})


@dataclass(frozen=True)
class Policy:
    """The operator's service standard, in seconds (``schema.WorkOrdersConfig.policy()``)."""

    response: Mapping[Urgency, float] = field(
        default_factory=lambda: {
            Urgency.URGENT: 3600.0,
            Urgency.IMPORTANT: 24 * 3600.0,
            Urgency.NORMAL: 48 * 3600.0,
        }
    )
    assign_within: float = 2 * 3600.0
    retention_years: int = 3
    # The categories orders may have (``ivr.categories.work_order_categories`` of the config);
    # the fallback ``other`` is always among them.
    categories: frozenset[str] = DEFAULT_CATEGORIES

    def __post_init__(self) -> None:
        if self.retention_years < 3:
            raise WorkOrderError(
                f"retention_years={self.retention_years}: work orders must be kept "
                "at least 3 years"
            )
        missing = set(Urgency) - set(self.response)
        if missing:
            raise WorkOrderError(f"no response target for urgency {sorted(missing)}")
        if Category.OTHER not in self.categories:
            raise WorkOrderError(f"categories {sorted(self.categories)}: 'other' is required")


@dataclass(frozen=True)
class HistoryEntry:
    """One line of an order's history: when, what, who, and the details of the change."""

    time: datetime
    event: str
    actor: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": _iso(self.time),
            "event": self.event,
            "actor": self.actor,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> HistoryEntry:
        return cls(
            time=_parse_iso(data["time"]),
            event=str(data["event"]),
            actor=str(data["actor"]),
            details=dict(data.get("details") or {}),
        )


@dataclass(frozen=True)
class WorkOrder:
    """One caller's request, from the call that raised it until it is closed and retained."""

    id: str
    call_id: str
    caller_number: str
    caller_name: str
    created_at: datetime
    updated_at: datetime
    assign_by: datetime
    respond_by: datetime
    retain_until: datetime
    status: Status = Status.PENDING
    category: Category = Category.OTHER
    urgency: Urgency = Urgency.NORMAL
    menu_path: tuple[str, ...] = ()
    queue: str | None = None
    agent: str | None = None
    outcome: str | None = None
    transcript: str | None = None
    confidence: float | None = None
    engine: str | None = None
    language: str | None = None  # the caller's language ("en", "ko"), as Asterisk spells it
    csat: int | None = None
    nps: int | None = None
    history: tuple[HistoryEntry, ...] = ()
    # The SLA warnings and breaches dealt with (``workorders.escalation``: clock:level:due),
    # written by the escalation watch: what the order no longer owes its supervisor.
    escalations: tuple[str, ...] = ()
    # Calls about this order: the one that raised it plus each repeat contact linked to it.
    contacts: int = 1
    # Why it was sent to the back office (``Event.BACK_OFFICE``), kept after assignment.
    back_office: str | None = None
    # Under a legal hold the order is never purged (``workorders.retention``), whatever its
    # ``retain_until``; who set or released it, and why, is in the history.
    legal_hold: bool = False
    merged_into: str | None = None  # the surviving order's id once this one was merged

    def with_id(self, order_id: str) -> WorkOrder:
        """The same order under ``order_id`` (the id Redis gave a draft). What
        ``dataclasses.replace(order, id=...)`` gives, without copying its many fields one by
        one through ``__init__``: it runs once per creation. (No field is computed at
        construction, so a copy of the instance dict is the same order.)"""
        order = object.__new__(WorkOrder)
        order.__dict__.update(self.__dict__)
        order.__dict__["id"] = order_id
        return order

    def to_dict(self, *, history: bool = True) -> dict[str, Any]:
        """The contract's shape (docs/contracts.md, "Work order"), plus ``retain_until``;
        ``history=False`` leaves the history out (the store keeps it apart)."""
        created = _iso(self.created_at)
        data = {
            "id": self.id,
            "call_id": self.call_id,
            "caller": {"number": self.caller_number, "name": self.caller_name},
            "menu_path": list(self.menu_path),
            "category": self.category.value,
            "urgency": self.urgency.value,
            "queue": self.queue,
            "agent": self.agent,
            "status": self.status.value,
            "outcome": self.outcome,
            "created_at": created,
            # A new order's two times are one object: spelled once.
            "updated_at": created if self.updated_at is self.created_at
            else _iso(self.updated_at),
            "deadlines": {"assign_by": _iso(self.assign_by), "respond_by": _iso(self.respond_by)},
            "retain_until": _iso(self.retain_until),
            "transcript": self.transcript,
            "confidence": self.confidence,
            "engine": self.engine,
            "language": self.language,
            "history": [entry.to_dict() for entry in self.history] if history else None,
            "csat": self.csat,
            "nps": self.nps,
            "escalations": list(self.escalations),
            "contacts": self.contacts,
            "back_office": self.back_office,
            "legal_hold": self.legal_hold,
            "merged_into": self.merged_into,
        }
        if not history:
            del data["history"]
        return data

    def to_json(self) -> str:
        # ensure_ascii: the text is plain ASCII whatever the caller sent, safe for any log.
        return json.dumps(self.to_dict(), ensure_ascii=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> WorkOrder:
        """Inverse of ``to_dict``; unknown keys are ignored (a newer writer may add some)."""
        try:
            caller = data["caller"]
            deadlines = data["deadlines"]
            return cls(
                id=str(data["id"]),
                call_id=str(data["call_id"]),
                caller_number=str(caller["number"]),
                caller_name=str(caller["name"]),
                created_at=_parse_iso(data["created_at"]),
                updated_at=_parse_iso(data["updated_at"]),
                assign_by=_parse_iso(deadlines["assign_by"]),
                respond_by=_parse_iso(deadlines["respond_by"]),
                retain_until=_parse_iso(data["retain_until"]),
                status=Status(data["status"]),
                category=Category(data["category"]),
                urgency=Urgency(data["urgency"]),
                menu_path=tuple(str(step) for step in data.get("menu_path") or ()),
                queue=data.get("queue"),
                agent=data.get("agent"),
                outcome=data.get("outcome"),
                transcript=data.get("transcript"),
                confidence=data.get("confidence"),
                engine=data.get("engine"),
                language=data.get("language"),
                csat=data.get("csat"),
                nps=data.get("nps"),
                history=tuple(HistoryEntry.from_dict(h) for h in data.get("history") or ()),
                escalations=tuple(str(key) for key in data.get("escalations") or ()),
                contacts=int(data.get("contacts") or 1),
                back_office=data.get("back_office"),
                legal_hold=bool(data.get("legal_hold", False)),
                merged_into=data.get("merged_into"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise WorkOrderError(f"not a work order: {exc!r}") from exc

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkOrder:
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise WorkOrderError(f"not a work order: {exc}") from exc
        return cls.from_dict(data)


@dataclass(frozen=True)
class Breach:
    """A deadline the order has missed: which one, when it was, how late the order is now."""

    deadline: str  # "assign_by" or "respond_by"
    due: datetime
    late_by: timedelta


def create_order(
    order_id: str,
    call_id: str,
    caller_number: str,
    caller_name: str,
    now: float,
    policy: Policy,
    actor: str = "ivr",
    **fields: Any,
) -> WorkOrder:
    """A new pending order for a call. ``fields``: any of category, urgency, queue, menu_path,
    transcript, confidence, engine, language (what the call flow learned before creating it)."""
    unknown = set(fields) - (_UPDATABLE - {"outcome", "csat", "nps"})
    if unknown:
        raise WorkOrderError(f"create: unknown or read-only fields {sorted(unknown)}")
    at = utc(now)
    values = coerce(fields, policy.categories)
    urgency = values.get("urgency", Urgency.NORMAL)
    details = {k: _json_value(v) for k, v in values.items()}
    # Built with its history at once: a dataclasses.replace of an order copies all its
    # fields field by field, a noticeable share of a creation's CPU.
    return WorkOrder(
        id=order_id,
        call_id=call_id,
        caller_number=caller_number,
        caller_name=caller_name,
        created_at=at,
        updated_at=at,
        assign_by=at + timedelta(seconds=policy.assign_within),
        respond_by=at + timedelta(seconds=policy.response[urgency]),
        retain_until=add_years(at, policy.retention_years),
        history=(HistoryEntry(at, "create", actor, details),),
        **values,
    )


def apply(
    order: WorkOrder, event: Event | str, now: float, actor: str, policy: Policy, **changes: Any
) -> WorkOrder:
    """The order after ``event`` at ``now``, with one history entry appended.

    Raises ``TransitionRefused`` when the current status does not accept the event, and
    ``WorkOrderError`` when a change is not allowed for the event or has a bad value.
    """
    try:
        event = Event(event)
    except ValueError:
        raise WorkOrderError(
            f"unknown event {event!r}; events are {[e.value for e in Event]}"
        ) from None
    accepted = TRANSITIONS[order.status]
    if event not in accepted:
        raise TransitionRefused(
            f"work order {order.id} is {order.status.value}: {event.value!r} is refused "
            f"(accepted: {', '.join(e.value for e in accepted)})"
        )
    not_allowed = set(changes) - CHANGES[event]
    if not_allowed:
        raise WorkOrderError(
            f"{event.value}: cannot change {sorted(not_allowed)} "
            f"(allowed: {sorted(CHANGES[event]) or 'nothing'})"
        )
    at = utc(now)
    check_history_words(event, changes)
    values = coerce({k: v for k, v in changes.items() if k not in _HISTORY_ONLY}, policy.categories)
    new_status = held_from(order) if event is Event.RESUME else accepted[event]
    if event is Event.ASSIGN and not values.get("agent"):
        raise WorkOrderError("assign: an agent is required")
    if event is Event.UNASSIGN or (event is Event.REOPEN and new_status is Status.PENDING):
        values["agent"] = None
    if event is Event.REOPEN and new_status is Status.PENDING:
        values.update(outcome=None, merged_into=None)  # a reopened duplicate is its own again
    if event is Event.BACK_OFFICE:
        values["agent"], values["back_office"] = None, _back_office_word(changes.get("reason"))
    if event is Event.REPEAT:
        if not isinstance(changes.get("call_id"), str) or not changes["call_id"]:
            raise WorkOrderError("repeat: the call id of the new contact is required")
        values["contacts"] = order.contacts + 1
    if event is Event.MERGE:
        if not isinstance(changes.get("into"), str) or not changes["into"]:
            raise WorkOrderError("merge: the surviving order's id (into) is required")
        values.update(merged_into=changes["into"], outcome="merged")
    if event is Event.ABSORB:
        # The merged order's calls count as calls about this one.
        values["contacts"] = order.contacts + int(changes.get("calls") or 0)

    updated = replace(order, status=new_status, updated_at=at, **values)
    if event is Event.REOPEN:
        updated = replace(
            updated,
            assign_by=at + timedelta(seconds=policy.assign_within),
            respond_by=at + timedelta(seconds=policy.response[updated.urgency]),
        )
    elif event is Event.RESUME:
        hold = _last_hold(order)
        held_at = hold.time if hold is not None else at
        if held_at < order.respond_by:
            updated = replace(updated, respond_by=order.respond_by + (at - held_at))
    elif "urgency" in values and values["urgency"] is not order.urgency:
        started = _clock_start(order)
        updated = replace(
            updated, respond_by=started + timedelta(seconds=policy.response[updated.urgency])
        )
    if event is Event.CLOSE:
        # The close itself, not a later note, survey score or legal hold on the closed order:
        # retention counts from the last close.
        updated = replace(
            updated, retain_until=max(order.retain_until, add_years(at, policy.retention_years))
        )

    details: dict[str, Any] = {k: _json_value(v) for k, v in changes.items()}
    if new_status is not order.status:
        details["from"] = order.status.value
        details["to"] = new_status.value
    return replace(updated, history=(*order.history, HistoryEntry(at, event.value, actor, details)))


def merge_orders(
    survivor: WorkOrder, merged: WorkOrder, now: float, actor: str, policy: Policy
) -> tuple[WorkOrder, WorkOrder]:
    """The survivor and the merged order after ``merged`` is folded into ``survivor``.

    Raises ``WorkOrderError`` for an order merged into itself, ``TransitionRefused`` when the
    survivor is closed or either order is already merged (both histories are kept).
    """
    if survivor.id == merged.id:
        raise WorkOrderError(f"work order {survivor.id} cannot be merged into itself")
    if survivor.status is Status.CLOSED:
        raise TransitionRefused(
            f"work order {survivor.id} is closed: nothing can be merged into it (reopen it first)"
        )
    for order in (merged, survivor):
        if order.merged_into is not None:
            raise TransitionRefused(
                f"work order {order.id} is already merged into {order.merged_into}: "
                f"'merge' is refused"
            )
    kept = apply(survivor, Event.ABSORB, now, actor, policy, **absorb_changes(merged))
    folded = apply(merged, Event.MERGE, now, actor, policy, into=survivor.id)
    return kept, folded


def absorb_changes(merged: WorkOrder) -> dict[str, Any]:
    """The survivor's ``absorb`` of ``merged``: its id, and how many contacts, notes and calls
    it had."""
    counts: dict[str, Any] = {
        name: sum(1 for entry in merged.history if entry.event == event.value)
        for name, event in (("contacts", Event.CONTACT), ("notes", Event.NOTE))
    }
    counts["calls"] = merged.contacts
    return {"merged": merged.id, **counts}


def overdue(order: WorkOrder, now: float) -> tuple[Breach, ...]:
    """The deadlines ``order`` has missed at ``now`` (empty when none): input to escalation."""
    at = utc(now)
    breaches = []
    if order.status is Status.PENDING and at > order.assign_by:
        breaches.append(Breach("assign_by", order.assign_by, at - order.assign_by))
    if order.status in RESPONSE_OPEN and at > order.respond_by:
        breaches.append(Breach("respond_by", order.respond_by, at - order.respond_by))
    return tuple(breaches)


def back_office_reason(order: WorkOrder) -> str | None:
    """Why the back office must assign this order now, or None: it is pending and was not
    handled live (sent there explicitly, or its call was abandoned, its callback failed, or it
    went to the operator). A pending order without such a reason is a call still in progress
    (queued, ringing), which the answering agent will take."""
    if order.status is not Status.PENDING:
        return None
    if order.back_office:
        return order.back_office
    outcome = order.outcome or ""
    if outcome in ("abandoned", "callback-failed"):
        return outcome
    for prefix, reason in (("overflow-", "overflow"), ("operator-", "operator")):
        if outcome.startswith(prefix):
            return reason
    return None


def _back_office_word(reason: object) -> str:
    if reason not in BACK_OFFICE_REASONS:
        raise WorkOrderError(f"back_office: reason must be one of {list(BACK_OFFICE_REASONS)}")
    return str(reason)


def held_from(order: WorkOrder) -> Status:
    """The status the order's last hold left (where ``resume`` takes it back)."""
    hold = _last_hold(order)
    return Status(hold.details.get("from", "in_progress")) if hold else Status.IN_PROGRESS


def _last_hold(order: WorkOrder) -> HistoryEntry | None:
    return next((h for h in reversed(order.history) if h.event == Event.HOLD.value), None)


def utc(now: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime, to the microsecond (what ISO keeps)."""
    return datetime.fromtimestamp(now, UTC)


def add_years(at: datetime, years: int) -> datetime:
    """The same date and time ``years`` later; 29 February becomes 1 March (never earlier)."""
    try:
        return at.replace(year=at.year + years)
    except ValueError:
        return at.replace(year=at.year + years, month=3, day=1)


def _clock_start(order: WorkOrder) -> datetime:
    for entry in reversed(order.history):
        if entry.event in ("create", Event.REOPEN.value):
            return entry.time
    return order.created_at


def _json_value(value: Any) -> Any:
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, str):
        return str.__str__(value)  # a Category as plain JSON text
    if isinstance(value, tuple):
        return list(value)
    return value


def iso(at: datetime) -> str:
    """A time as an order's dict spells it (``2026-11-28T12:00:00.000000Z``)."""
    return _iso(at)


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    if at.tzinfo is None:
        raise ValueError(f"time without a zone: {text!r}")
    return at.astimezone(UTC)
