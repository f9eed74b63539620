"""The wallboard's view model, pure: a :class:`~screens.board.Board`, who looks, the
thresholds and the words in; rows and figures ready for the templates out.

Who sees what: the queue figures need ``queues:read`` (supervisors, ops); the agents table
and the feed show the agents the viewer may read (a supervisor's team, every agent for ops);
the actions offered are those the viewer may take on that agent (``agents:state``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from access import Identity, Permission, Scope
from hotline.report.compute import Figures
from routing import core
from screens.board import Board, FeedEntry
from screens.i18n import Strings
from screens.risk import AtRisk, counts
from screens.running import Running, elapsed
from screens.settings import Level, ScreensSettings
from screens.viewer import agent_scope, may

__all__ = [
    "AgentRow",
    "Chart",
    "ClockRiskRow",
    "ClocksPanel",
    "Figure",
    "QueueDetail",
    "QueueTile",
    "WaitingRow",
    "WallboardView",
    "clocks_panel",
    "queue_detail",
    "wallboard_view",
]

STATE_ORDER = ("available", "offered", "on_call", "wrap_up", "paused", "off_schedule",
               "logged_out")


@dataclass(frozen=True)
class Figure:
    """One number as shown: its text and its level (``ok``, ``warn``, ``alarm``)."""

    text: str
    level: str = Level.OK


@dataclass(frozen=True)
class QueueTile:
    name: str
    waiting: Figure
    longest_wait: Running
    service_level: Figure
    target: str
    service_level_recent: Figure
    answered: Figure
    abandoned: Figure
    abandoned_short: Figure
    asa: Figure
    agents: tuple[tuple[str, int], ...]  # (status label, count), in STATE_ORDER


@dataclass(frozen=True)
class AgentRow:
    agent_id: str
    name: str
    team: str
    status: str  # the raw status (a CSS class)
    status_label: str
    in_state: Running
    pause_reason: str
    queue: str
    actions: tuple[str, ...]  # of pause, resume, logout


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    height: float
    y: float
    label: str  # the accessible text of the bar


@dataclass(frozen=True)
class Chart:
    """Calls offered per interval (bars) and the service level (points) today, in SVG units
    of a ``width`` x ``height`` box; the template draws it."""

    width: int
    height: int
    bars: tuple[Bar, ...]
    line: str  # SVG polyline points of the service level
    points: tuple[tuple[float, float, str], ...]  # (x, y, label) of each service level
    target_y: float | None
    ticks: tuple[tuple[float, str], ...]  # (x, hour label)
    max_offered: int
    summary: str  # the chart in words (for screen readers)


@dataclass(frozen=True)
class FeedRow:
    entry_id: str
    time: str
    text: str


@dataclass(frozen=True)
class ClockRiskRow:
    """One order clock at risk, as the drill-down lists it."""

    risk: AtRisk  # the order, the clock, its queue and agent
    clock: str  # the clock's label
    left: Figure  # time left, or overdue by, coloured by the clock's level
    due: str
    category: str
    urgency: str
    status: str


@dataclass(frozen=True)
class ClocksPanel:
    """The order clocks at risk the viewer may see: how many are due within the window and
    how many are breached (each number coloured when not zero), the rows behind them,
    and since when they could not be read ("" when they could)."""

    window: str
    due_soon: Figure
    breached: Figure
    rows: tuple[ClockRiskRow, ...]
    unavailable: str
    read: bool


@dataclass(frozen=True)
class WallboardView:
    queues: tuple[QueueTile, ...]
    agents: tuple[AgentRow, ...]
    chart: Chart
    feed: tuple[FeedRow, ...]
    clocks: ClocksPanel


@dataclass(frozen=True)
class WaitingRow:
    call_id: str
    request_type: str
    urgency: str
    waited: Figure
    position: int


@dataclass(frozen=True)
class QueueDetail:
    name: str
    waiting: tuple[WaitingRow, ...]
    agents: tuple[AgentRow, ...]


def _count(value: int) -> Figure:
    return Figure(str(value))


def queue_tiles(board: Board, settings: ScreensSettings, t: Strings) -> tuple[QueueTile, ...]:
    th = settings.thresholds
    snapshot = board.snapshot
    tiles = []
    for name, queue in board.config.queues.items():
        waiting = snapshot.by_queue.get(name, [])
        first = min((c.entered_at for c in waiting), default=None)
        longest = snapshot.now - first if first is not None else 0.0
        stats = snapshot.stats.get(name) or core.QueueStats()
        target = queue.service_level.target
        recent = board.recent.totals.get(name)
        today = board.today.totals.get(name)
        states: dict[str, int] = {}
        for agent in snapshot.agents.values():
            if queue.skills.fit(agent.skills):
                shown = snapshot.shown_status(agent)
                states[shown] = states.get(shown, 0) + 1
        tiles.append(QueueTile(
            name=name,
            waiting=Figure(str(len(waiting)), th.waiting.level(len(waiting))),
            longest_wait=Running(t.duration(longest), th.longest_wait_s.level(longest), first),
            service_level=_service_level(stats.service_level, target, settings, t),
            target=t("wallboard.target", percent=round(target * 100),
                     seconds=round(queue.service_level.threshold_s)),
            service_level_recent=_service_level(
                recent.service_level if recent else None, target, settings, t),
            answered=_count(stats.answered),
            abandoned=_count(stats.abandoned),
            abandoned_short=_count(stats.abandoned_short),
            asa=_asa(today, settings, t),
            agents=tuple((t(f"status.{s}"), states[s]) for s in STATE_ORDER if states.get(s)),
        ))
    return tuple(tiles)


def _service_level(value: float | None, target: float, settings: ScreensSettings,
                   t: Strings) -> Figure:
    if value is None:
        return Figure(t.percent(None))
    below = (target - value) * 100
    return Figure(t.percent(value), settings.thresholds.service_level_below_target.level(
        below if below > 0 else None))


def _asa(today: Figures | None, settings: ScreensSettings, t: Strings) -> Figure:
    asa = today.asa_s if today else None
    return Figure(t.duration(asa), settings.thresholds.asa_s.level(asa))


def agent_rows(board: Board, viewer: Identity, settings: ScreensSettings, t: Strings,
               only: set[str] | None = None) -> tuple[AgentRow, ...]:
    """The agents the viewer may read, each with the actions the viewer may take."""
    rows = []
    for agent_id, profile in sorted(board.config.agents.items()):
        if only is not None and agent_id not in only:
            continue
        scope = agent_scope(board.config, agent_id)
        if not may(viewer, Permission.AGENTS_READ, scope):
            continue
        row = agent_row(board, agent_id, profile, settings, t)
        actions = agent_actions(viewer, row, scope)
        rows.append(replace(row, actions=actions) if actions else row)
    return tuple(rows)


def agent_row(board: Board, agent_id: str, profile: core.AgentProfile,
              settings: ScreensSettings, t: Strings) -> AgentRow:
    """One agent's row as anyone sees it (no actions: those are the viewer's)."""
    live = board.agents.get(agent_id, {})
    state = board.snapshot.agents.get(agent_id)
    status = board.snapshot.shown_status(state) if state else live.get("status", "logged_out")
    since = _float(live.get("since"))
    in_state = board.now - since if since is not None else None
    level = (settings.thresholds.paused_s.level(in_state) if status == "paused"
             else Level.OK)
    reason = live.get("pause_reason", "") if status == "paused" else ""
    return AgentRow(
        agent_id=agent_id, name=profile.name, team=profile.team or "",
        status=status, status_label=t(f"status.{status}"),
        in_state=elapsed(t, since, board.now, level),
        pause_reason=t.label("reason", reason) if reason else "",
        queue=(state.queue or "") if state else "",
        actions=(),
    )


_ACTIONS = {"available": ("pause", "logout"), "off_schedule": ("pause", "logout"),
            "paused": ("resume", "logout"), "wrap_up": ("pause", "logout")}


def agent_actions(viewer: Identity, row: AgentRow, scope: Scope) -> tuple[str, ...]:
    """What the viewer may do to the agent of ``row`` (``agents:state``, not to oneself)."""
    if viewer.user != row.agent_id and may(viewer, Permission.AGENT_STATE_CHANGE, scope):
        return _ACTIONS.get(row.status, ())
    return ()


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def chart(board: Board, t: Strings, width: int = 720, height: int = 180) -> Chart:
    """Offered calls per interval (all queues together) as bars, the service level of those
    intervals as a line over the same axis (0-100 %); the axis is the whole UTC day, filled
    so far."""
    rows = _merged_intervals(board)
    count = max(1, len(rows), round(86400 / board.today.interval_s))
    slot = width / count
    top = max((offered for _s, offered, _sl in rows), default=0)
    scale = (height - 20) / top if top else 0.0
    bars, points, dots = [], [], []
    for i, (start, offered, level) in enumerate(rows):
        h = offered * scale
        x = i * slot
        hour = t.clock(start)
        sl_text = t.percent(level)
        bars.append(Bar(round(x + 1, 1), round(max(1.0, slot - 2), 1), round(h, 1),
                        round(height - h, 1),
                        t("chart.bar", start=hour, offered=offered, level=sl_text)))
        if level is not None:
            cx, cy = round(x + slot / 2, 1), round(height - level * (height - 20), 1)
            points.append(f"{cx},{cy}")
            dots.append((cx, cy, t("chart.point", start=hour, level=sl_text)))
    day = board.today.start
    ticks = tuple(
        (round(i * slot, 1), t.clock(day + i * board.today.interval_s)) for i in range(count)
        if int(day + i * board.today.interval_s) % 10800 == 0
    )
    targets = [q.service_level.target for q in board.config.queues.values()]
    target_y = round(height - min(targets) * (height - 20), 1) if targets else None
    total = sum(offered for _s, offered, _l in rows)
    return Chart(width, height, tuple(bars), " ".join(points), tuple(dots), target_y, ticks, top,
                 t("chart.summary", offered=total, intervals=len(rows)))


def _merged_intervals(board: Board) -> list[tuple[float, int, float | None]]:
    """(start, offered, service level) per interval of today, every queue together."""
    per_queue = list(board.today.intervals.values())
    if not per_queue:
        return []
    out = []
    for rows in zip(*per_queue, strict=True):
        stats = core.QueueStats()
        offered = 0
        for row in rows:
            offered += row.offered
            s = row.stats
            stats = core.QueueStats(
                answered=stats.answered + s.answered,
                answered_within=stats.answered_within + s.answered_within,
                abandoned=stats.abandoned + s.abandoned,
                abandoned_short=stats.abandoned_short + s.abandoned_short,
            )
        if rows[0].start > board.now:
            break
        out.append((rows[0].start, offered, stats.service_level))
    return out


def feed_rows(feed: Sequence[FeedEntry], viewer: Identity, board: Board, t: Strings,
              *, agent: str | None = None, limit: int = 20) -> tuple[FeedRow, ...]:
    """The newest events the viewer may see, newest first (an agent's desk: its own)."""
    rows: list[FeedRow] = []
    for entry in reversed(feed):
        if not visible(entry, viewer, board, agent=agent):
            continue
        rows.append(feed_row(entry, t))
        if len(rows) >= limit:
            break
    return tuple(rows)


def visible(entry: FeedEntry, viewer: Identity, board: Board, *, agent: str | None = None
            ) -> bool:
    """Whether a feed entry is shown: call and agent events only (work orders' carry no
    personal data, but their lists are the desk's), of an agent the viewer may read or of a
    queue the viewer may read."""
    if entry.kind.startswith("WO") or entry.kind not in FEED_KINDS:
        return False
    if agent is not None:
        return entry.agent == agent
    if entry.agent:
        return may(viewer, Permission.AGENTS_READ, agent_scope(board.config, entry.agent))
    return may(viewer, Permission.QUEUES_READ)


FEED_KINDS = frozenset({
    "ENTERQUEUE", "CONNECT", "ABANDON", "COMPLETECALLER", "COMPLETEAGENT", "EXITWITHTIMEOUT",
    "RINGNOANSWER", "RINGBUSY", "RINGCANCELED", "RINGUNAVAILABLE", "PAUSE", "UNPAUSE",
    "AGENTLOGIN", "AGENTLOGOFF", "WRAPUPEND", "CALLBACKREQUEST",
})


def feed_row(entry: FeedEntry, t: Strings) -> FeedRow:
    f = entry.fields
    text = t(f"event.{entry.kind}", agent=f.get("agent", ""), queue=f.get("queue", ""),
             reason=f.get("reason", ""))
    return FeedRow(entry.id, f.get("time", "")[11:19], text)


def wallboard_view(board: Board, viewer: Identity, settings: ScreensSettings,
                   t: Strings) -> WallboardView:
    return WallboardView(
        queues=queue_tiles(board, settings, t),
        agents=agent_rows(board, viewer, settings, t),
        chart=chart(board, t),
        feed=feed_rows(board.feed, viewer, board, t),
        clocks=clocks_panel(board, viewer, settings, t),
    )


def clocks_panel(board: Board, viewer: Identity, settings: ScreensSettings,
                 t: Strings, *, rows: bool = True) -> ClocksPanel:
    """The clocks at risk of the orders the viewer may read (``workorders:read``: a
    supervisor's team's agents' orders, every order for ops), as the API would hand them out;
    no personal data is shown (number, name, request stay in the order). Without ``rows``
    only the counts (the live page's: each row's time left changes every second)."""
    at_risk = board.at_risk
    seen = [r for r in at_risk.clocks
            if may(viewer, Permission.WORKORDERS_READ, agent_scope(board.config, r.agent or None))]
    n = counts(seen)
    return ClocksPanel(
        window=t("wallboard.clocks_due", minutes=round(settings.clock_warning_s / 60)),
        due_soon=Figure(str(n[Level.WARN]), Level.WARN if n[Level.WARN] else Level.OK),
        breached=Figure(str(n[Level.ALARM]), Level.ALARM if n[Level.ALARM] else Level.OK),
        rows=tuple(_risk_row(r, board.now, t) for r in seen) if rows else (),
        unavailable=t("wallboard.clocks_unavailable",
                      time=t.clock(at_risk.unavailable_since, seconds=True))
        if at_risk.unavailable_since is not None else "",
        read=at_risk.read,
    )


def _risk_row(row: AtRisk, now: float, t: Strings) -> ClockRiskRow:
    left = row.due.timestamp() - now
    text = t.duration(left) if left >= 0 else t("wallboard.overdue", duration=t.duration(-left))
    return ClockRiskRow(
        risk=row, clock=t(f"clock.{row.clock.value}"), left=Figure(text, row.level),
        due=row.due.strftime("%Y-%m-%d %H:%M UTC"), category=t.category(row.category),
        urgency=t.label("urgency", row.urgency), status=t(f"order.status.{row.status}"),
    )


def queue_detail(board: Board, queue: str, viewer: Identity, settings: ScreensSettings,
                 t: Strings) -> QueueDetail | None:
    """The drill-down behind a queue's numbers: which calls wait (in routing order), which
    agents serve it and in which state. ``None`` for a queue not configured."""
    config = board.config.queues.get(queue)
    if config is None:
        return None
    snapshot = board.snapshot
    waiting = tuple(
        WaitingRow(c.call_id, c.request_type, c.urgency,
                   Figure(t.duration(snapshot.now - c.entered_at),
                          settings.thresholds.longest_wait_s.level(snapshot.now - c.entered_at)),
                   i + 1)
        for i, c in enumerate(snapshot.in_queue(queue))
    )
    fit = {a.agent_id for a in snapshot.agents.values() if config.skills.fit(a.skills)}
    return QueueDetail(queue, waiting, agent_rows(board, viewer, settings, t, only=fit))
