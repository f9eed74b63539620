"""One-off: seal the personal fields of work orders written before encryption.

Orders written before ``privacy`` still read (a value without the ``enc1:`` prefix is read as
it is), but their plaintext stays in Redis until this runs (``ivr keys migrate-orders``). Each
order is rewritten under WATCH in one MULTI/EXEC (its hash fields, its history entries, and
its place in the caller-number index), so it is safe to run while the service writes, and
again after an interruption: what is sealed already is left alone.
"""

from __future__ import annotations

import json
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.typing import EncodableT

from workorders import personal
from workorders.personal import FieldCipher
from workorders.store.hashes import text as _text


async def seal_plaintext_orders(
    redis: Redis, cipher: FieldCipher, *, prefix: str = "hotline:"
) -> tuple[int, int]:
    """Seal every order still holding plaintext: (orders sealed now, orders already sealed)."""
    sealed = already = 0
    async for member, _ in redis.zscan_iter(prefix + "wo:index"):
        if await _seal_order(redis, cipher, prefix, _text(member)):
            sealed += 1
        else:
            already += 1
    return sealed, already


async def _seal_order(redis: Redis, cipher: FieldCipher, prefix: str, order_id: str) -> bool:
    hash_key, history_key = f"{prefix}wo:{order_id}", f"{prefix}wo:{order_id}:history"
    async with redis.pipeline(transaction=True) as pipe:
        while True:
            try:
                await pipe.watch(hash_key, history_key)
                flat = {_text(k): _text(v) for k, v in (await pipe.hgetall(hash_key)).items()}
                owner = flat.get("call_id", "")
                fields = {
                    k: v for k, v in flat.items()
                    if k in personal.HASH_FIELDS and not cipher.is_sealed(v)
                }
                entries: dict[int, str] = {}
                for index, raw in enumerate(await pipe.lrange(history_key, 0, -1)):
                    entry: dict[str, Any] = json.loads(_text(raw))
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
                if blind:
                    pipe.sadd(f"{prefix}wo:by-caller:{blind}", order_id)
                await pipe.execute()
                return True
            except redis_errors.WatchError:
                continue

