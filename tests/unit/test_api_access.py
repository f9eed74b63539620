"""Access on every route of the API: each route with each role (and without a token) is
allowed or refused exactly as the table below says; agents reach their own, supervisors
their team's, ops everything; reads of work orders and changes made for someone else are
audited. Fakes for the router, the store, the tokens and the audit trail; no sockets."""

from __future__ import annotations

import pytest

from api.testing import ApiUnderTest, answer, api_under_test, sample_orders
from routing import core

ROLES = ("none", "agent101", "supervisor-north", "quality", "ops", "auditor")
TOKENS = {"none": None, "agent101": "tok-agent101", "supervisor-north": "tok-supervisor-north",
          "quality": "tok-quality", "ops": "tok-ops", "auditor": "tok-auditor"}

# (route as declared, concrete request) -> status per role, in the order of ROLES.
# agent101 and agent102 are in team north (the supervisor's), agent103 in south.
EXPECTED: list[tuple[str, str, str, tuple[int, ...]]] = [
    ("GET /health", "GET", "/health", (200, 200, 200, 200, 200, 200)),
    ("GET /metrics", "GET", "/metrics", (200, 200, 200, 200, 200, 200)),
    ("GET /api/openapi.json", "GET", "/api/openapi.json", (200, 200, 200, 200, 200, 200)),
    ("GET /api/queues", "GET", "/api/queues", (401, 403, 200, 403, 200, 403)),
    ("GET /api/agents", "GET", "/api/agents", (401, 200, 200, 403, 200, 403)),
    ("POST /api/agents/{agent_id}/{action}", "POST", "/api/agents/agent101/login",
     (401, 200, 200, 403, 200, 403)),
    ("POST /api/agents/{agent_id}/{action}", "POST", "/api/agents/agent102/pause?reason=break",
     (401, 403, 200, 403, 200, 403)),
    ("POST /api/agents/{agent_id}/{action}", "POST", "/api/agents/agent103/logout",
     (401, 403, 403, 403, 200, 403)),
    ("GET /api/decisions", "GET", "/api/decisions", (401, 403, 200, 403, 200, 403)),
    ("GET /api/workorders/{order_id}", "GET", "/api/workorders/1",
     (401, 200, 200, 403, 200, 403)),
    ("GET /api/workorders/{order_id}", "GET", "/api/workorders/2",
     (401, 403, 200, 403, 200, 403)),
    ("GET /api/workorders/{order_id}", "GET", "/api/workorders/3",
     (401, 403, 403, 403, 200, 403)),
    ("GET /api/workorders/{order_id}", "GET", "/api/workorders/4",
     (401, 403, 403, 403, 200, 403)),
    ("GET /api/workorders/{order_id}", "GET", "/api/workorders/999",
     (401, 404, 404, 403, 404, 403)),
    ("GET /api/calls/{call_id}/workorder", "GET", "/api/calls/c-1/workorder",
     (401, 200, 200, 403, 200, 403)),
    ("GET /api/calls/{call_id}/workorder", "GET", "/api/calls/c-2/workorder",
     (401, 403, 200, 403, 200, 403)),
    ("GET /api/calls/{call_id}/workorder", "GET", "/api/calls/c-3/workorder",
     (401, 403, 403, 403, 200, 403)),
    ("GET /api/calls/{call_id}/workorder", "GET", "/api/calls/c-9/workorder",
     (401, 404, 404, 403, 404, 403)),
    ("GET /api/reports/orders", "GET", "/api/reports/orders", (401, 403, 200, 403, 200, 403)),
    ("GET /api/workorders", "GET", "/api/workorders", (401, 200, 200, 403, 200, 403)),
    ("GET /api/workorders", "GET", "/api/workorders?agent=agent103",
     (401, 403, 403, 403, 200, 403)),
    ("GET /api/workorders/export", "GET", "/api/workorders/export",
     (401, 403, 200, 403, 200, 403)),
    # Without their required body: a role without the permission still learns nothing (403).
    *[(f"POST /api/workorders/{{order_id}}/{action}", "POST", f"/api/workorders/1/{action}",
       (401, 400, 400, 403, 400, 403))
      for action in ("assign", "status", "hold", "note", "merge", "legal-hold")],
]


def declared(route_method: str, route_path: str) -> str:
    path = "/".join(
        "{" + s.strip("{}").partition(":")[0] + "}" if s.startswith("{") else s
        for s in route_path.split("/")
    )
    return f"{route_method} {path}"


def test_the_table_covers_every_route(under_test: ApiUnderTest) -> None:
    """Every route of the route table has a row in the expected table (a new route without
    one fails here), and every row names a route that exists."""
    routes = {declared(r.method, r.path) for r in under_test.api.table.routes}
    assert routes == {row[0] for row in EXPECTED}


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize(("route", "method", "path", "statuses"), EXPECTED,
                         ids=[f"{m} {p}" for _, m, p, _ in EXPECTED])
def test_every_route_with_every_role(
    routing_config: core.RoutingConfig, route: str, method: str, path: str,
    statuses: tuple[int, ...], role: str,
) -> None:
    """Each route answers each role as the table says: 401 without a token (with
    ``WWW-Authenticate: Bearer``), 403 with the rule that refused, else the route's answer."""
    under = api_under_test(routing_config, sample_orders())
    response = answer(under.api, method, path, token=TOKENS[role])
    expected = statuses[ROLES.index(role)]
    assert response.status == expected, response.body
    if expected == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.body["id"] == "unauthenticated" and response.body["error"]
    if expected == 403:
        assert response.body["id"] == "forbidden"
        assert response.body["error"]  # the reason: which rule refused
    if expected >= 400:
        assert under.audit.entries == []  # nothing refused is recorded as done
        assert under.router.actions == []  # and nothing changed


def test_a_wrong_or_malformed_token_is_401(under_test: ApiUnderTest) -> None:
    """An unknown token, another scheme than Bearer or an empty header are each 401 with
    ``WWW-Authenticate: Bearer`` and a JSON reason."""
    for headers in ({"Authorization": "Bearer nope"}, {"Authorization": "Basic b3BzOm9wcw=="},
                    {"Authorization": ""}):
        response = answer(under_test.api, "GET", "/api/queues", headers=headers)
        assert response.status == 401
        assert response.headers == {"WWW-Authenticate": "Bearer"}
        assert set(response.body) == {"error", "id"}


def test_agents_list_is_cut_to_what_the_token_may_see(under_test: ApiUnderTest) -> None:
    """An agent sees its own entry only, a supervisor the team's, ops every agent."""
    seen = {
        role: set(answer(under_test.api, "GET", "/api/agents", token=TOKENS[role]).body)
        for role in ("agent101", "supervisor-north", "ops")
    }
    assert seen == {
        "agent101": {"agent101"},
        "supervisor-north": {"agent101", "agent102"},
        "ops": {"agent101", "agent102", "agent103", "agent104"},
    }


def test_an_agent_cannot_change_or_read_another_agents(under_test: ApiUnderTest) -> None:
    """agent101 may not pause agent102 nor read agent102's order (by id or by call): 403
    each, the router untouched, nothing audited."""
    api = under_test.api
    for method, path in (("POST", "/api/agents/agent102/pause?reason=break"),
                         ("POST", "/api/agents/agent103/logout"),
                         ("GET", "/api/workorders/2"),
                         ("GET", "/api/calls/c-2/workorder")):
        response = answer(api, method, path, token="tok-agent101")
        assert response.status == 403, path
        assert "agent102" in response.body["error"] or "agent103" in response.body["error"]
    assert under_test.router.actions == []
    assert under_test.audit.entries == []


def test_reading_an_order_is_audited(under_test: ApiUnderTest) -> None:
    """A work-order read records who (user, role), what (``workorder.read``), which order,
    from which address and when; a read by call id records the order it resolved to."""
    answer(under_test.api, "GET", "/api/workorders/2", token="tok-supervisor-north")
    answer(under_test.api, "GET", "/api/calls/c-1/workorder", token="tok-agent101",
           address="198.51.100.4")
    assert under_test.audit.entries == [
        {"user": "sam", "role": "supervisor", "action": "workorder.read",
         "obj": "workorder:2", "address": "192.0.2.7", "now": 1234.5},
        {"user": "agent101", "role": "agent", "action": "workorder.read",
         "obj": "workorder:1", "address": "198.51.100.4", "now": 1234.5},
    ]


def test_a_change_for_another_agent_is_audited_an_own_one_not(under_test: ApiUnderTest) -> None:
    """A supervisor pausing agent102 is recorded (``agent.state``, with the reason); agent101
    pausing itself is its own business, not an audit entry."""
    api = under_test.api
    assert answer(api, "POST", "/api/agents/agent102/pause?reason=break",
                  token="tok-supervisor-north").status == 200
    assert answer(api, "POST", "/api/agents/agent101/pause?reason=lunch",
                  token="tok-agent101").status == 200
    assert under_test.audit.entries == [
        {"user": "sam", "role": "supervisor", "action": "agent.state", "obj": "agent:agent102",
         "address": "192.0.2.7", "now": 1234.5, "reason": "break",
         "details": {"action": "pause", "status": "paused"}},
    ]


def test_no_order_is_handed_out_when_the_audit_trail_fails(
    routing_config: core.RoutingConfig,
) -> None:
    """An audit trail that cannot record (Redis away) means no read: 503 ``unavailable``,
    and the body holds no part of the order."""
    under = api_under_test(routing_config, sample_orders())

    async def broken(**entry: object) -> str:
        raise ConnectionError("audit stream unreachable")

    under.audit.record = broken  # type: ignore[method-assign]
    response = answer(under.api, "GET", "/api/workorders/1", token="tok-ops")
    assert response.status == 503
    assert response.body["id"] == "unavailable"
    assert "+15550101" not in str(response.body)
