"""A consumer-group reader of ``<prefix>events``, for systems that must see every event.

At-least-once: an entry is acknowledged (XACK) only after the handler succeeded. An entry
read but not acknowledged stays in the group's pending entries list (PEL) under this
consumer's name, so

- a consumer that restarts under the same name reads its own pending entries first (XREADGROUP
  from id ``0``), oldest first, before any new entry (``>``);
- a consumer that died for good leaves its entries idle: every ``claim_every_s`` the others
  take over (XAUTOCLAIM) those idle longer than ``claim_idle_s``;
- a handler that takes long (a webhook retrying for minutes) keeps its entry with
  :meth:`ConsumerGroup.keep`, which resets the idle time, so it is not claimed from a live
  consumer.

Each entry can be handled more than once (a crash between the handler and the XACK, a claim
racing a slow consumer): handlers must be idempotent on the entry id.

Where the next read starts (:class:`ReadPosition`, pure): in state ``pending`` from the last
pending entry handled (``0`` at start), until a read of the PEL comes back empty; then in
state ``new`` (``>``, blocking up to ``block_ms``). A failed handler puts the reader back to
``pending`` from ``0``, so the entry comes again, before anything newer.

A new group starts at ``start``: ``$`` (default) sees only entries added after its creation,
``0`` the whole stream (up to a million entries, see ``events.DEFAULT_MAXLEN``). Creation is
idempotent (XGROUP CREATE ... MKSTREAM; BUSYGROUP means it exists), and a group lost with
Redis's data is created again on the next read. An entry trimmed from the stream while it
was pending (MAXLEN) has no fields left: it is acknowledged and skipped, with a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from redis import exceptions as redis_errors
from redis.asyncio import Redis

from events import stream_key
from hotline.text import as_text

log = logging.getLogger(__name__)

DEFAULT_CLAIM_IDLE_S = 600.0
DEFAULT_CLAIM_EVERY_S = 30.0


@dataclass(frozen=True)
class Entry:
    """One stream entry: its id (``<ms>-<seq>``) and its fields (``events`` schema)."""

    id: str
    fields: Mapping[str, str]

    @property
    def kind(self) -> str:
        return self.fields.get("kind", "")

    @property
    def agent(self) -> str:
        return self.fields.get("agent", "")

    @property
    def queue(self) -> str:
        return self.fields.get("queue", "")


def decode_entries(rows: Sequence[Any] | None) -> list[Entry]:
    """``[(id, {field: value})...]`` as redis-py returns it (bytes or str) as entries; an entry
    whose fields are gone (trimmed while pending) has empty fields."""
    return [
        Entry(as_text(entry_id), {as_text(k): as_text(v) for k, v in (values or {}).items()})
        for entry_id, values in rows or ()
    ]


def stream_rows(reply: Any, stream: str) -> Sequence[Any]:
    """The rows of ``stream`` in an XREADGROUP reply (RESP2 list or RESP3 mapping)."""
    if isinstance(reply, Mapping):
        for name, rows in reply.items():
            if as_text(name) == stream:
                return rows[0] if rows and isinstance(rows[0], list) else rows
        return []
    for name, rows in reply or ():
        if as_text(name) == stream:
            return list(rows)
    return []


@dataclass
class ReadPosition:
    """Where the next XREADGROUP starts: see the module docstring.

    ``pending``: True while the consumer's own pending entries are read (id ``after``), False
    once they are all handled and new entries are read (``>``).
    """

    pending: bool = True
    after: str = "0"

    def next_id(self) -> str:
        return self.after if self.pending else ">"

    def read(self, entries: Sequence[Entry]) -> None:
        """A read returned ``entries``: the PEL is done when it returns none."""
        if not self.pending:
            return
        if entries:
            self.after = entries[-1].id
        else:
            self.pending, self.after = False, "0"

    def failed(self) -> None:
        """A handler failed: its entry is still pending; read the PEL again from the start."""
        self.pending, self.after = True, "0"


@dataclass
class ConsumerGroup:
    """One consumer (``consumer``, unique per process: the service's ``instance``) of one group
    (``group``) on ``<prefix>events``; ``clock`` paces the claims (seconds)."""

    redis: Redis
    group: str
    consumer: str
    clock: Callable[[], float]
    prefix: str = "hotline:"
    start: str = "$"
    count: int = 100
    block_ms: int = 1000  # below the client's socket timeout (2 s in the service)
    claim_idle_s: float = DEFAULT_CLAIM_IDLE_S
    claim_every_s: float = DEFAULT_CLAIM_EVERY_S
    position: ReadPosition = field(default_factory=ReadPosition)
    _claim_at: float = field(default=float("-inf"), init=False)
    _claim_cursor: str = field(default="0-0", init=False)

    @property
    def stream(self) -> str:
        return stream_key(self.prefix)

    async def ensure(self) -> bool:
        """Create the group (and the stream) unless it exists; whether it was created now."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=self.start, mkstream=True)
        except redis_errors.ResponseError as exc:
            if str(exc).startswith("BUSYGROUP"):
                return False
            raise
        log.info("consumer group %s created on %s (from %s)", self.group, self.stream,
                 self.start)
        return True

    async def next_batch(self) -> list[Entry]:
        """The next entries to handle: claimed from dead consumers when it is time, else this
        consumer's pending ones, else new ones (waiting up to ``block_ms``). Empty: none yet."""
        try:
            if self.clock() >= self._claim_at:
                self._claim_at = self.clock() + self.claim_every_s
                claimed = await self._claim()
                if claimed:
                    return claimed
            return await self._read()
        except redis_errors.ResponseError as exc:
            if not str(exc).startswith("NOGROUP"):
                raise
            log.warning("consumer group %s is gone (Redis lost its data?): created again",
                        self.group)
            self.position.failed()
            await self.ensure()
            return []

    async def ack(self, *ids: str) -> None:
        """The handler succeeded for these entries: they leave the PEL."""
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)

    async def keep(self, *ids: str) -> None:
        """Still working on these entries: their idle time starts again, so no other consumer
        claims them (XCLAIM to self, JUSTID: the delivery count stays)."""
        if ids:
            await self.redis.xclaim(
                self.stream, self.group, self.consumer, 0, list(ids), justid=True
            )

    def failed(self) -> None:
        """The handler failed: what is not acknowledged is read again, before newer entries."""
        self.position.failed()

    async def _read(self) -> list[Entry]:
        while True:
            pending = self.position.pending
            reply = await self.redis.xreadgroup(
                self.group, self.consumer, {self.stream: self.position.next_id()},
                count=self.count, block=None if pending else self.block_ms,
            )
            entries = decode_entries(stream_rows(reply, self.stream))
            self.position.read(entries)
            if entries or not pending:
                return await self._drop_trimmed(entries)
            # the PEL is done: new entries, in the same call

    async def _claim(self) -> list[Entry]:
        reply = await self.redis.xautoclaim(
            self.stream, self.group, self.consumer, int(self.claim_idle_s * 1000),
            start_id=self._claim_cursor, count=self.count,
        )
        self._claim_cursor = as_text(reply[0])
        entries = decode_entries(reply[1])
        if entries:
            log.warning("consumer group %s: %s took over %d entries idle for more than %.0f s "
                        "(a consumer died?)", self.group, self.consumer, len(entries),
                        self.claim_idle_s)
        return await self._drop_trimmed(entries)

    async def _drop_trimmed(self, entries: list[Entry]) -> list[Entry]:
        gone = [entry.id for entry in entries if not entry.fields]
        if gone:
            log.warning("consumer group %s: %d pending entries were trimmed from %s before "
                        "they were handled: %s", self.group, len(gone), self.stream,
                        ", ".join(gone[:10]))
            await self.ack(*gone)
        return [entry for entry in entries if entry.fields]


Handler = Callable[[Entry], Awaitable[object]]


async def consume(
    group: ConsumerGroup,
    handler: Handler,
    *,
    stop: asyncio.Event | None = None,
    retry_after_s: float = 1.0,
    on_error: Callable[[BaseException], None] | None = None,
) -> None:
    """Hand every entry of ``group`` to ``handler``, in order, until ``stop`` is set;
    acknowledge each after its handler returned. A failing handler or Redis away: reported to
    ``on_error`` (default: logged), then the same entries again after ``retry_after_s``."""
    stop = stop or asyncio.Event()
    report = on_error or (lambda exc: log.warning("consumer group %s: %r", group.group, exc))
    created = False
    while not stop.is_set():
        try:
            if not created:
                await group.ensure()
                created = True
            for entry in await group.next_batch():
                await handler(entry)
                await group.ack(entry.id)
                if stop.is_set():
                    return
        except Exception as exc:
            group.failed()  # what was not acknowledged comes again, first
            report(exc)
            await _wait(stop, retry_after_s)


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
