"""Per-view failure isolation in the screens' aggregate (screens.aggregate): a view whose
rendering fails or hangs holds back no other view and no other browser, says "data
unavailable since ..." to its own browsers, and recovers by itself; a round that cannot be
read says so to every view; the order clocks at risk are read once per round for all
browsers and fail alone.

Over fakes (the events stream, the router, pages that fail on demand), on the reactor's
asyncio loop; the round's wait for its views is a fake that only yields, the clock a list.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable, Mapping, Sequence
from datetime import UTC, datetime

from api.testing import FakeRouter
from ivr.testing import on_asyncio
from routing.testing import shipped_config
from screens.aggregate import Aggregate, Connection
from screens.board import Board, FeedEntry
from screens.i18n import load_strings
from screens.render import Renderer
from screens.risk import AtRisk, RiskSource
from screens.testing import FakeStream
from workorders.clocks import ClockKind

CONFIG = shipped_config()
T0 = 1_800_000_000.0  # 08:00:00 UTC
RENDERER = Renderer(load_strings())


class Page:
    """A page whose views render ``<view> at <time>``; a view in ``failing`` raises, a view
    in ``hanging`` waits for its future."""

    def __init__(self) -> None:
        self.failing: set[str] = set()
        self.hanging: dict[str, asyncio.Future[None]] = {}
        self.renders: list[str] = []

    async def fragments(self, board: Board, key: Hashable) -> Mapping[str, str]:
        self.renders.append(str(key))
        if key in self.hanging:
            await self.hanging[str(key)]
        if key in self.failing:
            raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        return {"state": f"{key} at {board.now:.0f}", "risk": str(len(board.at_risk.clocks))}

    def activity(self, board: Board, entry: FeedEntry, key: Hashable) -> str | None:
        return f"<li>{entry.kind}</li>"

    def notice(self, since: float | None) -> str:
        return RENDERER.notice(since)


class Browser:
    def __init__(self, aggregate: Aggregate, page: Page, key: str) -> None:
        self.written: list[bytes] = []
        self.conn = Connection(page, key, self.written.append)

    def events(self) -> list[tuple[str, str]]:
        """(event, data) of every frame received so far, and forget them."""
        out = []
        for chunk in b"".join(self.written).decode().split("\n\n"):
            lines = dict(line.split(": ", 1) for line in chunk.split("\n") if ": " in line)
            if "event" in lines:
                out.append((lines["event"], lines.get("data", "")))
        self.written.clear()
        return out


async def _yield(_seconds: float) -> None:
    """The round's wait for its views: a few turns of the loop, no time."""
    for _ in range(3):
        await asyncio.sleep(0)


def _aggregate(now: list[float], risk: RiskSource | None = None,
               stream: FakeStream | None = None) -> Aggregate:
    return Aggregate(stream or FakeStream(), FakeRouter(CONFIG), clock=lambda: now[0],
                     sleep=_yield, autostart=False, risk=risk, stall_s=2.0, give_up_s=30.0)


async def _connected(now: list[float], *keys: str) -> tuple[Page, Aggregate, list[Browser]]:
    """A page, an aggregate, and a browser connected for each view key."""
    page = Page()
    aggregate = _aggregate(now)
    browsers = [Browser(aggregate, page, key) for key in keys]
    for browser in browsers:
        await aggregate.connect(browser.conn, None)
    return page, aggregate, browsers


@on_asyncio
async def test_a_failing_view_says_since_when_and_the_others_go_on() -> None:
    """One desk's rendering fails (its order read meets a Redis that refuses): its browser
    keeps what it had and is told "data unavailable since" the failure; another desk and an
    activity line reach their browsers in the same round; when the reads work again the
    notice goes and the state comes."""
    now = [T0]
    page, aggregate, (a, b) = await _connected(now, "agent101", "agent102")
    assert a.events() == [("state", "agent101 at 1800000000"), ("risk", "0")]
    b.events()

    page.failing.add("agent101")
    now[0] = T0 + 5
    await aggregate.step()
    failed = a.events()
    assert failed[0][0] == "notice"
    assert "Data unavailable since 08:00:05 UTC" in failed[0][1] and len(failed) == 1
    assert b.events() == [("state", "agent102 at 1800000005")]

    now[0] = T0 + 9
    await aggregate.step()
    assert a.events() == []  # still failing: said once
    page.failing.clear()
    now[0] = T0 + 12
    await aggregate.step()
    assert a.events() == [("state", "agent101 at 1800000012"), ("notice", "")]
    await aggregate.stop()


@on_asyncio
async def test_a_hanging_view_holds_back_no_other_browser_and_catches_up() -> None:
    """A desk whose reads hang does not delay the wallboard's round: the round returns with
    the other view sent; past ``stall_s`` the hanging view's browser is told its data is
    unavailable since the rendering started; when the reads answer it gets the state, and
    the next round renders it afresh."""
    now = [T0]
    page, aggregate, (slow, board_) = await _connected(now, "agent101", "ops")
    slow.events(), board_.events()

    page.hanging["agent101"] = asyncio.get_running_loop().create_future()
    now[0] = T0 + 1
    await aggregate.step()
    assert board_.events() == [("state", "ops at 1800000001")]
    assert slow.events() == []
    now[0] = T0 + 2
    await aggregate.step()
    assert page.renders.count("agent101") == 2  # at connect, then once: not again meanwhile
    assert board_.events() == [("state", "ops at 1800000002")]
    now[0] = T0 + 3.5
    await aggregate.step()
    late = slow.events()
    assert [e for e, _ in late] == ["notice"] and "since 08:00:01 UTC" in late[0][1]

    page.hanging.pop("agent101").set_result(None)
    await _yield(0)
    assert slow.events() == [("state", "agent101 at 1800000001"), ("notice", "")]
    now[0] = T0 + 4
    await aggregate.step()
    assert slow.events() == [("state", "agent101 at 1800000004")]
    await aggregate.stop()


@on_asyncio
async def test_a_round_that_cannot_be_read_tells_every_view_then_recovers() -> None:
    """The events stream or the routing state unreadable: every browser is told the data is
    unavailable since the first failure; the next round that works clears it."""
    now = [T0]
    _page, aggregate, browsers = await _connected(now, "agent101", "ops")
    for browser in browsers:
        browser.events()
    now[0] = T0 + 3
    aggregate.round_failed(ConnectionError("refused"))
    now[0] = T0 + 6
    aggregate.round_failed(ConnectionError("refused"))
    for browser in browsers:
        [(event, html)] = browser.events()
        assert event == "notice" and "since 08:00:03 UTC" in html
    now[0] = T0 + 8
    await aggregate.step()
    for browser in browsers:
        assert ("notice", "") in browser.events()
    await aggregate.stop()


class Risk:
    """The clocks at risk as a reader gives them; ``fail`` makes the next reads raise."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, list[str]]] = []
        self.fail = False
        self.hang: asyncio.Future[None] | None = None

    async def __call__(self, now: float, new: Sequence[FeedEntry]) -> tuple[AtRisk, ...]:
        self.calls.append((now, [e.kind for e in new]))
        if self.hang is not None:
            await self.hang
        if self.fail:
            raise TimeoutError("redis did not answer")
        due = datetime.fromtimestamp(T0 + 600, UTC)
        return (AtRisk("7", ClockKind.RESPONSE, "warn", due, "fault", "urgent", "in_progress",
                       "faults", "agent101"),)


@on_asyncio
async def test_the_clocks_at_risk_are_read_once_a_round_and_fail_alone() -> None:
    """Five browsers, one read of the clocks at risk per round, handed the work-order events
    since the last read; a failing read keeps the last list, marked unavailable since the
    first failure, while the round and its views go on; a read that hangs does not hold
    the round either, and its events are handed to the next read."""
    now = [T0]
    page = Page()
    risk = Risk()
    stream = FakeStream([("1800000000000-0", {"kind": "PAUSE", "agent": "agent101"})])
    aggregate = _aggregate(now, risk, stream)
    browsers = [Browser(aggregate, page, f"agent10{i}") for i in range(5)]
    for browser in browsers:
        await aggregate.connect(browser.conn, None)
    assert len(risk.calls) == 1 and browsers[4].events()[-1] == ("risk", "1")

    stream.entries.append(("1800000001000-0", {"kind": "WOUPDATE", "order_id": "7"}))
    now[0] = T0 + 1
    await aggregate.step()
    assert risk.calls[-1] == (T0 + 1, ["WOUPDATE"]) and len(risk.calls) == 2

    risk.fail = True
    now[0] = T0 + 2
    board = await aggregate.step()
    assert board.at_risk.unavailable_since == T0 + 2 and len(board.at_risk.clocks) == 1
    assert [e for e, _ in browsers[0].events()][-1] == "state"  # the views went on
    now[0] = T0 + 3
    assert (await aggregate.step()).at_risk.unavailable_since == T0 + 2
    risk.fail = False
    now[0] = T0 + 4
    assert (await aggregate.step()).at_risk.unavailable_since is None

    risk.hang = asyncio.get_running_loop().create_future()
    now[0] = T0 + 5
    assert (await aggregate.step()).now == T0 + 5  # the round went on without it
    stream.entries.append(("1800000006000-0", {"kind": "WONOTE", "order_id": "7"}))
    now[0] = T0 + 8
    board = await aggregate.step()
    assert board.at_risk.unavailable_since == T0 + 5  # hanging past stall_s
    risk.hang.set_result(None)
    risk.hang = None
    await _yield(0)
    now[0] = T0 + 9
    board = await aggregate.step()
    assert risk.calls[-1] == (T0 + 9, ["WONOTE"]) and board.at_risk.unavailable_since is None
    await aggregate.stop()
