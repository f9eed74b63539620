"""The wallboard's agents table row by row (screens.render.Table and the fan-out): a browser
that has the table on screen is sent only the rows that changed, as out-of-band swaps by row
id; the whole table on connect, on resume (Last-Event-ID) and when the rows themselves change
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
    return Table("<table>" + "".join(rows.values()) + "</table>", rows)


def test_only_the_changed_rows_are_swapped_each_by_its_id() -> None:
    """Two tables with the same rows in the same order: the rows that differ, each marked
    ``hx-swap-oob`` on its first tag (which carries its id); the others left out."""
    before = _table({"agent-a": '<tr id="agent-a"><td>idle</td></tr>',
                     "agent-b": '\n  <tr id="agent-b"><td>idle</td></tr>'})
    after = _table({"agent-a": '<tr id="agent-a"><td>idle</td></tr>',
                    "agent-b": '\n  <tr id="agent-b"><td>on call</td></tr>'})
    assert after.swaps_from(before) == \
        '\n  <tr hx-swap-oob="true" id="agent-b"><td>on call</td></tr>'
    assert after.swaps_from(after) == ""


def test_other_rows_or_another_order_or_rows_without_their_id_send_the_whole_table() -> None:
    """A row more or less, the same rows in another order, or a row whose first tag does
    not carry its id: no swaps (``None``), the table goes whole."""
    a, b = '<tr id="agent-a">a</tr>', '<tr id="agent-b">b</tr>'
    shown = _table({"agent-a": a, "agent-b": b})
    assert _table({"agent-a": a}).swaps_from(shown) is None
    assert _table({"agent-b": b, "agent-a": a}).swaps_from(shown) is None
    assert _table({"agent-a": a, "agent-b": "<tr>b2</tr>"}).swaps_from(shown) is None


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
    round sends a ``rows`` event with that agent's row alone (out of band, by its id), no
    ``agents`` table. A browser resuming from its Last-Event-ID gets the table whole."""
    now = [NOW]
    router = FakeRouter(CONFIG)
    page = WallboardPage(Renderer(load_strings()), ScreensSettings(),
                         AgentService(router, FakeAudit(), lambda a: None))
    aggregate = Aggregate(FakeStream(), router, clock=lambda: now[0], autostart=False)
    written: list[bytes] = []
    await aggregate.connect(Connection(page, OPS, written.append), None)
    first = dict(_frames(written))
    assert first["agents"].count("<tr id=\"agent-") == len(CONFIG.agents) == 4

    router.states["agent101"] = {"status": "paused", "since": str(NOW), "pause_reason": "break"}
    now[0] = NOW + 1
    await aggregate.step()
    sent = _frames(written)
    assert [e for e, _ in sent] == [ROWS_EVENT]
    rows = re.findall(r"<tr [^>]*>", sent[0][1])
    assert rows == ['<tr hx-swap-oob="true" id="agent-agent101" data-agent="agent101">']
    assert "state-paused" in sent[0][1]

    again: list[bytes] = []
    await aggregate.connect(Connection(page, OPS, again.append), "1800000000000-0")
    table = dict(_frames(again))["agents"]
    assert table.count("<tr id=\"agent-") == len(CONFIG.agents)
    assert 'id="agent-agent101" data-agent="agent101">' in table and "state-paused" in table
    await aggregate.stop()
