"""Finding work orders: the filter model (pure) and the index reads that answer it (Redis).

A filter (:class:`OrderFilter`) is parsed once from text (:func:`parse_filter`: the CLI's
options and the API's query parameters are the same names) and answered newest first, a page
at a time, from the index sorted sets of :mod:`workorders.indexes` (all scored by creation
time), never by scanning orders:

- each filter that names index sets is a *constraint*: the union of its sets (``status=
  pending,assigned`` is ``wo:status:pending`` ∪ ``wo:status:assigned``); ``overdue`` is the
  constraint ``wo:open`` (to walk and count) checked by the score of ``wo:overdue-at`` (when
  the order falls overdue, :func:`workorders.indexes.overdue_at`): below now; status and
  urgency together are one constraint of ``wo:status-urgency`` pairs when that names no more
  sets (:meth:`OrderFilter.constraints`); no constraint at all is ``wo:index``;
- the *driver* is the constraint with the fewest members in the date range (``ZCOUNT``,
  O(log n) each); it is walked newest first with ``ZRANGE ... BYSCORE REV LIMIT`` in growing
  batches (a union is merged on the way), and each batch is checked against the other
  constraints with one ``ZMSCORE`` per set, pipelined;
- ``caller`` is the caller's blind-index set (``wo:by-caller:<index>``, a handful of ids):
  when given it is the driver, ordered by the creation times of ``wo:index``.

Chosen over ``ZINTERSTORE``/``ZINTER``, which cost the size of every set on every page (tens
of milliseconds at a million orders) and need a temporary key: the walk costs the page size
divided by the filter's selectivity within the driver. A page examines at most
``max_scan`` candidates: past that it comes back short, with a cursor to go on from, so one
request stays fast even for a combination that matches almost nothing.

Pagination is by cursor: the (creation time, id) of the last order of a page, exclusive, so
orders created meanwhile never shift a page (an offset would). Pages are capped
(:data:`MAX_PAGE`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from redis.asyncio import Redis

from hotline.text import as_text
from workorders.buckets import Buckets, count_at_or_above, read_share
from workorders.indexes import OVERDUE_AT, status_urgency
from workorders.model import Status, Urgency, WorkOrder, overdue

__all__ = [
    "DEFAULT_PAGE",
    "FILTER_NAMES",
    "MAX_PAGE",
    "Cursor",
    "FilterError",
    "OrderFilter",
    "find_ids",
    "parse_filter",
]

DEFAULT_PAGE = 50
MAX_PAGE = 1000
MAX_SCAN = 50_000  # candidates one page may examine before it returns short with a cursor

#: The filter names, as CLI options (``--created-from``) and API query parameters.
FILTER_NAMES = (
    "status", "category", "urgency", "agent", "caller", "created_from", "created_to", "overdue",
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}\Z")
_CURSOR = re.compile(r"(\d{1,12}(?:\.\d{1,17})?)~([A-Za-z0-9][A-Za-z0-9._:@+-]{0,127})\Z")


class FilterError(ValueError):
    """A filter value that cannot be used; the message names the filter and the reason."""


@dataclass(frozen=True)
class OrderFilter:
    """Which orders: each set filter matches any of its values (empty: no condition), the
    filters together all must match. ``created_from`` inclusive, ``created_to`` exclusive
    (seconds since the epoch); ``overdue``: a deadline passed while the order is still open
    (:func:`workorders.model.overdue`)."""

    statuses: frozenset[Status] = frozenset()
    categories: frozenset[str] = frozenset()
    urgencies: frozenset[Urgency] = frozenset()
    agents: frozenset[str] = frozenset()
    caller: str | None = None
    created_from: float | None = None
    created_to: float | None = None
    overdue: bool = False

    def constraints(self) -> list[tuple[str, ...]]:
        """The index sets (key suffixes) to match: one union per filter, all of them. Status
        and urgency together are one union of ``wo:status-urgency`` sets when that names no
        more sets than the two apart (``status=in_progress&urgency=urgent``: one set)."""
        statuses = tuple(f"wo:status:{s.value}" for s in sorted(self.statuses))
        urgencies = tuple(f"wo:urgency:{u.value}" for u in sorted(self.urgencies))
        if statuses and urgencies and (
            len(self.statuses) * len(self.urgencies) <= len(statuses) + len(urgencies)
        ):
            statuses = tuple(status_urgency(s.value, u.value)
                             for s in sorted(self.statuses) for u in sorted(self.urgencies))
            urgencies = ()
        unions = [
            statuses,
            tuple(f"wo:category:{c}" for c in sorted(self.categories)),
            urgencies,
            tuple(f"wo:agent:{a}" for a in sorted(self.agents)),
            ("wo:open",) if self.overdue else (),
        ]
        return [union for union in unions if union]

    def matches(self, order: WorkOrder, now: float) -> bool:
        """Whether ``order`` passes every filter but ``caller`` (which is matched by its
        blind index in Redis, or by the fake's own spelling rule in tests)."""
        created = order.created_at.timestamp()
        return (
            (not self.statuses or order.status in self.statuses)
            and (not self.categories or order.category.value in self.categories)
            and (not self.urgencies or order.urgency in self.urgencies)
            and (not self.agents or order.agent in self.agents)
            and (self.created_from is None or created >= self.created_from)
            and (self.created_to is None or created < self.created_to)
            and (not self.overdue or bool(overdue(order, now)))
        )

    def within(self, agents: Iterable[str]) -> OrderFilter:
        """The filter narrowed to orders of ``agents`` (a token's scope)."""
        allowed = frozenset(agents)
        return _replace(self, agents=self.agents & allowed if self.agents else allowed)

    def as_params(self) -> dict[str, str]:
        """The filter as text, by :data:`FILTER_NAMES` (the inverse of :func:`parse_filter`):
        for the audit trail and for the CLI's query string. The caller's number is personal
        data and its own parameter; an audit entry leaves it out (``with_caller=False``)."""
        params = {
            "status": ",".join(sorted(s.value for s in self.statuses)),
            "category": ",".join(sorted(self.categories)),
            "urgency": ",".join(sorted(u.value for u in self.urgencies)),
            "agent": ",".join(sorted(self.agents)),
            "caller": self.caller or "",
            "created_from": _iso(self.created_from),
            "created_to": _iso(self.created_to),
            "overdue": "true" if self.overdue else "",
        }
        return {name: value for name, value in params.items() if value}


@dataclass(frozen=True, order=True)
class Cursor:
    """Where the next page starts: after the order created at ``created`` with ``order_id``."""

    created: float
    order_id: str

    def encode(self) -> str:
        return f"{self.created!r}~{self.order_id}"  # repr: the exact score, back and forth

    @classmethod
    def decode(cls, text: str) -> Cursor:
        match = _CURSOR.match(text)
        if match is None:
            raise FilterError(f"cursor {text[:40]!r}: not a cursor this service handed out")
        return cls(float(match[1]), match[2])


def parse_filter(params: Mapping[str, str | None]) -> OrderFilter:
    """The filter from text by :data:`FILTER_NAMES`; empty or missing values are no
    condition. Lists are comma-separated; dates are ``YYYY-MM-DD`` (UTC midnight; as
    ``created_to`` the whole day is included) or ISO 8601 times with a zone."""
    unknown = set(params) - set(FILTER_NAMES)
    if unknown:
        raise FilterError(f"unknown filter {sorted(unknown)}; filters are {list(FILTER_NAMES)}")

    def values(name: str) -> list[str]:
        text = params.get(name) or ""
        return [v.strip() for v in text.split(",") if v.strip()]

    def enum_values(name: str, kind: type[Status] | type[Urgency]) -> frozenset[Any]:
        try:
            return frozenset(kind(v) for v in values(name))
        except ValueError:
            raise FilterError(
                f"{name}: one or more of {', '.join(k.value for k in kind)}"
            ) from None

    def names(name: str) -> frozenset[str]:
        found = values(name)
        bad = [v for v in found if not _NAME.match(v) or ".." in v]
        if bad:
            raise FilterError(f"{name}: {bad[0][:40]!r} is not a valid {name} name")
        return frozenset(found)

    created_from = _time("created_from", params.get("created_from"), end_of_day=False)
    created_to = _time("created_to", params.get("created_to"), end_of_day=True)
    if created_from is not None and created_to is not None and created_to <= created_from:
        raise FilterError("created_to must be later than created_from")
    overdue_text = (params.get("overdue") or "").strip().lower()
    if overdue_text not in ("", "true", "false", "1", "0", "yes", "no"):
        raise FilterError("overdue: true or false")
    caller = (params.get("caller") or "").strip() or None
    if caller is not None and (len(caller) > 64 or not any(c.isdigit() for c in caller)):
        raise FilterError("caller: a phone number (with digits, at most 64 characters)")
    return OrderFilter(
        statuses=enum_values("status", Status),
        categories=names("category"),
        urgencies=enum_values("urgency", Urgency),
        agents=names("agent"),
        caller=caller,
        created_from=created_from,
        created_to=created_to,
        overdue=overdue_text in ("true", "1", "yes"),
    )


def _time(name: str, text: str | None, *, end_of_day: bool) -> float | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
            return start + 86400 if end_of_day else start
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FilterError(f"{name}: a date (2026-11-28) or an ISO time with a zone") from None
    if at.tzinfo is None:
        raise FilterError(f"{name}: the time needs a zone (Z or +01:00)")
    return at.timestamp()


def _iso(at: float | None) -> str:
    if at is None:
        return ""
    return datetime.fromtimestamp(at, UTC).isoformat().replace("+00:00", "Z")


def _replace(f: OrderFilter, **changes: Any) -> OrderFilter:
    from dataclasses import replace

    return replace(f, **changes)


# -- the Redis reads ----------------------------------------------------------------------


BlindIndex = Callable[[str], "str | None"]
"""A caller number's blind index (``privacy.fields.FieldCipher.blind_index``)."""

Candidate = tuple[float, str]  # (created_at, order id)


@dataclass
class _Walk:
    """One key of the driver, read newest first from an exclusive position down."""

    key: str
    below: Cursor | None  # exclusive upper bound, None: from the top (or created_to)
    done: bool = False
    buffer: list[Candidate] = field(default_factory=list)


async def find_ids(
    redis: Redis,
    prefix: str,
    f: OrderFilter,
    *,
    now: float,
    limit: int = DEFAULT_PAGE,
    after: Cursor | None = None,
    blind_index: BlindIndex,
    max_scan: int = MAX_SCAN,
    buckets: Buckets | None = None,
) -> tuple[list[str], Cursor | None]:
    """The ids of one page of orders matching ``f``, newest first, and the cursor of the
    next page (None: this was the last). ``after``: the cursor of the previous page.
    ``buckets``: the store's layout (``workorders.buckets``); every bucket is read and
    merged, as if each index set were the union of its buckets' sets."""
    limit = max(1, min(limit, MAX_PAGE))
    layout = buckets or Buckets(prefix=prefix)
    names = f.constraints()
    unions = [tuple(key for k in union for key in layout.keys(k)) for union in names]
    low = "-inf" if f.created_from is None else repr(f.created_from)
    high = "+inf" if f.created_to is None else f"({f.created_to!r}"
    stream: AsyncIterator[list[Candidate]]
    every = tuple(layout.keys("wo:index"))
    if f.caller is not None:
        stream = _caller_candidates(redis, layout, f, after, blind_index(f.caller))
        checks = names
        chunk = MAX_SCAN  # a caller's handful of orders: one check
    else:
        if not unions:
            names, unions = [("wo:index",)], [every]
        late = 1.0  # the share of open orders that are overdue
        if len(unions) == 1:  # nothing to choose: no counts to read
            counts, total = [1], 1
        else:
            asked = [(union, low, high) for union in [*unions, every]]
            if f.overdue:  # how many open orders are overdue now, of all times (an estimate)
                asked += [(tuple(layout.keys(OVERDUE_AT)), "-inf", f"({now!r}"),
                          (tuple(layout.keys("wo:open")), "-inf", "+inf")]
            counts = await _counts(redis, asked)
            if f.overdue:
                late = counts[-2] / max(1, counts[-1])
                counts = counts[:-2]
            counts, total = counts[:-1], max(1, counts[-1])
            if min(counts) == 0 or late == 0:
                return [], None
        driver = counts.index(min(counts))
        # The first batch sized to fill the page if the filters are independent: most pages
        # then take one read of the driver and one check, not a ramp of growing batches.
        share = late
        for i, count in enumerate(counts):
            share *= count / total if i != driver else 1.0
        first = int(min(4096, max(64, 1.5 * (limit + 1) / max(share, 1e-6))))
        chunk = first
        stream = _merged(redis, unions[driver], after, low, high, first)
        checks = names[:driver] + names[driver + 1:]
    if f.overdue:  # wo:overdue-at holds only open orders: its check covers wo:open's
        checks = [union for union in checks if union != ("wo:open",)]
    found: list[Candidate] = []
    scanned = 0
    async for batch in stream:
        # Checked a part at a time, the first sized to fill the page: a round of the walk
        # may bring more candidates than the page needs, and checking them costs a reply
        # per candidate and check; an estimate that fell short doubles the next part.
        start = 0
        while start < len(batch):
            part = batch[start:start + chunk] if start or len(batch) > chunk else batch
            start += len(part)
            chunk = min(chunk * 2, 8192)
            passing = await _passing(redis, layout, part, checks, f.overdue, now)
            for candidate in part:
                scanned += 1
                if candidate[1] in passing:
                    found.append(candidate)
                    if len(found) > limit:
                        page = found[:limit]
                        return [i for _, i in page], Cursor(*page[-1])
                if scanned >= max_scan:
                    # A short page, honest about it: the client goes on from where the scan
                    # stopped.
                    return [i for _, i in found], Cursor(*candidate)
    return [i for _, i in found], None


async def _counts(
    redis: Redis, asked: Sequence[tuple[tuple[str, ...], str, str]]
) -> list[int]:
    """The members of each union (keys, score from, score to) in its range, one round trip."""
    async with redis.pipeline(transaction=False) as pipe:
        for union, low, high in asked:
            for key in union:
                pipe.zcount(key, low, high)
        replies = await pipe.execute()
    counts, i = [], 0
    for union, _, _ in asked:
        counts.append(sum(int(n) for n in replies[i:i + len(union)]))
        i += len(union)
    return counts


async def _merged(
    redis: Redis, keys: tuple[str, ...], after: Cursor | None, low: str, high: str,
    size: int = 128,
) -> AsyncIterator[list[Candidate]]:
    """Batches of candidates from the union of ``keys``, newest first, no duplicates.

    Each round reads every unfinished key for its share of ``size`` (one pipeline), then
    emits what lies at or above the *floor*: the newest of the points the unfinished keys
    reached, below which one of them may still hold a newer candidate. Keys are about even
    (the buckets of one index set), so a key is read for ``size / len(keys)`` with a margin
    for the spread between them (:func:`workorders.buckets.read_share`), not for ``size``:
    a page of 50 (a batch of 76) over 16 buckets reads 14 per bucket, not 51. Candidates are
    compared as Redis orders them, (score, member) ascending (a ``str`` compares by code
    point as its UTF-8 bytes do), so newest first is plain descending order, no key function."""
    walks = [_Walk(key, after) for key in keys]
    emitted: Candidate | None = None
    while True:
        share = read_share(size, len(walks))
        todo = [(w, share - len(w.buffer)) for w in walks if not w.done and len(w.buffer) < share]
        if todo:
            await _read_down(redis, todo, low, high)
        live = [w for w in walks if w.buffer]
        if not live:
            return
        floor = max((w.buffer[-1] for w in walks if not w.done and w.buffer), default=None)
        runs: list[Candidate] = []
        for walk in live:  # each buffer is newest first: what is at or above the floor leads
            cut = len(walk.buffer) if floor is None else count_at_or_above(walk.buffer, floor)
            runs += walk.buffer[:cut]
            del walk.buffer[:cut]
        runs.sort(reverse=True)  # sorted runs: a k-way merge in C
        batch: list[Candidate] = []
        for candidate in runs:
            if candidate != emitted:  # one member in two keys of a union
                batch.append(candidate)
                emitted = candidate
        if batch:
            yield batch
        size = min(size * 2, 4096)


def descending(candidate: Candidate) -> tuple[float, tuple[int, ...]]:
    """The sort key of (created, id), newest first: Redis orders equal scores by member
    bytes, newest first reverses both; an id that another extends comes after it ("100"
    before "10"), hence the end mark above every inverted byte. The same order as
    ``sorted(..., reverse=True)`` on the plain tuples, which the walk uses."""
    return -candidate[0], (*(255 - b for b in candidate[1].encode()), 256)


async def _read_down(
    redis: Redis, wants: Sequence[tuple[_Walk, int]], low: str, high: str
) -> None:
    """Up to ``want`` members of each walk's sorted set below its position, into its buffer:
    one pipelined round trip (a walk inside a run of equal creation times longer than its
    read reads again, twice as many)."""
    todo = list(wants)
    while todo:
        async with redis.pipeline(transaction=False) as pipe:
            for walk, want in todo:
                top = high if walk.below is None else repr(walk.below.created)
                pipe.zrange(walk.key, top, low, desc=True, byscore=True, offset=0, num=want,
                            withscores=True)
            replies = await pipe.execute()
        again = []
        for (walk, want), rows in zip(todo, replies, strict=True):
            out = [(float(score), as_text(member)) for member, score in rows]
            if walk.below is not None:
                # The cursor's own score was read inclusive: drop it and what sorts above it.
                mark = (walk.below.created, walk.below.order_id)
                out = [c for c in out if c < mark]
            if len(rows) < want:
                walk.done = True
            if out:
                walk.below = Cursor(*out[-1])
                walk.buffer.extend(out)
            elif not walk.done:
                again.append((walk, want * 2))
        todo = again


async def _caller_candidates(
    redis: Redis, buckets: Buckets, f: OrderFilter, after: Cursor | None, index: str | None
) -> AsyncIterator[list[Candidate]]:
    """The caller's orders (a short set, in the caller's bucket) as one batch, newest first,
    in range."""
    if index is None:
        return
    members: set[bytes | str] = await redis.smembers(
        buckets.key(buckets.of_new(index, ""), "wo:by-caller:" + index)
    )
    ids = [as_text(i) for i in members]
    if not ids:
        return
    scores = await _scores(redis, buckets, "wo:index", ids)
    low = float("-inf") if f.created_from is None else f.created_from
    high = float("inf") if f.created_to is None else f.created_to
    candidates = [
        (float(s), i) for i, s in zip(ids, scores, strict=True)
        if s is not None and low <= float(s) < high
    ]
    candidates.sort(reverse=True)
    if after is not None:
        mark = (after.created, after.order_id)
        candidates = [c for c in candidates if c < mark]
    if candidates:
        yield candidates


def _by_bucket(buckets: Buckets, ids: Sequence[str]) -> dict[int, list[str]]:
    grouped: dict[int, list[str]] = {}
    for order_id in ids:
        grouped.setdefault(buckets.of_id(order_id), []).append(order_id)
    return grouped


async def _scores(
    redis: Redis, buckets: Buckets, name: str, ids: Sequence[str]
) -> list[float | None]:
    """The score of each of ``ids`` in the index ``name`` of its own bucket."""
    grouped = _by_bucket(buckets, ids)
    async with redis.pipeline(transaction=False) as pipe:
        for bucket, members in grouped.items():
            pipe.zmscore(buckets.key(bucket, name), members)
        replies = await pipe.execute()
    found: dict[str, float | None] = {}
    for members, scores in zip(grouped.values(), replies, strict=True):
        found.update(zip(members, scores, strict=True))
    return [found[i] for i in ids]


async def _passing(
    redis: Redis, buckets: Buckets, batch: Sequence[Candidate],
    checks: Sequence[tuple[str, ...]], check_overdue: bool, now: float,
) -> set[str]:
    """The ids of ``batch`` in every union of ``checks`` (index names, each read in the
    bucket of the id) and overdue at ``now``, if asked (a score of ``wo:overdue-at`` below
    ``now``): one ``ZMSCORE`` per set and bucket, one pipelined round trip."""
    ids = [i for _, i in batch]
    if not checks and not check_overdue:
        return set(ids)
    grouped = _by_bucket(buckets, ids)
    names = [name for union in checks for name in union]
    async with redis.pipeline(transaction=False) as pipe:
        for name in [*names, OVERDUE_AT] if check_overdue else names:
            for bucket, members in grouped.items():
                pipe.zmscore(buckets.key(bucket, name), members)
        replies = iter(await pipe.execute())
    keep = set(ids)
    for union in checks:
        inside: set[str] = set()
        for _ in union:
            for members in grouped.values():
                scores = next(replies)
                inside.update(i for i, s in zip(members, scores, strict=True) if s is not None)
        keep &= inside
    if check_overdue:
        late: set[str] = set()
        for members in grouped.values():
            scores = next(replies)
            late.update(
                i for i, s in zip(members, scores, strict=True) if s is not None and s < now
            )
        keep &= late
    return keep
