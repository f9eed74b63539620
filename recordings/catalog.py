"""The recordings' metadata in Redis, wrapped data keys included (docs/contracts.md
"Recordings" has the key layout):

=================================  ==========================================================
``<p>rec:<id>``                    hash: :meth:`RecordingMeta.to_hash` (the wrapped key too)
``<p>rec:index``                   sorted set: id by the call's end (epoch seconds)
``<p>rec:by-agent:<agent>``        sorted set: the agent's recordings by the call's end
``<p>rec:by-call:<call id>``       set of ids
``<p>rec:by-order:<order id>``     set of ids
``<p>rec:deletions``               stream of deletion records: ``recording_id``, ``reason``,
                                   ``recorded_on`` (the call's date), ``deleted_at``, ``by``;
                                   no personal data
=================================  ==========================================================

On a Redis Cluster every key above carries the hash tag ``{rec}`` (``<p>{rec}:rec:<id>``...),
so each step below runs in one slot; a new deployment has no keys to move. One Redis keeps the
names above.

Crypto-erase is one step per recording (``_ERASE``, a Lua script, many recordings per call):
the hash with the wrapped key and every index entry go, and the deletion record is written,
unless the recording or its work order (the order's hash, named by ``order_key``, field
``legal_hold == "1"``) is on legal hold. On one Redis the order's hold is read inside the
step; on a cluster the order lives in another slot, so it is read just before the step (a
hold placed on the order in those milliseconds is not seen; the recording's own hold always
is). The sealed object is deleted from storage afterwards; without its key it was unreadable
already.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol

from redis.asyncio import Redis

from hotline.text import as_text
from recordings.metadata import RecordingMeta, iso
from recordings.retention import OrderStanding, RetentionFacts

__all__ = ["Catalog", "Due", "Erased", "RedisCatalog", "RetentionBatch", "deletion_record",
           "order_standing", "recorded_on"]

# KEYS: the index, the deletions stream, then the order hashes checked here (each once)
# ARGV: key prefix, deleted_at, by, then a JSON array of [recording id, reason, recorded_on,
# order hold] per recording (one argument: redis-py encodes each argument in Python);
# order hold: "k<n>" = read legal_hold of KEYS[n], "1"/"0" = read before the step.
# Answers one letter per recording: E erased, H held, M missing.
# (The keys of a recording's hash and its indexes are named by its id and its own fields, so
# they are built here; they share the catalog's slot.)
_ERASE = """
local p = ARGV[1]
local answer = {}
local order_holds = {}  -- "k<n>" -> held: two recordings of one order read it once
-- Index entries are removed per key after the loop, many ids per ZREM/SREM (a command per
-- recording and index costs more than the removal itself).
local from_index, from_key = {}, {}
local function drop(key, id)
  local ids = from_key[key]
  if not ids then
    ids = {}
    from_key[key] = ids
  end
  ids[#ids + 1] = id
end
for _, row in ipairs(cjson.decode(ARGV[4])) do
  local id = row[1]
  local key = p .. 'rec:' .. id
  local f = redis.call('HMGET', key, 'legal_hold', 'agent', 'call_id', 'work_order_id')
  local order = f[4]
  local hold = row[4]
  local order_held = hold == '1'
  if string.sub(hold, 1, 1) == 'k' then
    order_held = order_holds[hold]
    if order_held == nil then
      order_held = redis.call('HGET', KEYS[tonumber(string.sub(hold, 2))], 'legal_hold') == '1'
      order_holds[hold] = order_held
    end
  end
  if not f[2] and not f[3] then
    answer[#answer + 1] = 'M'
  elseif f[1] == '1' or order_held then
    answer[#answer + 1] = 'H'
  else
    redis.call('UNLINK', key)
    from_index[#from_index + 1] = id
    drop('z' .. p .. 'rec:by-agent:' .. (f[2] or ''), id)
    redis.call('SREM', p .. 'rec:by-call:' .. (f[3] or ''), id)
    if order and order ~= '' then drop('s' .. p .. 'rec:by-order:' .. order, id) end
    redis.call('XADD', KEYS[2], '*', 'recording_id', id, 'reason', row[2],
               'recorded_on', row[3], 'deleted_at', ARGV[2], 'by', ARGV[3])
    answer[#answer + 1] = 'E'
  end
end
local function remove(command, key, ids)
  for i = 1, #ids, 500 do
    redis.call(command, key, unpack(ids, i, math.min(i + 499, #ids)))
  end
end
remove('ZREM', KEYS[1], from_index)
for kind_key, ids in pairs(from_key) do
  remove(string.sub(kind_key, 1, 1) == 'z' and 'ZREM' or 'SREM', string.sub(kind_key, 2), ids)
end
return table.concat(answer)
"""

# One batch of the retention pass in one reply (a JSON text): the facts of the recordings that
# ended up to ARGV[2] (epoch seconds), from rank ARGV[3] among them. redis-py parses a reply
# element by element in Python, so 100,000 recordings as HMGET replies would take longer than
# the pass itself. Their work orders' standing is read after it (another slot on a cluster).
# KEYS: the index; ARGV: key prefix, latest end, offset, count
_FACTS = """
local p = ARGV[1]
local last = tonumber(ARGV[2]) or math.huge
local from = tonumber(ARGV[3])
-- By rank, not BYSCORE ... LIMIT offset: Redis walks an offset one element at a time, so the
-- pass would cost the square of the index's length; the ranks up to ARGV[2] are the same ids.
local ranked = redis.call('ZRANGE', KEYS[1], from, from + tonumber(ARGV[4]) - 1, 'WITHSCORES')
local ids = {}
for i = 1, #ranked, 2 do
  if tonumber(ranked[i + 1]) > last then break end
  ids[#ids + 1] = ranked[i]
end
local rows = {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', p .. 'rec:' .. id, 'ended_at', 'category', 'queue',
                       'work_order_id', 'legal_hold')
  if f[1] then
    rows[#rows + 1] = {id, f[1], f[2] or '', f[3] or '', f[4] or '', f[5] or ''}
  end
end
return cjson.encode({#ids, rows})
"""

#: The fields of a work order's hash that make its standing (:func:`order_standing`).
ORDER_FIELDS = ("status", "updated_at", "retain_until", "legal_hold")

# The standing fields (ORDER_FIELDS) of the work orders KEYS in one JSON reply, "" for a field
# or an order that is not there: one script call per batch instead of an HMGET per order,
# whose replies redis-py would parse one by one. One Redis only (the orders' slots differ).
_ORDERS = """
local rows = {}
for i, key in ipairs(KEYS) do
  local f = redis.call('HMGET', key, 'status', 'updated_at', 'retain_until', 'legal_hold')
  rows[i] = {f[1] or '', f[2] or '', f[3] or '', f[4] or ''}
end
return cjson.encode(rows)
"""

# The work order id ("" for none or a recording gone) of each recording ARGV[2..], in one
# JSON reply. KEYS: the index (the catalog's slot); ARGV: key prefix, then the ids.
_ORDER_IDS = """
local ids = {}
for i = 2, #ARGV do
  ids[i - 1] = redis.call('HGET', ARGV[1] .. 'rec:' .. ARGV[i], 'work_order_id') or ''
end
return cjson.encode(ids)
"""

# Replace the wrapped key only if it is still the one that was re-wrapped.
_SET_KEY = """
if redis.call('HGET', KEYS[1], 'master') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'wrapped_key', ARGV[2], 'master', ARGV[3])
return 1
"""



class Erased(StrEnum):
    ERASED = "E"
    HELD = "H"  # a legal hold blocks it
    MISSING = "M"


@dataclass(frozen=True)
class Due:
    """A recording to erase: its id, when its call ended (the deletion record's date), why."""

    recording_id: str
    recorded_at: float
    reason: str


@dataclass(frozen=True)
class RetentionBatch:
    """A batch of the retention pass: recordings' facts, and the standing of their work
    orders by id (an order no longer stored is absent)."""

    facts: list[RetentionFacts]
    orders: dict[str, OrderStanding]


class Catalog(Protocol):
    """What the pipeline, the library and retention need of the metadata
    (:class:`RedisCatalog`; ``recordings.testing.MemoryCatalog`` for unit tests)."""

    async def add(self, meta: RecordingMeta) -> None: ...

    async def get(self, recording_id: str) -> RecordingMeta | None: ...

    async def newest(self, *, agents: Sequence[str] | None = None, call_id: str | None = None,
                     limit: int = 50, order_id: str | None = None) -> list[RecordingMeta]: ...

    async def set_hold(self, recording_id: str, held: bool, reason: str) -> bool: ...

    async def set_key(self, meta: RecordingMeta, wrapped: bytes, master: str) -> bool: ...

    async def erase(self, due: Sequence[Due], by: str, now: float) -> list[Erased]: ...

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None: ...

    def retention_batches(self, ended_by: float, batch: int = 1000
                          ) -> AsyncIterator[RetentionBatch]: ...

    async def count(self) -> int: ...


def deletion_record(recording_id: str, recorded_at: float, reason: str, by: str,
                    now: float) -> dict[str, str]:
    """A deletion record: what was deleted, when, why; no personal data."""
    return {"recording_id": recording_id, "reason": reason,
            "recorded_on": recorded_on(recorded_at), "deleted_at": iso(now), "by": by}


def recorded_on(at: float) -> str:
    """The deletion record's date of a call that ended at ``at`` (epoch seconds), UTC."""
    return _date_of_day(math.floor(at / 86400))


@lru_cache(maxsize=4096)
def _date_of_day(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, UTC).date().isoformat()


def order_standing(fields: Sequence[Any]) -> OrderStanding | None:
    """A work order's standing from its hash fields ``status, updated_at, retain_until,
    legal_hold`` (None: no such order)."""
    status, updated, retain, hold = (as_text(v) if v is not None else None for v in fields)
    if not status:
        return None
    return OrderStanding(
        status=status,
        closed_at=_epoch(updated) if status == "closed" and updated else None,
        retain_until=_epoch(retain) if retain else None,
        legal_hold=hold == "1",
    )


class RedisCatalog:
    """:class:`Catalog` in Redis (``redis.asyncio``).

    ``cluster``: the keys carry the hash tag ``{rec}`` (module docstring). ``order_key``
    names a work order's hash from its id (the work-order store's naming; default
    ``<prefix>wo:<id>``)."""

    def __init__(self, redis: Redis, prefix: str = "hotline:", *, cluster: bool = False,
                 order_key: Callable[[str], str] | None = None) -> None:
        # redis-py's annotations do not follow decode_responses: values are read as Any.
        self._redis: Any = redis
        self.prefix = prefix
        self.cluster = cluster
        self._base = f"{prefix}{{rec}}:" if cluster else prefix  # every catalog key's start
        self._order_key = order_key or (lambda order_id: f"{prefix}wo:{order_id}")
        self._erase = redis.register_script(_ERASE)
        self._facts = redis.register_script(_FACTS)
        self._orders = redis.register_script(_ORDERS)
        self._order_ids = redis.register_script(_ORDER_IDS)
        self._set_key = redis.register_script(_SET_KEY)

    def key(self, recording_id: str) -> str:
        return f"{self._base}rec:{recording_id}"

    @property
    def index(self) -> str:
        return f"{self._base}rec:index"

    @property
    def deletions_key(self) -> str:
        return f"{self._base}rec:deletions"

    def _by(self, kind: str, value: str) -> str:
        return f"{self._base}rec:by-{kind}:{value}"

    async def add(self, meta: RecordingMeta) -> None:
        rid = meta.recording_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self.key(rid), mapping=meta.to_hash())
            pipe.zadd(self.index, {rid: meta.ended_at})
            pipe.zadd(self._by("agent", meta.agent), {rid: meta.ended_at})
            pipe.sadd(self._by("call", meta.call_id), rid)
            if meta.work_order_id:
                pipe.sadd(self._by("order", meta.work_order_id), rid)
            await pipe.execute()

    async def get(self, recording_id: str) -> RecordingMeta | None:
        raw = await self._redis.hgetall(self.key(recording_id))
        if not raw:
            return None
        fields = {as_text(k): as_text(v) for k, v in raw.items()}
        return RecordingMeta.from_hash(recording_id, fields)

    async def newest(self, *, agents: Sequence[str] | None = None, call_id: str | None = None,
                     limit: int = 50, order_id: str | None = None) -> list[RecordingMeta]:
        """The newest ``limit`` recordings: all, of ``agents``, and/or of ``call_id``, and/or
        of the work order ``order_id`` (its call and its callbacks)."""
        scored: list[tuple[float, str]] = []
        sources = [self.index] if agents is None else [self._by("agent", a) for a in agents]
        narrowed = call_id is not None or order_id is not None
        for source in sources:
            got = await self._redis.zrevrange(source, 0, -1 if narrowed else limit - 1,
                                              withscores=True)
            scored += [(float(score), as_text(rid)) for rid, score in got]
        for kind, value in (("call", call_id), ("order", order_id)):
            if value is not None:
                ids = {as_text(m) for m in await self._redis.smembers(self._by(kind, value))}
                scored = [(score, rid) for score, rid in scored if rid in ids]
        found = []
        for _, rid in sorted(scored, reverse=True)[:limit]:
            meta = await self.get(rid)
            if meta is not None:
                found.append(meta)
        return found

    async def set_hold(self, recording_id: str, held: bool, reason: str) -> bool:
        key = self.key(recording_id)
        if not await self._redis.exists(key):
            return False
        if held:
            await self._redis.hset(key, mapping={"legal_hold": "1", "hold_reason": reason})
        else:
            await self._redis.hdel(key, "legal_hold", "hold_reason")
        return True

    async def set_key(self, meta: RecordingMeta, wrapped: bytes, master: str) -> bool:
        done = await self._set_key(keys=[self.key(meta.recording_id)],
                                   args=[meta.master, base64.b64encode(wrapped), master])
        return bool(done)

    async def erase(self, due: Sequence[Due], by: str, now: float) -> list[Erased]:
        """Crypto-erase each of ``due`` in one step (module docstring); what became of each."""
        if not due:
            return []
        orders: list[str] = json.loads(await self._order_ids(
            keys=[self.index], args=[self._base, *(item.recording_id for item in due)]))
        keys: list[str] = [self.index, self.deletions_key]
        holds = await self._order_holds({o for o in orders if o})
        read_inside: dict[str, str] = {}  # order id -> "k<n>", its hash KEYS[n]
        rows: list[tuple[str, str, str, str]] = []
        for item, order_id in zip(due, orders, strict=True):
            if not order_id:
                hold = "0"
            elif order_id in holds:  # a cluster: read before the step
                hold = "1" if holds[order_id] else "0"
            else:  # one Redis: read inside the step
                hold = read_inside.get(order_id, "")
                if not hold:
                    keys.append(self._order_key(order_id))
                    hold = read_inside[order_id] = f"k{len(keys)}"
            rows.append((item.recording_id, item.reason, recorded_on(item.recorded_at), hold))
        answer = as_text(await self._erase(keys=keys, args=[self._base, iso(now), by,
                                                          json.dumps(rows)]))
        return [Erased(letter) for letter in answer]

    async def _order_holds(self, order_ids: set[str]) -> dict[str, bool]:
        """On a cluster, whether each order is on legal hold, read now (its hash is in
        another slot than the catalog's); on one Redis nothing (the step reads it)."""
        if not self.cluster or not order_ids:
            return {}
        ids = sorted(order_ids)
        held = await self._pipelined(
            [("hget", self._order_key(order_id), "legal_hold") for order_id in ids])
        return {order_id: as_text(h) == "1" if h else False for order_id, h in zip(
            ids, held, strict=True)}

    async def _pipelined(self, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """``commands`` (name, *args) in one round trip, not atomic (keys of any slot)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for name, *command_args in commands:
                getattr(pipe, name)(*command_args)
            return list(await pipe.execute())

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None:
        await self._redis.xadd(self.deletions_key,
                               deletion_record(recording_id, started_at, reason, by, now))

    async def deletions(self, count: int = 100) -> list[dict[str, str]]:
        entries = await self._redis.xrevrange(self.deletions_key, count=count)
        return [{as_text(k): as_text(v) for k, v in fields.items()} for _, fields in entries]

    async def count(self) -> int:
        """How many recordings are stored."""
        return int(await self._redis.zcard(self.index))

    async def retention_batches(self, ended_by: float, batch: int = 1000
                                ) -> AsyncIterator[RetentionBatch]:
        """The retention facts of the recordings whose call ended by ``ended_by``, oldest
        first, ``batch`` at a time, with their work orders' standing (one script call and
        one reply per batch; Redis is busy a few milliseconds for each)."""
        offset = 0
        while True:
            raw = await self._facts(keys=[self.index],
                                    args=[self._base, repr(ended_by), offset, batch])
            count, rows = json.loads(raw)
            if not count:
                return
            offset += count
            facts = [RetentionFacts(rid, float(ended), category, queue, order or None,
                                    hold == "1")
                     for rid, ended, category, queue, order, hold in (rows or [])]
            order_ids = sorted({f.work_order_id for f in facts if f.work_order_id})
            replies = await self._order_fields(order_ids)
            standings = {}
            for order_id, fields in zip(order_ids, replies, strict=True):
                standing = order_standing(fields)
                if standing is not None:
                    standings[order_id] = standing
            yield RetentionBatch(facts, standings)

    async def _order_fields(self, order_ids: Sequence[str]) -> list[Sequence[Any]]:
        """The ORDER_FIELDS of each order: one script call on one Redis; on a cluster, where
        the orders are in other slots than each other, one pipelined HMGET each."""
        if not order_ids:
            return []
        if self.cluster:
            return await self._pipelined(
                [("hmget", self._order_key(o), *ORDER_FIELDS) for o in order_ids])
        rows: list[Sequence[Any]] = json.loads(
            await self._orders(keys=[self._order_key(o) for o in order_ids]))
        return rows


def _epoch(text: str) -> float:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
