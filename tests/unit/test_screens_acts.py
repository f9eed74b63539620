"""What the desk and the wallboard let people do, each through the API's own services: an
agent's ready now and log out, a supervisor's resume and log out (audited), an order put on
hold and resumed from the desk; and what the pop shows of a callback."""

from __future__ import annotations

from access import Identity, Role
from access.sessions import COOKIE_NAME
from api.testing import run_now
from routing.testing import shipped_config
from screens.app import ScreenRequest, ScreenResponse
from screens.desk.view import CallFacts, DeskData, desk_view
from screens.i18n import load_strings
from screens.render import Renderer
from screens.settings import ScreensSettings
from screens.testing import ScreensUnderTest, board, screens_under_test
from workorders.clocks import ClockPolicy
from workorders.model import Event

NOW = 1_800_000_000.0
CONFIG = shipped_config()
T = load_strings()
TOKENS = {"tok-agent101": Identity("agent101", Role.AGENT, "billing-desk"),
          "tok-sup": Identity("sam", Role.SUPERVISOR, "billing-desk")}
TEAMS = {"agent101": "billing-desk", "agent102": "billing-desk", "agent103": "network-desk"}


def _ask(ut: ScreensUnderTest, method: str, path: str, session: str,
         form: dict[str, str] | None = None) -> ScreenResponse:
    answer = run_now(ut.screens.respond(ScreenRequest(
        method, [p for p in path.split("/") if p], form=form or {}, address="192.0.2.9",
        headers={"cookie": f"{COOKIE_NAME}={session}",
                 "x-csrf-token": ut.sessions.csrf(session)})))
    assert isinstance(answer, ScreenResponse)
    return answer


def _login(ut: ScreensUnderTest, token: str) -> str:
    return run_now(ut.sessions.login(token, NOW)).session_id


def test_the_agent_is_ready_now_resumes_and_logs_out_through_the_agent_service(
        monkeypatch) -> None:
    """The desk's "ready now" ends the wrap-up (``wrapup_end``), "available" resumes a
    pause, "log out" logs out: each the API's agent action, none audited (an agent's own)."""
    from api import testing

    # the API's fake router knows the API's actions; the routing's wrapup_end ends in available
    monkeypatch.setitem(testing.AGENT_STATES, "wrapup_end", "available")
    ut = screens_under_test(CONFIG, TOKENS, TEAMS, now=NOW)
    session = _login(ut, "tok-agent101")
    for action in ("ready", "resume", "logout"):
        assert _ask(ut, "POST", f"desk/state/{action}", session).status == 200
    assert ut.router.actions == [("agent101", "wrapup_end", ""), ("agent101", "resume", ""),
                                 ("agent101", "logout", "")]
    assert _ask(ut, "POST", "desk/state/dance", session).status == 400
    assert ut.audit.entries == []


def test_a_supervisor_resumes_and_logs_out_a_team_member_each_audited() -> None:
    """Resume and log out from the wallboard reach the routing for the supervisor's own team
    and are recorded as ``agent.state``; another team's agent is refused and not recorded."""
    ut = screens_under_test(CONFIG, TOKENS, TEAMS, now=NOW)
    session = _login(ut, "tok-sup")
    assert _ask(ut, "POST", "wallboard/agents/agent102/resume", session).status == 200
    assert _ask(ut, "POST", "wallboard/agents/agent102/logout", session).status == 200
    assert _ask(ut, "POST", "wallboard/agents/agent103/logout", session).status == 403
    assert ut.router.actions == [("agent102", "resume", ""), ("agent102", "logout", "")]
    assert [(e["action"], e["obj"]) for e in ut.audit.entries] == [
        ("agent.state", "agent:agent102"), ("agent.state", "agent:agent102")]


def test_the_agent_puts_their_order_on_hold_and_resumes_it() -> None:
    """On hold with what it waits on and why, then resumed: the order's history has both and
    the panel shows each status."""
    ut = screens_under_test(CONFIG, TOKENS, TEAMS, now=NOW)
    order = run_now(ut.orders.create_for_call("c-1", "+15550100", "Alice", NOW - 60))
    run_now(ut.orders.update(order.id, NOW - 50, Event.ASSIGN, "router", agent="agent101"))
    run_now(ut.orders.update(order.id, NOW - 49, Event.START, "agent101"))
    session = _login(ut, "tok-agent101")
    held = _ask(ut, "POST", f"desk/orders/{order.id}/hold", session,
                {"waiting_on": "customer", "reason": "sends the meter reading"})
    assert held.status == 200 and b'data-status="on_hold"' in held.body
    resumed = _ask(ut, "POST", f"desk/orders/{order.id}/resume", session)
    assert resumed.status == 200 and b'data-status="in_progress"' in resumed.body
    assert [h.event for h in ut.orders.orders[order.id].history][-2:] == ["hold", "resume"]
    assert _ask(ut, "POST", f"desk/orders/{order.id}/hold", session,
                {"waiting_on": "customer"}).status == 400  # a reason is required


def test_the_pop_of_a_callback_shows_the_number_to_call_back() -> None:
    """A call queued as a callback (its routing hash says so) pops with the callback
    number the caller confirmed; a call that is not one shows none."""
    facts = CallFacts.from_hash("c-1", {"queue": "faults", "entered_at": str(NOW - 40),
                                        "callback": "1", "callback_number": "+15550177"})
    live = {"agent101": {"status": "offered", "call_id": "c-1", "since": str(NOW - 1)}}
    view = desk_view(board(CONFIG, now=NOW, agents=live), "agent101", DeskData(facts),
                     ClockPolicy(), ScreensSettings(), T)
    assert view.pop is not None and view.pop.callback_number == "+15550177"
    html = Renderer(T).render("_pop.html", pop=view.pop)
    assert '<dd id="pop-callback">+15550177</dd>' in html
    plain = CallFacts.from_hash("c-1", {"queue": "faults", "callback_number": "+15550177"})
    assert plain.callback_number == ""
