"""The store's state and the plumbing every concern shares.

Concurrency: at most ``max_in_flight`` operations talk to Redis at once, the rest queue here
(redis-py's pool errors out past its ``max_connections``, 100 by default; keep it above
``max_in_flight``). When a write finds Redis unreachable, the operations queued meanwhile give
way at once (writes to the spool, reads to the local view): a burst against a slow Redis
waits about one timeout, not one per ``max_in_flight`` operations queued before it.

The local view: orders touched by pending spool records (``_spooled``, loaded from the spool
file at start), and the last state this process wrote or read of others (``_known``,
bounded); writes and reads fall back on it while Redis is unreachable. Both are keyed by the
order's real id: a local id that became an alias of another order (``_aliases``) is looked up
as that order, whose state moved on under its own id.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, NamedTuple, TypeVar

from redis.asyncio import Redis

import events
from hotline.text import as_text
from workorders import indexes, personal
from workorders.buckets import DEFAULT_BUCKETS, Buckets
from workorders.model import HistoryEntry, Policy, WorkOrder, WorkOrderError, apply
from workorders.personal import FieldCipher
from workorders.spool import Spool
from workorders.store.errors import OutageWhileQueued, StoreUnavailable
from workorders.store.groupcommit import GroupCommit, pipelined
from workorders.store.hashes import order_from_hash
from workorders.store.scripts import CREATE

log = logging.getLogger("workorders.store")

LOCAL_VIEW_ORDERS = 1_000
"""How many orders the local view keeps beyond those spooled (``_known``, the most recently
written or read first). It serves the calls in progress while Redis is unreachable: a few
hundred at a box's capacity. Each order is kept whole, history included (some 5-10 KB in the
process): at 10,000 the view grew by that much a call for 10,000 calls, which the soak read
as a leak (README "Soak").
"""

UNSYNCED_WINDOW_S = 5.0
"""How long after Redis acknowledged a write the store still holds it, to spool it again if
Redis fails meanwhile. With ``appendfsync everysec`` redis-server puts off writing its
append-only file while a background fsync is slow (a busy disk), up to 2 s of its own clock,
and answers the clients meanwhile: killed then (kill -9, the OOM killer), it comes back
without writes it acknowledged. Seen in tests/integration/test_routing_faults.py under load:
the call's order gone, its spooled assignment refused on replay. 5 s: those 2 s, its
once-a-second fsync, and a starved CPU's delays. Re-spooled writes Redis did keep are applied
once (operation ids): holding them costs a closure each (the draft a creation made anyway),
some 500 at 100 creations/s, and a replay round trip each after a failure.

A write is let go only once Redis, the same process (run id), has been seen up past the
window after it (``replay_spool``, every 5 s in the service): a Redis restarted between two
writes, or a Sentinel failover to a replica that had not got them, fails no write of ours,
so the run id is what tells."""

UNSYNCED_HELD_MAX = 100_000
"""At most this many writes held (the oldest go first): a process that never calls
``replay_spool`` (a tool, a benchmark) must not grow without end."""

T = TypeVar("T")


class Held(NamedTuple):
    """A write Redis acknowledged, held for the window (``UNSYNCED_WINDOW_S``): when (monotonic
    time), the order and call it wrote (a call's for a creation, else ""), and how to make its
    spool record if it is ever spooled."""

    at: float
    order_id: str
    call_id: str
    record: Callable[[], dict[str, Any]]

# History entries as JSON, one encoder for all (json.dumps with options makes one per call).
_ENTRY = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"))


class StoreCore:
    """State, keys, the per-operation timeout and the local view of ``WorkOrderStore``."""

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
        known_limit: int = LOCAL_VIEW_ORDERS,
        max_in_flight: int = 32,
        indexers: tuple[indexes.Indexer, ...] = indexes.INDEXERS,
        repeat_contact_window: float = 0.0,
        buckets: int = DEFAULT_BUCKETS,
        unsynced_window: float = UNSYNCED_WINDOW_S,
    ) -> None:
        self._redis = redis
        # Where each order's keys live (workorders.buckets): one hash slot per bucket.
        self.buckets = Buckets.of(redis, buckets, prefix)
        self._cipher = cipher
        self._spool = Spool(spool_dir)
        # Writes the spool's disk refused (full): kept here, replayed after the spool's.
        self._held: list[dict[str, Any]] = []
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
        # Writes Redis acknowledged within the last ``unsynced_window`` seconds: spooled again
        # when Redis fails, or turns out to have lost them (spooling).
        self._unsynced: deque[Held] = deque(maxlen=UNSYNCED_HELD_MAX)
        self._unsynced_window = unsynced_window
        self._redis_runs: frozenset[str] | None = None  # run ids that acknowledged them
        # Operations beyond this wait here rather than open ever more connections: redis-py's
        # pool refuses past max_connections (100 by default) with an error that would read as
        # "Redis unreachable" and spool for nothing.
        self._in_flight = asyncio.Semaphore(max_in_flight)
        self._create_script = redis.register_script(CREATE)
        # Creations that meet one in flight go to Redis together in the next round trip
        # (groupcommit). Not on a Cluster: its pipeline splits by node, one script call each.
        self._creations = (
            None if self.buckets.cluster
            else GroupCommit(pipelined(redis, self._create_script))
        )
        self._lock = asyncio.Lock()  # one replay at a time; spooled writes keep their order
        # Local view: orders touched by pending spool records, and the last state seen of
        # others (bounded), for writes and reads while Redis is unreachable.
        self._spooled: dict[str, WorkOrder] = {}
        self._spooled_ops: set[str] = set()  # op ids of the spooled updates
        self._known: OrderedDict[str, WorkOrder] = OrderedDict()
        self._known_limit = known_limit
        # Local ids that became aliases of orders Redis already had (replayed creations of a
        # call another instance created meanwhile); bounded as ``_known``.
        self._aliases: OrderedDict[str, str] = OrderedDict()
        # A call from the caller of an open order of the same category, within this many
        # seconds of its creation or last repeat call, is linked to it (0: never).
        self.repeat_contact_window = repeat_contact_window
        self._pending = self._spool.pending()
        self._load_spool_view()

    @property
    def redis(self) -> Redis:
        """The client the store writes with (maintenance: the key migration)."""
        return self._redis

    @property
    def creation_round_trips(self) -> int:
        """Round trips the creations took so far (fewer than creations under load: group
        commit); 0 on a Cluster, where each creation is its own. For the benchmark."""
        return self._creations.round_trips if self._creations else 0

    @property
    def spool_pending(self) -> bool:
        """Whether writes made while Redis was unreachable still wait for replay."""
        return self._pending

    def _unreachable(self, now: float, exc: BaseException) -> None:
        if isinstance(exc, OutageWhileQueued):
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
                raise OutageWhileQueued("redis failed a write while this operation waited")
            # asyncio.timeout, not wait_for: the same TimeoutError without a Task per operation
            # (one more loop turn, some 20 µs of a creation's client CPU).
            async with asyncio.timeout(self._timeout):
                return await operation

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

    async def _read_order(self, order_id: str) -> WorkOrder | None:
        order_id = await self._resolve(order_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(self.buckets.order_key(order_id))
            pipe.lrange(self.buckets.history_key(order_id), 0, -1)
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
                pipe.hgetall(self.buckets.order_key(order_id))
                if history:
                    pipe.lrange(self.buckets.history_key(order_id), 0, -1)
            replies = await pipe.execute()
        step = 2 if history else 1
        return [
            self._from_hash(replies[n], replies[n + 1] if history else [])
            for n in range(0, len(replies), step)
            if replies[n]
        ]

    def _from_hash(self, fields: Mapping[Any, Any], history: list[Any]) -> WorkOrder:
        flat = personal.open_hash({as_text(k): as_text(v) for k, v in fields.items()}, self._cipher)
        owner = flat.get("call_id", "")
        entries = [
            personal.open_entry(json.loads(as_text(entry)), owner, self._cipher)
            for entry in history
        ]
        return order_from_hash(flat, entries)

    def _history_json(self, entry: HistoryEntry, owner: str) -> str:
        return _ENTRY.encode(personal.seal_entry(entry.to_dict(), owner, self._cipher))

    def _spooled_changes(self, record: Mapping[str, Any]) -> dict[str, Any]:
        changes = record.get("changes") or {}
        return personal.open_details(changes, str(record.get("op_id", "")), self._cipher)

    async def _resolve(self, order_id: str) -> str:
        if not order_id.startswith("L"):
            return order_id
        if order_id in self._aliases:  # an alias never changes: no round trip
            return self._aliases[order_id]
        real = await self._redis.get(self.buckets.order_name(order_id, "wo:alias:" + order_id))
        if real:
            self._alias(order_id, as_text(real))
            return as_text(real)
        return order_id

    def _alias(self, local_id: str, real_id: str) -> None:
        """``local_id`` is another name of ``real_id``: its stale local draft goes."""
        if local_id == real_id:
            return
        self._aliases[local_id] = real_id
        self._aliases.move_to_end(local_id)
        while len(self._aliases) > self._known_limit:
            self._aliases.popitem(last=False)
        self._known.pop(local_id, None)

    def _view(self, order_id: str) -> WorkOrder | None:
        """The order as this process last saw it (spooled changes first), by any of its ids.

        Of an alias, the later of the real order and the local draft with its spooled
        changes: a replay cut short leaves changes of the draft not yet in the real order.
        """
        real = self._aliases.get(order_id, order_id)
        seen = (self._spooled.get(real) or self._known.get(real), self._spooled.get(order_id))
        return max((o for o in seen if o is not None), key=lambda o: o.updated_at, default=None)

    def _local(self, order_id: str) -> WorkOrder:
        order = self._view(order_id)
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
        """A key outside the buckets (``wo:spool-rejected``)."""
        return self.prefix + "".join(parts)
