"""The screens' live aggregate against a real redis-server: one reader of the events stream
and the live routing state per instance, fanning fragments out to connected browsers, with
Last-Event-ID resuming from the shared stream (so after a restart, or on another instance).

The router and the aggregate are asyncio code; each test body runs as an asyncio Task on the
reactor's loop (``on_asyncio``), as in the service.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Hashable, Mapping

import pytest
import redis.asyncio as aioredis

from access import Identity, Role
from api.services import AgentService
from api.testing import FakeAudit
from ivr.testing import on_asyncio
from routing.live import LiveRouter
from routing.testing import shipped_config
from screens.aggregate import Aggregate, Connection
from screens.board import Board, FeedEntry
from screens.i18n import load_strings
from screens.render import Renderer
from screens.settings import ScreensSettings
from screens.wallboard.page import WallboardKey, WallboardPage

CONFIG = shipped_config()
OPS = WallboardKey.of(Identity("olga", Role.OPS))
BILLING = WallboardKey.of(Identity("sam", Role.SUPERVISOR, "billing-desk"))


class CountingPage(WallboardPage):
    """The wallboard, counting its renderings (one per view and round, however many
    browsers share the view)."""

    renders = 0

    async def fragments(self, board: Board, key: Hashable) -> Mapping[str, str]:
        self.renders += 1
        return await super().fragments(board, key)


@pytest.fixture
def setup(redis_server):
    client = aioredis.Redis.from_url(redis_server.url)
    prefix = f"t{uuid.uuid4().hex[:8]}:"
    router = LiveRouter(client, lambda: CONFIG, instance="hotline-1", prefix=prefix,
                        clock=time.time)
    renderer = Renderer(load_strings())
    page = CountingPage(renderer, ScreensSettings(),
                        AgentService(router, FakeAudit(), lambda a: None))
    aggregate = Aggregate(client, router, prefix=prefix, clock=time.time, block_ms=50,
                          autostart=False)
    return router, page, aggregate


def _frames(written: list[bytes]) -> list[dict[str, str]]:
    """The frames a browser received, each as its fields (data lines joined)."""
    out = []
    for chunk in b"".join(written).decode().split("\n\n"):
        fields: dict[str, str] = {}
        for line in chunk.split("\n"):
            name, _, value = line.partition(": ")
            if name == "data":
                fields["data"] = fields["data"] + "\n" + value if "data" in fields else value
            elif name in ("id", "event", "retry"):
                fields[name] = value
        if fields:
            out.append(fields)
    return out


@on_asyncio
async def test_a_browser_gets_the_state_then_the_events_as_they_happen(setup) -> None:
    """On connecting, the state in full (queues, agents, chart, clocks) carrying the last stream id;
    an agent pausing then arrives as an activity line with its own entry id, followed by the
    agent's row in the agents table (and only what changed)."""
    router, page, aggregate = setup
    await router.sync_agents()
    written: list[bytes] = []
    await aggregate.connect(Connection(page, OPS, written.append), None)
    try:
        first = _frames(written)
        assert first[0] == {"retry": "1000"}
        assert {f["event"] for f in first[1:]} == {"queues", "agents", "chart", "clocks"}
        assert all(f["id"] == aggregate.log.last_id for f in first[1:])
        written.clear()

        await router.agent_action("agent101", "pause", "lunch")
        await aggregate.step()
        frames = _frames(written)
        activity = [f for f in frames if f["event"] == "activity"]
        assert len(activity) == 1 and "agent101 paused (lunch)" in activity[0]["data"]
        assert activity[0]["id"] == aggregate.log.last_id
        rows = [f for f in frames if f["event"] == "rows"]  # the row alone, not the table
        assert len(rows) == 1 and rows[0]["data"].count("<tr ") == 1
        assert 'data-agent="agent101"' in rows[0]["data"]
        assert "agents" not in {f["event"] for f in frames}
        assert "chart" not in {f["event"] for f in frames}  # unchanged: not sent again
    finally:
        await aggregate.stop()


@on_asyncio
async def test_resume_replays_only_what_the_browser_missed(setup) -> None:
    """A browser that comes back with Last-Event-ID (after the service restarted: a new
    aggregate) gets the activity after that id, each line once, then the state."""
    router, page, aggregate = setup
    await router.sync_agents()
    await router.agent_action("agent101", "pause", "lunch")
    await aggregate.step()
    seen = aggregate.log.last_id
    await router.agent_action("agent101", "resume")
    await router.agent_action("agent102", "pause", "break")

    restarted = Aggregate(aggregate.redis, router, prefix=router.prefix, clock=time.time,
                          autostart=False)
    written: list[bytes] = []
    await restarted.connect(Connection(page, OPS, written.append), seen)
    try:
        activity = [f for f in _frames(written) if f.get("event") == "activity"]
        assert ["agent101 resumed" in activity[0]["data"],
                "agent102 paused (break)" in activity[1]["data"]] == [True, True]
        assert len(activity) == 2
        assert all(f["id"] > seen for f in activity)
    finally:
        await restarted.stop()
        await aggregate.stop()


@on_asyncio
async def test_one_rendering_per_view_whatever_the_number_of_browsers(setup) -> None:
    """Ten browsers of one view cost one rendering per round; a second view (a supervisor's
    team) one more, and it shows only that team's agents."""
    router, page, aggregate = setup
    await router.sync_agents()
    ops = [[] for _ in range(10)]
    team: list[bytes] = []
    for sink in ops:
        await aggregate.connect(Connection(page, OPS, sink.append), None)
    await aggregate.connect(Connection(page, BILLING, team.append), None)
    try:
        page.renders = 0
        await router.agent_action("agent103", "pause", "training")
        await aggregate.step()
        assert page.renders == 2
        assert all(b"agent103 paused (training)" in b"".join(sink) for sink in ops)
        team_text = b"".join(team)
        assert b"agent103" not in team_text and b'data-agent="agent101"' in team_text
    finally:
        await aggregate.stop()


@on_asyncio
async def test_todays_figures_come_from_the_stream(setup) -> None:
    """Loaded at start from today's events: a call that entered and was answered counts in
    the board's report (the chart's and ASA's source)."""
    router, _page, aggregate = setup
    from events import emit

    now = time.time()
    await emit(aggregate.redis, "ENTERQUEUE", now - 20, prefix=router.prefix, call_id="x",
               queue="billing")
    await emit(aggregate.redis, "CONNECT", now - 10, prefix=router.prefix, call_id="x",
               queue="billing", agent="agent101", holdtime="10.000")
    await aggregate.load()
    board = await aggregate.refresh()
    assert board.today.totals["billing"].offered == 1
    assert board.today.totals["billing"].asa_s == pytest.approx(10.0)
    assert [e.kind for e in board.feed][-2:] == ["ENTERQUEUE", "CONNECT"]
    assert isinstance(board.feed[-1], FeedEntry)


@on_asyncio
async def test_the_pooled_agents_read_gives_what_the_router_gives(setup) -> None:
    """The aggregate's read of the agents' hashes (one pipelined round trip,
    screens.wiring.PooledAgents) gives what ``LiveRouter.agents`` gives, schedule included."""
    from screens.wiring import PooledAgents

    router, _page, aggregate = setup
    await router.sync_agents()
    await router.agent_action("agent102", "pause", "lunch")
    pooled = PooledAgents(router, aggregate.redis, router.prefix)
    assert await pooled.agents() == await router.agents()
    assert pooled.config() is router.config()
    await aggregate.stop()


@on_asyncio
async def test_the_pooled_agents_read_again_only_the_agents_the_snapshot_says_changed(
        setup) -> None:
    """After a first read of every hash, a change made through the routing scripts (a
    pause: the change log names the agent) is read at the next round; a field written
    behind the scripts' back is not, until the periodic full read."""
    from screens.wiring import PooledAgents

    router, _page, aggregate = setup
    await router.sync_agents()
    pooled = PooledAgents(router, aggregate.redis, router.prefix, full_read_s=3600.0)
    await pooled.snapshot()
    before = await pooled.agents()
    assert before["agent101"]["status"] != "paused"

    await aggregate.redis.hset(f"{router.prefix}{{rt}}:agent:agent102", "since", "1.0")
    await router.agent_action("agent101", "pause", "lunch")
    await pooled.snapshot()
    after = await pooled.agents()
    assert (after["agent101"]["status"], after["agent101"]["pause_reason"]) == ("paused", "lunch")
    assert after["agent102"]["since"] == before["agent102"]["since"]  # not read again

    pooled.full_read_s = 0.0
    await pooled.snapshot()
    assert (await pooled.agents())["agent102"]["since"] == "1.0"
    await aggregate.stop()


@on_asyncio
async def test_any_instance_shows_what_another_instance_did(setup) -> None:
    """Two instances behind one Redis, each with its own router and aggregate: a pause
    made through the first shows on a wallboard connected to the second (its activity line
    and the agent's row), read from the shared pool and stream."""
    router, page, aggregate = setup
    await router.sync_agents()
    other = LiveRouter(aggregate.redis, lambda: CONFIG, instance="hotline-2",
                       prefix=router.prefix, clock=time.time)
    second = Aggregate(aggregate.redis, other, prefix=router.prefix, clock=time.time,
                       block_ms=50, autostart=False)
    written: list[bytes] = []
    await second.connect(Connection(page, OPS, written.append), None)
    try:
        written.clear()
        await router.agent_action("agent101", "pause", "lunch")
        await second.step()
        frames = {f["event"]: f["data"] for f in _frames(written) if "event" in f}
        assert "agent101 paused (lunch)" in frames["activity"]
        # the browser has the table: the agent's row comes alone
        row = frames["rows"].split('data-agent="agent101"')[1].split("</tr>")[0]
        assert "Paused" in row and "Lunch" in row
    finally:
        await second.stop()
        await aggregate.stop()
