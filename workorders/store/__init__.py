"""Work orders in Redis (``redis.asyncio``), with a local spool so that none is ever lost.

Keys (prefix configurable, default ``hotline:``; docs/contracts.md "Redis keys"). Orders live
in buckets (``workorders.buckets``): every key below but the last two starts with its bucket's
``<p>wo:{wo<b>}:`` (written ``<B>``; b = the order id % buckets; a new order goes to its
caller's bucket), one Redis Cluster hash slot per bucket:

======================================  ===================================================
``<B><id>``                             hash: the order without its history, one field per
                                        value (``caller_number``, ``caller_name``,
                                        ``assign_by``...); strings as they are, numbers and
                                        ``menu_path`` as JSON, absent when empty
``<B><id>:history``                     list of history entries, JSON, oldest first
``<B>by-call:<call_id>``                order id of the call (idempotent creation)
``<B>by-caller:<blind index>``          set of the ids of the orders from one caller number
                                        (``by_caller``; the index: ``privacy.fields``)
``<B>repeat:<blind index>:<cat>``       hash ``id``, ``at``: the caller's last order of the
                                        category and its last contact (repeat contacts)
``<B>seq``                              the bucket's counter: id = seq * buckets + b
``<B>index``                            sorted set id -> created_at (``list_recent``)
``<B>status:<status>`` and others       the secondary indexes of ``workorders.indexes``,
                                        written with the order in the same atomic step
``<B>op:<op_id>``                       order id, with a TTL: that operation is applied
``<B>alias:<local id>``                 real id of an order first created in the spool
``<p>wo:spool-rejected``                list of spooled writes Redis refused on replay
``<p>events``                           stream of events (``events``); on a Cluster each
                                        bucket writes to its outbox ``<p>outbox:{wo<b>}``,
                                        relayed there (``events.relay``)
======================================  ===================================================

Personal data (caller number and name, transcript, notes) is sealed field by field by the
injected cipher (``workorders.personal``) before it reaches Redis, the spool file or the
events stream (which gets none of it), and opened on read: ``to_dict()`` and every output show
plaintext. Values written before encryption (no ``enc1:`` prefix) are read as they are.

``WorkOrderStore`` is one class made of one concern per module, each building on those
before it:

- ``errors``: what the store raises, what "Redis is unreachable" means;
- ``hashes``: an order as the fields of its Redis hash, and back;
- ``scripts``: the Lua create script (atomic creation, repeat contacts);
- ``groupcommit``: creations that meet one in flight go to Redis together in the next;
- ``core``: state, keys, the per-operation timeout, concurrency, the local view;
- ``transactions``: the atomic writes to Redis (create, update, merge, reindex);
- ``spooling``: writes while Redis is unreachable, and their replay;
- ``reads``: one order, a call's, a caller's, lists and filters, reindex;
- ``writes``: create for a call, lifecycle updates, the answer, the back office, merge;
- ``retention``: legal holds and the purge.

Import from ``workorders.store``, which re-exports the public names of them all.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from redis.asyncio import Redis

from workorders import indexes
from workorders.escalation import DueClocks
from workorders.model import DEFAULT_CATEGORIES
from workorders.personal import FieldCipher
from workorders.schema import WorkOrdersConfig
from workorders.store.errors import UNREACHABLE, StoreUnavailable, UnknownWorkOrder
from workorders.store.hashes import to_hash
from workorders.store.retention import OrderRetention
from workorders.store.transactions import WORK_ORDER_KINDS
from workorders.store.writes import OrderWrites

#: The order as hash fields, under its name of before the split (the benchmarks load orders
#: straight in the store's layout with it).
_to_hash = to_hash

__all__ = [
    "UNREACHABLE",
    "WORK_ORDER_KINDS",
    "StoreUnavailable",
    "UnknownWorkOrder",
    "WorkOrderStore",
]


class WorkOrderStore(OrderWrites, OrderRetention):
    """Create, change and read work orders; see the package docstring for keys and the spool.

    ``redis`` is a ``redis.asyncio.Redis``. Every method is a coroutine for the asyncio loop:
    under Twisted's asyncio reactor, call them as
    ``Deferred.fromFuture(asyncio.ensure_future(store.create_for_call(...)))``; redis.asyncio
    needs a running asyncio Task (a bare ``ensureDeferred`` fails with "Timeout should be used
    inside a task").
    """

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
            buckets=config.store.buckets,
        )
