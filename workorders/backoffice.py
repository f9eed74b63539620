"""The back office: ``ivr serve`` assigns the work orders that were not handled live.

Each round (:meth:`BackOffice.run_once`, every ``backoffice.interval_s`` on the reactor's
clock) takes the orders of ``<p>wo:backoffice`` (the index of ``model.back_office_reason``:
pending, and abandoned, callback failed, overflowed, sent to the operator, or sent to the back
office explicitly) created at least ``wait_minutes`` ago, oldest first, and for each asks the
pure chooser (:func:`workorders.assignment.choose_agent`) for a qualified agent on schedule
with the fewest open orders (``<p>wo:agent-open:<agent>``, counted up as the round assigns).

Exactly once across instances: the assignment is the store's guarded update
(``WorkOrderStore.assign_back_office``): under WATCH it checks that the order still belongs to
the back office, so of two instances racing for an order one assigns and the other gets None.
The event is the store's ``WOASSIGN`` (actor ``backoffice``).

Nobody qualifies -> the supervisor's list, ``<p>wo:unassigned``: a hash order id -> JSON
``{"reason", "detail", "back_office", "since", "checked_at", "retry_at"}`` (epoch seconds),
written only while the order is still in ``wo:backoffice`` and tried again from ``retry_at``
(``retry_minutes`` later). A ``WOUNASSIGNABLE`` event is emitted when an order joins the list
or its reason changes, once across instances (the script compares the reason it replaces).
Entries whose order left the back office (assigned here or by hand, resolved, ...) are dropped
each round. :func:`unassigned_orders` reads the list (for ``ivr orders`` and the API).

Buckets (``workorders.buckets``): ``wo:backoffice``, ``wo:agent-open:<agent>`` and
``wo:unassigned`` exist once per bucket (the listing script touches the order's bucket
alone); a round takes the oldest orders of all buckets, and counts an agent's open orders
over all of them.

While the store's spool waits for replay the round is skipped: Redis is behind this process's
own writes, and the back office never assigns on a stale view.

Metrics: ``hotline_workorders_backoffice_total{result}``: ``assigned``, or the reason nobody
was (``no-skill``, ``no-language``, ``off-schedule``, ``no-agents``), counted once per order
and reason (when the event is emitted), not per retry.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client import Counter
from redis.asyncio import Redis

import events
from hotline.text import as_text
from routing.core import RoutingConfig
from workorders.assignment import Choice, choose_agent
from workorders.buckets import Buckets, lowest_up_to
from workorders.model import WorkOrder, back_office_reason
from workorders.schema import BackOfficeSettings

log = logging.getLogger(__name__)

BACKOFFICE_RESULTS = Counter(
    "hotline_workorders_backoffice",
    "Work orders the back office assigned (result=assigned) or found nobody for (the reason)",
    ["result"],
)

UNASSIGNABLE_KIND = "WOUNASSIGNABLE"

_LIST_UNASSIGNED = """
-- KEYS: wo:backoffice, wo:unassigned, events stream
-- ARGV: order id, entry JSON, reason, since, events maxlen, event field/value pairs...
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return -1 end
local old = redis.call('HGET', KEYS[2], ARGV[1])
local entry = cjson.decode(ARGV[2])
local changed = 1
if old then
  local was = cjson.decode(old)
  entry.since = was.since
  if was.reason == ARGV[3] then changed = 0 end
end
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode(entry))
if changed == 1 then
  local fields = {}
  for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', unpack(fields))
end
return changed
"""

_DROP_LEFT = """
-- KEYS: wo:unassigned, wo:backoffice. Entries whose order left the back office.
local dropped = 0
for _, id in ipairs(redis.call('HKEYS', KEYS[1])) do
  if not redis.call('ZSCORE', KEYS[2], id) then
    redis.call('HDEL', KEYS[1], id)
    dropped = dropped + 1
  end
end
return dropped
"""


class Orders(Protocol):
    """``workorders.store.WorkOrderStore``, as the back office uses it."""

    prefix: str
    buckets: Buckets

    @property
    def spool_pending(self) -> bool: ...

    async def get(self, order_id: str) -> WorkOrder | None: ...

    async def assign_back_office(
        self, order_id: str, agent: str, now: float, *, actor: str = "backoffice"
    ) -> WorkOrder | None: ...


class ResultCounter(Protocol):
    """A labelled Prometheus counter (``BACKOFFICE_RESULTS``, or a test's own)."""

    def labels(self, result: str) -> Any: ...


@dataclass(frozen=True)
class UnassignedOrder:
    """An order on the supervisor's list: nobody qualified for it, and why."""

    order_id: str
    reason: str  # workorders.assignment.Unassignable
    detail: str
    back_office: str  # why it is the back office's (model.back_office_reason)
    since: float
    checked_at: float
    retry_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id, "reason": self.reason, "detail": self.detail,
            "back_office": self.back_office, "since": self.since,
            "checked_at": self.checked_at, "retry_at": self.retry_at,
        }


@dataclass
class Round:
    """What one round did: (order id, agent) assigned, (order id, reason) listed."""

    assigned: list[tuple[str, str]] = field(default_factory=list)
    unassigned: list[tuple[str, str]] = field(default_factory=list)
    skipped: bool = False  # the spool waits for replay: nothing done


class BackOffice:
    """Assigns the back office's orders, one round at a time (see the module docstring).

    ``routing`` and ``settings`` are read each round, so a config reload takes effect at the
    next one (the interval itself is the service's loop's)."""

    def __init__(
        self,
        store: Orders,
        redis: Redis,
        routing: Callable[[], RoutingConfig],
        settings: Callable[[], BackOfficeSettings],
        *,
        events_maxlen: int = events.DEFAULT_MAXLEN,
        counter: ResultCounter = BACKOFFICE_RESULTS,
    ) -> None:
        self.store = store
        self._redis = redis
        self._routing = routing
        self._settings = settings
        self._maxlen = events_maxlen
        self._counter = counter
        self._list_unassigned = redis.register_script(_LIST_UNASSIGNED)
        self._drop_left = redis.register_script(_DROP_LEFT)

    def _key(self, order_id: str, name: str) -> str:
        """``name`` in the bucket of ``order_id`` (``workorders.buckets``)."""
        return self.store.buckets.order_name(order_id, name)

    async def run_once(self, now: float) -> Round:
        """One round at ``now``: assign what can be, list what cannot."""
        done = Round()
        if self.store.spool_pending:
            done.skipped = True
            return done
        settings, config = self._settings(), self._routing()
        load = await self._open_orders(config)
        cutoff = now - settings.wait_minutes * 60
        offset = 0
        handled = 0
        while handled < settings.batch:
            ids = await self._waiting(cutoff, offset, settings.batch)
            if not ids:
                break
            offset += len(ids)
            for order_id in await self._due(ids, now):
                if handled >= settings.batch:
                    break
                handled += 1
                await self._handle(order_id, config, load, now, settings, done)
        buckets = self.store.buckets
        for bucket in buckets.all():
            await self._drop_left(keys=[buckets.key(bucket, "wo:unassigned"),
                                        buckets.key(bucket, "wo:backoffice")])
        return done

    async def _waiting(self, cutoff: float, offset: int, count: int) -> list[str]:
        """``count`` ids from ``offset`` of the back office's orders created by ``cutoff``,
        oldest first, merged from every bucket."""
        return await lowest_up_to(self._redis, self.store.buckets.keys("wo:backoffice"),
                                  cutoff, offset, count)

    async def _handle(
        self,
        order_id: str,
        config: RoutingConfig,
        load: dict[str, int],
        now: float,
        settings: BackOfficeSettings,
        done: Round,
    ) -> None:
        order = await self.store.get(order_id)
        if order is None or back_office_reason(order) is None:
            return  # taken meanwhile
        choice = choose_agent(order, config, load, now)
        if choice.agent_id is None:
            await self._list(order, choice, now, settings)
            done.unassigned.append((order_id, str(choice.reason)))
            return
        assigned = await self.store.assign_back_office(order_id, choice.agent_id, now)
        if assigned is None:
            return  # another instance (or a supervisor) was first
        load[choice.agent_id] = load.get(choice.agent_id, 0) + 1
        await self._redis.hdel(self._key(order_id, "wo:unassigned"), order_id)
        self._counter.labels("assigned").inc()
        done.assigned.append((order_id, choice.agent_id))
        log.info("back office: work order %s (%s) assigned to %s", order_id,
                 back_office_reason(order), choice.agent_id)

    async def _open_orders(self, config: RoutingConfig) -> dict[str, int]:
        """Each configured agent's open orders now (the shipped ``wo:agent-open`` index)."""
        agents = sorted(config.agents)
        buckets = self.store.buckets
        async with self._redis.pipeline(transaction=False) as pipe:
            for agent in agents:
                for key in buckets.keys(f"wo:agent-open:{agent}"):
                    pipe.zcard(key)
            counts = await pipe.execute()
        n = buckets.count
        return {agent: sum(int(c) for c in counts[i * n:(i + 1) * n])
                for i, agent in enumerate(agents)}

    async def _due(self, ids: list[str], now: float) -> list[str]:
        """Those of ``ids`` not waiting for a retry on the supervisor's list."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hget(self._key(order_id, "wo:unassigned"), order_id)
            listed = await pipe.execute()
        return [
            order_id for order_id, entry in zip(ids, listed, strict=True)
            if entry is None or float(json.loads(entry).get("retry_at", 0)) <= now
        ]

    async def _list(
        self, order: WorkOrder, choice: Choice, now: float, settings: BackOfficeSettings
    ) -> None:
        reason = str(choice.reason)
        entry = {
            "reason": reason, "detail": choice.detail,
            "back_office": back_office_reason(order) or "", "since": now, "checked_at": now,
            "retry_at": now + settings.retry_minutes * 60,
        }
        event = events.event_fields(
            UNASSIGNABLE_KIND, now, order_id=order.id, call_id=order.call_id,
            actor="backoffice", details={"reason": reason, "detail": choice.detail,
                                         "back_office": entry["back_office"]},
        )
        changed = await self._list_unassigned(
            keys=[self._key(order.id, "wo:backoffice"), self._key(order.id, "wo:unassigned"),
                  self.store.buckets.events_key(self.store.buckets.of_id(order.id))],
            args=[order.id, json.dumps(entry), reason, now, self._maxlen,
                  *(item for pair in event.items() for item in pair)],
        )
        if int(changed) == 1:
            self._counter.labels(reason).inc()
            log.warning("back office: nobody can take work order %s: %s (%s)", order.id,
                        reason, choice.detail)


async def unassigned_orders(
    redis: Redis, prefix: str = "hotline:", *, buckets: Buckets | None = None
) -> list[UnassignedOrder]:
    """The supervisor's list (``<p>wo:unassigned`` of every bucket; ``buckets``: the store's
    layout), longest waiting first."""
    layout = buckets or Buckets(prefix=prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for key in layout.keys("wo:unassigned"):
            pipe.hgetall(key)
        replies: list[Mapping[Any, Any]] = await pipe.execute()
    listed = []
    for key, value in (item for entries in replies for item in entries.items()):
        data = json.loads(value)
        listed.append(UnassignedOrder(
            order_id=as_text(key), reason=str(data.get("reason", "")),
            detail=str(data.get("detail", "")), back_office=str(data.get("back_office", "")),
            since=float(data.get("since", 0)), checked_at=float(data.get("checked_at", 0)),
            retry_at=float(data.get("retry_at", 0)),
        ))
    return sorted(listed, key=lambda u: (u.since, u.order_id))

