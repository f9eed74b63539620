"""``/api/workorders`` over the fakes of ``api.testing``: lists by filters and pages, scoped to
the token's agents; export for supervisors and ops; changes and merge with their refusals
(409 naming order and event, 422, 404, 400, 413) and audit entries; an internal error is a
500; every route is in the OpenAPI document."""

from __future__ import annotations

import json
from typing import Any

from pydantic import TypeAdapter

from api.schemas import MergeAnswer, WorkOrderAnswer, WorkOrderExport, WorkOrderPage
from api.testing import ApiUnderTest, FakeWorkOrders, answer, api_under_test, sample_orders

JSON = {"Content-Type": "application/json"}


def post(under: ApiUnderTest, path: str, body: Any, token: str = "tok-ops") -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return answer(under.api, "POST", path, token=token, body=raw, headers=JSON)


def ids(response: Any) -> list[str]:
    return [o["id"] for o in response.body["orders"]]


def test_list_is_newest_first_and_scoped(under_test: ApiUnderTest) -> None:
    """Ops see every order newest first; a supervisor the team's agents' orders; an agent
    its own; each list is one ``workorder.list`` audit entry with its count."""
    api = under_test.api
    seen = {tok: ids(answer(api, "GET", "/api/workorders", token=tok))
            for tok in ("tok-ops", "tok-supervisor-north", "tok-agent101")}
    assert seen == {"tok-ops": ["4", "3", "2", "1"], "tok-supervisor-north": ["2", "1"],
                    "tok-agent101": ["1"]}
    assert [(e["user"], e["action"], e["details"]["count"]) for e in under_test.audit.entries] \
        == [("olga", "workorder.list", "4"), ("sam", "workorder.list", "2"),
            ("agent101", "workorder.list", "1")]
    body = answer(api, "GET", "/api/workorders", token="tok-ops").body
    TypeAdapter(WorkOrderPage).validate_python(body)
    assert "history" not in body["orders"][0] and body["orders"][0]["overdue"] == []


def test_list_filters_and_pages(under_test: ApiUnderTest) -> None:
    """Filters reach the store parsed; pages follow ``next_cursor`` to the end, each order
    once; the caller's number is not written to the audit trail."""
    api = under_test.api
    first = answer(api, "GET", "/api/workorders?limit=3", token="tok-ops").body
    assert len(first["orders"]) == 3 and first["next_cursor"]
    second = answer(api, "GET", f"/api/workorders?limit=3&cursor={first['next_cursor']}",
                    token="tok-ops").body
    assert ids(type("R", (), {"body": second})) == ["1"] and second["next_cursor"] is None
    response = answer(api, "GET", "/api/workorders?caller=%2B15550102&status=pending",
                      token="tok-ops")
    assert ids(response) == ["2"]
    details = under_test.audit.entries[-1]["details"]
    assert json.loads(details["filters"]) == {"caller": "(given)", "status": "pending"}
    assert "5550102" not in json.dumps(under_test.audit.entries)


def test_list_refuses_an_agent_out_of_reach_and_bad_filters(under_test: ApiUnderTest) -> None:
    """Asking for another team's agent is 403 (never a silently empty list); a bad filter,
    a bad cursor, a limit past the cap or an unknown parameter is 400 naming it."""
    api = under_test.api
    refused = answer(api, "GET", "/api/workorders?agent=agent103", token="tok-supervisor-north")
    assert refused.status == 403 and "agent103" in refused.body["error"]
    for query, word in (("status=open", "status"), ("cursor=nope", "cursor"),
                        ("limit=201", "limit"), ("colour=red", "colour"),
                        ("created_from=2026-13-01", "created_from")):
        response = answer(api, "GET", f"/api/workorders?{query}", token="tok-ops")
        assert (response.status, response.body["id"]) == (400, "bad-request"), query
        assert word in response.body["error"]
    assert under_test.audit.entries == []


def test_export_is_for_supervisors_and_ops(under_test: ApiUnderTest) -> None:
    """Export gives whole orders with histories, audited as ``workorder.export`` with the
    count and filters; an agent is refused."""
    api = under_test.api
    refused = answer(api, "GET", "/api/workorders/export", token="tok-agent101")
    assert refused.status == 403 and "supervisors and ops" in refused.body["error"]
    body = answer(api, "GET", "/api/workorders/export?status=pending",
                  token="tok-supervisor-north").body
    TypeAdapter(WorkOrderExport).validate_python(body)
    assert [o["id"] for o in body["orders"]] == ["2", "1"] and body["orders"][0]["history"]
    entry = under_test.audit.entries[-1]
    assert (entry["action"], entry["details"]["count"]) == ("workorder.export", "2")
    assert json.loads(entry["details"]["filters"]) == {"status": "pending"}


def test_changes_walk_the_lifecycle_and_are_audited(under_test: ApiUnderTest) -> None:
    """start, hold, resume, resolve, close and a note change the order as the model says,
    as the token's user, each recorded as ``workorder.change`` with its event."""
    steps = [("status", {"event": "start"}, "in_progress"),
             ("hold", {"waiting_on": "customer", "reason": "meter photo"}, "on_hold"),
             ("status", {"event": "resume"}, "in_progress"),
             ("note", {"text": "sent the form"}, "in_progress"),
             ("status", {"event": "resolve", "outcome": "fixed"}, "resolved"),
             ("status", {"event": "close"}, "closed")]
    post(under_test, "/api/workorders/1/assign", {"agent": "agent101"})
    for action, body, status in steps:
        response = post(under_test, f"/api/workorders/1/{action}", body, "tok-agent101")
        assert (response.status, response.body["status"]) == (200, status), response.body
        TypeAdapter(WorkOrderAnswer).validate_python(response.body)
    order = under_test.orders.orders["1"]
    assert order.history[-1].actor == "agent101" and order.outcome == "fixed"
    assert [e["details"]["event"] for e in under_test.audit.entries] == [
        "assign", "start", "hold", "resume", "note", "resolve", "close"]


def test_a_refused_transition_is_409_naming_order_state_and_event(
    under_test: ApiUnderTest,
) -> None:
    """Resolving a pending order is 409 ``workorder-transition-refused``; the reason names the
    order, its status and the event, the body the order and event; nothing is audited."""
    response = post(under_test, "/api/workorders/4/status", {"event": "resolve"})
    assert (response.status, response.body["id"]) == (409, "workorder-transition-refused")
    assert "work order 4 is pending: 'resolve' is refused" in response.body["error"]
    assert (response.body["order"], response.body["event"]) == ("4", "resolve")
    assert under_test.audit.entries == []


def test_bad_bodies_are_4xx_with_a_reason(routing_config: Any) -> None:
    """Unknown fields, wrong types, a missing body, a body past the cap, non-JSON: 400, 413
    or 415 with a stable id; an unknown order is 404; a value the model refuses is 422."""
    under = api_under_test(routing_config, sample_orders(), max_body=1024)
    cases = [
        ("/api/workorders/1/assign", {"agent": "agent101", "colour": "red"}, 400, "bad-request"),
        ("/api/workorders/1/assign", {"agent": 101}, 400, "bad-request"),
        ("/api/workorders/1/status", {"event": "explode"}, 400, "bad-request"),
        ("/api/workorders/1/hold", {"waiting_on": "customer"}, 400, "bad-request"),
        ("/api/workorders/1/note", b"", 400, "bad-request"),
        ("/api/workorders/1/note", b"{not json", 400, "bad-request"),
        ("/api/workorders/1/note", {"text": "x" * 2000}, 413, "body-too-large"),
        ("/api/workorders/999/note", {"text": "hello"}, 404, "workorder-not-found"),
        ("/api/workorders/1/merge", {"merged": "1"}, 422, "workorder-change-invalid"),
        ("/api/workorders/1/merge", {"merged": "999"}, 404, "workorder-not-found"),
    ]
    for path, body, status, error_id in cases:
        response = post(under, path, body)
        assert (response.status, response.body["id"]) == (status, error_id), (path, body)
        assert response.body["error"]
    plain = answer(under.api, "POST", "/api/workorders/1/note", token="tok-ops",
                   body=b'{"text": "x"}', headers={"Content-Type": "text/plain"})
    assert plain.status == 415
    assert under.audit.entries == []


def test_legal_hold_by_ops_only(under_test: ApiUnderTest) -> None:
    """Ops set and release an order's legal hold with a reason: the order says so, and each
    is one audit entry naming the action and the reason; a supervisor is refused (the hold
    overrides the retention policy), an unknown order is a 404, a missing reason a 400."""
    refused = post(under_test, "/api/workorders/1/legal-hold",
                   {"held": True, "reason": "court order 12/2026"}, "tok-supervisor-north")
    assert refused.status == 403
    missing = post(under_test, "/api/workorders/1/legal-hold", {"held": True})
    assert missing.status == 400
    unknown = post(under_test, "/api/workorders/999/legal-hold",
                   {"held": True, "reason": "court order 12/2026"})
    assert (unknown.status, unknown.body["id"]) == (404, "workorder-not-found")
    held = post(under_test, "/api/workorders/1/legal-hold",
                {"held": True, "reason": "court order 12/2026"})
    assert held.status == 200, held.body
    TypeAdapter(WorkOrderAnswer).validate_python(held.body)
    assert held.body["legal_hold"] is True
    released = post(under_test, "/api/workorders/1/legal-hold",
                    {"held": False, "reason": "case closed"})
    assert released.body["legal_hold"] is False
    assert [(e["action"], e["obj"], e["reason"]) for e in under_test.audit.entries] == [
        ("workorder.legal_hold", "workorder:1", "court order 12/2026"),
        ("workorder.legal_release", "workorder:1", "case closed")]


def test_merge_by_a_supervisor(under_test: ApiUnderTest) -> None:
    """A supervisor merges two orders of the team: the answer has both, the merged one
    points to the survivor, ``workorder.merge`` is audited; an agent is refused, and so is a
    supervisor for an order outside the team."""
    refused = post(under_test, "/api/workorders/1/merge", {"merged": "2"}, "tok-agent101")
    assert refused.status == 403
    outside = post(under_test, "/api/workorders/1/merge", {"merged": "3"},
                   "tok-supervisor-north")
    assert outside.status == 403
    response = post(under_test, "/api/workorders/1/merge", {"merged": "2"},
                    "tok-supervisor-north")
    assert response.status == 200, response.body
    TypeAdapter(MergeAnswer).validate_python(response.body)
    assert response.body["merged"]["merged_into"] == "1"
    assert response.body["survivor"]["history"][-1]["event"] == "absorb"
    again = post(under_test, "/api/workorders/3/merge", {"merged": "2"})
    assert (again.status, again.body["id"]) == (409, "workorder-transition-refused")
    assert "already merged" in again.body["error"]
    assert [(e["action"], e["obj"], e["details"]) for e in under_test.audit.entries] == [
        ("workorder.merge", "workorder:1", {"merged": "2"})]


def test_assign_scopes(under_test: ApiUnderTest) -> None:
    """A supervisor may assign an unassigned order to an agent of the team, not to another
    team's agent; an agent may not assign another's order."""
    ok = post(under_test, "/api/workorders/4/assign", {"agent": "agent102"},
              "tok-supervisor-north")
    assert (ok.status, ok.body["agent"]) == (200, "agent102")
    assert post(under_test, "/api/workorders/4/assign", {"agent": "agent103"},
                "tok-supervisor-north").status == 403
    assert post(under_test, "/api/workorders/2/assign", {"agent": "agent101"},
                "tok-agent101").status == 403


def test_an_internal_error_is_500_never_400(routing_config: Any) -> None:
    """A bug below the service (here: the store raising RuntimeError) answers 500
    ``internal`` without detail; Redis away answers 503."""

    class Broken(FakeWorkOrders):
        async def find(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("boom: secret detail")

    under = api_under_test(routing_config, store=Broken(sample_orders()))
    response = answer(under.api, "GET", "/api/workorders", token="tok-ops")
    assert (response.status, response.body["id"]) == (500, "internal")
    assert "secret" not in response.body["error"]
    away = api_under_test(routing_config, store=FakeWorkOrders(sample_orders(), down=True))
    assert answer(away.api, "GET", "/api/workorders", token="tok-ops").status == 503


def test_openapi_documents_the_routes(under_test: ApiUnderTest) -> None:
    """The document lists every work-order route with its permission, audit action, query
    parameters, bodies and the 409/422 answers."""
    doc = answer(under_test.api, "GET", "/api/openapi.json").body
    paths = doc["paths"]
    listing = paths["/api/workorders"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {
        "status", "category", "urgency", "agent", "caller", "created_from", "created_to",
        "overdue", "limit", "cursor"}
    assert paths["/api/workorders/export"]["get"]["x-audit"] == "workorder.export"
    for action in ("assign", "status", "hold", "note", "merge"):
        operation = paths[f"/api/workorders/{{order_id}}/{action}"]["post"]
        assert operation["x-permission"] == "workorders:change"
        assert {"409", "422", "404", "413"} <= set(operation["responses"])
        assert "requestBody" in operation
