"""Reading the audit log: ``verify`` (the chain, the index, the mirror files) and ``entries``
(the list with filters). Both walk the stream in pages; neither writes anything.

``verify`` holds each audit id's stream id and hash in memory (about 150 bytes an entry).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from redis.asyncio import Redis

from audit.chain import ChainWalk, Fields, Finding, compare_copy, entry_hash, parse_time
from audit.log import decode_rows, stored_entry, stream_key
from audit.mirror import MIRROR, SPOOL, read_lines
from hotline.text import as_text

PAGE = 1000


async def stream_entries(
    redis: Redis, prefix: str, *, newest_first: bool = False, page: int = PAGE
) -> AsyncIterator[tuple[str, Fields]]:
    """Every entry of ``<prefix>audit`` as ``(stream id, fields)``, in stream order."""
    key = stream_key(prefix)
    low, high = "-", "+"
    while True:
        if newest_first:
            rows = await redis.xrevrange(key, max=high, min="-", count=page)
        else:
            rows = await redis.xrange(key, min=low, max="+", count=page)
        decoded = decode_rows(rows)
        for stream_id, fields in decoded:
            yield stream_id, fields
            low = high = f"({stream_id}"
        if len(decoded) < page:
            return


@dataclass
class Verification:
    """What ``verify`` found: ``findings`` fail it; ``waiting`` are spooled entries not yet
    chained (not a fault: their instance chains them when Redis is back)."""

    entries: int = 0
    findings: list[Finding] = field(default_factory=list)
    waiting: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.findings


async def verify(redis: Redis, prefix: str, mirrors: Iterable[Path] = ()) -> Verification:
    """Recompute every hash and link from the start; check ``audit:head`` and ``audit:ids``
    against the stream, and each mirror directory's files against the stream."""
    walk = ChainWalk()
    async for stream_id, fields in stream_entries(redis, prefix):
        walk.feed(stream_id, fields)
    head = await redis.get(f"{prefix}audit:head")
    result = Verification(walk.count, walk.finish(as_text(head) if head is not None else None))
    async for raw_id, raw_stream_id in redis.hscan_iter(f"{prefix}audit:ids"):
        audit_id, stream_id = as_text(raw_id), as_text(raw_stream_id)
        if walk.seen.get(audit_id, ("",))[0] != stream_id:
            result.findings.append(Finding(
                "audit:ids",
                f"audit id {audit_id} was chained as entry {stream_id}, which is not in the "
                "stream any more: the entry was deleted",
            ))
    for directory in mirrors:
        await _check_mirror(redis, prefix, Path(directory), walk.seen, result)
    return result


async def _check_mirror(
    redis: Redis,
    prefix: str,
    directory: Path,
    seen: Mapping[str, tuple[str, str]],
    result: Verification,
) -> None:
    spooled = sorted((directory / SPOOL).glob("*.jsonl"))
    for path, chained in [(directory / MIRROR, True), *((p, False) for p in spooled)]:
        if not path.exists():
            continue
        for number, line in read_lines(path):
            where = f"{path}:{number}"
            if line is None:
                result.findings.append(Finding(where, "not an audit entry (cut or edited)"))
                continue
            copy = {k: v for k, v in line.items() if k not in ("stream_id", "pending")}
            audit_id = copy.get("id", "")
            stream_id, stream_hash = seen.get(audit_id, ("", ""))
            if not stream_id and not chained:
                result.waiting.append(Finding(where, f"entry {audit_id} waits to be chained"))
                continue
            if stream_id and chained and line.get("stream_id") != stream_id:
                result.findings.append(Finding(
                    where, f"entry {audit_id} says stream id {line.get('stream_id')}, "
                    f"the stream has it at {stream_id}",
                ))
            if stream_id and chained and copy.get("hash") == stream_hash == entry_hash(copy):
                continue
            stored = await stored_entry(redis, prefix, stream_id) if stream_id else None
            finding = compare_copy(where, copy, stored, chained=chained)
            if finding is not None:
                result.findings.append(finding)


@dataclass(frozen=True)
class Filters:
    """``ivr audit list``'s filters; ``None`` lets everything through. ``obj`` ending in ``*``
    matches as a prefix (``workorder:*``). ``since``/``until`` (epoch) bound the entry's
    ``time``, ``since`` included, ``until`` excluded. ``limit``: the newest that many."""

    user: str | None = None
    action: str | None = None
    obj: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int | None = None

    def matches(self, fields: Mapping[str, str]) -> bool:
        if self.user is not None and fields.get("user") != self.user:
            return False
        if self.action is not None and fields.get("action") != self.action:
            return False
        if self.obj is not None:
            value = fields.get("object", "")
            if self.obj.endswith("*"):
                if not value.startswith(self.obj[:-1]):
                    return False
            elif value != self.obj:
                return False
        if self.since is not None or self.until is not None:
            try:
                at = parse_time(fields.get("time", ""))
            except ValueError:
                return False
            if self.since is not None and at < self.since:
                return False
            if self.until is not None and at >= self.until:
                return False
        return True


async def entries(redis: Redis, prefix: str, filters: Filters) -> list[tuple[str, Fields]]:
    """The entries that pass ``filters``, oldest first (the newest ``limit`` of them)."""
    found: list[tuple[str, Fields]] = []
    async for stream_id, fields in stream_entries(redis, prefix, newest_first=True):
        if filters.limit is not None and len(found) >= filters.limit:
            break
        if filters.matches(fields):
            found.append((stream_id, fields))
    found.reverse()
    return found
