"""The wallboard's agents table row by row (screens.render.Table and the fan-out): a browser
that has the table on screen is sent only the rows that changed, as out-of-band swaps by row
key; the whole table on connect, on resume (Last-Event-ID) and when the rows themselves change
(an agent more or less, another order)."""

from __future__ import annotations

import re

from access import Identity, Role
from api.services import AgentService
from api.testing import FakeAudit, FakeRouter
from ivr.testing import on_asyncio
from routing.testing import shipped_config
from screens.aggregate import Aggregate, Connection
from screens.i18n import load_strings
from screens.render import ROWS_EVENT, Renderer, Table
from screens.settings import ScreensSettings
from screens.testing import FakeStream
from screens.wallboard.page import WallboardKey, WallboardPage

NOW = 1_800_000_000.0
CONFIG = shipped_config()
OPS = WallboardKey.of(Identity("olga", Role.OPS))


def _table(rows: dict[str, str]) -> Table:
    return Table("<table>" + "".join(rows.values()) + "</table>", rows, target="#agents",
                 key_attr="data-agent")


def test_only_the_changed_rows_are_swapped_each_in_place_of_its_row() -> None:
    """Two tables with the same rows in the same order: the rows that differ, each marked
    ``hx-swap-oob`` on its first tag to replace the row of its key in the target; the rows
    that did not change are left out."""
    before = _table({"a": '<tr data-agent="a"><td>idle</td></tr>',
                     "b": '\n  <tr data-agent="b"><td>idle</td></tr>'})
    after = _table({"a": '<tr data-agent="a"><td>idle</td></tr>',
                    "b": '\n  <tr data-agent="b"><td>on call</td></tr>'})
    assert after.swaps_from(before) == ("\n  <tr hx-swap-oob=\"outerHTML:#agents "
                                        "[data-agent='b']\" data-agent=\"b\"><td>on call</td></tr>")
    assert after.swaps_from(after) == ""


def test_other_rows_or_another_order_or_rows_without_their_key_send_the_whole_table() -> None:
    """A row more or less, the same rows in another order, a row whose first tag does not
    carry its key, or a key no selector should hold: no swaps (``None``), the table goes
    whole."""
    a, b = '<tr data-agent="a">a</tr>', '<tr data-agent="b">b</tr>'
    shown = _table({"a": a, "b": b})
    assert _table({"a": a}).swaps_from(shown) is None
    assert _table({"b": b, "a": a}).swaps_from(shown) is None
    assert _table({"a": a, "b": "<tr>b2</tr>"}).swaps_from(shown) is None
    odd = "x']"
    assert _table({"a": a, odd: f'<tr data-agent="{odd}">2</tr>'}).swaps_from(
        _table({"a": a, odd: f'<tr data-agent="{odd}">1</tr>'})) is None


def _frames(written: list[bytes]) -> list[tuple[str, str]]:
    out = []
    for chunk in b"".join(written).decode().split("\n\n"):
        lines = [line.split(": ", 1) for line in chunk.split("\n") if ": " in line]
        event = next((v for k, v in lines if k == "event"), None)
        if event is not None:
            out.append((event, "\n".join(v for k, v in lines if k == "data")))
    written.clear()
    return out


@on_asyncio
async def test_a_wallboard_gets_one_row_when_one_agent_changes_and_the_table_on_resume() -> None:
    """A wallboard of every agent connects: the whole table. One agent pauses: the next
    round sends a ``rows`` event with that agent's row alone (out of band, in place of its row), no
    ``agents`` table. A browser resuming from its Last-Event-ID gets the table whole."""
    now = [NOW]
    router = FakeRouter(CONFIG)
    page = WallboardPage(Renderer(load_strings()), ScreensSettings(),
                         AgentService(router, FakeAudit(), lambda a: None))
    aggregate = Aggregate(FakeStream(), router, clock=lambda: now[0], autostart=False)
    written: list[bytes] = []
    await aggregate.connect(Connection(page, OPS, written.append), None)
    first = dict(_frames(written))
    assert first["agents"].count("<tr data-agent=") == len(CONFIG.agents) == 4

    router.states["agent101"] = {"status": "paused", "since": str(NOW), "pause_reason": "break"}
    now[0] = NOW + 1
    await aggregate.step()
    sent = _frames(written)
    assert [e for e, _ in sent] == [ROWS_EVENT]
    rows = re.findall(r"<tr [^>]*>", sent[0][1])
    assert rows == ['<tr hx-swap-oob="outerHTML:#agents [data-agent=\'agent101\']" '
                    'data-agent="agent101">']
    assert "state-paused" in sent[0][1]

    again: list[bytes] = []
    await aggregate.connect(Connection(page, OPS, again.append), "1800000000000-0")
    table = dict(_frames(again))["agents"]
    assert table.count("<tr data-agent=") == len(CONFIG.agents)
    assert '<tr data-agent="agent101">' in table and "state-paused" in table
    await aggregate.stop()
