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

Each view fails alone. Its fragments are rendered in a task of its own and sent to its
browsers as soon as they are ready, so a view whose reads are slow (an order read while Redis
does not answer) holds back no other view and no other browser; the round waits for the
views it started at most ``view_wait_s``. A view whose rendering failed, or still runs after
``stall_s``, keeps its last fragments on screen and gets a ``notice`` fragment saying "data
unavailable since ..." (its :meth:`Page.notice`); the next rendering that succeeds clears it.
A round that cannot be read at all (the events stream, the routing state) says so to every
view the same way. The order clocks at risk (``screens.risk``) are read beside the board and
fail alone too: the board keeps the last list known, marked unavailable since the first
failed read.

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
from asyncio import CancelledError
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from events import stream_key
from events.consumer import decode_entries
from hotline.report.compute import Report
from hotline.report.stream import READ_MARGIN_S
from routing import core
from screens import sse
from screens.board import DAY_S, RECENT_S, Board, EventLog, FeedEntry, recent_figures
from screens.render import ROWS_EVENT, Table
from screens.risk import OrdersAtRisk, RiskSource
from screens.tally import TodayTally

__all__ = ["Aggregate", "Connection", "LiveState", "Page", "StreamRedis", "View"]

log = logging.getLogger(__name__)

REPLAY_MAX = 200  # entries replayed to a browser that resumes (the rest: the state in full)
FIRST_FEED = 20  # activity lines a first connection gets
KEEPALIVE_S = 15.0
VIEW_WAIT_S = 0.05  # how long a round waits for the views it started (then they go on alone)
STALL_S = 2.0  # a view rendering for longer says its data is unavailable
GIVE_UP_S = 30.0  # a rendering running this long is cancelled and started again
MAX_RENDERS = 32  # renderings at once (each may read Redis: the connection pool is shared)


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
_Made = dict[tuple[str, str, str], bytes]  # (event, data, id) -> the frame


class Page(Protocol):
    """One screen's side of the fan-out: its fragments for a view, and its activity line for
    an entry (``None``: not shown in that view)."""

    async def fragments(self, board: Board, key: ViewKey) -> Mapping[str, str]: ...

    def activity(self, board: Board, entry: FeedEntry, key: ViewKey) -> str | None: ...

    def notice(self, since: float | None) -> str:
        """The view's ``notice`` fragment: data unavailable since ``since``; "" when fine."""
        ...


@dataclass(eq=False)
class Connection:
    """One browser's stream: its view, where to write, what it was sent last."""

    page: Page
    key: ViewKey
    write: Callable[[bytes], None]
    sent: dict[str, str] = field(default_factory=dict)
    last_id: str = "0-0"  # the newest stream id this browser was sent
    shown_id: str = "0-0"  # the board whose state it has on screen (as last told)


@dataclass(eq=False)
class View:
    """One view's rendering: the task in flight, the last fragments made, since when its
    data has been unavailable (``None``: fine)."""

    page: Page
    key: ViewKey
    task: asyncio.Task[None] | None = None
    started: float = 0.0  # the time of the board the task renders
    fragments: Mapping[str, str] | None = None
    failing_since: float | None = None


def entries_of(rows: Sequence[Any]) -> list[FeedEntry]:
    """XRANGE/XREAD rows as feed entries (fields decoded)."""
    return decode_entries(rows)


class Aggregate:
    def __init__(
        self, redis: StreamRedis, live: LiveState, *, prefix: str = "hotline:",
        clock: Callable[[], float], interval_s: float = 1800.0, block_ms: int = 250,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, autostart: bool = True,
        risk: RiskSource | None = None, view_wait_s: float = VIEW_WAIT_S,
        stall_s: float = STALL_S, give_up_s: float = GIVE_UP_S, max_renders: int = MAX_RENDERS,
    ) -> None:
        """``autostart``: the first browser starts the rounds (tests step by hand instead).
        ``risk``: reads the order clocks at risk (``screens.risk.RiskReader``); without it
        the board has none. ``sleep`` also times how long a round waits for its views."""
        self.redis = redis
        self.live = live
        self.key = stream_key(prefix)
        self.clock = clock
        self.interval_s = interval_s
        self.block_ms = block_ms
        self.sleep = sleep
        self.autostart = autostart
        self.risk = risk
        self.view_wait_s = view_wait_s
        self.stall_s = stall_s
        self.give_up_s = give_up_s
        self.log = EventLog()
        self.board: Board | None = None
        self.connections: list[Connection] = []
        self.views: dict[tuple[int, ViewKey], View] = {}
        self._by_view: dict[View, list[Connection]] = {}  # the browsers of each view
        self._task: asyncio.Task[None] | None = None
        self._loaded = False
        self._last_keepalive = 0.0
        self._down_since: float | None = None  # rounds fail since then
        self._at_risk = OrdersAtRisk()
        self._risk_task: asyncio.Task[Any] | None = None
        self._risk_started = 0.0
        self._risk_new: list[FeedEntry] = []  # work-order events the next risk read must see
        self._renders = asyncio.Semaphore(max_renders)
        self._reading = asyncio.Lock()  # browsers arriving together share one first read
        self._made: _Made = {}  # the frames of the round (the views of a round share many)
        self._today: tuple[Hashable, int, Report] | None = None  # key, second, report
        self._recent: tuple[Hashable, Report] | None = None
        self._tally: TodayTally | None = None
        self._tally_of: tuple[float, core.RoutingConfig] | None = None  # its day and config

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
            low = "(" + entries[-1].id
        self.log.add(entries, now)
        self._loaded = True

    async def refresh(self, new: Sequence[FeedEntry] = ()) -> Board:
        now = self.clock()
        self.log.add(new, now)
        config = self.live.config()
        snapshot = await self.live.snapshot()
        agents = await self.live.agents()
        at_risk = await self._read_risk(now, new)
        today, recent = self._figures(config, now)
        self.board = Board(now, self.log.last_id, config, snapshot, agents, today, recent,
                           tuple(self.log.feed), at_risk)
        return self.board

    def _figures(self, config: core.RoutingConfig, now: float) -> tuple[Report, Report]:
        """Today's figures, at most once a second, not every round: today's report (the
        chart, ASA) kept event by event (:class:`screens.tally.TodayTally`, made from
        scratch over the day's events at start, at midnight and when the config changes),
        made again when events it counts arrived or an interval began; the last 30 minutes'
        (they slide) over the window's events and an hour before it, as ``ivr report``
        reads a window."""
        log, second = self.log, int(now)
        tally = self._tally
        made_for = self._tally_of
        if tally is None or made_for is None or made_for[0] != log.day_start or (
                made_for[1] is not config):
            tally = self._tally = TodayTally(
                {name: q.service_level for name, q in config.queues.items()},
                start=log.day_start, interval_s=self.interval_s)
            self._tally_of = (log.day_start, config)
        tally.add(log.reported[tally.seen:])
        today_key = (log.day_start, len(log.reported), id(config), now // self.interval_s)
        today = self._today
        if today is None or (today[0] != today_key and today[1] != second):
            today = self._today = (today_key, second, tally.report(now))
        recent = self._recent
        if recent is None or recent[0] != (today_key, second):
            recent = self._recent = ((today_key, second), recent_figures(
                log.reported_since(now - RECENT_S - READ_MARGIN_S), config, now))
        return today[2], recent[1]

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
        if self._down_since is not None:
            log.info("screens: the live rounds work again")
            self._down_since = None
        await self.publish(board, new)
        return board

    async def _read_risk(self, now: float, new: Sequence[FeedEntry]) -> OrdersAtRisk:
        """The clocks at risk: read beside the round, in a task of its own (a slow read
        keeps the last list, marked unavailable after ``stall_s``)."""
        if self.risk is None:
            return self._at_risk
        self._risk_new += [e for e in new if e.kind.startswith("WO")]
        self._harvest_risk()  # a read that ended since the last round
        if self._risk_task is None:
            self._risk_task = asyncio.ensure_future(self.risk(now, self._risk_new))
            self._risk_new = []
            self._risk_started = now
            await self._wait([self._risk_task])
            self._harvest_risk()
        elif now - self._risk_started >= self.stall_s:
            self._risk_unavailable(self._risk_started, TimeoutError("no answer"))
            if now - self._risk_started >= self.give_up_s:
                self._risk_task.cancel()
                self._risk_task = None
        return self._at_risk

    def _harvest_risk(self) -> None:
        task = self._risk_task
        if task is None or not task.done():
            return
        self._risk_task = None
        error = CancelledError() if task.cancelled() else task.exception()
        if error is None:
            if self._at_risk.unavailable_since is not None:
                log.info("screens: the order clocks at risk are read again")
            self._at_risk = OrdersAtRisk(task.result(), None, read=True)
        else:
            self._risk_unavailable(self._risk_started, error)

    def _risk_unavailable(self, since: float, error: BaseException | None) -> None:
        if self._at_risk.unavailable_since is None:
            log.warning("screens: reading the order clocks at risk failed (%r); the wallboards "
                        "keep the last list known", error)
            self._at_risk = replace(self._at_risk, unavailable_since=since)

    # --- the fan-out ------------------------------------------------------------------------

    async def publish(self, board: Board, new: Sequence[FeedEntry] = ()) -> None:
        """Activity lines now; each view's fragments from its own rendering, sent when ready
        (the round waits for them at most ``view_wait_s``)."""
        keepalive = board.now - self._last_keepalive >= KEEPALIVE_S
        if keepalive:
            self._last_keepalive = board.now
        started = []
        made = self._made = {}  # this round's frames, for every browser that gets the same
        for view, conns in self._views().items():
            lines = self._lines(view, board, new)
            for conn in conns:
                out = [self._frame(conn, "activity", html, entry_id, made)
                       for entry_id, html in lines]
                if keepalive and not out:
                    out.append(sse.KEEPALIVE)
                if out:
                    self._write(conn, b"".join(out))
            if view.task is None:
                started.append(self._render(view, board))
            elif board.now - view.started >= self.stall_s:
                if view.failing_since is None:
                    log.warning("screens: a view (%s) has rendered for %.0f s; its browsers are "
                                "told its data is unavailable", view.key,
                                board.now - view.started)
                    view.failing_since = view.started
                    self._send(view, board.last_id)
                if board.now - view.started >= self.give_up_s:
                    view.task.cancel()
                    view.task = None
        await self._wait(started)

    @staticmethod
    def _lines(view: View, board: Board, new: Sequence[FeedEntry]) -> list[tuple[str, str]]:
        """The view's activity lines for ``new`` entries (entry id, html), made once for all
        its browsers."""
        out = []
        for entry in new:
            try:
                html = view.page.activity(board, entry, view.key)
            except Exception:
                log.exception("screens: an activity line failed; left out")
                continue
            if html is not None:
                out.append((entry.id, html))
        return out

    def _views(self) -> dict[View, list[Connection]]:
        """The views of the connected browsers (those nobody watches any more forgotten)."""
        by_view: dict[View, list[Connection]] = {}
        for conn in list(self.connections):
            by_view.setdefault(self._view_of(conn), []).append(conn)
        for name, view in list(self.views.items()):
            if view not in by_view:
                del self.views[name]
        self._by_view = by_view
        return by_view

    def _view_of(self, conn: Connection) -> View:
        name = (id(conn.page), conn.key)
        view = self.views.get(name)
        if view is None:
            view = self.views[name] = View(conn.page, conn.key)
        return view

    def _render(self, view: View, board: Board) -> asyncio.Task[None]:
        view.started = board.now
        view.task = asyncio.ensure_future(self._rendering(view, board))
        return view.task

    async def _rendering(self, view: View, board: Board) -> None:
        """A view's rendering task: render, then send where it changed."""
        try:
            await self._rendered(view, board)
        finally:
            if view.task is asyncio.current_task():
                view.task = None
        self._send(view, board.last_id, rendered=view.failing_since is None)

    async def _rendered(self, view: View, board: Board) -> None:
        """Render the view: its fragments kept, or its failure noted (the last kept stay)."""
        try:
            async with self._renders:
                fragments = await view.page.fragments(board, view.key)
        except Exception as exc:
            if view.failing_since is None:
                log.warning("screens: a view (%s) failed: %r; its browsers keep the last state "
                            "and are told its data is unavailable", view.key, exc)
                view.failing_since = board.now
        else:
            if view.failing_since is not None:
                log.info("screens: a view (%s) renders again", view.key)
            view.fragments, view.failing_since = fragments, None

    def _send(self, view: View, last_id: str, rendered: bool = False) -> None:
        """The view's fragments and notice to its browsers, where they changed. ``rendered``:
        the fragments were just made from the board of ``last_id``; a browser sent activity
        lines since its last fragments, and given no fragment now (the state those lines
        tell of was on screen already), is told its screen is current up to ``last_id``
        (:func:`screens.sse.mark`: its Last-Event-ID moves on, nothing is dispatched)."""
        since = min((t for t in (view.failing_since, self._down_since) if t is not None),
                    default=None)
        notice = view.page.notice(since)
        made = self._made
        for conn in list(self._by_view.get(view, ())):
            fragments = dict(view.fragments or {})
            if notice or "notice" in conn.sent:
                fragments["notice"] = notice
            out = self._changed(conn, fragments, last_id, made)
            if out:
                conn.shown_id = conn.last_id
            elif rendered and conn.shown_id != conn.last_id and (
                    sse.stream_id_key(last_id) >= sse.stream_id_key(conn.last_id)):
                conn.last_id = conn.shown_id = last_id
                out.append(sse.mark(last_id))
            if out:
                self._write(conn, b"".join(out))

    def _changed(self, conn: Connection, fragments: Mapping[str, str],
                 last_id: str, made: _Made | None = None) -> list[bytes]:
        out = []
        for name, html in fragments.items():
            shown = conn.sent.get(name)
            if shown != html:
                conn.sent[name] = html
                swaps = html.swaps_from(shown) if (
                    isinstance(html, Table) and isinstance(shown, Table)) else None
                if swaps:  # the same rows on screen: only those that changed
                    out.append(self._frame(conn, ROWS_EVENT, swaps, last_id, made))
                else:
                    out.append(self._frame(conn, name, html, last_id, made))
        return out

    @staticmethod
    def _frame(conn: Connection, event: str, html: str, entry_id: str,
               made: _Made | None = None) -> bytes:
        """A frame whose id never goes back for this browser (a late view's fragments come
        from an older board than activity lines it was sent meanwhile). ``made``: the frames
        made for the other browsers of the same fan-out, reused (the browsers of one view get
        the same bytes, framed once)."""
        if conn.last_id != entry_id and (
                sse.stream_id_key(entry_id) > sse.stream_id_key(conn.last_id)):
            conn.last_id = entry_id
        if made is None:
            return sse.frame(event, html, conn.last_id)
        key = (event, html, conn.last_id)
        framed = made.get(key)
        if framed is None:
            framed = made[key] = sse.frame(event, html, conn.last_id)
        return framed

    async def _wait(self, tasks: Sequence[asyncio.Future[Any]]) -> None:
        """Until ``tasks`` are done, ``view_wait_s`` at most (timed by ``sleep``)."""
        pending: set[asyncio.Future[Any]] = {t for t in tasks if not t.done()}
        if not pending:
            return
        timer = asyncio.ensure_future(self.sleep(self.view_wait_s))
        try:
            while pending and not timer.done():
                done, _ = await asyncio.wait({*pending, timer},
                                             return_when=asyncio.FIRST_COMPLETED)
                pending -= done
        finally:
            timer.cancel()

    def _write(self, conn: Connection, data: bytes) -> None:
        try:
            conn.write(data)
        except Exception:
            log.exception("screens: writing to a browser failed; its stream is dropped")
            self.disconnect(conn)

    async def connect(self, conn: Connection, last_event_id: str | None) -> None:
        """Add a browser: the activity it missed (or the latest lines), then the state (its
        view's last fragments, or a first rendering)."""
        board = self.board if self.board is not None else await self._first_board()
        if last_event_id is not None:
            rows = await self.redis.xrange(self.key, min="(" + last_event_id, max="+",
                                           count=REPLAY_MAX)
            missed = entries_of(rows)
        else:
            missed = [e for e in board.feed
                      if conn.page.activity(board, e, conn.key) is not None][-FIRST_FEED:]
        view = self._view_of(conn)
        out = [sse.retry(), *(self._frame(conn, "activity", html, entry_id)
                              for entry_id, html in self._lines(view, board, missed))]
        self._write(conn, b"".join(out))
        self.connections.append(conn)
        self._by_view.setdefault(view, []).append(conn)
        if view.task is None and view.fragments is None:
            await self._rendered(view, board)  # a new view: its first rendering, now
        self._send(view, board.last_id)
        if self.autostart:
            self.ensure_running()

    async def current(self) -> Board:
        """The board as of now: the running rounds', else read now (nobody watches live)."""
        running = self._task is not None and not self._task.done()
        if running and self.board is not None:
            return self.board
        return await self._first_board()

    async def _first_board(self) -> Board:
        """Read the board now; browsers that ask together (a room of screens opening after a
        restart) share one read."""
        asked = self.clock()
        async with self._reading:
            if self.board is not None and self.board.now >= asked:
                return self.board  # read meanwhile for another browser
            if not self._loaded:
                await self.load()
            return await self.refresh()

    def disconnect(self, conn: Connection) -> None:
        if conn in self.connections:
            self.connections.remove(conn)
        for conns in self._by_view.values():
            if conn in conns:
                conns.remove(conn)

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
                self.round_failed(exc)
                await self.sleep(min(5.0, 0.5 * failures))

    def round_failed(self, error: BaseException) -> None:
        """A round could not be read: every view says its data is unavailable (since the
        first failure) until a round works again."""
        if self._down_since is None:
            log.warning("screens: a live round failed (%r); retrying", error)
            self._down_since = self.clock()
            last_id = self.board.last_id if self.board is not None else "0-0"
            for view in self._views():
                self._send(view, last_id)

    async def stop(self) -> None:
        self.connections.clear()
        task, self._task = self._task, None
        pending = [t for t in (task, self._risk_task,
                               *(v.task for v in self.views.values())) if t is not None]
        self._risk_task = None
        self.views.clear()
        self._by_view.clear()
        for each in pending:
            if not each.done():
                each.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await each
