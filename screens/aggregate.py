"""One live aggregate per instance: it reads the events stream and the live routing state
once, builds the :class:`~screens.board.Board`, and fans each screen's fragments out to every
browser connected to this instance. Browsers never make the service read Redis for them: a
hundred wallboards cost one read per round, not a hundred.

A round (:meth:`Aggregate.step`): ``XREAD BLOCK`` on ``<prefix>events`` from the last entry
seen (returns at once when something happened, else after ``block_ms``), the routing snapshot
(which reads only what changed, ``routing/live_snapshot.py``) and the agents' hashes, the
figures, then each view's fragments, rendered once per view (a view is a page and whose eyes:
the wallboard of team X, the desk of agent Y) and sent only where they changed. Rounds come
at least every ``block_ms``, so an offer (which writes no event) pops within that, and the
durations on screen tick.

Frames carry stream ids (:mod:`screens.sse`): an activity line carries its entry's id, state
fragments the id of the last entry the board includes. A browser that comes back with
``Last-Event-ID`` gets the entries after it (read from the shared stream, so it works after a
restart and on another instance), then the state in full.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from events import stream_key
from hotline.report.stream import READ_MARGIN_S
from routing import core
from screens import sse
from screens.board import DAY_S, Board, EventLog, FeedEntry, figures

__all__ = ["Aggregate", "Connection", "LiveState", "Page", "StreamRedis"]

log = logging.getLogger(__name__)

REPLAY_MAX = 200  # entries replayed to a browser that resumes (the rest: the state in full)
FIRST_FEED = 20  # activity lines a first connection gets
KEEPALIVE_S = 15.0


class StreamRedis(Protocol):
    """The commands the aggregate sends (a ``redis.asyncio.Redis``)."""

    async def xread(self, streams: Any, count: int | None = None,
                    block: int | None = None) -> Any: ...

    async def xrange(self, name: Any, min: Any = "-", max: Any = "+",
                     count: int | None = None) -> Any: ...


class LiveState(Protocol):
    """The part of :class:`routing.live.LiveRouter` the board is read from."""

    def config(self) -> core.RoutingConfig: ...

    async def snapshot(self) -> core.Snapshot: ...

    async def agents(self) -> dict[str, dict[str, str]]: ...


ViewKey = Hashable


class Page(Protocol):
    """One screen's side of the fan-out: its fragments for a view, and its activity line for
    an entry (``None``: not shown in that view)."""

    async def fragments(self, board: Board, key: ViewKey) -> Mapping[str, str]: ...

    def activity(self, board: Board, entry: FeedEntry, key: ViewKey) -> str | None: ...


@dataclass(eq=False)
class Connection:
    """One browser's stream: its view, where to write, what it was sent last."""

    page: Page
    key: ViewKey
    write: Callable[[bytes], None]
    sent: dict[str, str] = field(default_factory=dict)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def entries_of(rows: Sequence[Any]) -> list[FeedEntry]:
    """XRANGE/XREAD rows as feed entries (fields decoded)."""
    return [
        FeedEntry(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
        for entry_id, fields in rows
    ]


class Aggregate:
    def __init__(
        self, redis: StreamRedis, live: LiveState, *, prefix: str = "hotline:",
        clock: Callable[[], float], interval_s: float = 1800.0, block_ms: int = 250,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, autostart: bool = True,
    ) -> None:
        """``autostart``: the first browser starts the rounds (tests step by hand instead)."""
        self.redis = redis
        self.live = live
        self.key = stream_key(prefix)
        self.clock = clock
        self.interval_s = interval_s
        self.block_ms = block_ms
        self.sleep = sleep
        self.autostart = autostart
        self.log = EventLog()
        self.board: Board | None = None
        self.connections: list[Connection] = []
        self._task: asyncio.Task[None] | None = None
        self._loaded = False
        self._last_keepalive = 0.0

    # --- the board --------------------------------------------------------------------------

    async def load(self) -> None:
        """Today's events (from an hour before midnight UTC, as ``ivr report`` reads them)."""
        now = self.clock()
        day_start = math.floor(now / DAY_S) * DAY_S
        low = f"{int((day_start - READ_MARGIN_S) * 1000)}-0"
        entries: list[FeedEntry] = []
        while True:
            rows = await self.redis.xrange(self.key, min=low, max="+", count=10_000)
            entries += entries_of(rows)
            if len(rows) < 10_000:
                break
            low = "(" + entries[-1].entry_id
        self.log.add(entries, now)
        self._loaded = True

    async def refresh(self, new: Sequence[FeedEntry] = ()) -> Board:
        now = self.clock()
        self.log.add(new, now)
        config = self.live.config()
        snapshot = await self.live.snapshot()
        agents = await self.live.agents()
        today, recent = figures(self.log.reported, config, now,
                                day_start=self.log.day_start, interval_s=self.interval_s)
        self.board = Board(now, self.log.last_id, config, snapshot, agents, today, recent,
                           tuple(self.log.feed))
        return self.board

    async def step(self) -> Board:
        """One round: wait for entries (up to ``block_ms``), rebuild, push what changed."""
        if not self._loaded:
            await self.load()
            new: list[FeedEntry] = []
        else:
            reply = await self.redis.xread({self.key: self.log.last_id}, count=1000,
                                           block=self.block_ms)
            new = [e for _stream, rows in (reply or []) for e in entries_of(rows)]
        board = await self.refresh(new)
        await self.publish(board, new)
        return board

    # --- the fan-out ------------------------------------------------------------------------

    async def publish(self, board: Board, new: Sequence[FeedEntry] = ()) -> None:
        views: dict[tuple[int, ViewKey], Mapping[str, str]] = {}
        lines: dict[tuple[int, ViewKey, str], str | None] = {}
        for conn in list(self.connections):
            view = (id(conn.page), conn.key)
            if view not in views:
                views[view] = await conn.page.fragments(board, conn.key)
            out = []
            for entry in new:
                line_key = (id(conn.page), conn.key, entry.entry_id)
                if line_key not in lines:
                    lines[line_key] = conn.page.activity(board, entry, conn.key)
                html = lines[line_key]
                if html is not None:
                    out.append(sse.frame("activity", html, entry.entry_id))
            out += self._changed(conn, views[view], board.last_id)
            if board.now - self._last_keepalive >= KEEPALIVE_S and not out:
                out.append(sse.KEEPALIVE)
            if out:
                self._write(conn, b"".join(out))
        if board.now - self._last_keepalive >= KEEPALIVE_S:
            self._last_keepalive = board.now

    @staticmethod
    def _changed(conn: Connection, fragments: Mapping[str, str], last_id: str) -> list[bytes]:
        out = []
        for name, html in fragments.items():
            if conn.sent.get(name) != html:
                conn.sent[name] = html
                out.append(sse.frame(name, html, last_id))
        return out

    def _write(self, conn: Connection, data: bytes) -> None:
        try:
            conn.write(data)
        except Exception:
            log.exception("screens: writing to a browser failed; its stream is dropped")
            self.disconnect(conn)

    async def connect(self, conn: Connection, last_event_id: str | None) -> None:
        """Add a browser: the activity it missed (or the latest lines), then the state."""
        board = self.board if self.board is not None else await self._first_board()
        if last_event_id is not None:
            rows = await self.redis.xrange(self.key, min="(" + last_event_id, max="+",
                                           count=REPLAY_MAX)
            missed = entries_of(rows)
        else:
            missed = [e for e in board.feed
                      if conn.page.activity(board, e, conn.key) is not None][-FIRST_FEED:]
        out = [sse.retry()]
        for entry in missed:
            html = conn.page.activity(board, entry, conn.key)
            if html is not None:
                out.append(sse.frame("activity", html, entry.entry_id))
        out += self._changed(conn, await conn.page.fragments(board, conn.key), board.last_id)
        self.connections.append(conn)
        self._write(conn, b"".join(out))
        if self.autostart:
            self.ensure_running()

    async def current(self) -> Board:
        """The board as of now: the running rounds', else read now (nobody watches live)."""
        running = self._task is not None and not self._task.done()
        if running and self.board is not None:
            return self.board
        return await self._first_board()

    async def _first_board(self) -> Board:
        if not self._loaded:
            await self.load()
        return await self.refresh()

    def disconnect(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)

    # --- running ----------------------------------------------------------------------------

    def ensure_running(self) -> None:
        """Rounds run while someone watches: started by the first browser, on the running
        asyncio loop (the reactor's)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self.run())

    async def run(self) -> None:
        failures = 0
        while self.connections:
            try:
                await self.step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                if failures == 1:
                    log.warning("screens: a live round failed (%s); retrying", exc)
                await self.sleep(min(5.0, 0.5 * failures))

    async def stop(self) -> None:
        self.connections.clear()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
