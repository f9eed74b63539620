"""The wallboard's side of the fan-out and its supervisor actions.

A view is whose eyes look (:class:`WallboardKey`: role and team), so every supervisor of one
team shares one rendering per round. The order clocks at risk are counted on the live page
(only the numbers: they change when an order enters the window or breaches); the orders
behind them are a drill-down. Actions (pause, resume, log out an agent) go through the
API's :class:`api.services.AgentService`: the same routing scripts, the same authorization
(a supervisor's own team), the same audit entry (``agent.state``).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass

from access import Identity, Role
from api.routes import Actor
from api.services import AgentService
from routing.core.agents import SYSTEM_PAUSE_REASONS
from screens.board import Board, FeedEntry
from screens.render import Fragments, Renderer
from screens.settings import ScreensSettings
from screens.wallboard.view import (
    Chart,
    QueueTile,
    agent_rows,
    chart,
    clocks_panel,
    feed_row,
    queue_detail,
    queue_tiles,
    visible,
)

__all__ = ["WallboardKey", "WallboardPage"]


@dataclass(frozen=True)
class WallboardKey:
    role: Role
    team: str | None

    @classmethod
    def of(cls, identity: Identity) -> WallboardKey:
        return cls(identity.role, identity.team)

    @property
    def viewer(self) -> Identity:
        # no user: a wallboard shows nobody as "self", supervisors are not agents
        return Identity("", self.role, self.team)


class WallboardPage:
    def __init__(self, renderer: Renderer, settings: ScreensSettings,
                 agents: AgentService) -> None:
        self.renderer = renderer
        self.settings = settings
        self.agents = agents
        self._fragments = Fragments(renderer)
        self._made: tuple[Board, tuple[tuple[QueueTile, ...], Chart]] | None = None

    def _key(self, key: Hashable) -> WallboardKey:
        assert isinstance(key, WallboardKey)
        return key

    def reasons(self, board: Board) -> list[tuple[str, str]]:
        t = self.renderer.strings
        return [(r, t.label("reason", r))
                for r in sorted(board.config.pause_reasons - SYSTEM_PAUSE_REASONS)]

    async def fragments(self, board: Board, key: Hashable) -> Mapping[str, str]:
        view = self._key(key)
        viewer = view.viewer
        t = self.renderer.strings
        r = self._fragments.render
        tiles, drawn = self._shared(board)
        return {
            "queues": r(view, "_queues.html", queues=tiles),
            "agents": r(view, "_agents.html",
                        agents=agent_rows(board, viewer, self.settings, t),
                        reasons=self.reasons(board)),
            "chart": r(view, "_chart.html", chart=drawn),
            "clocks": r(view, "_clocks.html",
                        clocks=clocks_panel(board, viewer, self.settings, t)),
        }

    def _shared(self, board: Board) -> tuple[tuple[QueueTile, ...], Chart]:
        """The queue tiles and the chart: the same for every viewer, made once a board."""
        if self._made is None or self._made[0] is not board:
            t = self.renderer.strings
            self._made = (board, (queue_tiles(board, self.settings, t), chart(board, t)))
        return self._made[1]

    def notice(self, since: float | None) -> str:
        return self.renderer.notice(since)

    def activity(self, board: Board, entry: FeedEntry, key: Hashable) -> str | None:
        if not visible(entry, self._key(key).viewer, board):
            return None
        return self.renderer.render("_activity.html", row=feed_row(entry, self.renderer.strings))

    def detail(self, board: Board, queue: str, identity: Identity) -> str | None:
        found = queue_detail(board, queue, WallboardKey.of(identity).viewer, self.settings,
                             self.renderer.strings)
        return None if found is None else self.renderer.render("_detail.html", detail=found)

    def clocks(self, board: Board, identity: Identity) -> str:
        """The drill-down behind the clocks at risk: which orders, which clock, how late."""
        panel = clocks_panel(board, WallboardKey.of(identity).viewer, self.settings,
                             self.renderer.strings)
        return self.renderer.render("_risk.html", clocks=panel)

    async def act(self, actor: Actor, agent_id: str, action: str, reason: str) -> str:
        """A supervisor's action on an agent (authorized and audited by the service); the
        confirmation line. Raises the API's errors (403, 404, 409, 400)."""
        done = await self.agents.act(actor, agent_id, action, reason)
        t = self.renderer.strings
        return self.renderer.render("_message.html", error=False, message=t(
            "wallboard.done", agent=agent_id, status=t(f"status.{done['status']}")))
