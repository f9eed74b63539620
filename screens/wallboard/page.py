"""The wallboard's side of the fan-out and its supervisor actions.

A view is whose eyes look (:class:`WallboardKey`: role and team), so every supervisor of one
team shares one rendering per round. The order clocks at risk are counted on the live page
(only the numbers: they change when an order enters the window or breaches); the orders
behind them are a drill-down. Actions (pause, resume, log out an agent) go through the
API's :class:`api.services.AgentService`: the same routing scripts, the same authorization
(a supervisor's own team), the same audit entry (``agent.state``).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, replace

from markupsafe import Markup

from access import Identity, Permission, Role, Scope
from api.routes import Actor
from api.services import AgentService
from routing.core.agents import SYSTEM_PAUSE_REASONS
from screens.board import Board, FeedEntry
from screens.render import Fragments, Renderer, Rows, Table
from screens.settings import ScreensSettings
from screens.viewer import agent_scope, may
from screens.wallboard.view import (
    AgentRow,
    agent_actions,
    agent_row,
    chart,
    clocks_panel,
    feed_row,
    queue_detail,
    queue_tiles,
    visible,
)

_EVERYONE = "*"  # the view key of what every wallboard shows the same

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
        self._rows = Rows(renderer, "_agent_row.html")
        self._lines = Rows(renderer, "_activity.html", kept=2_000)
        self._made: tuple[Board, _Shared] | None = None

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
        r = self._fragments.render
        shared = self._shared(board)
        rows = shared.agents_for(viewer)
        return {
            "queues": shared.queues,
            "agents": Table(r(view, "_agents.html", rows=tuple(rows.values())), rows,
                            target="#agents", key_attr="data-agent"),
            "chart": shared.chart,
            "clocks": r(view, "_clocks.html", clocks=clocks_panel(
                board, viewer, self.settings, self.renderer.strings, rows=False)),
        }

    def _shared(self, board: Board) -> _Shared:
        """What every wallboard shows alike, made once a board: the queue tiles and the
        chart (rendered once for all), the agents' rows (each viewer picks those it may
        read, with or without the actions it may take)."""
        if self._made is None or self._made[0] is not board:
            t = self.renderer.strings
            r = self._fragments.render
            reasons = tuple(self.reasons(board))
            rows = [(agent_scope(board.config, agent_id),
                     agent_row(board, agent_id, profile, self.settings, t))
                    for agent_id, profile in sorted(board.config.agents.items())]
            self._made = (board, _Shared(
                queues=r(_EVERYONE, "_queues.html",
                         queues=queue_tiles(board, self.settings, t)),
                chart=r(_EVERYONE, "_chart.html", chart=chart(board, t)),
                rows=rows, html=lambda row: self._rows.render(row, reasons=reasons)))
        return self._made[1]

    def notice(self, since: float | None) -> str:
        return self.renderer.notice(since)

    def activity(self, board: Board, entry: FeedEntry, key: Hashable) -> str | None:
        if not visible(entry, self._key(key).viewer, board):
            return None
        return self._lines.render(feed_row(entry, self.renderer.strings))

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


class _Shared:
    """One board's part of every wallboard (:meth:`WallboardPage._shared`)."""

    def __init__(self, queues: str, chart: str, rows: list[tuple[Scope, AgentRow]],
                 html: Callable[[AgentRow], Markup]) -> None:
        self.queues = queues
        self.chart = chart
        self.rows = rows
        self.html = html
        self._by_row: dict[tuple[str, tuple[str, ...]], Markup] = {}

    def agents_for(self, viewer: Identity) -> dict[str, Markup]:
        """The rows ``viewer`` may read (``agents:read``), with the actions it may take, by
        agent (each row's ``data-agent``)."""
        out = {}
        for scope, row in self.rows:
            if not may(viewer, Permission.AGENTS_READ, scope):
                continue
            actions = agent_actions(viewer, row, scope)
            made = self._by_row.get((row.agent_id, actions))
            if made is None:
                made = self._by_row[(row.agent_id, actions)] = self.html(
                    replace(row, actions=actions) if actions else row)
            out[row.agent_id] = made
        return out
