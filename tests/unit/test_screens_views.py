"""The screens' view models (screens.wallboard.view, screens.desk.view): a board and who
looks in, rows and coloured figures out; pure, no templates."""

from __future__ import annotations

from dataclasses import replace

from access import Identity, Role
from routing import core
from routing.testing import agent, call, shipped_config, snapshot
from screens.board import FeedEntry
from screens.desk.view import CallFacts, DeskData, desk_view, order_panel, state_panel
from screens.i18n import load_strings
from screens.settings import ScreensSettings
from screens.testing import board
from screens.wallboard.view import agent_rows, chart, feed_rows, queue_detail, queue_tiles
from workorders.clocks import ClockPolicy
from workorders.model import Event, Policy, apply, create_order

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z
T = load_strings()
SETTINGS = ScreensSettings()
CONFIG = shipped_config()
SUPERVISOR = Identity("sam", Role.SUPERVISOR, "billing-desk")
OPS = Identity("olga", Role.OPS)


def _iso(epoch: float) -> str:
    from hotline.report.compute import iso

    return iso(epoch)


def _entry(n: int, kind: str, at: float, **fields: str) -> FeedEntry:
    return FeedEntry(f"{int(at * 1000)}-{n}", {"kind": kind, "time": _iso(at), **fields})


def test_queue_tile_counts_waiting_calls_and_colours_them_by_threshold() -> None:
    """Waiting calls and the longest wait come from the snapshot; 6 waiting (alarm at 6) and
    a 45 s wait (warn from 30) are coloured."""
    calls = [call(f"c{i}", "inquiry", "billing", NOW - 5 * i) for i in range(6)]
    calls.append(call("c9", "inquiry", "billing", NOW - 45))
    stats = {"billing": core.QueueStats(answered=10, answered_within=7, abandoned=2,
                                        abandoned_short=1)}
    b = board(CONFIG, now=NOW, snapshot=snapshot(NOW, [], calls, stats))
    tile = next(t for t in queue_tiles(b, SETTINGS, T) if t.name == "billing")
    assert (tile.waiting.text, tile.waiting.level) == ("7", "alarm")
    assert (tile.longest_wait.text, tile.longest_wait.level) == ("0:45", "warn")
    # 7 within target of 12 counted (short abandons left out): 22 points below 80 % -> alarm
    assert (tile.service_level.text, tile.service_level.level) == ("58 %", "alarm")
    assert (tile.answered.text, tile.abandoned.text, tile.abandoned_short.text) == ("10", "2", "1")
    assert tile.target == "target 80 % in 20 s"


def test_service_level_at_target_is_not_coloured_and_none_shows_a_dash() -> None:
    """A queue meeting its target is ``ok``; a queue with no call yet shows a dash."""
    stats = {"billing": core.QueueStats(answered=10, answered_within=9)}
    b = board(CONFIG, now=NOW, snapshot=snapshot(NOW, [], [], stats))
    tiles = {t.name: t for t in queue_tiles(b, SETTINGS, T)}
    assert (tiles["billing"].service_level.text, tiles["billing"].service_level.level) == (
        "90 %", "ok")
    assert tiles["faults"].service_level.text == "\u2014"


def test_asa_and_last_30_minutes_come_from_the_events() -> None:
    """ASA is the mean hold time of today's answered calls; the last 30 minutes count only
    calls that entered in that window (ivr report's arithmetic)."""
    events = [
        _entry(1, "ENTERQUEUE", NOW - 7200, call_id="old", queue="billing"),
        _entry(2, "CONNECT", NOW - 7170, call_id="old", queue="billing", agent="agent101",
               holdtime="30.000"),
        _entry(3, "ENTERQUEUE", NOW - 600, call_id="new", queue="billing"),
        _entry(4, "CONNECT", NOW - 590, call_id="new", queue="billing", agent="agent101",
               holdtime="10.000"),
    ]
    b = board(CONFIG, now=NOW, events=events)
    tile = next(t for t in queue_tiles(b, SETTINGS, T) if t.name == "billing")
    assert tile.asa.text == "0:20"
    assert tile.service_level_recent.text == "100 %"


def test_agents_table_shows_a_supervisor_only_their_team_with_actions() -> None:
    """A supervisor sees the team's agents (billing-desk: agent101, agent102) with time in
    state and pause reason, and the actions that state allows; ops see everyone."""
    live = {
        "agent101": {"status": "paused", "pause_reason": "lunch", "since": str(NOW - 1900)},
        "agent102": {"status": "available", "since": str(NOW - 10)},
        "agent103": {"status": "available", "since": str(NOW - 10)},
    }
    agents = [agent("agent101", {"billing": 5}, status=core.AgentStatus.PAUSED),
              agent("agent102", {"sales": 5}), agent("agent103", {"network": 5})]
    b = board(CONFIG, now=NOW, agents=live, snapshot=snapshot(NOW, agents, []))
    rows = {r.agent_id: r for r in agent_rows(b, SUPERVISOR, SETTINGS, T)}
    assert set(rows) == {"agent101", "agent102"}
    paused = rows["agent101"]
    assert (paused.status_label, paused.pause_reason) == ("Paused", "Lunch")
    assert (paused.in_state.text, paused.in_state.level) == ("31:40", "alarm")
    assert paused.actions == ("resume", "logout")
    assert rows["agent102"].actions == ("pause", "logout")
    assert {r.agent_id for r in agent_rows(b, OPS, SETTINGS, T)} >= {"agent103"}


def test_feed_hides_other_teams_agents_and_work_order_events() -> None:
    """A supervisor's activity shows queue events and the team's agents, never another
    team's agent nor work-order events (orders are the desk's)."""
    events = [
        _entry(1, "PAUSE", NOW - 3, agent="agent103", reason="break"),
        _entry(2, "PAUSE", NOW - 2, agent="agent101", reason="break"),
        _entry(3, "WOCREATE", NOW - 1, order_id="7"),
        _entry(4, "ENTERQUEUE", NOW, call_id="c", queue="billing"),
    ]
    b = board(CONFIG, now=NOW, events=events)
    rows = feed_rows(b.feed, SUPERVISOR, b, T)
    assert [r.text for r in rows] == ["A call entered billing", "agent101 paused (break)"]
    assert rows[0].entry_id == events[3].id


def test_chart_has_a_bar_per_interval_so_far_with_words_for_screen_readers() -> None:
    """Today's intervals up to now (08:00 UTC: 16 half hours), bars scaled to the busiest,
    each with its own label, and a summary in words."""
    events = [_entry(1, "ENTERQUEUE", NOW - 100, call_id="a", queue="billing"),
              _entry(2, "CONNECT", NOW - 90, call_id="a", queue="billing", agent="x",
                     holdtime="10.0")]
    c = chart(board(CONFIG, now=NOW, events=events), T)
    assert len(c.bars) == 16  # the day's 48 slots, filled up to now
    assert c.bars[1].x == round(720 / 48 + 1, 1)
    assert c.bars[-1].label == "07:30: 1 offered, service level 100 %"
    assert c.bars[-1].height == c.height - 20
    assert c.bars[0].height == 0
    assert c.summary == "Calls offered today: 1, in 16 intervals."
    assert c.line and [label for _x, _y, label in c.points] == [
        "07:30: service level 100 %"]


def test_queue_detail_lists_waiting_calls_in_routing_order() -> None:
    """The drill-down behind the waiting count: the calls in routing order with their wait,
    and the agents who fit the queue; an unknown queue has none."""
    calls = [call("late", "inquiry", "billing", NOW - 10, seq=2),
             call("early", "inquiry", "billing", NOW - 50, seq=1)]
    agents = [agent("agent101", {"billing": 5}), agent("agent103", {"network": 5})]
    b = board(CONFIG, now=NOW, snapshot=snapshot(NOW, agents, calls),
              agents={"agent101": {"status": "available"}})
    detail = queue_detail(b, "billing", OPS, SETTINGS, T)
    assert detail is not None
    assert [(w.call_id, w.position, w.waited.text) for w in detail.waiting] == [
        ("early", 1, "0:50"), ("late", 2, "0:10")]
    assert [a.agent_id for a in detail.agents] == ["agent101"]
    assert queue_detail(b, "nowhere", OPS, SETTINGS, T) is None


def _order(call_id: str = "c-1", agent_id: str | None = "agent101", n: str = "1",
           at: float = NOW - 60):
    order = create_order(n, call_id, "+15550100", "Alice <b>", at, Policy(),
                         category="fault", urgency="urgent", transcript="my line is dead",
                         confidence=0.87, menu_path=["main", "fault"])
    if agent_id:
        order = apply(order, Event.ASSIGN, at + 1, "router", Policy(), agent=agent_id)
        order = apply(order, Event.START, at + 2, agent_id, Policy())
    return order


def test_screen_pop_while_ringing_shows_the_request_and_the_callers_history() -> None:
    """While the softphone rings the desk shows the caller, the recognized request, the menu
    path, the wait, and the caller's other open orders and recent contacts."""
    live = {"agent101": {"status": "offered", "call_id": "c-1", "since": str(NOW - 1)}}
    current = _order(agent_id=None)
    older = replace(_order(call_id="c-0", n="0", at=NOW - 86400), status=core_status("resolved"))
    still_open = _order(call_id="c-00", n="00", at=NOW - 3600)
    data = DeskData(CallFacts("c-1", "faults", NOW - 25), current, (older, still_open, current))
    view = desk_view(board(CONFIG, now=NOW, agents=live), "agent101", data, ClockPolicy(),
                     SETTINGS, T)
    pop = view.pop
    assert pop is not None and pop.phase == "offered"
    assert (pop.caller_number, pop.caller_name) == ("+15550100", "Alice <b>")
    assert (pop.category, pop.urgency, pop.confidence) == ("Fault", "Urgent", "87 %")
    assert pop.transcript == "my line is dead"
    assert pop.menu_path == "main \u203a fault"
    assert (pop.waited, pop.queue) == ("0:25", "faults")
    assert [o.order_id for o in pop.open_orders] == ["00"]
    assert [o.order_id for o in pop.recent_contacts] == ["00", "0"]
    assert pop.callback_number == ""


def core_status(name: str):
    from workorders.model import Status

    return Status(name)


def test_no_pop_when_the_agent_has_no_call() -> None:
    """Available or paused: no screen pop, no order panel."""
    live = {"agent101": {"status": "available", "since": str(NOW - 5)}}
    view = desk_view(board(CONFIG, now=NOW, agents=live), "agent101", DeskData(),
                     ClockPolicy(), SETTINGS, T)
    assert view.pop is None and view.order is None


def test_wrap_up_pops_the_last_connected_call_with_a_countdown_and_ready_now() -> None:
    """After hang-up the routing hash forgets the call: the desk keeps the call of the agent's
    last CONNECT on screen, counts the wrap-up down and offers "ready now"."""
    live = {"agent101": {"status": "wrap_up", "call_id": "", "since": str(NOW - 5),
                         "wrap_until": str(NOW + 25)}}
    events = [_entry(1, "CONNECT", NOW - 60, call_id="c-1", queue="faults", agent="agent101",
                     holdtime="3.0")]
    b = board(CONFIG, now=NOW, agents=live, events=events)
    order = _order()
    view = desk_view(b, "agent101", DeskData(None, order, (order,)), ClockPolicy(), SETTINGS, T)
    assert view.pop is not None and view.pop.phase == "wrap_up"
    assert view.state.wrap_left == "0:25"
    assert view.state.actions == ("ready", "logout")
    assert view.order is not None and view.order.order_id == "1"


def test_pause_reasons_offered_are_the_configured_ones_but_not_the_systems() -> None:
    """An agent pauses for a reason of routing.yaml's pause_reasons; the reasons the system
    sets itself (missed, rejected, busy-elsewhere) are not offered."""
    live = {"agent101": {"status": "available", "since": str(NOW)}}
    panel = state_panel(board(CONFIG, now=NOW, agents=live), "agent101", T)
    reasons = [r for r, _label in panel.pause_reasons]
    assert reasons == sorted({"break", "lunch", "training", "meeting", "after-call-work"})
    assert panel.actions == ("logout",)
    logged_out = state_panel(board(CONFIG, now=NOW, agents={}), "agent101", T)
    assert logged_out.actions == ("login",) and logged_out.pause_reasons == ()


def test_order_panel_offers_what_the_status_accepts_and_colours_clocks() -> None:
    """In progress: note, hold, resolve (not resume); the urgent response clock due within the
    hour is a warning, a breached one an alarm."""
    order = _order(at=NOW - 1800)  # urgent: response due 1 h after creation
    panel = order_panel(order, ClockPolicy(), NOW, SETTINGS, T)
    assert panel.actions == ("note", "hold", "resolve")
    clocks = {c.clock: c for c in panel.clocks}
    assert clocks["response"].level == "warn"
    late = order_panel(order, ClockPolicy(), NOW + 7200, SETTINGS, T)
    assert {c.clock: c for c in late.clocks}["response"].level == "alarm"
    held = apply(order, Event.HOLD, NOW, "agent101", Policy(), waiting_on="customer",
                 reason="needs the router model")
    held_panel = order_panel(held, ClockPolicy(), NOW, SETTINGS, T)
    assert held_panel.actions == ("note", "resume")
    assert held_panel.notes[0][1:] == ("agent101", "On hold: needs the router model")
    resolved = apply(order, Event.RESOLVE, NOW, "agent101", Policy(), outcome="fixed")
    assert order_panel(resolved, ClockPolicy(), NOW, SETTINGS, T).notes[0][2] == (
        "Resolved: fixed")
