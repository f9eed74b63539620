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

Crypto-erase is one step per recording (``_ERASE``, a Lua script, many recordings per call):
the hash with the wrapped key and every index entry go, and the deletion record is written,
unless the recording or its work order
(``<p>wo:<order id>`` field ``legal_hold == "1"``) is on legal hold. The sealed object is
deleted from storage afterwards; without its key it was unreadable already.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from redis.asyncio import Redis

from recordings.metadata import RecordingMeta, iso
from recordings.retention import OrderStanding, RetentionFacts

__all__ = ["Catalog", "Due", "Erased", "RedisCatalog", "RetentionBatch", "deletion_record",
           "order_standing"]

# KEYS: the index, the deletions stream
# ARGV: key prefix, deleted_at, by, then (recording id, reason, recorded_on) per recording
# Answers one letter per recording: E erased, H held, M missing.
# (The keys of a recording's hash, its indexes and its order's hash are named by its id and
# its own fields, so they are built here: one standalone Redis, as everywhere in the hotline.)
_ERASE = """
local p = ARGV[1]
local answer = {}
for i = 4, #ARGV, 3 do
  local id = ARGV[i]
  local key = p .. 'rec:' .. id
  local f = redis.call('HMGET', key, 'legal_hold', 'agent', 'call_id', 'work_order_id')
  local order = f[4]
  if not f[2] and not f[3] then
    answer[#answer + 1] = 'M'
  elseif f[1] == '1' or (order and order ~= '' and
                         redis.call('HGET', p .. 'wo:' .. order, 'legal_hold') == '1') then
    answer[#answer + 1] = 'H'
  else
    redis.call('DEL', key)
    redis.call('ZREM', KEYS[1], id)
    redis.call('ZREM', p .. 'rec:by-agent:' .. (f[2] or ''), id)
    redis.call('SREM', p .. 'rec:by-call:' .. (f[3] or ''), id)
    if order and order ~= '' then redis.call('SREM', p .. 'rec:by-order:' .. order, id) end
    redis.call('XADD', KEYS[2], '*', 'recording_id', id, 'reason', ARGV[i + 1],
               'recorded_on', ARGV[i + 2], 'deleted_at', ARGV[2], 'by', ARGV[3])
    answer[#answer + 1] = 'E'
  end
end
return table.concat(answer)
"""

# One batch of the retention pass in one reply (a JSON text): the facts of the recordings that
# ended up to ARGV[2] (epoch seconds), from rank ARGV[3] among them, and the standing of their
# work orders. redis-py parses a reply element by element in Python, so 100,000 recordings as
# HMGET replies would take longer than the pass itself.
# KEYS: the index; ARGV: key prefix, latest end, offset, count
_FACTS = """
local p = ARGV[1]
local ids = redis.call('ZRANGE', KEYS[1], '-inf', ARGV[2], 'BYSCORE', 'LIMIT', ARGV[3], ARGV[4])
local rows, orders = {}, {}
for _, id in ipairs(ids) do
  local f = redis.call('HMGET', p .. 'rec:' .. id, 'ended_at', 'category', 'queue',
                       'work_order_id', 'legal_hold')
  if f[1] then
    rows[#rows + 1] = {id, f[1], f[2] or '', f[3] or '', f[4] or '', f[5] or ''}
    local o = f[4]
    if o and o ~= '' and orders[o] == nil then
      local w = redis.call('HMGET', p .. 'wo:' .. o, 'status', 'updated_at', 'retain_until',
                           'legal_hold')
      if w[1] then orders[o] = {w[1], w[2] or '', w[3] or '', w[4] or ''} else orders[o] = 0 end
    end
  end
end
return cjson.encode({#ids, rows, orders})
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
            "recorded_on": iso(recorded_at)[:10], "deleted_at": iso(now), "by": by}


def order_standing(fields: Sequence[Any]) -> OrderStanding | None:
    """A work order's standing from its hash fields ``status, updated_at, retain_until,
    legal_hold`` (None: no such order)."""
    status, updated, retain, hold = (_text(v) if v is not None else None for v in fields)
    if not status:
        return None
    return OrderStanding(
        status=status,
        closed_at=_epoch(updated) if status == "closed" and updated else None,
        retain_until=_epoch(retain) if retain else None,
        legal_hold=hold == "1",
    )


class RedisCatalog:
    """:class:`Catalog` in Redis (``redis.asyncio``)."""

    def __init__(self, redis: Redis, prefix: str = "hotline:") -> None:
        # redis-py's annotations do not follow decode_responses: values are read as Any.
        self._redis: Any = redis
        self.prefix = prefix
        self._erase = redis.register_script(_ERASE)
        self._facts = redis.register_script(_FACTS)
        self._set_key = redis.register_script(_SET_KEY)

    def key(self, recording_id: str) -> str:
        return f"{self.prefix}rec:{recording_id}"

    @property
    def index(self) -> str:
        return f"{self.prefix}rec:index"

    @property
    def deletions_key(self) -> str:
        return f"{self.prefix}rec:deletions"

    def _by(self, kind: str, value: str) -> str:
        return f"{self.prefix}rec:by-{kind}:{value}"

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
        return RecordingMeta.from_hash(recording_id, {_text(k): _text(v) for k, v in raw.items()})

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
            scored += [(float(score), _text(rid)) for rid, score in got]
        for kind, value in (("call", call_id), ("order", order_id)):
            if value is not None:
                ids = {_text(m) for m in await self._redis.smembers(self._by(kind, value))}
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
        args: list[str] = [self.prefix, iso(now), by]
        for item in due:
            record = deletion_record(item.recording_id, item.recorded_at, item.reason, by, now)
            args += [item.recording_id, item.reason, record["recorded_on"]]
        answer = _text(await self._erase(keys=[self.index, self.deletions_key], args=args))
        return [Erased(letter) for letter in answer]

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None:
        await self._redis.xadd(self.deletions_key,
                               deletion_record(recording_id, started_at, reason, by, now))

    async def deletions(self, count: int = 100) -> list[dict[str, str]]:
        entries = await self._redis.xrevrange(self.deletions_key, count=count)
        return [{_text(k): _text(v) for k, v in fields.items()} for _, fields in entries]

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
                                    args=[self.prefix, repr(ended_by), offset, batch])
            count, rows, orders = json.loads(raw)
            if not count:
                return
            offset += count
            facts = [RetentionFacts(rid, float(ended), category, queue, order or None,
                                    hold == "1")
                     for rid, ended, category, queue, order, hold in (rows or [])]
            standings = {}
            for order_id, fields in (orders or {}).items():
                standing = order_standing(fields) if fields else None
                if standing is not None:
                    standings[order_id] = standing
            yield RetentionBatch(facts, standings)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _epoch(text: str) -> float:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
