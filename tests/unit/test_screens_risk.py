"""The order clocks at risk (screens.risk) and how the screens show them: one colouring rule
for the desk and the wallboard, the wallboard's counts and drill-down filtered to the orders
the viewer may read. Pure: orders built in memory, no Redis."""

from __future__ import annotations

from dataclasses import replace

from access import Identity, Role
from routing.testing import shipped_config
from screens.board import NO_RISK_READ
from screens.desk.view import order_panel
from screens.i18n import load_strings
from screens.risk import OrdersAtRisk, at_risk, clock_level
from screens.settings import ScreensSettings
from screens.testing import board
from screens.wallboard.view import clocks_panel
from workorders.clocks import ClockKind, ClockPolicy, replay
from workorders.model import Event, Policy, WorkOrder, apply, create_order

NOW = 1_800_000_000.0
T = load_strings()
SETTINGS = ScreensSettings()
CONFIG = shipped_config()
OPS = Identity("olga", Role.OPS)
BILLING = Identity("sam", Role.SUPERVISOR, "billing-desk")
NETWORK = Identity("nia", Role.SUPERVISOR, "network-desk")


def _order(n: str, at: float, agent: str | None = "agent101", urgency: str = "urgent"
           ) -> WorkOrder:
    order = create_order(n, f"call-{n}", "+15550100", "Alice", at, Policy(),
                         category="fault", urgency=urgency, queue="faults")
    if agent:
        order = apply(order, Event.ASSIGN, at + 1, "router", Policy(), agent=agent)
        order = apply(order, Event.START, at + 2, agent, Policy())
    return order


def _rows(*orders: WorkOrder, now: float = NOW) -> OrdersAtRisk:
    kept = [(o, replay(o.history, ClockPolicy())) for o in orders]
    return OrdersAtRisk(at_risk(kept, now, SETTINGS.clock_warning_s), read=True)


def test_a_clock_is_a_warning_within_the_window_and_an_alarm_once_past_due() -> None:
    """Running and due within the window: warn; due later: ok; past due (as replayed, not
    advanced): alarm; met in time or paused on hold: ok."""
    order = _order("1", NOW - 1800)  # urgent: response due an hour after creation
    response = replay(order.history, ClockPolicy())[ClockKind.RESPONSE]
    assert clock_level(response, NOW, 3600) == "warn"
    assert clock_level(response, NOW, 600) == "ok"
    assert clock_level(response, NOW + 7200, 3600) == "alarm"
    held = apply(order, Event.HOLD, NOW, "agent101", Policy(), waiting_on="customer",
                 reason="waits for the modem")
    assert clock_level(replay(held.history, ClockPolicy())[ClockKind.RESPONSE], NOW + 7200,
                       3600) == "ok"
    resolved = apply(order, Event.RESOLVE, NOW, "agent101", Policy(), outcome="fixed")
    assert clock_level(replay(resolved.history, ClockPolicy())[ClockKind.RESPONSE],
                       NOW + 7200, 3600) == "ok"


def test_clocks_at_risk_are_those_of_open_orders_due_soon_or_breached_soonest_first() -> None:
    """An order whose response is due within the hour lists that clock (warn); one created
    three hours ago lists its breached response (alarm), first; a closed order and clocks due
    later are left out; a clock met late is history, not at risk."""
    soon = _order("1", NOW - 1800)
    late = _order("2", NOW - 3 * 3600)
    done = apply(_order("3", NOW - 3 * 3600), Event.RESOLVE, NOW - 60, "agent101", Policy(),
                 outcome="fixed")
    quiet = _order("4", NOW - 60, urgency="normal")
    rows = _rows(soon, late, done, quiet).clocks
    assert [(r.order_id, r.clock, r.level) for r in rows] == [
        ("2", ClockKind.RESPONSE, "alarm"), ("1", ClockKind.RESPONSE, "warn")]
    assert rows[0].due.timestamp() == NOW - 2 * 3600 and rows[0].agent == "agent101"
    reached = apply(late, Event.CONTACT, NOW - 30, "agent101", Policy(), channel="phone",
                    reached=True)
    assert [r.order_id for r in _rows(reached).clocks] == []


def test_the_desk_colours_a_clock_as_the_wallboard_counts_it() -> None:
    """The desk's order panel and the wallboard's list agree on every clock of an order, at
    several moments: the clocks at risk are exactly those the desk colours."""
    order = _order("1", NOW - 1800)
    for now in (NOW, NOW + 1700, NOW + 1900, NOW + 9 * 3600):
        panel = order_panel(order, ClockPolicy(), now, SETTINGS, T)
        coloured = {(c.clock, c.level) for c in panel.clocks if c.level != "ok"}
        listed = {(r.clock.value, r.level) for r in _rows(order, now=now).clocks}
        assert coloured == listed, now


def test_the_wallboard_counts_only_the_orders_the_viewer_may_read() -> None:
    """Ops count every order's clocks; a supervisor those of the team's agents (as the API
    hands orders out: an unassigned order is nobody's team's); numbers are coloured when
    not zero."""
    rows = _rows(_order("1", NOW - 1800, "agent101"), _order("2", NOW - 3 * 3600, "agent103"),
                 _order("3", NOW - 3 * 3600, None))
    b = replace(board(CONFIG, now=NOW), at_risk=rows)
    ops = clocks_panel(b, OPS, SETTINGS, T)
    assert (ops.due_soon.text, ops.breached.text) == ("1", "3")  # unassigned: 2 clocks
    assert (ops.due_soon.level, ops.breached.level) == ("warn", "alarm")
    assert ops.window == "Due within 60 min"
    billing = clocks_panel(b, BILLING, SETTINGS, T)
    assert [(r.risk.order_id, r.clock) for r in billing.rows] == [("1", "Response")]
    assert (billing.breached.text, billing.breached.level) == ("0", "ok")
    network = clocks_panel(b, NETWORK, SETTINGS, T)
    assert [r.risk.order_id for r in network.rows] == ["2"]
    assert network.rows[0].left.text == "overdue 2:00:00"
    assert billing.rows[0].left.text == "30:00"


def test_the_wallboard_says_when_the_clocks_could_not_be_read() -> None:
    """Clocks at risk that could not be read keep the last list, with the time the reads
    started failing; a board that never read them says nothing."""
    rows = replace(_rows(_order("1", NOW - 1800)), unavailable_since=NOW - 90)
    panel = clocks_panel(replace(board(CONFIG, now=NOW), at_risk=rows), OPS, SETTINGS, T)
    assert panel.unavailable == ("Order data unavailable since 07:58:30 UTC; the last list "
                                 "known is shown.")
    assert [r.risk.order_id for r in panel.rows] == ["1"]
    fresh = clocks_panel(board(CONFIG, now=NOW), OPS, SETTINGS, T)
    assert board(CONFIG, now=NOW).at_risk is NO_RISK_READ
    assert (fresh.unavailable, fresh.rows, fresh.read) == ("", (), False)


def test_the_drill_down_lists_the_orders_at_risk_for_supervisors_only() -> None:
    """``GET /screens/wallboard/clocks``: a supervisor sees the team's orders at risk with
    clock, time left and a button to open the order (no caller's number or name); an agent
    is refused."""
    from access.sessions import COOKIE_NAME
    from api.testing import run_now
    from screens.app import ScreenRequest, ScreenResponse
    from screens.testing import screens_under_test

    tokens = {"tok-sup": BILLING, "tok-agent": Identity("agent101", Role.AGENT, "billing-desk")}
    ut = screens_under_test(CONFIG, tokens, {"agent101": "billing-desk"}, now=NOW)
    ut.current[0] = replace(board(CONFIG, now=NOW), at_risk=_rows(
        _order("1", NOW - 1800, "agent101"), _order("2", NOW - 1800, "agent103")))

    def get(token: str) -> ScreenResponse:
        login = run_now(ut.screens.respond(ScreenRequest("POST", ["login"],
                                                         form={"token": token})))
        assert isinstance(login, ScreenResponse)
        cookie = login.headers["Set-Cookie"].split(";")[0]
        answer = run_now(ut.screens.respond(ScreenRequest(
            "GET", ["wallboard", "clocks"], headers={"cookie": cookie, "hx-request": "true"})))
        assert isinstance(answer, ScreenResponse) and cookie.startswith(COOKIE_NAME)
        return answer

    shown = get("tok-sup")
    html = shown.body.decode()
    assert shown.status == 200 and 'data-order="1"' in html and 'data-order="2"' not in html
    assert 'hx-get="/screens/desk/orders/1"' in html and "Response" in html and "30:00" in html
    assert "+15550100" not in html and "Alice" not in html
    assert get("tok-agent").status == 403
