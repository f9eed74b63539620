"""Order clocks at risk: which work orders' SLA clocks are due soon or breached.

One rule colours a clock wherever a screen shows it (:func:`clock_level`): ``alarm`` once
breached, ``warn`` while running within ``clock_warning_s`` of its due time (an hour unless
``config/screens.yaml`` says otherwise), else ``ok``. The desk colours an order's clocks by
it; the wallboard lists the clocks *at risk* by it: those of open orders that are ``warn``
or ``alarm`` and still owed (a breached clock met late is history, nothing to rescue).

Reading them is the aggregate's, once per round for every wallboard of the instance
(:class:`RiskReader`), never per browser, and cheaply: the candidates are the orders of
``wo:due`` scored within the window (the next warning or breach of each order, kept by the
store's indexer) and the open orders of the escalation list's breaches
(``workorders.watch.escalation_list``; a breached order leaves ``wo:due`` once its breach
fired). Orders are read again only when a work-order event names them (``WO*`` events carry
``order_id``); their clocks are replayed once per read, then only compared with the time.
The candidates themselves are read again every ``refresh_s`` and after any ``WO*`` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from redis.asyncio import Redis

from screens.settings import Level
from workorders.buckets import Buckets
from workorders.clocks import Clock, ClockKind, ClockPolicy, Clocks, replay
from workorders.escalation import Level as EscalationLevel
from workorders.indexes import OPEN
from workorders.model import WorkOrder
from workorders.watch import due_orders, escalation_list

if TYPE_CHECKING:
    from screens.board import FeedEntry  # the board holds the clocks at risk

__all__ = ["AtRisk", "OrdersAtRisk", "RiskReader", "RiskSource", "at_risk", "clock_level",
           "counts"]

LIMIT = 200  # candidates read per round: the soonest due, the newest breaches
REFRESH_S = 5.0


def clock_level(clock: Clock, now: float, warning_s: float) -> str:
    """``alarm`` breached, ``warn`` running and due within ``warning_s``, else ``ok``.

    Works on clocks as replayed (not advanced to ``now``): a running clock past its due
    time is breached, as :func:`workorders.clocks.advance` would record it."""
    if clock.breached_at is not None:
        return Level.ALARM
    if clock.met_at is not None or clock.since is None or clock.due is None:
        return Level.OK  # met in time, or paused (on hold): no due time runs
    left = clock.due.timestamp() - now
    if left < 0:
        return Level.ALARM
    return Level.WARN if left <= warning_s else Level.OK


@dataclass(frozen=True)
class AtRisk:
    """One clock at risk, with what a wallboard may show of its order (no personal data)."""

    order_id: str
    clock: ClockKind
    level: str  # warn (due within the window) or alarm (breached)
    due: datetime
    category: str
    urgency: str
    status: str
    queue: str
    agent: str


@dataclass(frozen=True)
class OrdersAtRisk:
    """The clocks at risk as of the board's time, soonest due first; ``unavailable_since``:
    when reading them started failing (the last known list is kept meanwhile)."""

    clocks: tuple[AtRisk, ...] = ()
    unavailable_since: float | None = None
    read: bool = False  # False until the first read (or where nothing reads them)


def at_risk(orders: Iterable[tuple[WorkOrder, Clocks]], now: float,
            warning_s: float) -> tuple[AtRisk, ...]:
    """The clocks at risk of open orders (each with its clocks as replayed)."""
    rows = []
    for order, board in orders:
        if order.status not in OPEN:
            continue
        for kind, clock in board.clocks.items():
            if clock.met_at is not None:
                continue  # met (late or not): nothing left to do about it
            level = clock_level(clock, now, warning_s)
            due = clock.breached_at or clock.due
            if level == Level.OK or due is None:
                continue
            rows.append(AtRisk(order.id, kind, level, due, order.category.value,
                               order.urgency.value, order.status.value, order.queue or "",
                               order.agent or ""))
    rows.sort(key=lambda r: (r.due, r.order_id, r.clock))
    return tuple(rows)


class OrderReader(Protocol):
    async def get(self, order_id: str) -> WorkOrder | None: ...


class RiskSource(Protocol):
    """What the aggregate asks each round (``RiskReader``, or a fake in tests)."""

    async def __call__(self, now: float, new: Sequence[FeedEntry]) -> tuple[AtRisk, ...]: ...


class RiskReader:
    """The clocks at risk, read for the aggregate (see the module docstring).

    ``redis``: the ``redis.asyncio.Redis`` the work-order store writes to; ``orders``: the
    store; ``policy``: the clock policy in force (the config's, read on each order read)."""

    def __init__(self, redis: Redis, orders: OrderReader, policy: Callable[[], ClockPolicy], *,
                 prefix: str = "hotline:", warning_s: float = 3600.0, limit: int = LIMIT,
                 refresh_s: float = REFRESH_S, buckets: Buckets | None = None) -> None:
        self.redis = redis
        self.buckets = buckets or Buckets(prefix=prefix)  # the store's (workorders.buckets)
        self.orders = orders
        self.policy = policy
        self.prefix = prefix
        self.warning_s = warning_s
        self.limit = limit
        self.refresh_s = refresh_s
        self._ids: tuple[str, ...] = ()
        self._read_at: float | None = None
        self._kept: dict[str, tuple[WorkOrder, Clocks]] = {}

    async def __call__(self, now: float, new: Sequence[FeedEntry]) -> tuple[AtRisk, ...]:
        changed = {e.fields.get("order_id", "") for e in new if e.kind.startswith("WO")}
        for order_id in changed:
            self._kept.pop(order_id, None)
        if changed or self._read_at is None or now - self._read_at >= self.refresh_s:
            self._ids = await self._candidates(now)
            self._read_at = now
            self._kept = {i: kept for i, kept in self._kept.items() if i in self._ids}
        missing = [i for i in self._ids if i not in self._kept]
        if missing:
            policy = self.policy()
            read = await asyncio.gather(*(self.orders.get(i) for i in missing))
            for order in read:
                if order is not None and order.history:
                    self._kept[order.id] = (order, replay(order.history, policy))
        return at_risk(self._kept.values(), now, self.warning_s)

    async def _candidates(self, now: float) -> tuple[str, ...]:
        due = await due_orders(self.redis, self.buckets, now + self.warning_s, self.limit)
        breached = await escalation_list(self.redis, prefix=self.prefix, limit=self.limit,
                                         open_only=True, buckets=self.buckets)
        ids = dict.fromkeys(due)
        ids.update(dict.fromkeys(e.order_id for e in breached
                                 if e.level is EscalationLevel.BREACH))
        return tuple(ids)


def counts(rows: Iterable[AtRisk]) -> Mapping[str, int]:
    """How many clocks are due soon (``warn``) and breached (``alarm``)."""
    out = {Level.WARN: 0, Level.ALARM: 0}
    for row in rows:
        out[row.level] += 1
    return out

