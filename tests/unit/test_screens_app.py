"""The screens' requests to answers (screens.app): sign-in and sessions, CSRF, who may open
which screen and order, and the acts through the API's services; over fakes, no sockets."""

from __future__ import annotations

import re
from collections.abc import Mapping

import pytest

from access import Identity, Role
from access.sessions import COOKIE_NAME
from api.testing import run_now
from routing.testing import shipped_config
from screens.app import ScreenRequest, ScreenResponse, StreamAnswer
from screens.testing import ScreensUnderTest, board, screens_under_test
from workorders.model import Event

NOW = 1_800_000_000.0
CONFIG = shipped_config()
TOKENS = {
    "tok-agent101": Identity("agent101", Role.AGENT, "billing-desk"),
    "tok-agent103": Identity("agent103", Role.AGENT, "network-desk"),
    "tok-sup-billing": Identity("sam", Role.SUPERVISOR, "billing-desk"),
    "tok-ops": Identity("olga", Role.OPS),
    "tok-quality": Identity("quinn", Role.QUALITY),
}
TEAMS = {"agent101": "billing-desk", "agent102": "billing-desk", "agent103": "network-desk",
         "agent104": "network-desk"}


@pytest.fixture
def ut() -> ScreensUnderTest:
    return screens_under_test(CONFIG, TOKENS, TEAMS, now=NOW)


def ask(ut: ScreensUnderTest, method: str, path: str, *, session: str | None = None,
        csrf: str | None = None, form: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None) -> ScreenResponse | StreamAnswer:
    all_headers = dict(headers or {})
    if session is not None:
        all_headers["cookie"] = f"{COOKIE_NAME}={session}"
    if csrf is not None:
        all_headers["x-csrf-token"] = csrf
    request = ScreenRequest(method, [p for p in path.split("/") if p], headers=all_headers,
                            form=dict(form or {}), address="192.0.2.9")
    return run_now(ut.screens.respond(request))


def page(answer: ScreenResponse | StreamAnswer) -> ScreenResponse:
    assert isinstance(answer, ScreenResponse)
    return answer


def login(ut: ScreensUnderTest, token: str) -> tuple[str, str]:
    """Sign in; the session id and its CSRF token."""
    answer = page(ask(ut, "POST", "login", form={"token": token}))
    assert answer.status == 303
    session = answer.headers["Set-Cookie"].split(";")[0].split("=", 1)[1]
    return session, ut.sessions.csrf(session)


def test_login_sets_a_strict_http_only_cookie_and_sends_agents_to_the_desk(ut) -> None:
    """A valid token becomes a session cookie (HttpOnly, Secure, SameSite=Strict, __Host-);
    an agent lands on the desk, a supervisor on the wallboard."""
    answer = page(ask(ut, "POST", "login", form={"token": "tok-agent101"}))
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE_NAME}=")
    for flag in ("HttpOnly", "Secure", "SameSite=Strict", "Path=/"):
        assert flag in cookie
    assert answer.headers["Location"] == "/screens/desk"
    supervisor = page(ask(ut, "POST", "login", form={"token": "tok-sup-billing"}))
    assert supervisor.headers["Location"] == "/screens/wallboard"


def test_a_wrong_token_shows_the_login_again_with_the_reason(ut) -> None:
    """No session for an unknown token: 401 with the form and why, nothing set."""
    answer = page(ask(ut, "POST", "login", form={"token": "nope"}))
    assert answer.status == 401
    assert "Set-Cookie" not in answer.headers
    assert b"unknown, expired or revoked" in answer.body
    assert b'name="token"' in answer.body


def test_without_a_session_a_page_shows_the_login_and_a_stream_is_refused(ut) -> None:
    """A page asked for without a session answers with the login form; a live stream or an
    htmx fragment with 401 (a script cannot follow a login page)."""
    assert b'name="token"' in page(ask(ut, "GET", "wallboard")).body
    assert page(ask(ut, "GET", "wallboard/events")).status == 401
    assert page(ask(ut, "GET", "wallboard/queues/billing",
                    headers={"hx-request": "true"})).status == 401


def test_login_is_closed_without_a_token_store() -> None:
    """A service without tokens has no sessions: the login page says so (503)."""
    ut = screens_under_test(CONFIG, TOKENS, TEAMS, now=NOW)
    ut.screens.sessions = None
    answer = page(ask(ut, "GET", "login"))
    assert answer.status == 503 and b"not available" in answer.body
    assert page(ask(ut, "POST", "login", form={"token": "tok-ops"})).status == 503


def test_a_change_without_the_csrf_token_is_refused(ut) -> None:
    """Every POST but the login needs the session's CSRF token: a missing or foreign one is
    403 and nothing changes."""
    session, _csrf = login(ut, "tok-agent101")
    _other, other_csrf = login(ut, "tok-ops")
    for csrf in (None, other_csrf):
        answer = page(ask(ut, "POST", "desk/state/login", session=session, csrf=csrf))
        assert answer.status == 403
    assert ut.router.actions == []


def test_an_agent_cannot_open_the_wallboard(ut) -> None:
    """The wallboard needs queues:read: an agent gets 403, page and stream alike."""
    session, _ = login(ut, "tok-agent101")
    assert page(ask(ut, "GET", "wallboard", session=session)).status == 403
    assert page(ask(ut, "GET", "wallboard/events", session=session)).status == 403


def test_a_supervisor_opens_the_wallboard_and_its_stream(ut) -> None:
    """The page carries the CSRF token for htmx and the stream's address; the stream is the
    supervisor's team view, resuming from Last-Event-ID."""
    session, csrf = login(ut, "tok-sup-billing")
    html = page(ask(ut, "GET", "wallboard", session=session)).body.decode()
    assert f'"X-CSRF-Token": "{csrf}"' in html
    assert 'sse-connect="/screens/wallboard/events"' in html
    assert "Content-Security-Policy" in page(ask(ut, "GET", "wallboard", session=session)
                                             ).headers
    stream = ask(ut, "GET", "wallboard/events", session=session,
                 headers={"last-event-id": "17-0"})
    assert isinstance(stream, StreamAnswer) and stream.last_event_id == "17-0"


def test_the_desk_is_an_agents_own(ut) -> None:
    """A supervisor has no desk; an agent's desk stream is keyed by the agent itself."""
    sup, _ = login(ut, "tok-sup-billing")
    assert page(ask(ut, "GET", "desk", session=sup)).status == 403
    agent, _ = login(ut, "tok-agent101")
    stream = ask(ut, "GET", "desk/events", session=agent)
    assert isinstance(stream, StreamAnswer) and stream.key == "agent101"


def test_state_changes_go_through_the_agent_service(ut) -> None:
    """Log in and pause with a configured reason through the API's service; an unknown
    reason is a 400 and reaches no routing."""
    session, csrf = login(ut, "tok-agent101")
    assert page(ask(ut, "POST", "desk/state/login", session=session, csrf=csrf)).status == 200
    ok = page(ask(ut, "POST", "desk/state/pause", session=session, csrf=csrf,
                  form={"reason": "lunch"}))
    assert ok.status == 200 and ok.body == b""  # the live state panel says it
    bad = page(ask(ut, "POST", "desk/state/pause", session=session, csrf=csrf,
                   form={"reason": "nap"}))
    assert bad.status == 400
    assert ut.router.actions == [("agent101", "login", ""), ("agent101", "pause", "lunch")]
    assert ut.audit.entries == []  # an agent's own state is not audited (as the API)


def test_supervisor_actions_reach_only_their_team_and_are_audited(ut) -> None:
    """A supervisor pauses a team member (audited as agent.state, with the reason) but not
    another team's agent (403)."""
    session, csrf = login(ut, "tok-sup-billing")
    ok = page(ask(ut, "POST", "wallboard/agents/agent102/pause", session=session, csrf=csrf,
                  form={"reason": "meeting"}))
    assert ok.status == 200
    refused = page(ask(ut, "POST", "wallboard/agents/agent103/pause", session=session,
                       csrf=csrf, form={"reason": "meeting"}))
    assert refused.status == 403
    assert [(e["action"], e["obj"], e["reason"]) for e in ut.audit.entries] == [
        ("agent.state", "agent:agent102", "meeting")]


def _order_of(ut: ScreensUnderTest, agent: str, call_id: str = "c-1") -> str:
    order = run_now(ut.orders.create_for_call(call_id, "+15550100", "Alice", NOW - 60,
                                              category="fault"))
    run_now(ut.orders.update(order.id, NOW - 50, Event.ASSIGN, "router", agent=agent))
    run_now(ut.orders.update(order.id, NOW - 49, Event.START, agent))
    return order.id


def test_an_agent_cannot_open_another_teams_order(ut) -> None:
    """agent101 (billing) asking for agent103's order gets 403, and nothing is recorded as
    read; a missing order is 404."""
    theirs = _order_of(ut, "agent103")
    session, _ = login(ut, "tok-agent101")
    assert page(ask(ut, "GET", f"desk/orders/{theirs}", session=session)).status == 403
    assert page(ask(ut, "GET", "desk/orders/999", session=session)).status == 404
    assert ut.audit.entries == []


def test_an_agent_notes_and_resolves_their_order(ut) -> None:
    """Open (audited read), note and resolve with a disposition: the order's history has both
    and the panel shows it resolved; an unknown disposition is refused."""
    mine = _order_of(ut, "agent101")
    session, csrf = login(ut, "tok-agent101")
    shown = page(ask(ut, "GET", f"desk/orders/{mine}", session=session))
    assert shown.status == 200
    assert [e["action"] for e in ut.audit.entries] == ["workorder.read"]
    noted = page(ask(ut, "POST", f"desk/orders/{mine}/note", session=session, csrf=csrf,
                     form={"text": "customer <script> rebooted"}))
    assert noted.status == 200 and b"customer &lt;script&gt; rebooted" in noted.body
    bad = page(ask(ut, "POST", f"desk/orders/{mine}/resolve", session=session, csrf=csrf,
                   form={"outcome": "magic"}))
    assert bad.status == 400
    done = page(ask(ut, "POST", f"desk/orders/{mine}/resolve", session=session, csrf=csrf,
                    form={"outcome": "fixed"}))
    assert done.status == 200 and b'data-status="resolved"' in done.body
    order = ut.orders.orders[mine]
    assert [h.event for h in order.history][-2:] == ["note", "resolve"]
    assert order.outcome == "fixed"
    again = page(ask(ut, "POST", f"desk/orders/{mine}/hold", session=session, csrf=csrf,
                     form={"waiting_on": "customer", "reason": "x"}))
    assert again.status == 409  # a resolved order is not put on hold


def test_static_assets_are_served_only_from_the_list(ut) -> None:
    """The vendored htmx (version in its name) is served; anything else, or a path that
    tries to climb out, is 404."""
    htmx = page(ask(ut, "GET", "static/vendor/htmx-2.0.11.min.js"))
    assert htmx.status == 200 and htmx.body.startswith(b"/*! htmx 2.0.11")
    assert page(ask(ut, "GET", "static/../app.py")).status == 404
    assert page(ask(ut, "GET", "static/testing.py")).status == 404


def test_logout_ends_the_session(ut) -> None:
    """Sign-out (with its CSRF token) forgets the session and clears the cookie."""
    session, csrf = login(ut, "tok-ops")
    answer = page(ask(ut, "POST", "logout", session=session, csrf=csrf))
    assert answer.status == 303 and "Max-Age=0" in answer.headers["Set-Cookie"]
    assert b'name="token"' in page(ask(ut, "GET", "wallboard", session=session)).body


def test_root_sends_each_role_to_its_screen(ut) -> None:
    """/screens/ goes to the desk for agents, the wallboard for the others."""
    agent, _ = login(ut, "tok-agent101")
    ops, _ = login(ut, "tok-ops")
    assert page(ask(ut, "GET", "", session=agent)).headers["Location"] == "/screens/desk"
    assert page(ask(ut, "GET", "", session=ops)).headers["Location"] == "/screens/wallboard"


def test_drill_down_renders_for_a_known_queue_only(ut) -> None:
    """The drill-down behind a queue's numbers answers for a configured queue, 404 else."""
    ut.current[0] = board(CONFIG, now=NOW)
    session, _ = login(ut, "tok-ops")
    assert page(ask(ut, "GET", "wallboard/queues/billing", session=session)).status == 200
    assert page(ask(ut, "GET", "wallboard/queues/nowhere", session=session)).status == 404


def test_my_open_orders_filter_by_status(ut) -> None:
    """The back-office list: the agent's own open orders, filtered by one status; an
    unknown status is a 400; another agent's orders never appear."""
    mine = _order_of(ut, "agent101")
    _order_of(ut, "agent103", call_id="c-2")
    session, _ = login(ut, "tok-agent101")
    listed = page(ask(ut, "GET", "desk/orders", session=session))
    assert f'data-order="{mine}"'.encode() in listed.body
    assert listed.body.count(b"data-order=") == 1
    answer = ut.screens.respond(ScreenRequest(
        "GET", ["desk", "orders"], query={"status": ["on_hold"]},
        headers={"cookie": f"{COOKIE_NAME}={session}"}))
    assert b"data-order=" not in page(run_now(answer)).body
    bad = run_now(ut.screens.respond(ScreenRequest(
        "GET", ["desk", "orders"], query={"status": ["closed"]},
        headers={"cookie": f"{COOKIE_NAME}={session}"})))
    assert page(bad).status == 400


def test_an_order_opened_beside_the_live_one_has_ids_of_its_own(ut) -> None:
    """The panel an agent opens from a list (and an action's answer) sits beside the live
    order panel, whose ids are plain (``note-text``, ``order-status``, ...): each of its ids
    is its own (suffixed with the order's id), and each of its labels names a field inside
    it (two note fields with one id left the second without its label)."""
    mine = _order_of(ut, "agent101")
    session, csrf = login(ut, "tok-agent101")
    opened = page(ask(ut, "GET", f"desk/orders/{mine}", session=session)).body.decode()
    noted = page(ask(ut, "POST", f"desk/orders/{mine}/note", session=session, csrf=csrf,
                     form={"text": "called back"})).body.decode()
    for panel in (opened, noted):
        ids = re.findall(r' id="([^"]+)"', panel)
        assert "note-text-" + mine in ids and len(ids) == len(set(ids))
        assert all(i.endswith(f"-{mine}") for i in ids), ids
        assert set(re.findall(r' for="([^"]+)"', panel)) <= set(ids)
