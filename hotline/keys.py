"""The service's secrets, loaded once before anything serves: the personal-data cipher and
the key that API tokens are checked with.

Both come from one place, the master keys (``HOTLINE_MASTER_KEY`` or ``keys.master_key_file``,
``privacy.keys``) and the data keys they wrap in Redis (``privacy.datakeys``): the sealed
fields of work orders use the ``workorders-pii`` and ``blind-index`` data keys, tokens the
``access-tokens`` one. ``ivr tokens`` reads the same data key (:func:`token_key_source`), so a
token it creates opens with the service, and ``ivr keys rotate`` re-wraps it like the others.
A missing or wrong key stops the start with a clear message: never plaintext instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from hotline.redisclient import async_redis
from ivr.config import HotlineConfig
from privacy.datakeys import DataKeys
from privacy.fields import FieldCipher
from privacy.keys import KeyRing

TOKENS_DATA_KEY = "access-tokens"


@dataclass(frozen=True)
class ServiceKeys:
    """What ``ivr serve`` seals and checks with."""

    cipher: FieldCipher
    token_key: bytes


async def read_service_keys(redis: Redis, cfg: HotlineConfig) -> ServiceKeys:
    """The cipher and the tokens' key from Redis's wrapped data keys (created on first use)."""
    svc = cfg.service
    data_keys = DataKeys(
        redis, KeyRing.load(key_file=svc.keys.master_key_file), prefix=svc.redis.key_prefix,
        local_dir=local_keys_dir(cfg),
    )
    return ServiceKeys(await FieldCipher.load(data_keys), await data_keys.get(TOKENS_DATA_KEY))


def local_keys_dir(cfg: HotlineConfig) -> Path:
    """Where the service keeps its copy of the wrapped data keys, for a start while Redis is
    away (``privacy.datakeys``): ``<spool_dir>/keys``, beside the spooled work orders."""
    return Path(cfg.service.spool_dir) / "keys"


def load_service_keys(cfg: HotlineConfig) -> ServiceKeys:
    """:func:`read_service_keys` on the reactor's asyncio loop, before it runs. Raises
    ``privacy.PrivacyError`` (a key missing or not opening) or ``ConnectionError`` (Redis
    unreachable: the data keys live there)."""
    svc = cfg.service

    async def load() -> ServiceKeys:
        redis = async_redis(svc.redis, socket_timeout=5.0, socket_connect_timeout=5.0)
        try:
            return await read_service_keys(redis, cfg)
        except redis_errors.RedisError as exc:
            raise ConnectionError(
                f"cannot read the data keys from Redis (service.yaml redis): {exc}"
            ) from None
        finally:
            await redis.aclose()

    return asyncio.get_event_loop().run_until_complete(load())


def token_key_source(cfg: HotlineConfig) -> Callable[[Redis, str], Awaitable[bytes]]:
    """The tokens' key as ``ivr tokens`` reads it: the service's ``access-tokens`` data key."""

    async def key(redis: Redis, prefix: str) -> bytes:
        ring = KeyRing.load(key_file=cfg.service.keys.master_key_file)
        return await DataKeys(redis, ring, prefix=prefix).get(TOKENS_DATA_KEY)

    return key
