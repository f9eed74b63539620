"""One-off: seal the personal fields of work orders written before encryption.

Orders written before ``privacy`` still read (a value without the ``enc1:`` prefix is read as
it is), but their plaintext stays in Redis until this runs (``ivr keys migrate-orders``). Each
order is rewritten under WATCH in one MULTI/EXEC (its hash fields, its history entries, and
its place in the caller-number index), so it is safe to run while the service writes, and
again after an interruption: what is sealed already is left alone. (An order in another
bucket than its caller's set gets that place after, in a step of its own.)
"""

from __future__ import annotations

import json
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.typing import EncodableT

from hotline.text import as_text
from workorders import personal
from workorders.buckets import Buckets
from workorders.personal import FieldCipher


async def seal_plaintext_orders(
    redis: Redis, cipher: FieldCipher, *, prefix: str = "hotline:",
    buckets: Buckets | None = None,
) -> tuple[int, int]:
    """Seal every order still holding plaintext: (orders sealed now, orders already sealed)."""
    sealed = already = 0
    layout = buckets or Buckets(prefix=prefix)
    for key in layout.keys("wo:index"):
        async for member, _ in redis.zscan_iter(key):
            if await _seal_order(redis, cipher, layout, as_text(member)):
                sealed += 1
            else:
                already += 1
    return sealed, already


async def _seal_order(redis: Redis, cipher: FieldCipher, buckets: Buckets, order_id: str
                      ) -> bool:
    hash_key, history_key = buckets.order_key(order_id), buckets.history_key(order_id)
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(hash_key, history_key)
                flat = {as_text(k): as_text(v) for k, v in (await pipe.hgetall(hash_key)).items()}
                owner = flat.get("call_id", "")
                fields = {
                    k: v for k, v in flat.items()
                    if k in personal.HASH_FIELDS and not cipher.is_sealed(v)
                }
                entries: dict[int, str] = {}
                for index, raw in enumerate(await pipe.lrange(history_key, 0, -1)):
                    entry: dict[str, Any] = json.loads(as_text(raw))
                    details = entry.get("details") or {}
                    if any(
                        isinstance(v, str) and not cipher.is_sealed(v)
                        for k, v in details.items() if k in personal.DETAIL_FIELDS
                    ):
                        sealed = personal.seal_entry(entry, owner, cipher)
                        entries[index] = json.dumps(
                            sealed, ensure_ascii=True, separators=(",", ":")
                        )
                if not flat or (not fields and not entries):
                    await pipe.reset()  # type: ignore[no-untyped-call]  # redis-py: no hints
                    return False
                pipe.multi()  # type: ignore[no-untyped-call]  # redis-py: no hints
                if fields:
                    sealed_fields: dict[EncodableT, EncodableT] = {
                        k: v for k, v in personal.seal_hash(fields, owner, cipher).items()
                    }
                    pipe.hset(hash_key, mapping=sealed_fields)
                for index, text in entries.items():
                    pipe.lset(history_key, index, text)
                number = fields.get("caller_number")
                blind = cipher.blind_index(number) if number is not None else None
                if blind and buckets.of_new(blind, "") == buckets.of_id(order_id):
                    pipe.sadd(buckets.key(buckets.of_id(order_id), "wo:by-caller:" + blind),
                              order_id)
                await pipe.execute()
                if blind and buckets.of_new(blind, "") != buckets.of_id(order_id):
                    own = buckets.key(buckets.of_new(blind, ""), "wo:by-caller:" + blind)
                    await redis.sadd(own, order_id)
                return True
            except redis_errors.WatchError:
                continue



# -- into buckets (issue 11: Redis Cluster) -------------------------------------------------

#: Keys of the layout before buckets, by what follows ``<p>wo:``: moved by the migration.
_MOVED_BY_ID = ("by-call:", "alias:", "op:")


async def move_into_buckets(redis: Redis, buckets: Buckets) -> dict[str, int]:
    """Move the keys of the layout before buckets (``<p>wo:<id>``, ``<p>wo:by-call:<call>``,
    ...) into the tagged names of ``workorders.buckets``; how many of each kind moved.

    Idempotent and safe to run again after an interruption: each key is copied to its new
    name (its bucket from the order id it holds or names; merged into what is there) and
    then deleted, so a second run finds nothing old left. The old index sets are dropped:
    ``WorkOrderStore.reindex`` writes them anew from the orders (``ivr orders reindex`` runs
    both). Each bucket's counter is set above every old id, so no new id is an old one. Run
    it with the service stopped (an order changed by a running old version meanwhile would
    be copied as it was)."""
    moved: dict[str, int] = {}
    old_base = buckets.prefix + "wo:"

    def count(kind: str) -> None:
        moved[kind] = moved.get(kind, 0) + 1

    keys = [as_text(k) async for k in redis.scan_iter(match=old_base + "*", count=1000)]
    for key in sorted(keys):
        rest = key[len(old_base):]
        if rest.startswith("{"):
            continue  # in a bucket already
        kind = await _move_key(redis, buckets, key, rest)
        if kind:
            count(kind)
    seq = await redis.get(old_base + "seq")
    if seq is not None:
        floor = int(as_text(seq)) // buckets.count + 1
        for bucket in buckets.all():
            key = buckets.key(bucket, "wo:seq")
            current = await redis.get(key)
            if current is None or int(as_text(current)) < floor:
                await redis.set(key, floor)
        await redis.delete(old_base + "seq")
        count("seq")
    return moved


async def _move_key(redis: Redis, buckets: Buckets, key: str, rest: str) -> str | None:
    """Move one old key; the kind moved, None when left alone."""
    kind = await redis.type(key)
    kind = as_text(kind)
    if kind == "hash" and ":" not in rest and rest != "unassigned":  # an order's hash
        target = buckets.order_key(rest)
        fields: dict[EncodableT, EncodableT] = {
            k: v for k, v in (await redis.hgetall(key)).items()
        }
        await redis.hset(target, mapping=fields)
        await redis.delete(key)
        return "orders"
    if kind == "list" and rest.endswith(":history") and rest.count(":") == 1:
        order_id = rest.split(":")[0]
        target = buckets.history_key(order_id)
        entries = await redis.lrange(key, 0, -1)
        if entries and not await redis.exists(target):
            await redis.rpush(target, *entries)
        await redis.delete(key)
        return "histories"
    if rest == "index":
        for member, score in await _scored(redis, key):
            order_id = as_text(member)
            await redis.zadd(buckets.order_name(order_id, "wo:index"), {order_id: score})
        await redis.delete(key)
        return "index"
    for head in _MOVED_BY_ID:
        if rest.startswith(head):
            value = await redis.get(key)
            ttl = await redis.ttl(key)
            if value is not None:
                # An op id's value is its order id; a pointer's too; an alias is by its own id.
                owner = rest[len(head):] if head == "alias:" else as_text(value)
                bucket = buckets.of_id(owner if owner != "rejected" else rest)
                target = buckets.key(bucket, "wo:" + rest)
                await redis.set(target, value, ex=ttl if ttl > 0 else None, nx=True)
            await redis.delete(key)
            return head.rstrip(":")
    if rest.startswith("by-caller:"):
        index = rest[len("by-caller:"):]
        members = await redis.smembers(key)
        if members:
            await redis.sadd(buckets.key(buckets.of_new(index, ""), "wo:" + rest), *members)
        await redis.delete(key)
        return "callers"
    if rest.startswith("repeat:"):
        index = rest.split(":")[1]
        last: dict[EncodableT, EncodableT] = {
            k: v for k, v in (await redis.hgetall(key)).items()
        }
        order_id = as_text(last.get(b"id", b""))  # type: ignore[arg-type]  # bytes replies
        bucket = buckets.of_new(index, "")
        # Kept only where the create script can see the order (its caller's bucket).
        if order_id and buckets.of_id(order_id) == bucket:
            target = buckets.key(bucket, "wo:" + rest)
            await redis.hset(target, mapping=last)
            ttl = await redis.ttl(key)
            if ttl > 0:
                await redis.expire(target, ttl)
        await redis.delete(key)
        return "repeat"
    if rest == "escalations":
        for member, score in await _scored(redis, key):
            order_id = str(json.loads(as_text(member)).get("order_id", ""))
            await redis.zadd(buckets.order_name(order_id, "wo:escalations"),
                             {as_text(member): score})
        await redis.delete(key)
        return "escalations"
    if rest == "unassigned":
        for field, value in (await redis.hgetall(key)).items():
            await redis.hset(buckets.order_name(as_text(field), "wo:unassigned"), field, value)
        await redis.delete(key)
        return "unassigned"
    if rest == "deletions":
        for record in await redis.lrange(key, 0, -1):
            order_id = str(json.loads(as_text(record)).get("id", ""))
            await redis.rpush(buckets.order_name(order_id, "wo:deletions"), record)
        await redis.delete(key)
        return "deletions"
    if kind == "zset":
        await redis.delete(key)  # an old index set: reindex writes it anew per bucket
        return "index sets"
    return None  # wo:spool-rejected, wo:purge-day:<date>: outside the buckets as they were


async def _scored(redis: Redis, key: str) -> list[tuple[bytes | str, float]]:
    # With scores: redis-py types the reply for both forms.
    rows: list[tuple[bytes | str, float]] = await redis.zrange(  # type: ignore[assignment]
        key, 0, -1, withscores=True
    )
    return rows
