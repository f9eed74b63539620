"""The events stream ``<prefix>events`` (``hotline:events``): one function writes every entry.

A neutral package: work orders, routing and callbacks all emit here, and none of them imports
another for it; consumers (wallboard, reports, escalation) read one stream with one schema.

Kinds use Asterisk ``queue_log`` names: the routing side emits
``ENTERQUEUE``, ``RINGNOANSWER``, ``CONNECT``, ``ABANDON``, ``COMPLETECALLER``,
``COMPLETEAGENT``, ``EXITWITHTIMEOUT``...; work orders emit ``WO`` + the event in capitals
(``workorders.store.WORK_ORDER_KINDS``). Routing's kinds beyond Asterisk's queue_log: ``RINGBUSY``,
``RINGCANCELED``, ``RINGUNAVAILABLE`` (the offer failed with that cause), ``CALLBACKREQUEST``,
``CALLBACKATTEMPT``, ``CALLBACKFAILED``, ``EXITCALLBACKFAILED`` (virtual hold),
``OFFERRELEASED`` (an offer nobody followed up, e.g. its instance died), ``EXITORPHANED`` (a
waiting call whose instance died and whose channel is gone), ``WRAPUPEND``; ``PAUSE`` and
``UNPAUSE`` carry ``source=device`` when the softphone's state caused them; ``COMPLETECALLER``
and ``COMPLETEAGENT`` carry ``source=sweep`` when the sweep ended a conversation whose end was
never reported (routing/live_sweep.py).

Entry schema (every value a string, fields with no value left out):

======== ===================================================================================
kind     the event name above
time     when it happened, ISO-8601 UTC (``2026-11-28T12:00:00.000000Z``); not the entry id,
         which is when Redis received it (later, for a write replayed from the spool)
call_id  Asterisk's unique id of the call, when there is one
queue    queue name
agent    agent id
...      any other field given: strings as they are, numbers, lists and objects as JSON;
         work orders add ``order_id``, ``actor``, ``status``, ``details`` (JSON), and
         ``replayed=1`` when the write was made while Redis was unreachable
======== ===================================================================================
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

DEFAULT_MAXLEN = 1_000_000


def stream_key(prefix: str = "hotline:") -> str:
    return f"{prefix}events"


def outbox_key(tag: str, prefix: str = "hotline:") -> str:
    """The outbox stream of the hash slot ``{tag}`` (``hotline:outbox:{rt}``): on a Redis
    Cluster an atomic step XADDs its events here, in its own slot, and the relay
    (``events.relay``) copies them to :func:`stream_key`."""
    return f"{prefix}outbox:{{{tag}}}"


def events_key_for(tag: str, *, cluster: bool, prefix: str = "hotline:") -> str:
    """Where an atomic step whose keys carry the hash tag ``{tag}`` writes its events: the
    events stream itself on one Redis, the slot's outbox on a Cluster (a script or MULTI
    there may only touch keys of one slot)."""
    return outbox_key(tag, prefix) if cluster else stream_key(prefix)


def event_fields(kind: str, now: float, /, **fields: Any) -> dict[str, str]:
    """The entry for ``kind`` at ``now``, as the flat string map XADD takes."""
    if not kind or not kind.isupper():
        raise ValueError(f"event kind {kind!r}: queue_log style names are upper case")
    at = datetime.fromtimestamp(now, UTC)
    entry = {"kind": kind, "time": at.isoformat(timespec="microseconds")[:-6] + "Z"}
    for name, value in fields.items():
        if value is None:
            continue
        if name in entry:
            raise ValueError(f"event field {name!r} is reserved")
        entry[name] = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return entry


async def emit(
    redis: Any,
    kind: str,
    now: float,
    /,
    *,
    prefix: str = "hotline:",
    maxlen: int = DEFAULT_MAXLEN,
    **fields: Any,
) -> Any:
    """XADD one entry to ``<prefix>events``.

    ``redis`` is a ``redis.asyncio.Redis`` (returns the entry id) or a pipeline inside MULTI
    (queues the command, so the event is written atomically with the change it reports).
    """
    return await redis.xadd(
        stream_key(prefix), event_fields(kind, now, **fields), maxlen=maxlen, approximate=True
    )
