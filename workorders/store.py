"""Work orders in Redis (``redis.asyncio``), with a local spool so that none is ever lost.

Keys (prefix configurable, default ``hotline:``; docs/contracts.md "Redis keys"):

======================================  ===================================================
``<p>wo:<id>``                          hash: the order without its history, one field per
                                        value (``caller_number``, ``caller_name``,
                                        ``assign_by``...); strings as they are, numbers and
                                        ``menu_path`` as JSON, absent when empty
``<p>wo:<id>:history``                  list of history entries, JSON, oldest first
``<p>wo:by-call:<call_id>``             order id of the call (idempotent creation)
``<p>wo:by-caller:<blind index>``       set of the ids of the orders from one caller number
                                        (``by_caller``; the index: ``privacy.fields``)
``<p>wo:repeat:<blind index>:<cat>``    hash ``id``, ``at``: the caller's last order of the
                                        category and its last contact (repeat contacts)
``<p>wo:seq``                           counter behind the ids (``"1"``, ``"2"``...)
``<p>wo:index``                         sorted set id -> created_at (``list_recent``)
``<p>wo:status:<status>`` and others    the secondary indexes of ``workorders.indexes``,
                                        written with the order in the same atomic step
``<p>wo:op:<op_id>``                    order id, with a TTL: that operation is applied
``<p>wo:alias:<local id>``              real id of an order first created in the spool
``<p>wo:spool-rejected``                list of spooled writes Redis refused on replay
``<p>events``                           stream of events (``events``)
======================================  ===================================================

Personal data (caller number and name, transcript, notes) is sealed field by field by the
injected cipher (``workorders.personal``) before it reaches Redis, the spool file or the
events stream (which gets none of it), and opened on read: ``to_dict()`` and every output show
plaintext. Values written before encryption (no ``enc1:`` prefix) are read as they are.

Atomicity: creation is one Lua script (look up the call, allocate the id, write hash, history,
index, op id and event), so many concurrent creations for one call make one order. An update
reads the order under WATCH, applies the pure model (``workorders.model.apply``) and writes
hash, history, op id and event in one MULTI/EXEC, retried if the order changed meanwhile.

Redis unreachable (refused, reset, timeout, loading): the write is appended to the spool
(``workorders.spool``) and the caller gets its result computed locally. A created order gets a
local id (``L`` + 15 hex digits) which it keeps in Redis after replay; if Redis turns out to
have the call's order already (the reply of a create was lost), the local id becomes an alias
of that order. The spool is replayed, in order and under a lock, before the next write or read
that finds Redis reachable again, and by ``replay_spool()`` which the service calls
periodically. Each write carries an operation id that Redis records with the write itself, so
a record replayed twice is applied once. A spooled update that Redis refuses on replay (the
order moved on elsewhere) goes to ``wo:spool-rejected`` with the reason: kept, not applied.

Repeat contacts (``repeat_contact_window``, seconds; 0: off): the create script first looks
at the caller's last order of the same category (``wo:repeat:...``, by the number's blind
index); if it is open and its creation or last repeat call is within the window of this call,
the call is linked to it (``contacts`` + 1, a ``repeat`` history entry with the new call id,
``wo:by-call:<new call>`` -> that order, a ``WOREPEAT`` event) instead of creating an order,
in the same atomic step, so concurrent calls of one caller make one order. A create spooled
while Redis was away cannot see the caller's orders: it gets its local order, and at replay
the script links it like a live call (the local id becomes an alias of the linked order, the
call's spooled updates apply to it), exactly once by its operation id.

Merge (``merge``) reads both orders under WATCH and writes both in one MULTI/EXEC. Lists and
filters (``find``) read the index sets (``workorders.query``); ``reindex`` writes the index
memberships of orders written before an index existed.

Reads while Redis is unreachable, chosen: ``get``/``get_by_call`` answer from this process's
local view (orders in the spool with their spooled updates, else the last state this process
wrote or read, possibly stale), and raise ``StoreUnavailable`` for an order it does not know;
``list_recent`` and ``find`` raise ``StoreUnavailable`` (a partial list would mislead a
supervisor).
Reads do not back off like writes: against a blackholed Redis each read waits the timeout.

Concurrency: at most ``max_in_flight`` operations talk to Redis at once, the rest queue here
(redis-py's pool errors out past its ``max_connections``, 100 by default; keep it above
``max_in_flight``). When a write finds Redis unreachable, the operations queued meanwhile give
way at once (writes to the spool, reads to the local view): a burst against a slow Redis
waits about one timeout, not one per ``max_in_flight`` operations queued before it.

Redis Cluster (roadmap) will need hash tags: the create script touches keys it derives.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.typing import EncodableT

import events
from workorders import indexes, personal, query, retention
from workorders.escalation import DueClocks
from workorders.model import (
    DEFAULT_CATEGORIES,
    Event,
    HistoryEntry,
    Policy,
    Status,
    TransitionRefused,
    WorkOrder,
    WorkOrderError,
    apply,
    back_office_reason,
    create_order,
    merge_orders,
)
from workorders.personal import FieldCipher
from workorders.schema import WorkOrdersConfig
from workorders.spool import Spool

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Work order event kinds on the ``hotline:events`` stream, queue_log style.
WORK_ORDER_KINDS: dict[str, str] = {
    "create": "WOCREATE",
    **{event.value: "WO" + event.value.upper() for event in Event},
}

#: What "Redis is unreachable" means here: the write is spooled instead.
UNREACHABLE = (
    redis_errors.ConnectionError,  # refused, reset, BusyLoadingError after a restart
    redis_errors.TimeoutError,
    TimeoutError,  # our own per-operation timeout
    OSError,
)

_JSON_FIELDS = frozenset(
    {"menu_path", "confidence", "csat", "nps", "escalations", "contacts", "legal_hold"}
)

_CREATE = """
-- KEYS: by-call, seq, op, index, events stream, the index sets (workorders.indexes)
--       [, by-caller set, the caller's last order of the category (repeat contacts)]
-- ARGV: prefix, proposed id, op ttl, created_at (epoch), history entry, events maxlen,
--       number of hash field/value pairs, number of index sets, repeat link (JSON, '' for
--       none), pairs..., index scores..., event field/value pairs...
local prefix, proposed = ARGV[1], ARGV[2]
local function alias(id)
  if proposed ~= '' and proposed ~= id then
    redis.call('SET', prefix .. 'wo:alias:' .. proposed, id)
  end
end
local done = redis.call('GET', KEYS[3])
if done then alias(done) return {done, 0} end
local existing = redis.call('GET', KEYS[1])
if existing then
  alias(existing)
  redis.call('SET', KEYS[3], existing, 'EX', ARGV[3])
  return {existing, 0}
end
local npairs, nsets = tonumber(ARGV[7]), tonumber(ARGV[8])
local created, last_key = tonumber(ARGV[4]), KEYS[7 + nsets]
local link = ARGV[9] ~= '' and last_key and cjson.decode(ARGV[9])
if link then
  -- A repeat contact: the caller's last order of this category, open and within the window
  -- of its creation or last repeat call, takes this call instead of a new order.
  local last = redis.call('HMGET', last_key, 'id', 'at')
  local order = last[1] and prefix .. 'wo:' .. last[1]
  local now = order and redis.call('HMGET', order, 'status', 'category', 'contacts', 'updated_at')
  if now and link.open[now[1]] and now[2] == link.category
      and tonumber(last[2]) >= created - link.window then
    local contacts = (tonumber(now[3]) or 1) + 1
    redis.call('HSET', order, 'contacts', tostring(contacts))
    if not now[4] or now[4] < link.updated_at then
      redis.call('HSET', order, 'updated_at', link.updated_at)
    end
    redis.call('RPUSH', order .. ':history', link.entry)
    redis.call('SET', KEYS[1], last[1])
    if created > tonumber(last[2]) then redis.call('HSET', last_key, 'at', ARGV[4]) end
    redis.call('EXPIRE', last_key, link.ttl)
    alias(last[1])
    redis.call('SET', KEYS[3], last[1], 'EX', ARGV[3])
    local entry = link.event
    for _, v in ipairs({'order_id', last[1], 'status', now[1], 'contacts', tostring(contacts)}) do
      entry[#entry + 1] = v
    end
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', unpack(entry))
    return {last[1], 2}
  end
end
local id = proposed
if id == '' or redis.call('EXISTS', prefix .. 'wo:' .. id) == 1 then
  id = tostring(redis.call('INCR', KEYS[2]))
  alias(id)
end
local hash = {'id', id}
for i = 10, 9 + 2 * npairs do hash[#hash + 1] = ARGV[i] end
redis.call('HSET', prefix .. 'wo:' .. id, unpack(hash))
redis.call('RPUSH', prefix .. 'wo:' .. id .. ':history', ARGV[5])
redis.call('SET', KEYS[1], id)
redis.call('ZADD', KEYS[4], ARGV[4], id)
for i = 1, nsets do redis.call('ZADD', KEYS[5 + i], ARGV[9 + 2 * npairs + i], id) end
if KEYS[6 + nsets] then redis.call('SADD', KEYS[6 + nsets], id) end
if link then
  redis.call('HSET', last_key, 'id', id, 'at', ARGV[4])
  redis.call('EXPIRE', last_key, link.ttl)
end
redis.call('SET', KEYS[3], id, 'EX', ARGV[3])
local entry = {}
for i = 10 + 2 * npairs + nsets, #ARGV do entry[#entry + 1] = ARGV[i] end
entry[#entry + 1] = 'order_id'
entry[#entry + 1] = id
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[6], '*', unpack(entry))
return {id, 1}
"""

#: What the create script answers: an order was already there, one was created, or the call
#: was linked to the caller's open order as a repeat contact.
_FOUND, _CREATED, _LINKED = 0, 1, 2


class StoreUnavailable(Exception):
    """Redis is unreachable and the local view cannot answer this request."""


class _OutageWhileQueued(TimeoutError):
    """Redis was found unreachable while this operation waited for its turn to talk to it."""


class UnknownWorkOrder(LookupError):
    """No work order has this id."""


class WorkOrderStore:
    """Create, change and read work orders; see the module docstring for keys and the spool.

    ``redis`` is a ``redis.asyncio.Redis``. Every method is a coroutine for the asyncio loop:
    under Twisted's asyncio reactor, call them as
    ``Deferred.fromFuture(asyncio.ensure_future(store.create_for_call(...)))``; redis.asyncio
    needs a running asyncio Task (a bare ``ensureDeferred`` fails with "Timeout should be used
    inside a task").
    """

    def __init__(
        self,
        redis: Redis,
        spool_dir: str | os.PathLike[str],
        *,
        cipher: FieldCipher,
        policy: Policy | None = None,
        prefix: str = "hotline:",
        timeout: float = 2.0,
        applied_op_ttl: float = 30 * 86400,
        events_maxlen: int = events.DEFAULT_MAXLEN,
        retry_after: float = 2.0,
        known_limit: int = 10_000,
        max_in_flight: int = 32,
        indexers: tuple[indexes.Indexer, ...] = indexes.INDEXERS,
        repeat_contact_window: float = 0.0,
    ) -> None:
        self._redis = redis
        self._cipher = cipher
        self._spool = Spool(spool_dir)
        self.policy = policy or Policy()
        self.prefix = prefix
        self.indexers = indexers  # workorders.indexes: the sets each write keeps up to date
        self._timeout = timeout
        self._op_ttl = max(1, int(applied_op_ttl))
        self._maxlen = events_maxlen
        # After a failed attempt, writes go straight to the spool for this many seconds of
        # ``now``: a blackholed Redis must not cost every caller a full timeout.
        self._retry_after = retry_after
        self._retry_at = float("-inf")
        self._outages = 0  # failed writes so far: operations queued meanwhile give way
        # Operations beyond this wait here rather than open ever more connections: redis-py's
        # pool refuses past max_connections (100 by default) with an error that would read as
        # "Redis unreachable" and spool for nothing.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._create_script = redis.register_script(_CREATE)
        self._lock = asyncio.Lock()  # one replay at a time; spooled writes keep their order
        # Local view: orders touched by pending spool records, and the last state seen of
        # others (bounded), for writes and reads while Redis is unreachable.
        self._spooled: dict[str, WorkOrder] = {}
        self._spooled_ops: set[str] = set()  # op ids of the spooled updates
        self._known: OrderedDict[str, WorkOrder] = OrderedDict()
        self._known_limit = known_limit
        # A call from the caller of an open order of the same category, within this many
        # seconds of its creation or last repeat call, is linked to it (0: never).
        self.repeat_contact_window = repeat_contact_window
        self._pending = self._spool.pending()
        self._load_spool_view()

    @classmethod
    def from_config(
        cls,
        redis: Redis,
        config: WorkOrdersConfig,
        *,
        spool_dir: str | os.PathLike[str],
        cipher: FieldCipher,
        prefix: str = "hotline:",
        categories: Iterable[str] = DEFAULT_CATEGORIES,
    ) -> WorkOrderStore:
        """From the ``workorders`` config section. ``spool_dir`` is the service's spool root:
        the store spools into ``<spool_dir>/workorders`` unless the config names a dir.
        ``cipher`` seals the personal fields (``privacy.fields.FieldCipher``). ``categories``:
        those orders may have, declared by the other files
        (``ivr.categories.work_order_categories``)."""
        return cls(
            redis,
            config.spool.dir or os.path.join(spool_dir, "workorders"),
            cipher=cipher,
            policy=config.policy(categories),
            prefix=prefix,
            timeout=config.redis_timeout_s,
            applied_op_ttl=config.spool.applied_op_ttl_days * 86400,
            events_maxlen=config.events_maxlen,
            indexers=indexes.configured(
                DueClocks(config.clock_policy(), config.escalation.policy())
            ),
            repeat_contact_window=config.repeat_contact_window_hours * 3600,
        )

    @property
    def spool_pending(self) -> bool:
        """Whether writes made while Redis was unreachable still wait for replay."""
        return self._pending

    # -- writes -------------------------------------------------------------------------

    async def create_for_call(
        self,
        call_id: str,
        caller_number: str,
        caller_name: str,
        now: float,
        *,
        actor: str = "ivr",
        **fields: Any,
    ) -> WorkOrder:
        """The call's work order, created pending if the call has none yet.

        Idempotent on ``call_id``: every call with the same id returns the same order, also
        under concurrency and across a spool replay. ``fields``: category, urgency, queue,
        menu_path, transcript, confidence, engine. Invalid fields raise ``WorkOrderError``
        before anything is written.
        """
        draft = create_order(
            "", call_id, caller_number, caller_name, now, self.policy, actor, **fields
        )
        op_id = _new_op_id()

        async def direct() -> WorkOrder:
            order, _ = await self._create_in_redis(op_id, draft, proposed="", replayed=False)
            return order

        return await self._write(now, direct, lambda: self._spool_create(op_id, draft))

    async def update(
        self, order_id: str, now: float, event: Event | str, actor: str, **changes: Any
    ) -> WorkOrder | None:
        """Apply a lifecycle ``event`` (``model.Event``) with ``changes`` to the order.

        Returns the order as changed. Raises ``TransitionRefused``/``WorkOrderError`` when the
        model refuses, ``UnknownWorkOrder`` when there is no such order. With Redis
        unreachable the change is spooled and checked against the local view; returns None
        when this process has no view of the order (the change is applied, or rejected into
        ``wo:spool-rejected``, at replay).
        """
        return await self.update_once(_new_op_id(), order_id, now, event, actor, **changes)

    async def update_once(
        self, op_id: str, order_id: str, now: float, event: Event | str, actor: str,
        **changes: Any,
    ) -> WorkOrder | None:
        """``update`` as the operation ``op_id``: applied once whoever reports it how often
        (an event several processes see, an idempotency key); a repeat returns the order as
        it is (or the local view while Redis is unreachable)."""
        event = _event(event)

        async def direct() -> WorkOrder | None:
            try:
                order, _ = await self._update_in_redis(
                    op_id, order_id, now, event, actor, changes, replayed=False
                )
            except UnknownWorkOrder:
                if self._pending and (order_id in self._spooled):
                    # Created in the spool and not replayed yet: keep the order of writes.
                    return self._spool_update(op_id, order_id, now, event, actor, changes)
                raise
            return order

        return await self._write(
            now, direct, lambda: self._spool_update(op_id, order_id, now, event, actor, changes)
        )

    async def answered(self, call_id: str, agent: str, now: float) -> WorkOrder | None:
        """The agent who answered the call takes its order: ``assign``, then ``start`` unless
        the order is already being worked on (a repeat contact's order in progress or on
        hold). Reported twice by design (ARI's live ``Dial`` event at the answer, the call
        flow when Dial returns, possibly from two instances), so each step has an operation
        id of the call and agent: applied once. The order as it is then; None when the call
        has none, or its order no longer takes an assignment (resolved meanwhile)."""
        order = await self.get_by_call(call_id)
        if order is None:
            return None
        step = f"answer:{call_id}:{agent}"
        try:
            taken = await self.update_once(f"{step}:assign", order.id, now, Event.ASSIGN,
                                           "router", agent=agent)
            if taken is not None and taken.status is Status.ASSIGNED and taken.agent == agent:
                taken = await self.update_once(f"{step}:start", order.id, now, Event.START, agent)
        except TransitionRefused as exc:
            log.warning("call %s answered by %s: work order not assigned: %s",
                        call_id, agent, exc)
            return None
        return taken

    async def send_to_back_office(
        self,
        order_id: str,
        now: float,
        actor: str,
        reason: str = "needs-back-office",
        text: str | None = None,
    ) -> WorkOrder | None:
        """The agent (or an out-of-hours flow) hands the order to the back office: pending
        again, no agent, ``reason`` kept (``model.BACK_OFFICE_REASONS``); ``text`` goes to the
        history like a note. The back-office loop assigns it (``workorders.backoffice``)."""
        extra = {"text": text} if text else {}
        return await self.update(order_id, now, Event.BACK_OFFICE, actor, reason=reason,
                                 **extra)

    async def assign_back_office(
        self, order_id: str, agent: str, now: float, *, actor: str = "backoffice"
    ) -> WorkOrder | None:
        """Assign an order the back office owns, if it still does (``back_office_reason``).

        The check and the write are one WATCHed transaction: of two back-office loops racing
        for the order, or a supervisor assigning it meanwhile, exactly one assignment
        happens; the loser gets None. Never spooled (the back office waits for Redis rather
        than act on a stale view): raises ``StoreUnavailable`` while Redis is unreachable or
        the spool still waits for replay."""
        if self._pending:
            raise StoreUnavailable("work order writes wait in the spool: back office paused")
        try:
            order, applied = await self._timed(self._update_in_redis(
                _new_op_id(), order_id, now, Event.ASSIGN, actor, {"agent": agent},
                replayed=False, only_if=_owned_by_back_office,
            ))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis unreachable: {exc!r}") from exc
        return order if applied else None

    async def merge(
        self, survivor_id: str, merged_id: str, now: float, actor: str
    ) -> tuple[WorkOrder, WorkOrder]:
        """Fold the order ``merged_id`` into ``survivor_id`` (``model.merge_orders``): the
        survivor and the merged order as written.

        Both orders are read under WATCH and written in one MULTI/EXEC (hashes, histories,
        indexes, a ``WOABSORB`` and a ``WOMERGE`` event): a change to either that lands
        meanwhile makes the merge start over on the new state, so neither is lost. Raises
        ``WorkOrderError`` (the same order twice), ``UnknownWorkOrder``, ``TransitionRefused``
        (already merged, closed survivor). A supervisor's action, not a caller's: with Redis
        unreachable it raises ``StoreUnavailable`` rather than spool.
        """
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            return await self._timed(self._merge_in_redis(survivor_id, merged_id, now, actor))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis unreachable, nothing merged: {exc!r}") from exc

    async def replay_spool(self) -> int:
        """Apply every spooled write to Redis, oldest first; the number applied now.

        Safe to call at any time and repeatedly (what was applied is skipped). Raises
        ``StoreUnavailable`` when Redis is still unreachable; what was not applied stays.
        """
        async with self._lock:
            try:
                return await self._replay_locked()
            except UNREACHABLE as exc:
                raise StoreUnavailable(f"redis unreachable: {exc!r}") from exc

    # -- reads --------------------------------------------------------------------------

    async def get(self, order_id: str) -> WorkOrder | None:
        """The order, or None if there is none (see the module docstring when Redis is down)."""
        return await self._read(order_id, lambda: self._read_order(order_id), self._local)

    async def get_by_call(self, call_id: str) -> WorkOrder | None:
        """The order created for the call with this unique id, or None."""

        async def read() -> WorkOrder | None:
            order_id = await self._redis.get(self._key("wo:by-call:", call_id))
            return await self._read_order(_text(order_id)) if order_id else None

        return await self._read(call_id, read, self._local_by_call)

    async def by_caller(self, number: str) -> list[WorkOrder]:
        """Every order from this caller number (spelled in any way that has the same digits),
        oldest first: repeat-contact detection. Orders written before encryption are not in
        the index. A number without digits (anonymous) finds nothing."""
        index = self._cipher.blind_index(number)
        if index is None:
            return []

        async def read() -> list[WorkOrder]:
            ids: set[bytes | str] = await self._redis.smembers(self._key("wo:by-caller:", index))
            orders = [await self._read_order(_text(i)) for i in ids]
            return sorted((o for o in orders if o is not None), key=_creation)

        def local(_: str) -> list[WorkOrder]:
            views = {**self._known, **self._spooled}.values()
            found = [o for o in views if self._cipher.blind_index(o.caller_number) == index]
            return sorted(found, key=_creation)

        return await self._read(number, read, local)

    async def list_recent(self, n: int) -> list[WorkOrder]:
        """The ``n`` most recently created orders, newest first."""

        async def read() -> list[WorkOrder]:
            # Members only (no WITHSCORES): redis-py types the reply for both forms.
            ids: list[bytes | str] = await self._redis.zrevrange(  # type: ignore[assignment]
                self._key("wo:index"), 0, max(0, n) - 1
            )
            orders = [await self._read_order(_text(i)) for i in ids] if n > 0 else []
            return [order for order in orders if order is not None]

        def unavailable(_: str) -> list[WorkOrder]:
            raise StoreUnavailable("redis unreachable: no listing from the local view")

        return await self._read("", read, unavailable)

    async def created_between(self, start: float, end: float, *, batch: int = 500
                              ) -> list[WorkOrder]:
        """Every order created in ``[start, end)`` (``wo:index``), oldest first: the KPIs'
        read. Orders are read ``batch`` at a time, one round trip per batch."""

        async def read() -> list[WorkOrder]:
            # Members only (no WITHSCORES): redis-py types the reply for both forms.
            ids: list[bytes | str] = await self._redis.zrangebyscore(  # type: ignore[assignment]
                self._key("wo:index"), start, f"({end}"
            )
            orders: list[WorkOrder] = []
            for first in range(0, len(ids), batch):
                async with self._redis.pipeline(transaction=False) as pipe:
                    for order_id in ids[first:first + batch]:
                        pipe.hgetall(self._key("wo:", _text(order_id)))
                        pipe.lrange(self._key("wo:", _text(order_id), ":history"), 0, -1)
                    replies = await pipe.execute()
                for fields, history in zip(replies[::2], replies[1::2], strict=True):
                    if fields:  # purged between the two reads
                        orders.append(self._from_hash(fields, history))
            return orders

        def unavailable(_: str) -> list[WorkOrder]:
            raise StoreUnavailable("redis unreachable: no KPIs from the local view")

        # No per-operation timeout here: a month of orders is many round trips.
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            return await read()
        except UNREACHABLE:
            return unavailable("")

    # -- retention and legal hold (workorders.retention) ---------------------------------

    async def set_legal_hold(
        self, order_id: str, held: bool, now: float, actor: str, reason: str
    ) -> WorkOrder:
        """Set (``held``) or release the order's legal hold: a ``legal_hold`` event through
        the update path (history, event, indexes: a held order leaves ``wo:retain``). Not
        spooled: with Redis unreachable it raises ``StoreUnavailable``, so a hold is never
        believed set while it is not."""
        changes = {"legal_hold": held, "reason": reason}
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            order, _ = await self._timed(self._update_in_redis(
                _new_op_id(), order_id, now, Event.LEGAL_HOLD, actor, changes, replayed=False
            ))
        except UNREACHABLE as exc:
            raise StoreUnavailable(f"redis unreachable: legal hold not changed: {exc!r}") from exc
        if order is None:  # only if the order was deleted between the two commands
            raise UnknownWorkOrder(order_id)
        return order

    async def retained_past(self, now: float, offset: int, count: int) -> list[str]:
        """Ids of closed orders not under a legal hold whose ``retain_until`` is at or before
        ``now`` (``wo:retain``), oldest date first, ``count`` from ``offset``."""
        # Members only (no WITHSCORES): redis-py types the reply for both forms.
        ids: list[bytes | str] = await self._redis.zrangebyscore(  # type: ignore[assignment]
            self._key(retention.RETAIN_SET), "-inf", now, start=offset, num=count
        )
        return [_text(i) for i in ids]

    async def purge_order(
        self, order_id: str, now: float, reason: str = retention.REASON_EXPIRED
    ) -> retention.DeletionRecord | None:
        """Delete the order with every key and index membership if it is still past its
        retention at ``now`` (checked under WATCH, so a reopen, a hold or any change made
        meanwhile wins); its deletion record and a ``WOPURGE`` event are written in the same
        MULTI/EXEC. The record, or None when the order stays (or is gone already)."""
        hash_key, history_key = self._key("wo:", order_id), self._key("wo:", order_id, ":history")
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(hash_key)
                    fields = await pipe.hgetall(hash_key)
                    if not fields:
                        pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        pipe.zrem(self._key(retention.RETAIN_SET), order_id)
                        await pipe.execute()
                        return None
                    order = self._from_hash(fields, await pipe.lrange(history_key, 0, -1))
                    if not retention.expired(order, now):
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        return None
                    by_call = self._key("wo:by-call:", order.call_id)
                    owns_call = _text(await pipe.get(by_call) or b"") == order_id
                    index = self._cipher.blind_index(order.caller_number)
                    record = retention.DeletionRecord.of(order, now, reason)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    pipe.delete(hash_key, history_key)
                    if owns_call:
                        pipe.delete(by_call)
                    if index:
                        pipe.srem(self._key("wo:by-caller:", index), order_id)
                    pipe.zrem(self._key("wo:index"), order_id)
                    for name in indexes.memberships(order, self.indexers):
                        pipe.zrem(self._key(name), order_id)
                    pipe.rpush(self._key(retention.DELETIONS), record.to_json())
                    # No personal data: the id and the dates only (no call id either).
                    await events.emit(
                        pipe, retention.PURGE_KIND, now, prefix=self.prefix,
                        maxlen=self._maxlen, order_id=order_id, actor="retention",
                        details=record.to_dict(),
                    )
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                self._known.pop(order_id, None)
                return record

    async def find(
        self,
        f: query.OrderFilter,
        now: float,
        *,
        limit: int = query.DEFAULT_PAGE,
        after: query.Cursor | None = None,
        history: bool = True,
    ) -> tuple[list[WorkOrder], query.Cursor | None]:
        """One page of the orders matching ``f``, newest first, and the cursor of the next
        (``workorders.query``). ``history=False`` leaves the histories out (a list's rows).
        Raises ``StoreUnavailable`` while Redis is unreachable, like ``list_recent``."""

        async def read() -> tuple[list[WorkOrder], query.Cursor | None]:
            ids, following = await query.find_ids(
                self._redis, self.prefix, f, now=now, limit=limit, after=after,
                blind_index=self._cipher.blind_index,
            )
            return await self._read_orders(ids, history=history), following

        def unavailable(_: str) -> tuple[list[WorkOrder], query.Cursor | None]:
            raise StoreUnavailable("redis unreachable: no listing from the local view")

        return await self._read("", read, unavailable)

    async def reindex(self, *, batch: int = 500) -> int:
        """Write every order's index memberships (``workorders.indexes.INDEXERS``) from its
        current state; the number of orders seen. For orders written before an index existed
        (an update only writes the sets whose membership it changes). Safe while the service
        runs: each batch is read after WATCH on its orders and written in one MULTI/EXEC,
        again if one of them changed meanwhile. It adds memberships; leaving a set is the
        updates' job."""
        done, start = 0, 0
        while True:
            found: list[bytes | str] = await self._redis.zrange(  # type: ignore[assignment]
                self._key("wo:index"), start, start + batch - 1
            )
            if not found:
                return done
            done += await self._reindex_batch([_text(i) for i in found])
            start += batch

    # -- the write path -------------------------------------------------------------------

    async def _write(
        self, now: float, direct: Callable[[], Awaitable[T]], spool: Callable[[], T]
    ) -> T:
        if not self._pending:
            try:
                return await self._timed(direct())
            except UNREACHABLE as exc:
                self._unreachable(now, exc)
        async with self._lock:
            if self._pending and now >= self._retry_at:
                try:
                    await self._replay_locked()
                except UNREACHABLE as exc:
                    self._unreachable(now, exc)
            if not self._pending and now >= self._retry_at:
                try:
                    return await self._timed(direct())
                except UNREACHABLE as exc:
                    self._unreachable(now, exc)
            return spool()

    def _unreachable(self, now: float, exc: BaseException) -> None:
        if isinstance(exc, _OutageWhileQueued):
            return  # the failure behind it was counted and logged
        self._outages += 1
        log.warning("redis unreachable (%r): work order writes go to the spool", exc)
        self._retry_at = now + self._retry_after

    async def _timed(self, operation: Awaitable[T]) -> T:
        outages = self._outages
        async with self._in_flight:  # waiting for a turn is not Redis being slow
            if self._outages != outages:
                # Redis failed a write while this one waited: give way now (to the spool, or
                # the local view) instead of a timeout of its own after those queued before
                # it, which would make a burst wait one timeout per max_in_flight writes.
                if isinstance(operation, Coroutine):
                    operation.close()
                raise _OutageWhileQueued("redis failed a write while this operation waited")
            return await asyncio.wait_for(operation, self._timeout)

    async def _create_in_redis(
        self, op_id: str, draft: WorkOrder, *, proposed: str, replayed: bool
    ) -> tuple[WorkOrder, bool]:
        """Run the create script: the call's order, and whether this operation wrote it (a
        new order, or the call linked to the caller's open order as a repeat contact)."""
        owner = draft.call_id
        fields = personal.seal_hash(_to_hash(draft), owner, self._cipher)
        fields.pop("id", None)
        pairs = [item for pair in fields.items() for item in pair]
        details = personal.public_details(draft.history[0].details if draft.history else {})
        entry = events.event_fields(
            WORK_ORDER_KINDS["create"],
            draft.created_at.timestamp(),
            call_id=draft.call_id,
            queue=draft.queue,
            actor=draft.history[0].actor if draft.history else None,
            status=draft.status.value,
            details=dict(details),
            replayed="1" if replayed else None,
        )
        index = self._cipher.blind_index(draft.caller_number)
        sets = indexes.index_changes(None, draft, self.indexers).add
        result = await self._create_script(
            keys=[
                self._key("wo:by-call:", draft.call_id),
                self._key("wo:seq"),
                self._key("wo:op:", op_id),
                self._key("wo:index"),
                events.stream_key(self.prefix),
                *(self._key(name) for name in sets),
                *(
                    [self._key("wo:by-caller:", index),
                     self._key("wo:repeat:", index, ":", draft.category.value)]
                    if index else []
                ),
            ],
            args=[
                self.prefix,
                proposed,
                self._op_ttl,
                draft.created_at.timestamp(),
                self._history_json(draft.history[0], owner) if draft.history else "{}",
                self._maxlen,
                len(fields),
                len(sets),
                self._repeat_link(draft, replayed) if index else "",
                *pairs,
                *sets.values(),
                *(item for pair in entry.items() for item in pair),
            ],
        )
        order_id, outcome = _text(result[0]), int(result[1])
        if outcome == _CREATED:
            order = replace(draft, id=order_id)
            self._remember(order)
            return order, True
        existing = await self._read_order(order_id)
        if existing is None:  # only if someone deleted it between the two commands
            raise UnknownWorkOrder(order_id)
        if outcome == _LINKED:
            log.info("call %s linked to work order %s as a repeat contact (%d contacts)",
                     draft.call_id, order_id, existing.contacts)
        return existing, outcome == _LINKED

    def _repeat_link(self, draft: WorkOrder, replayed: bool) -> str:
        """The create script's repeat-contact argument: what it needs to link the call to the
        caller's open order of the same category (history entry, event), '' when off."""
        window = self.repeat_contact_window
        if window <= 0:
            return ""
        actor = draft.history[0].actor if draft.history else "ivr"
        entry = HistoryEntry(draft.created_at, Event.REPEAT.value, actor,
                             {"call_id": draft.call_id})
        event = events.event_fields(
            WORK_ORDER_KINDS[Event.REPEAT.value],
            draft.created_at.timestamp(),
            call_id=draft.call_id,
            actor=actor,
            details=dict(entry.details),
            replayed="1" if replayed else None,
        )
        return json.dumps(
            {
                "window": window,
                "ttl": int(window) + 86400,  # only tidies up: the window is checked on `at`
                "category": draft.category.value,
                "open": {status.value: True for status in indexes.OPEN},
                "updated_at": draft.to_dict()["updated_at"],
                "entry": self._history_json(entry, draft.call_id),
                "event": [item for pair in event.items() for item in pair],
            },
            ensure_ascii=True,
        )

    async def _update_in_redis(
        self,
        op_id: str,
        order_id: str,
        now: float,
        event: Event,
        actor: str,
        changes: Mapping[str, Any],
        *,
        replayed: bool,
        only_if: Callable[[WorkOrder], bool] | None = None,
    ) -> tuple[WorkOrder | None, bool]:
        """The order after the event, and whether it was applied now (False: op seen before,
        or ``only_if`` refused the order as it was read under WATCH)."""
        order_id = await self._resolve(order_id)
        hash_key, history_key = self._key("wo:", order_id), self._key("wo:", order_id, ":history")
        op_key = self._key("wo:op:", op_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(hash_key, op_key)
                    if await pipe.exists(op_key):
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        return await self._read_order(order_id), False
                    fields = await pipe.hgetall(hash_key)
                    if not fields:
                        raise UnknownWorkOrder(order_id)
                    order = self._from_hash(fields, await pipe.lrange(history_key, 0, -1))
                    if only_if is not None and not only_if(order):
                        await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                        return order, False
                    changed = apply(order, event, now, actor, self.policy, **changes)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    await self._stage(pipe, order, changed, now, actor, replayed=replayed)
                    pipe.set(op_key, order_id, ex=self._op_ttl)
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                self._remember(changed)
                return changed, True

    async def _stage(
        self, pipe: Any, order: WorkOrder, changed: WorkOrder, now: float, actor: str,
        *, replayed: bool = False,
    ) -> None:
        """Queue in ``pipe`` (in MULTI) what changes ``order`` into ``changed``: hash fields,
        index sets, the new history entries and the event of the last one."""
        order_id = changed.id
        hash_key, history_key = self._key("wo:", order_id), self._key("wo:", order_id, ":history")
        old, new = _to_hash(order), _to_hash(changed)
        # Compared in plaintext (sealing is randomized), then sealed.
        sealed = personal.seal_hash(
            {k: v for k, v in new.items() if old.get(k) != v}, changed.call_id, self._cipher
        )
        updates: dict[EncodableT, EncodableT] = {k: v for k, v in sealed.items()}
        if updates:
            pipe.hset(hash_key, mapping=updates)
        removed = [k for k in old if k not in new]
        if removed:
            pipe.hdel(hash_key, *removed)
        sets = indexes.index_changes(order, changed, self.indexers)
        for name in sets.remove:
            pipe.zrem(self._key(name), order_id)
        for name, score in sets.add.items():
            pipe.zadd(self._key(name), {order_id: score})
        pipe.rpush(
            history_key,
            *(self._history_json(e, changed.call_id) for e in changed.history[len(order.history):]),
        )
        last = changed.history[-1]
        await events.emit(
            pipe,
            WORK_ORDER_KINDS[last.event],
            now,
            prefix=self.prefix,
            maxlen=self._maxlen,
            order_id=order_id,
            call_id=changed.call_id,
            queue=changed.queue,
            agent=changed.agent,
            actor=actor,
            status=changed.status.value,
            details=personal.public_details(last.details),
            replayed="1" if replayed else None,
        )

    async def _merge_in_redis(
        self, survivor_id: str, merged_id: str, now: float, actor: str
    ) -> tuple[WorkOrder, WorkOrder]:
        ids = (await self._resolve(survivor_id), await self._resolve(merged_id))
        keys = [k for i in ids for k in (self._key("wo:", i), self._key("wo:", i, ":history"))]
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    orders = []
                    for order_id in ids:
                        fields = await pipe.hgetall(self._key("wo:", order_id))
                        if not fields:
                            raise UnknownWorkOrder(order_id)
                        history = await pipe.lrange(self._key("wo:", order_id, ":history"), 0, -1)
                        orders.append(self._from_hash(fields, history))
                    survivor, merged = orders
                    kept, folded = merge_orders(survivor, merged, now, actor, self.policy)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    await self._stage(pipe, survivor, kept, now, actor)
                    await self._stage(pipe, merged, folded, now, actor)
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                self._remember(kept)
                self._remember(folded)
                return kept, folded

    async def _reindex_batch(self, ids: list[str]) -> int:
        keys = [k for i in ids for k in (self._key("wo:", i), self._key("wo:", i, ":history"))]
        async with self._redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(*keys)
                    # Read on another connection after the WATCH: a change landing after this
                    # read fails the EXEC below, one landing before it is in the read.
                    orders = await self._read_orders(ids)
                    pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    for order in orders:
                        for name, score in indexes.memberships(order, self.indexers).items():
                            pipe.zadd(self._key(name), {order.id: score})
                    await pipe.execute()
                except redis_errors.WatchError:
                    continue
                return len(orders)

    # -- the spool ----------------------------------------------------------------------

    def _spool_create(self, op_id: str, draft: WorkOrder) -> WorkOrder:
        existing = self._local_by_call(draft.call_id, missing_ok=True)
        if existing is not None:
            return existing
        order = replace(draft, id="L" + uuid.uuid4().hex[:15])
        sealed = personal.seal_order(order.to_dict(), self._cipher)
        self._spool.append({"op_id": op_id, "op": "create", "order": sealed})
        self._pending = True
        self._spooled[order.id] = order
        log.warning("work order %s for call %s spooled locally", order.id, order.call_id)
        return order

    def _spool_update(
        self,
        op_id: str,
        order_id: str,
        now: float,
        event: Event,
        actor: str,
        changes: Mapping[str, Any],
    ) -> WorkOrder | None:
        base = self._spooled.get(order_id) or self._known.get(order_id)
        if op_id in self._spooled_ops:  # the same operation reported again: spooled once
            return base
        changed = apply(base, event, now, actor, self.policy, **changes) if base else None
        record = {
            "op_id": op_id,
            "op": "update",
            "order_id": order_id,
            "now": now,
            "event": event.value,
            "actor": actor,
            "changes": personal.seal_details(_json_changes(changes), op_id, self._cipher),
        }
        self._spool.append(record)
        self._spooled_ops.add(op_id)
        self._pending = True
        if changed is not None:
            self._spooled[order_id] = changed
        return changed

    async def _replay_locked(self) -> int:
        applied = 0
        for batch in self._spool.rotate():
            for record in self._spool.records(batch):
                applied += await self._timed(self._replay_record(record))
            self._spool.done(batch)
        self._pending = self._spool.pending()
        if not self._pending:
            for order in self._spooled.values():
                self._remember(order)
            self._spooled.clear()
            self._spooled_ops.clear()
        if applied:
            log.warning("replayed %d spooled work order writes", applied)
        return applied

    async def _replay_record(self, record: Mapping[str, Any]) -> int:
        op_id = str(record.get("op_id", ""))
        try:
            if record.get("op") == "create":
                draft = WorkOrder.from_dict(personal.open_order(record["order"], self._cipher))
                _, created = await self._create_in_redis(
                    op_id, draft, proposed=draft.id, replayed=True
                )
                return int(created)
            if record.get("op") == "update":
                _, applied = await self._update_in_redis(
                    op_id,
                    str(record["order_id"]),
                    float(record["now"]),
                    Event(record["event"]),
                    str(record["actor"]),
                    self._spooled_changes(record),
                    replayed=True,
                )
                return int(applied)
            raise WorkOrderError(f"unknown spool operation {record.get('op')!r}")
        except (WorkOrderError, UnknownWorkOrder, KeyError, TypeError, ValueError) as exc:
            await self._reject(op_id, record, exc)
            return 0

    async def _reject(self, op_id: str, record: Mapping[str, Any], exc: BaseException) -> None:
        """Keep a spooled write that Redis refuses, with the reason, instead of retrying it."""
        log.error("spooled work order write %s rejected on replay: %s", op_id, exc)
        async with self._redis.pipeline(transaction=True) as pipe:
            if op_id:
                op_key = self._key("wo:op:", op_id)
                await pipe.watch(op_key)
                if await pipe.exists(op_key):
                    return
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                pipe.set(op_key, "rejected", ex=self._op_ttl)
            else:
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
            pipe.rpush(
                self._key("wo:spool-rejected"),
                json.dumps({"record": record, "reason": str(exc)}, ensure_ascii=True),
            )
            # WatchError: another replay rejected it at the same moment.
            with contextlib.suppress(redis_errors.WatchError):
                await pipe.execute()

    def _load_spool_view(self) -> None:
        for record in self._spool.records():
            if record.get("op") == "update":
                self._spooled_ops.add(str(record.get("op_id", "")))
            try:
                if record.get("op") == "create":
                    order = WorkOrder.from_dict(personal.open_order(record["order"], self._cipher))
                    self._spooled[order.id] = order
                elif record.get("op") == "update" and record.get("order_id") in self._spooled:
                    self._spooled[record["order_id"]] = apply(
                        self._spooled[record["order_id"]],
                        record["event"],
                        float(record["now"]),
                        str(record["actor"]),
                        self.policy,
                        **self._spooled_changes(record),
                    )
            except (WorkOrderError, KeyError, TypeError, ValueError) as exc:
                log.error("spool record %s: %s (replay will decide)", record.get("op_id"), exc)

    # -- reads --------------------------------------------------------------------------

    async def _read(
        self, key: str, read: Callable[[], Awaitable[T]], local: Callable[[str], T]
    ) -> T:
        try:
            if self._pending:
                async with self._lock:
                    await self._replay_locked()
            return await self._timed(read())
        except UNREACHABLE:
            return local(key)

    async def _read_order(self, order_id: str) -> WorkOrder | None:
        order_id = await self._resolve(order_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self._key("wo:", order_id))
            pipe.lrange(self._key("wo:", order_id, ":history"), 0, -1)
            fields, history = await pipe.execute()
        if not fields:
            return None
        order = self._from_hash(fields, history)
        self._remember(order)
        return order

    async def _read_orders(self, ids: list[str], *, history: bool = True) -> list[WorkOrder]:
        """The orders of ``ids`` that exist, in that order, in one round trip. Not remembered
        in the local view: without history they are only rows of a list."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hgetall(self._key("wo:", order_id))
                if history:
                    pipe.lrange(self._key("wo:", order_id, ":history"), 0, -1)
            replies = await pipe.execute()
        step = 2 if history else 1
        return [
            self._from_hash(replies[n], replies[n + 1] if history else [])
            for n in range(0, len(replies), step)
            if replies[n]
        ]

    def _from_hash(self, fields: Mapping[Any, Any], history: list[Any]) -> WorkOrder:
        flat = personal.open_hash({_text(k): _text(v) for k, v in fields.items()}, self._cipher)
        owner = flat.get("call_id", "")
        entries = [
            personal.open_entry(json.loads(_text(entry)), owner, self._cipher)
            for entry in history
        ]
        return _from_hash(flat, entries)

    def _history_json(self, entry: HistoryEntry, owner: str) -> str:
        sealed = personal.seal_entry(entry.to_dict(), owner, self._cipher)
        return json.dumps(sealed, ensure_ascii=True, separators=(",", ":"))

    def _spooled_changes(self, record: Mapping[str, Any]) -> dict[str, Any]:
        changes = record.get("changes") or {}
        return personal.open_details(changes, str(record.get("op_id", "")), self._cipher)

    async def _resolve(self, order_id: str) -> str:
        if order_id.startswith("L"):
            real = await self._redis.get(self._key("wo:alias:", order_id))
            if real:
                return _text(real)
        return order_id

    def _local(self, order_id: str) -> WorkOrder:
        order = self._spooled.get(order_id) or self._known.get(order_id)
        if order is None:
            raise StoreUnavailable(f"redis unreachable and work order {order_id} not known here")
        return order

    def _local_by_call(self, call_id: str, missing_ok: bool = False) -> WorkOrder | None:
        for view in (self._spooled, self._known):
            for order in view.values():
                if order.call_id == call_id:
                    return order
        if missing_ok:
            return None
        raise StoreUnavailable(f"redis unreachable and no work order of call {call_id} known")

    def _remember(self, order: WorkOrder) -> None:
        self._known[order.id] = order
        self._known.move_to_end(order.id)
        while len(self._known) > self._known_limit:
            self._known.popitem(last=False)

    def _key(self, *parts: str) -> str:
        return self.prefix + "".join(parts)


def _new_op_id() -> str:
    return uuid.uuid4().hex


def _event(event: Event | str) -> Event:
    try:
        return Event(event)
    except ValueError:
        raise WorkOrderError(
            f"unknown event {event!r}; events are {[e.value for e in Event]}"
        ) from None


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _to_hash(order: WorkOrder) -> dict[str, str]:
    """The order as hash fields: history left out, empty values left out."""
    data = order.to_dict()
    caller, deadlines = data.pop("caller"), data.pop("deadlines")
    data.pop("history")
    data.update(caller_number=caller["number"], caller_name=caller["name"], **deadlines)
    return {
        name: value if isinstance(value, str) and name not in _JSON_FIELDS else json.dumps(value)
        for name, value in data.items()
        if value is not None
    }


def _owned_by_back_office(order: WorkOrder) -> bool:
    return back_office_reason(order) is not None


def _creation(order: WorkOrder) -> tuple[float, str]:
    return order.created_at.timestamp(), order.id


def _from_hash(flat: Mapping[str, str], history: list[dict[str, Any]]) -> WorkOrder:
    """The order from its opened hash fields and history entries."""
    data: dict[str, Any] = {
        name: json.loads(value) if name in _JSON_FIELDS else value for name, value in flat.items()
    }
    data["caller"] = {"number": data.pop("caller_number"), "name": data.pop("caller_name")}
    data["deadlines"] = {"assign_by": data.pop("assign_by"), "respond_by": data.pop("respond_by")}
    data["history"] = history
    return WorkOrder.from_dict(data)


def _json_changes(changes: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (v.value if hasattr(v, "value") else list(v) if isinstance(v, tuple) else v)
        for k, v in changes.items()
    }
