"""The personal-data cipher of the testbed's ``ivr serve``, for end-to-end tests that check
what the service sealed (the numbers in the routing events, ``routing.numbers``): the
testbed's master key and the data keys the service created in Redis."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import redis.asyncio as aioredis

from privacy.datakeys import DataKeys
from privacy.fields import FieldCipher
from privacy.keys import KeyRing
from testbed.stack import TESTBED_MASTER_KEY


def field_cipher(redis_url: str, prefix: str = "hotline:") -> FieldCipher:
    """The cipher as the service holds it (its data keys must exist: the service started)."""
    ring = KeyRing.load(environ={"HOTLINE_MASTER_KEY": TESTBED_MASTER_KEY})

    async def load() -> FieldCipher:
        client = aioredis.Redis.from_url(redis_url)
        try:
            return await FieldCipher.load(DataKeys(client, ring, prefix=prefix))
        finally:
            await client.aclose()

    # A thread of its own: the tests' reactor may be running an event loop in this one.
    with ThreadPoolExecutor(max_workers=1) as worker:
        return worker.submit(asyncio.run, load()).result()
