"""Running durations (screens.running) and what the fan-out sends: time in state, waits and
the wrap-up countdown run in the browser, so a view whose only change is the second is not
rendered or sent again; a threshold colour still is; the browsers of one view share framed
bytes; the figures slide over the window's events only."""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from typing import Any

import pytest

from access import Identity, Role
from api.services import AgentService
from api.testing import FakeAudit, FakeRouter, run_now
from ivr.testing import on_asyncio
from routing.testing import call, shipped_config, snapshot
from screens import aggregate as aggregate_module
from screens.aggregate import Aggregate, Connection
from screens.board import Board, EventLog, FeedEntry, figures, recent_figures
from screens.desk.view import DeskData, desk_view
from screens.i18n import load_strings
from screens.render import Renderer
from screens.running import Running, elapsed, remaining
from screens.settings import ScreensSettings
from screens.testing import FakeStream, board, screens_under_test
from screens.wallboard.page import WallboardKey, WallboardPage
from workorders.clocks import ClockPolicy

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
T = load_strings()
CONFIG = shipped_config()
SETTINGS = ScreensSettings()
OPS = WallboardKey.of(Identity("olga", Role.OPS))


class CountingRenderer(Renderer):
    """The real renderer, counting its renderings by template."""

    def __init__(self) -> None:
        super().__init__(T)
        self.rendered: list[str] = []

    def render(self, name: str, **context: Any) -> str:
        self.rendered.append(name)
        return super().render(name, **context)


def _wallboard() -> tuple[WallboardPage, CountingRenderer]:
    renderer = CountingRenderer()
    page = WallboardPage(renderer, SETTINGS, AgentService(FakeRouter(CONFIG), FakeAudit(),
                                                          lambda a: None))
    return page, renderer


def _paused(since: float) -> dict[str, dict[str, str]]:
    return {"agent101": {"status": "paused", "since": str(since), "pause_reason": "break"}}


def test_a_running_duration_equals_itself_a_second_later_but_not_with_another_colour() -> None:
    """The text is as of the board; equality is where it counts from and its colour."""
    assert elapsed(T, NOW - 5, NOW) == elapsed(T, NOW - 5, NOW + 1)
    assert elapsed(T, NOW - 5, NOW).text == "0:05"
    assert elapsed(T, NOW - 5, NOW, "warn") != elapsed(T, NOW - 5, NOW)
    assert remaining(T, NOW + 25, NOW) == Running("0:25", until=NOW + 25)
    assert remaining(T, NOW - 1, NOW).text == "0:00"


def test_a_wallboard_whose_only_change_is_the_second_is_not_rendered_again() -> None:
    """Board after board, a second apart, with agents in state and a call waiting: the
    wallboard's fragments are the same strings and no template is rendered; the agents
    table carries where each duration counts from, for the page's script."""
    page, renderer = _wallboard()
    at = NOW + 60  # within an interval of the chart (a new one would add a bar)
    waiting = snapshot(at, [], [call("c1", "inquiry", "billing", at - 12)])
    first = run_now(page.fragments(board(CONFIG, now=at, agents=_paused(at - 30),
                                         snapshot=waiting), OPS))
    assert f'role="timer" data-since="{at - 30:.3f}">0:30<' in first["agents"]
    assert f'data-since="{at - 12:.3f}">0:12<' in first["queues"]
    renderer.rendered.clear()
    later = snapshot(at + 1, [], [call("c1", "inquiry", "billing", at - 12)])
    second = run_now(page.fragments(board(CONFIG, now=at + 1, agents=_paused(at - 30),
                                          snapshot=later), OPS))
    assert second == first
    assert renderer.rendered == []


def test_a_running_duration_is_rendered_again_when_it_crosses_a_threshold() -> None:
    """A pause of 599 s is not coloured; at 600 s (``paused_s`` warn) the row, and so the
    agents table, is rendered again with the warning."""
    page, _renderer = _wallboard()
    before = run_now(page.fragments(board(CONFIG, now=NOW, agents=_paused(NOW - 599)), OPS))
    after = run_now(page.fragments(board(CONFIG, now=NOW + 1, agents=_paused(NOW - 599)), OPS))
    assert after["agents"] != before["agents"]
    row = re.search(r'<tr data-agent="agent101">.*?</tr>', after["agents"], re.S)
    assert row is not None and 'class="lvl-warn"' in row.group(0)


def test_every_wallboard_renders_a_changed_agent_row_once() -> None:
    """Two views (ops, a supervisor) see agent101 change state: its row is rendered once
    for each variant (with and without the supervisor's actions), not once per view."""
    page, renderer = _wallboard()
    sup = WallboardKey.of(Identity("sam", Role.SUPERVISOR, "billing-desk"))
    b = board(CONFIG, now=NOW, agents=_paused(NOW - 5))
    for key in (OPS, sup, OPS, sup):
        run_now(page.fragments(b, key))
    renderer.rendered.clear()
    changed = board(CONFIG, now=NOW + 1,
                    agents={"agent101": {"status": "available", "since": str(NOW + 1)}})
    for key in (OPS, sup):
        run_now(page.fragments(changed, key))
    assert renderer.rendered.count("_agent_row.html") <= 2
    assert renderer.rendered.count("_queues.html") <= 1


def test_the_desk_sends_time_in_state_and_the_wrap_up_countdown_as_timers() -> None:
    """In wrap-up the state panel says since when and until when; a second later the
    desk's view model is equal (nothing to send) though its texts moved on."""
    live = {"agent101": {"status": "wrap_up", "call_id": "", "since": str(NOW - 5),
                         "wrap_until": str(NOW + 25)}}
    first = desk_view(board(CONFIG, now=NOW, agents=live), "agent101", DeskData(),
                      ClockPolicy(), SETTINGS, T)
    later = desk_view(board(CONFIG, now=NOW + 1, agents=live), "agent101", DeskData(),
                      ClockPolicy(), SETTINGS, T)
    assert (first.state.in_state, later.state.in_state) == ("0:05", "0:06")
    assert (first.state.wrap_left, later.state.wrap_left) == ("0:25", "0:24")
    assert first == later
    html = Renderer(T).render("_state.html", s=first.state)
    assert f'data-since="{NOW - 5:.3f}"' in html
    assert f'<dd data-wrap-left><span role="timer" data-until="{NOW + 25:.3f}">0:25</span>' \
        in html


def test_the_pages_carry_the_services_clock_for_their_timers() -> None:
    """A live page tells its script the service's time (``<body data-now>``), from which
    the browser's clock is corrected."""
    from access.sessions import COOKIE_NAME
    from screens.app import ScreenRequest, ScreenResponse

    ut = screens_under_test(CONFIG, {"t": Identity("olga", Role.OPS)}, {}, now=NOW)
    session = run_now(ut.sessions.login("t", NOW))
    answer = run_now(ut.screens.respond(ScreenRequest(
        "GET", ["wallboard"], headers={"cookie": f"{COOKIE_NAME}={session.session_id}"})))
    assert isinstance(answer, ScreenResponse)
    assert f'data-now="{NOW:.3f}"'.encode() in answer.body


class _Page:
    """Every view renders one fragment that names the board's second."""

    async def fragments(self, board: Board, key: Hashable) -> Mapping[str, str]:
        return {"state": f"<p>{int(board.now)}</p>"}

    def activity(self, board: Board, entry: FeedEntry, key: Hashable) -> str | None:
        return f"<li>{entry.kind}</li>"

    def notice(self, since: float | None) -> str:
        return ""


@on_asyncio
async def test_the_browsers_of_a_view_get_bytes_framed_once(monkeypatch) -> None:
    """Three browsers of one view: each frame of a round is made once and the three get the
    same bytes."""
    made: list[str] = []
    frame = aggregate_module.sse.frame

    def counting(event: str, data: str, event_id: str | None = None) -> bytes:
        made.append(event)
        return frame(event, data, event_id)

    now = [NOW]
    stream = FakeStream()
    agg = Aggregate(stream, FakeRouter(CONFIG), clock=lambda: now[0], autostart=False)
    page = _Page()
    written: list[list[bytes]] = [[], [], []]
    for out in written:
        await agg.connect(Connection(page, "v", out.append), None)
    monkeypatch.setattr(aggregate_module.sse, "frame", counting)
    stream.entries.append((f"{int(NOW * 1000) + 1000}-0", {"kind": "PAUSE"}))
    now[0] = NOW + 1
    await agg.step()
    await agg.stop()
    assert sorted(made) == ["activity", "state"]
    assert written[0][1:] == written[1][1:] == written[2][1:]
    assert b"<p>1800000001</p>" in b"".join(written[0])


def _entry(n: int, kind: str, at: float, **fields: str) -> FeedEntry:
    from hotline.report.compute import iso

    return FeedEntry(f"{int(at * 1000)}-{n}", {"kind": kind, "time": iso(at), **fields})


def test_the_last_30_minutes_are_counted_from_the_window_alone() -> None:
    """The log hands the recent figures only the window's events and an hour before it;
    they count what the whole day's events count."""
    log = EventLog()
    for n, (call_id, entered, hold) in enumerate((("old", NOW - 7200, 30),
                                                  ("new", NOW - 600, 10))):
        log.add([_entry(2 * n, "ENTERQUEUE", entered, call_id=call_id, queue="billing"),
                 _entry(2 * n + 1, "CONNECT", entered + hold, call_id=call_id, queue="billing",
                        agent="agent101", holdtime=f"{hold:.3f}")], NOW)
    window = log.reported_since(NOW - 1800 - 3600)
    assert [e["call_id"] for e in window] == ["new", "new"]
    _today, whole = figures(log.reported, CONFIG, NOW, day_start=NOW - NOW % 86400,
                            interval_s=1800)
    assert recent_figures(window, CONFIG, NOW).totals == whole.totals


@pytest.mark.parametrize("seconds, text", [(0, "0:00"), (59.9, "0:59"), (3600, "1:00:00"),
                                           (-3, "0:00")])
def test_durations_read_as_the_pages_script_writes_them(seconds: float, text: str) -> None:
    """screens.js writes a running duration as Strings.duration does: m:ss, h:mm:ss from
    an hour, never below zero (the script's copy is checked by the end-to-end test)."""
    assert T.duration(seconds) == text


@on_asyncio
async def test_a_browser_whose_state_did_not_change_is_told_it_is_current() -> None:
    """An activity line whose change was on screen already (no fragment changes) is
    followed by a mark: the browser's Last-Event-ID moves to the round's entry, nothing is
    dispatched; a round that sent a fragment needs no mark."""

    class Still(_Page):
        async def fragments(self, board: Board, key: Hashable) -> Mapping[str, str]:
            return {"state": "<p>same</p>"}

    now = [NOW]
    stream = FakeStream()
    agg = Aggregate(stream, FakeRouter(CONFIG), clock=lambda: now[0], autostart=False)
    written: list[bytes] = []
    await agg.connect(Connection(Still(), "v", written.append), None)
    written.clear()
    entry = f"{int(NOW * 1000) + 1000}-0"
    stream.entries.append((entry, {"kind": "PAUSE"}))
    now[0] = NOW + 1
    await agg.step()
    await agg.stop()
    sent = b"".join(written).decode()
    assert sent.startswith(f"id: {entry}\nevent: activity\n")
    assert sent.endswith(f"\n\nid: {entry}\n\n")
    assert "event: state" not in sent
