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

Crypto-erase is one step (``ERASE``, a Lua script): the hash with the wrapped key and every
index entry go, and the deletion record is written, unless the recording or its work order
(``<p>wo:<order id>`` field ``legal_hold == "1"``) is on legal hold. The sealed object is
deleted from storage afterwards; without its key it was unreadable already.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol

from redis.asyncio import Redis

from recordings.metadata import RecordingMeta, iso
from recordings.retention import OrderStanding, RetentionFacts

__all__ = ["Catalog", "Erased", "RedisCatalog", "deletion_record", "order_standing"]

# KEYS: hash, index, by-agent, by-call, by-order (or ""), deletions, order hash (or "")
# ARGV: recording id, then the deletion record's field/value pairs
_ERASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'missing' end
if redis.call('HGET', KEYS[1], 'legal_hold') == '1' then return 'held' end
if KEYS[7] ~= '' and redis.call('HGET', KEYS[7], 'legal_hold') == '1' then return 'held' end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('SREM', KEYS[4], ARGV[1])
if KEYS[5] ~= '' then redis.call('SREM', KEYS[5], ARGV[1]) end
local record = {}
for i = 2, #ARGV do record[#record + 1] = ARGV[i] end
redis.call('XADD', KEYS[6], '*', unpack(record))
return 'erased'
"""

# Replace the wrapped key only if it is still the one that was re-wrapped.
_SET_KEY = """
if redis.call('HGET', KEYS[1], 'master') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'wrapped_key', ARGV[2], 'master', ARGV[3])
return 1
"""

_ORDER_FIELDS = ("status", "updated_at", "retain_until", "legal_hold")
_FACT_FIELDS = ("ended_at", "category", "queue", "work_order_id", "legal_hold")


class Erased(StrEnum):
    ERASED = "erased"
    HELD = "held"  # a legal hold blocks it
    MISSING = "missing"


class Catalog(Protocol):
    """What the pipeline, the library and retention need of the metadata
    (:class:`RedisCatalog`; ``recordings.testing.MemoryCatalog`` for unit tests)."""

    async def add(self, meta: RecordingMeta) -> None: ...

    async def get(self, recording_id: str) -> RecordingMeta | None: ...

    async def newest(self, *, agents: Sequence[str] | None = None, call_id: str | None = None,
                     limit: int = 50) -> list[RecordingMeta]: ...

    async def set_hold(self, recording_id: str, held: bool, reason: str) -> bool: ...

    async def set_key(self, meta: RecordingMeta, wrapped: bytes, master: str) -> bool: ...

    async def erase(self, meta: RecordingMeta, reason: str, by: str, now: float) -> Erased: ...

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None: ...

    def facts(self, batch: int = 1000) -> AsyncIterator[list[RetentionFacts]]: ...

    async def order_standings(self, order_ids: Iterable[str]) -> dict[str, OrderStanding]: ...


def deletion_record(recording_id: str, started_at: float, reason: str, by: str,
                    now: float) -> dict[str, str]:
    """A deletion record: what was deleted, when, why; no personal data."""
    return {"recording_id": recording_id, "reason": reason,
            "recorded_on": iso(started_at)[:10], "deleted_at": iso(now), "by": by}


def order_standing(fields: Sequence[Any]) -> OrderStanding | None:
    """A work order's standing from its hash fields ``status, updated_at, retain_until,
    legal_hold`` (None: no such order)."""
    status, updated, retain, hold = (_text(v) if v is not None else None for v in fields)
    if status is None:
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
                     limit: int = 50) -> list[RecordingMeta]:
        """The newest ``limit`` recordings: all, of ``agents``, and/or of ``call_id``."""
        scored: list[tuple[float, str]] = []
        sources = [self.index] if agents is None else [self._by("agent", a) for a in agents]
        for source in sources:
            got = await self._redis.zrevrange(source, 0, -1 if call_id else limit - 1,
                                              withscores=True)
            scored += [(float(score), _text(rid)) for rid, score in got]
        if call_id is not None:
            ids = {_text(m) for m in await self._redis.smembers(self._by("call", call_id))}
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

    async def erase(self, meta: RecordingMeta, reason: str, by: str, now: float) -> Erased:
        rid, order = meta.recording_id, meta.work_order_id
        record = deletion_record(rid, meta.started_at, reason, by, now)
        answer = await self._erase(
            keys=[self.key(rid), self.index, self._by("agent", meta.agent),
                  self._by("call", meta.call_id), self._by("order", order) if order else "",
                  self.deletions_key, f"{self.prefix}wo:{order}" if order else ""],
            args=[rid, *[part for pair in record.items() for part in pair]],
        )
        return Erased(_text(answer))

    async def record_deletion(self, recording_id: str, started_at: float, reason: str,
                              by: str, now: float) -> None:
        await self._redis.xadd(self.deletions_key,
                               deletion_record(recording_id, started_at, reason, by, now))

    async def deletions(self, count: int = 100) -> list[dict[str, str]]:
        entries = await self._redis.xrevrange(self.deletions_key, count=count)
        return [{_text(k): _text(v) for k, v in fields.items()} for _, fields in entries]

    async def facts(self, batch: int = 1000) -> AsyncIterator[list[RetentionFacts]]:
        """Every recording's retention facts, oldest call first, ``batch`` at a time."""
        start = 0
        while True:
            ids = [_text(r) for r in await self._redis.zrange(self.index, start,
                                                              start + batch - 1)]
            if not ids:
                return
            start += len(ids)
            async with self._redis.pipeline(transaction=False) as pipe:
                for rid in ids:
                    pipe.hmget(self.key(rid), _FACT_FIELDS)
                rows = await pipe.execute()
            found = []
            for rid, (ended, category, queue, order, hold) in zip(ids, rows, strict=True):
                if ended is None:
                    continue  # erased meanwhile
                found.append(RetentionFacts(
                    rid, float(ended), _text(category or b""), _text(queue or b""),
                    _text(order) if order else None, hold is not None and _text(hold) == "1",
                ))
            yield found

    async def order_standings(self, order_ids: Iterable[str]) -> dict[str, OrderStanding]:
        ids = sorted(set(order_ids))
        async with self._redis.pipeline(transaction=False) as pipe:
            for order_id in ids:
                pipe.hmget(f"{self.prefix}wo:{order_id}", _ORDER_FIELDS)
            rows = await pipe.execute()
        standings = {}
        for order_id, row in zip(ids, rows, strict=True):
            standing = order_standing(row)
            if standing is not None:
                standings[order_id] = standing
        return standings


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _epoch(text: str) -> float:
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()
