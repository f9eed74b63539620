"""Secondary indexes of work orders: which sorted sets an order belongs to, as pure data.

Every index is a Redis sorted set whose members are order ids. An *indexer* maps an order in
its current state to the sets it belongs to (key suffix after the prefix -> score); the store
diffs the order before and after each write (:func:`index_changes`) and writes the result in
the same atomic step as the order itself (the create script, the update's MULTI/EXEC), so an
index never disagrees with the orders it points at, also across a spool replay.

Each set exists once per bucket (``workorders.buckets``: ``wo:open`` is ``<p>wo:{wo<b>}:open``
in bucket b), holding that bucket's orders; readers merge the buckets.

A feature that needs to find orders (lists and filters, the escalation watch, back-office
assignment, retention) adds its indexer to :data:`INDEXERS` rather than writing keys itself.
The keys are listed in docs/contracts.md ("Redis keys"). Shipped:

=====================================  =========================================  ==========
``wo:status:<status>``                 every order, by its status                 created_at
``wo:category:<category>``             every order, by its category               created_at
``wo:urgency:<urgency>``               every order, by its urgency                created_at
``wo:agent:<agent>``                   every order an agent holds                 created_at
``wo:status-urgency:<s>:<u>``          every order, by status and urgency (a      created_at
                                       rare pair is walked alone)
``wo:open``                            orders not yet resolved or closed          created_at
``wo:overdue-at``                      open orders with a running deadline        earliest
                                       (``model.overdue``; the lists' filter)     deadline
``wo:agent-open:<agent>``              the open orders an agent holds             created_at
``wo:due``                             orders owing an SLA warning or breach      when next
                                       (``workorders.escalation``)                due
``wo:backoffice``                      pending orders not handled live, for the   created_at
                                       back office (``model.back_office_reason``)
``wo:retain``                          closed orders not under a legal hold       retain_until
                                       (``workorders.retention.retained``)
=====================================  =========================================  ==========

"Open" is pending, assigned, in progress or on hold: work somebody still owes the caller.

``wo:due`` depends on the service standard (targets, calendar, warning percentages): the
module's :data:`due_clocks` counts with the shipped one, and a store built from the config
uses :func:`configured` (``WorkOrderStore.from_config``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from workorders.escalation import DueClocks
from workorders.model import RESPONSE_OPEN, Status, WorkOrder, back_office_reason
from workorders.retention import retained

#: One indexer: the sorted sets (key suffix -> score) the order belongs to in its state.
Indexer = Callable[[WorkOrder], Mapping[str, float]]

OPEN = frozenset({Status.PENDING, Status.ASSIGNED, Status.IN_PROGRESS, Status.ON_HOLD})

#: Open orders by the time they become overdue (:data:`overdue_at`).
OVERDUE_AT = "wo:overdue-at"


def by_fields(order: WorkOrder) -> Mapping[str, float]:
    """The filters of lists: status, category, urgency, agent, and status with urgency
    (:func:`status_urgency`); newest first by creation."""
    created = order.created_at.timestamp()
    sets = {
        f"wo:status:{order.status.value}": created,
        f"wo:category:{order.category.value}": created,
        f"wo:urgency:{order.urgency.value}": created,
        status_urgency(order.status.value, order.urgency.value): created,
    }
    if order.agent:
        sets[f"wo:agent:{order.agent}"] = created
    return sets


def status_urgency(status: str, urgency: str) -> str:
    """The set of the orders in ``status`` with ``urgency``: a filter on both walks it
    alone instead of walking one and checking every candidate against the other (the pair
    can be rare: a few in a thousand orders are in progress and urgent)."""
    return f"wo:status-urgency:{status}:{urgency}"


def open_work(order: WorkOrder) -> Mapping[str, float]:
    """Orders somebody still owes the caller, and per agent (the back office's load)."""
    if order.status not in OPEN:
        return {}
    created = order.created_at.timestamp()
    sets = {"wo:open": created}
    if order.agent:
        sets[f"wo:agent-open:{order.agent}"] = created
    return sets


def overdue_at(order: WorkOrder) -> Mapping[str, float]:
    """Orders by the earliest of their running deadlines (:func:`workorders.model.overdue`:
    assignment while pending, response while pending, assigned or in progress), so that "is
    it overdue at t" is one score read: score < t. On hold, resolved or closed: none running.
    The deadlines change only by writes (a hold's resume moves them), which rescore it."""
    deadlines = []
    if order.status is Status.PENDING:
        deadlines.append(order.assign_by)
    if order.status in RESPONSE_OPEN:
        deadlines.append(order.respond_by)
    if not deadlines:
        return {}
    return {OVERDUE_AT: min(deadlines).timestamp()}


def back_office_work(order: WorkOrder) -> Mapping[str, float]:
    """Pending orders the back office must assign (``workorders.backoffice``), oldest first."""
    if back_office_reason(order) is None:
        return {}
    return {"wo:backoffice": order.created_at.timestamp()}


#: Orders with a warning or a breach still to escalate, by when it falls due (the watch's
#: ``wo:due``); the shipped service standard, see :func:`configured`.
due_clocks: Indexer = DueClocks()

INDEXERS: tuple[Indexer, ...] = (
    by_fields, open_work, overdue_at, due_clocks, back_office_work, retained,
)

#: The version of :data:`INDEXERS`' sets: raise it with every indexer added or changed, so
#: that ``ivr serve`` rebuilds the memberships of the orders stored before
#: (``workorders.upgrade``). 1: ``wo:overdue-at`` and ``wo:status-urgency:*``.
INDEX_VERSION = 1


def configured(due: Indexer) -> tuple[Indexer, ...]:
    """:data:`INDEXERS` with ``due`` (a ``DueClocks`` of the configured service standard) in
    the place of :data:`due_clocks`."""
    return tuple(due if indexer is due_clocks else indexer for indexer in INDEXERS)


def memberships(order: WorkOrder, indexers: tuple[Indexer, ...] = INDEXERS) -> dict[str, float]:
    """Every sorted set the order belongs to, with its score."""
    sets: dict[str, float] = {}
    for indexer in indexers:
        sets.update(indexer(order))
    return sets


@dataclass(frozen=True)
class IndexChanges:
    """What one write does to the indexes: sets to add to (or rescore in), sets to leave."""

    add: Mapping[str, float]
    remove: frozenset[str]


def index_changes(
    before: WorkOrder | None, after: WorkOrder, indexers: tuple[Indexer, ...] = INDEXERS
) -> IndexChanges:
    """The difference between the order's memberships before and after a write."""
    old = memberships(before, indexers) if before is not None else {}
    new = memberships(after, indexers)
    return IndexChanges(
        add={key: score for key, score in new.items() if old.get(key) != score},
        remove=frozenset(old.keys() - new.keys()),
    )
