"""The escalation watch: fires each SLA warning and breach once, across every instance.

``ivr serve`` calls :meth:`EscalationWatch.sweep` every ``escalation.interval_s`` on the
reactor's clock. A sweep reads the orders of ``<p>wo:due`` whose score has come (the next
time one of their warnings or breaches falls due, written by the store's indexer), asks the
pure core (``workorders.escalation.due_at``) what falls due, and settles each order in one
Lua script that, atomically:

- checks the order is the one computed from: the same history length and the same record of
  escalations (``escalations`` in its hash), else nothing is written and the order is read
  again (another instance fired first, or somebody changed the order meanwhile);
- records the fired (and passed-over) escalations in the order's ``escalations``;
- writes ``WOWARNING`` / ``WOBREACH`` on ``<p>events`` and adds each to the supervisor's
  escalation list ``<p>wo:escalations`` (trimmed to ``list_retention_days``);
- rescores the order in ``<p>wo:due`` with the next time anything falls due (what the store's
  indexer computes from the order as recorded), or removes it.

So with two instances sweeping at once, one script records a warning and the other finds it
recorded: exactly once. Only the instance whose script fired then counts it
(``on_fired``: the Prometheus counter) and raises the urgency where configured, through
the store's normal update (history, ``WOUPDATE`` event and indexes follow; actor ``sla``).

Events (``events`` schema; no personal data): ``order_id``, ``clock``, ``level``
(``warning``/``breach``), ``due`` (the clock's due time it refers to), ``at`` (when it fell
due), ``percent`` (of the target; 100 for the breach), ``target_s``, ``business_hours``,
``urgency``, ``status``, ``call_id``, ``queue``, ``agent``, ``actor=sla``.

The escalation list ``<p>wo:escalations``: a sorted set of JSON members ``{"clock", "due",
"level", "order_id"}`` scored by when the escalation fired; :func:`escalation_list` reads it.

Buckets (``workorders.buckets``): ``wo:due`` and ``wo:escalations`` exist once per bucket, so
the settling script touches the order's bucket alone (one Redis Cluster slot) and writes its
events to that bucket's events key; a sweep reads the due orders of every bucket
(:func:`due_orders`) and :func:`escalation_list` merges the buckets' lists.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from redis.asyncio import Redis

import events
from hotline.text import as_text
from workorders.buckets import Buckets, lowest_up_to, scored
from workorders.clocks import ClockKind, ClockPolicy
from workorders.escalation import (
    DUE_INDEX,
    Due,
    Escalation,
    EscalationPolicy,
    Level,
    due_at,
    iso,
)
from workorders.model import Event, WorkOrder, utc
from workorders.schema import WorkOrdersConfig

log = logging.getLogger(__name__)

#: The supervisor's escalation list (after the key prefix).
ESCALATION_LIST = "wo:escalations"

#: Event kinds on the stream, by level.
EVENT_KINDS = {Level.WARNING: "WOWARNING", Level.BREACH: "WOBREACH"}

#: The actor of what the watch changes in an order's history.
ACTOR = "sla"

#: How often one sweep reads an order again when it changed under the script.
_ATTEMPTS = 3

_SETTLE = """
-- KEYS: order hash, order history, wo:due, escalation list, events stream
-- ARGV: order id, history length, escalations as read, escalations to write, next score
--       ('' = none), now, list cutoff, events maxlen, number of escalations, then per
--       escalation: list member, number of event fields, field/value pairs...
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('ZREM', KEYS[3], ARGV[1])
  return -1
end
local recorded = redis.call('HGET', KEYS[1], 'escalations') or '[]'
if redis.call('LLEN', KEYS[2]) ~= tonumber(ARGV[2]) or recorded ~= ARGV[3] then
  return 0
end
if ARGV[4] ~= ARGV[3] then redis.call('HSET', KEYS[1], 'escalations', ARGV[4]) end
if ARGV[5] == '' then
  redis.call('ZREM', KEYS[3], ARGV[1])
else
  redis.call('ZADD', KEYS[3], ARGV[5], ARGV[1])
end
local i = 10
for _ = 1, tonumber(ARGV[9]) do
  redis.call('ZADD', KEYS[4], ARGV[6], ARGV[i])
  local n = tonumber(ARGV[i + 1])
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[8], '*', unpack(ARGV, i + 2, i + 1 + 2 * n))
  i = i + 2 + 2 * n
end
if tonumber(ARGV[9]) > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. ARGV[7])
end
return 1
"""


class OrderStore(Protocol):
    """What the watch needs of ``workorders.store.WorkOrderStore``."""

    prefix: str
    buckets: Buckets

    async def get(self, order_id: str) -> WorkOrder | None: ...

    async def update(
        self, order_id: str, now: float, event: Event | str, actor: str, **changes: Any
    ) -> WorkOrder | None: ...


@dataclass(frozen=True)
class ListedEscalation:
    """One entry of the supervisor's escalation list."""

    order_id: str
    clock: ClockKind
    level: Level
    due: datetime  # the clock's due time it refers to
    since: datetime  # when it fired

    def to_dict(self) -> dict[str, str]:
        return {
            "order_id": self.order_id,
            "clock": self.clock.value,
            "level": self.level.value,
            "due": iso(self.due),
            "since": iso(self.since),
        }


class EscalationWatch:
    """Fires the warnings and breaches of work orders (see the module docstring).

    ``redis`` is the ``redis.asyncio.Redis`` the ``store`` writes to; ``clocks`` and
    ``policy`` must be the service standard the store's ``wo:due`` indexer counts with.
    ``on_fired`` is told of each escalation this instance fired (the metrics counter).
    """

    def __init__(
        self,
        redis: Redis,
        store: OrderStore,
        *,
        clocks: ClockPolicy,
        policy: EscalationPolicy,
        list_retention_s: float = 30 * 86400.0,
        events_maxlen: int = events.DEFAULT_MAXLEN,
        on_fired: Callable[[Escalation], None] = lambda _: None,
        batch: int = 200,
        max_batches: int = 10,
    ) -> None:
        self._redis = redis
        self._store = store
        self.clocks = clocks
        self.policy = policy
        self._retention = list_retention_s
        self._maxlen = events_maxlen
        self._on_fired = on_fired
        self._batch = batch
        self._max_batches = max_batches
        self._settle_script = redis.register_script(_SETTLE)

    @classmethod
    def from_config(
        cls,
        redis: Redis,
        store: OrderStore,
        config: WorkOrdersConfig,
        *,
        on_fired: Callable[[Escalation], None] = lambda _: None,
    ) -> EscalationWatch:
        """From the ``workorders`` config section (the one the store was built from)."""
        return cls(
            redis,
            store,
            clocks=config.clock_policy(),
            policy=config.escalation.policy(),
            list_retention_s=config.escalation.list_retention_days * 86400,
            events_maxlen=config.events_maxlen,
            on_fired=on_fired,
        )

    async def sweep(self, now: float) -> tuple[Escalation, ...]:
        """Fire what is due by ``now``; the escalations this instance fired.

        Reads the orders due in batches of ``batch`` (the soonest first), at most
        ``max_batches`` of them (a backlog after an outage is worked off over a few rounds).
        Redis errors propagate (the service's loop logs them and tries again next round).
        """
        fired: list[Escalation] = []
        for _ in range(self._max_batches):
            ids = await due_orders(self._redis, self._store.buckets, now, self._batch)
            for order_id in ids:
                fired += await self._settle(order_id, now)
            if len(ids) < self._batch:
                break
        return tuple(fired)

    async def _settle(self, order_id: str, now: float) -> tuple[Escalation, ...]:
        for _ in range(_ATTEMPTS):
            order = await self._store.get(order_id)
            if order is None:
                await self._redis.zrem(self._store.buckets.order_name(order_id, DUE_INDEX),
                                       order_id)
                return ()
            due = due_at(order, self.clocks, self.policy, now)
            outcome = await self._run(order, due, now)
            if outcome == -1:
                return ()
            if outcome == 1:
                break
        else:
            log.info("work order %s kept changing during the escalation sweep: next sweep",
                     order_id)
            return ()
        for escalation in due.fire:
            log.info("work order %s: %s %s (due %s)", order_id, escalation.clock.value,
                     escalation.level.value, iso(escalation.due))
            self._on_fired(escalation)
        if due.raise_to is not None:
            await self._store.update(order_id, now, Event.UPDATE, ACTOR,
                                     urgency=due.raise_to.value)
        return due.fire

    async def _run(self, order: WorkOrder, due: Due, now: float) -> int:
        args: list[str | int | float] = [
            order.id,
            len(order.history),
            json.dumps(list(order.escalations)),  # as the store writes it (_to_hash)
            json.dumps(list(due.escalations)),
            "" if due.next_at is None else due.next_at.timestamp(),
            now,
            now - self._retention,
            self._maxlen,
            len(due.fire),
        ]
        for escalation in due.fire:
            fields = _event(order, escalation, now)
            args += [_member(escalation), len(fields)]
            args += [item for pair in fields.items() for item in pair]
        buckets = self._store.buckets
        bucket = buckets.of_id(order.id)
        result = await self._settle_script(
            keys=[
                buckets.order_key(order.id),
                buckets.history_key(order.id),
                buckets.key(bucket, DUE_INDEX),
                buckets.key(bucket, ESCALATION_LIST),
                buckets.events_key(bucket),
            ],
            args=args,
        )
        return int(result)


async def due_orders(redis: Redis, buckets: Buckets, until: float, limit: int) -> list[str]:
    """The ids of at most ``limit`` orders of ``wo:due`` due by ``until``, soonest first,
    from every bucket."""
    return await lowest_up_to(redis, buckets.keys(DUE_INDEX), until, 0, limit)


async def escalation_list(
    redis: Redis,
    *,
    prefix: str = "hotline:",
    limit: int = 100,
    open_only: bool = False,
    buckets: Buckets | None = None,
) -> list[ListedEscalation]:
    """The supervisor's escalation list, newest first: at most ``limit`` entries; with
    ``open_only``, only those of orders still open (``wo:open``). Each bucket keeps the list
    of its orders (``buckets``: the store's layout); they are merged here."""
    if limit <= 0:
        return []
    layout = buckets or Buckets(prefix=prefix)
    async with redis.pipeline(transaction=False) as pipe:
        for key in layout.keys(ESCALATION_LIST):
            pipe.zrevrange(key, 0, limit - 1, withscores=True)
        replies = await pipe.execute()
    rows = scored(replies)[::-1][:limit]
    entries = [_entry(member, since) for since, member in rows]
    if open_only and entries:
        async with redis.pipeline(transaction=False) as pipe:
            for entry in entries:
                pipe.zscore(layout.order_name(entry.order_id, "wo:open"), entry.order_id)
            scores = await pipe.execute()
        entries = [e for e, score in zip(entries, scores, strict=True) if score is not None]
    return entries


def _event(order: WorkOrder, escalation: Escalation, now: float) -> dict[str, str]:
    return events.event_fields(
        EVENT_KINDS[escalation.level],
        now,
        order_id=order.id,
        clock=escalation.clock.value,
        level=escalation.level.value,
        due=iso(escalation.due),
        at=iso(escalation.at),
        percent=escalation.percent,
        target_s=escalation.target.total_seconds(),
        business_hours=escalation.business_hours,
        urgency=order.urgency.value,
        status=order.status.value,
        call_id=order.call_id,
        queue=order.queue,
        agent=order.agent,
        actor=ACTOR,
    )


def _member(escalation: Escalation) -> str:
    """The list member: the escalation's identity, so that it is listed once."""
    order_id, clock, level, due = escalation.identity
    return json.dumps({"order_id": order_id, "clock": clock, "level": level, "due": due},
                      sort_keys=True, separators=(",", ":"))


def _entry(member: bytes | str, since: float) -> ListedEscalation:
    data = json.loads(as_text(member))
    return ListedEscalation(
        order_id=str(data["order_id"]),
        clock=ClockKind(data["clock"]),
        level=Level(data["level"]),
        due=datetime.fromisoformat(data["due"]),
        since=utc(since),
    )

