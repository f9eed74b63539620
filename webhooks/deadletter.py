"""Deliveries given up, kept in Redis with the reason, and their re-drive.

Keys (prefix ``hotline:``):

==================================  ==========================================================
``<p>webhooks:dead:<name>``         list of dead letters, oldest first: JSON ``{"webhook",
                                    "id", "event", "reason", "attempts", "failed_at"}``
                                    (``event``: the stream entry's fields as they were)
``<p>webhooks:redrive:<name>``      list of dead letters sent back for delivery: the
                                    webhook's deliverer takes them before new events
==================================  ==========================================================

On a Redis Cluster both names end in the hash tag ``{<name>}`` (``webhooks:dead:{crm}``), so
the two lists of one webhook share a slot and the re-drive's LMOVE stays one atomic step; one
Redis keeps the untagged names it always had.

Re-drive (``ivr webhooks redrive <name>``) moves letters from the dead list to the re-drive
list, one atomic LMOVE each. The deliverer delivers the head of the re-drive list (retries
and all) and only then removes it (LREM of that very letter), so a restart in between
delivers it again; a letter that fails again goes back to the dead list with its new reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from redis.asyncio import Redis

from events.consumer import Entry


@dataclass(frozen=True)
class DeadLetter:
    """One delivery given up: which event, why, after how many attempts, when."""

    webhook: str
    id: str
    event: Mapping[str, str]
    reason: str
    attempts: int
    failed_at: str  # ISO-8601 UTC

    @classmethod
    def of(cls, webhook: str, entry: Entry, reason: str, attempts: int, now: float) -> DeadLetter:
        at = datetime.fromtimestamp(now, UTC).isoformat(timespec="seconds")
        return cls(webhook, entry.id, dict(entry.fields), reason, attempts,
                   at.replace("+00:00", "Z"))

    def entry(self) -> Entry:
        return Entry(self.id, dict(self.event))

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> DeadLetter:
        data: dict[str, Any] = json.loads(text)
        return cls(
            webhook=str(data["webhook"]), id=str(data["id"]),
            event={str(k): str(v) for k, v in data["event"].items()},
            reason=str(data["reason"]), attempts=int(data["attempts"]),
            failed_at=str(data["failed_at"]),
        )


class DeadLetters:
    """The dead-letter and re-drive lists of every webhook (``redis.asyncio``)."""

    def __init__(self, redis: Redis, prefix: str = "hotline:", *, cluster: bool = False) -> None:
        self.redis = redis
        self.prefix = prefix
        self.cluster = cluster

    def _name(self, webhook: str) -> str:
        return f"{{{webhook}}}" if self.cluster else webhook

    def dead_key(self, webhook: str) -> str:
        return f"{self.prefix}webhooks:dead:{self._name(webhook)}"

    def redrive_key(self, webhook: str) -> str:
        return f"{self.prefix}webhooks:redrive:{self._name(webhook)}"

    async def add(self, letter: DeadLetter) -> None:
        await self.redis.rpush(self.dead_key(letter.webhook), letter.to_json())

    async def read(self, webhook: str, count: int = 100) -> list[DeadLetter]:
        """The oldest ``count`` dead letters of ``webhook``."""
        rows = await self.redis.lrange(self.dead_key(webhook), 0, max(1, count) - 1)
        return [DeadLetter.from_json(row) for row in rows]

    async def redrive(self, webhook: str, count: int | None = None) -> int:
        """Send up to ``count`` (None: every) dead letters back for delivery, oldest first;
        how many were moved."""
        moved = 0
        while count is None or moved < count:
            if await self.redis.lmove(
                self.dead_key(webhook), self.redrive_key(webhook), "LEFT", "RIGHT"
            ) is None:
                break
            moved += 1
        return moved

    async def next_redriven(self, webhook: str) -> tuple[str, DeadLetter] | None:
        """The oldest letter waiting for re-delivery, raw and parsed; None when there is none."""
        raw = await self.redis.lindex(self.redrive_key(webhook), 0)
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        return text, DeadLetter.from_json(text)

    async def redriven(self, webhook: str, raw: str) -> None:
        """That letter is dealt with (delivered, or dead again): off the re-drive list."""
        await self.redis.lrem(self.redrive_key(webhook), 1, raw)
