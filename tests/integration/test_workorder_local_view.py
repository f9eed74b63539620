"""The work-order store's memory over many calls, against a real redis-server: what the soak
of ``ivr serve`` found growing by some 10 KB a call was the store's local view of orders (the
fallback for calls in progress while Redis is away), kept up to 10,000 whole orders. It keeps
:data:`~workorders.store.core.LOCAL_VIEW_ORDERS` now, the newest, whatever the calls.
"""

from __future__ import annotations

import asyncio
from typing import Any

from ivr.testing import on_asyncio
from privacy.testing import random_field_cipher
from testbed.redis import connect
from workorders.store import WorkOrderStore
from workorders.store.core import LOCAL_VIEW_ORDERS

T0 = 1_796_461_200.0
CIPHER = random_field_cipher()


async def one_call(store: WorkOrderStore, n: int) -> None:
    """What the hotline flow asks of the store on a call: the order, its queue, the answer."""
    call_id = f"call-{n}"
    order = await store.create_for_call(call_id, f"+8210{n:08d}", "Caller", T0 + n,
                                        category="fault", queue="faults")
    await store.update(order.id, T0 + n + 1, "update", "ivr", queue="faults")
    await store.answered(call_id, "agent103", T0 + n + 2)


@on_asyncio
async def test_the_local_view_keeps_the_newest_orders_only(
    redis_server: Any, prefix: str, tmp_path: Any
) -> None:
    """After more calls than the local view's bound, the store holds exactly that many orders
    in memory, the newest calls' among them and the first calls' gone (Redis has them all):
    memory stays flat however many calls the service takes."""
    client = connect(redis_server.url)
    store = WorkOrderStore(client, tmp_path, prefix=prefix, cipher=CIPHER)
    calls = LOCAL_VIEW_ORDERS + 150
    for start in range(0, calls, 50):
        await asyncio.gather(*(one_call(store, n) for n in range(start, min(calls, start + 50))))
    # The view itself is private: its size is what the fix is about.
    assert len(store._known) == LOCAL_VIEW_ORDERS
    assert store._local_by_call(f"call-{calls - 1}") is not None
    assert store._local_by_call("call-0", missing_ok=True) is None
    assert (await store.get_by_call("call-0")) is not None  # Redis keeps every order
    await client.aclose()
