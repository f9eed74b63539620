"""Server-Sent Events framing, pure: frames out, the resume point in.

A frame is ``id``, ``event`` and ``data`` lines and a blank line (the WHATWG EventSource
format). Every frame's id is an entry id of the shared events stream (``hotline:events``), so
the id a browser remembers means the same on every instance: after a restart, or on another
instance behind the same Redis, ``Last-Event-ID`` says which events it has seen.

Browsers send the id back in the ``Last-Event-ID`` header when *they* reconnect; htmx's SSE
extension opens a new EventSource when the old one gave up (connection refused during a
restart), which loses the header, so ``screens.js`` passes it as the ``last_event_id`` query
parameter instead. Either is accepted, the header first.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Final

__all__ = ["KEEPALIVE", "RETRY_MS", "comment", "frame", "last_event_id", "mark", "retry",
           "stream_id_key"]

RETRY_MS: Final = 1000
"""How soon a browser reconnects after the stream ends (sent once, at the start)."""

KEEPALIVE: Final = b": keepalive\n\n"
"""A comment frame: keeps proxies and the browser from timing the connection out."""

_STREAM_ID = re.compile(r"(\d{1,20})-(\d{1,20})\Z")


def frame(event: str, data: str, event_id: str | None = None) -> bytes:
    """One event; ``data`` may span lines (each becomes a ``data:`` line)."""
    if not event or any(c in event for c in "\r\n:"):
        raise ValueError(f"event name {event!r}: one word, no line breaks or colons")
    lines = []
    if event_id is not None:
        if not _STREAM_ID.match(event_id):
            raise ValueError(f"event id {event_id!r} is not a stream entry id")
        lines.append(f"id: {event_id}")
    lines.append(f"event: {event}")
    for line in data.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        lines.append(f"data: {line}")
    return ("\n".join(lines) + "\n\n").encode()


def mark(event_id: str) -> bytes:
    """An ``id`` alone: the browser's Last-Event-ID moves there and nothing is dispatched
    (a frame without data). Says that the screen is current up to that entry although no
    fragment changed (the entry's activity line came, its state was on screen already)."""
    if not _STREAM_ID.match(event_id):
        raise ValueError(f"event id {event_id!r} is not a stream entry id")
    return f"id: {event_id}\n\n".encode()


def comment(text: str) -> bytes:
    """A comment frame (ignored by browsers); line breaks become spaces."""
    return f": {' '.join(text.splitlines())}\n\n".encode()


def retry(ms: int = RETRY_MS) -> bytes:
    return f"retry: {int(ms)}\n\n".encode()


def last_event_id(
    headers: Mapping[str, str], query: Mapping[str, Sequence[str]]
) -> str | None:
    """Where the browser left off: the ``Last-Event-ID`` header, else the ``last_event_id``
    query parameter; ``None`` for a first connection or anything that is not a stream id."""
    presented = headers.get("last-event-id") or next(iter(query.get("last_event_id", ())), "")
    presented = presented.strip()
    return presented if _STREAM_ID.match(presented) else None


def stream_id_key(entry_id: str) -> tuple[int, int]:
    """A stream id as a sortable pair (``"1700000000000-3"`` -> ``(1700000000000, 3)``)."""
    match = _STREAM_ID.match(entry_id)
    if match is None:
        raise ValueError(f"{entry_id!r} is not a stream entry id")
    return int(match.group(1)), int(match.group(2))
