"""The report's one read: the events stream over a time range, through a sync Redis client."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from hotline.text import as_text

READ_MARGIN_S = 3600.0
"""Events are read from this long before the report starts: a call that entered the queue
before ``--since`` is left out, and its ENTERQUEUE is needed to know that."""

#: An entry of XRANGE's reply: its id and its fields, as bytes (or str with decode_responses).
StreamEntry = tuple[bytes | str, Mapping[bytes | str, bytes | str]]


class EventStream(Protocol):
    """The one command the report sends: a sync ``redis.Redis`` (or a fake in tests)."""

    # redis-py types every reply as Any; read_events takes it as a Sequence[StreamEntry].
    def xrange(self, name: str, /, min: str, max: str, count: int) -> Any: ...


def read_events(redis: EventStream, key: str, since: float, until: float,
                batch: int = 10_000) -> list[dict[str, str]]:
    """Stream entries received between ``since - READ_MARGIN_S`` and ``until`` (sync
    redis-py client), decoded, in stream order."""
    low = f"{int((since - READ_MARGIN_S) * 1000)}-0"
    high = f"{int(until * 1000)}-999999"
    out: list[dict[str, str]] = []
    while True:
        rows: Sequence[StreamEntry] = redis.xrange(key, min=low, max=high, count=batch)
        for _entry_id, fields in rows:
            out.append({as_text(k): as_text(v) for k, v in fields.items()})
        if len(rows) < batch:
            return out
        low = "(" + as_text(rows[-1][0])
