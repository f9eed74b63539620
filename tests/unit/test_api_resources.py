"""Each resource of the API over fakes, without sockets: the answers keep the shapes the
routes always had (they are a contract), errors carry ``{"error", "id"}``, and the OpenAPI
document describes every route from the same table and schemas."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, TypeAdapter

from api import queue_report
from api.schemas import (
    AgentActionResult,
    Agents,
    Decisions,
    Health,
    OpenAPIDocument,
    Queues,
    WorkOrderAnswer,
)
from api.testing import (
    ApiUnderTest,
    FakeRouter,
    FakeWorkOrders,
    answer,
    api_under_test,
    run_now,
    sample_orders,
)
from routing import core


def conforms(model: type[BaseModel], body: Any) -> None:
    TypeAdapter(model).validate_python(body)


def test_health(under_test: ApiUnderTest) -> None:
    """/health answers without a token: Redis, ARI state, calls, speech streams."""
    response = answer(under_test.api, "GET", "/health")
    assert (response.status, response.body) == (
        200, {"redis": True, "ari": "connected", "calls": 2, "speech_streams": 1})
    conforms(Health, response.body)


def test_queues_are_the_queue_report(under_test: ApiUnderTest) -> None:
    """/api/queues is :func:`api.queue_report` of the router, one entry per queue."""
    response = answer(under_test.api, "GET", "/api/queues", token="tok-ops")
    assert response.status == 200
    assert response.body == run_now(queue_report(under_test.router))
    assert set(response.body) == set(under_test.router.config().queues)
    conforms(Queues, response.body)


def test_agent_action_and_list(under_test: ApiUnderTest) -> None:
    """POST /api/agents/<id>/pause?reason=break pauses through the router and answers
    ``{"agent", "status"}``; the list then shows the agent paused."""
    response = answer(under_test.api, "POST", "/api/agents/agent101/pause?reason=break",
                      token="tok-ops")
    assert (response.status, response.body) == (200, {"agent": "agent101", "status": "paused"})
    conforms(AgentActionResult, response.body)
    assert under_test.router.actions == [("agent101", "pause", "break")]
    agents = answer(under_test.api, "GET", "/api/agents", token="tok-ops").body
    assert agents["agent101"] == {"status": "paused", "schedule": "on"}
    conforms(Agents, agents)


def test_agent_action_reason_in_a_json_body(under_test: ApiUnderTest) -> None:
    """The pause reason may come as a JSON body ``{"reason": "lunch"}`` instead."""
    response = answer(under_test.api, "POST", "/api/agents/agent101/pause", token="tok-ops",
                      body=b'{"reason": "lunch"}', headers={"Content-Type": "application/json"})
    assert response.status == 200
    assert under_test.router.actions == [("agent101", "pause", "lunch")]


def test_agent_action_refused_by_state_is_409(routing_config: core.RoutingConfig) -> None:
    """An action the agent's state refuses is 409 ``agent-action-refused`` with the message
    the API always gave."""
    under = api_under_test(routing_config, router=FakeRouter(routing_config, refuse=("resume",)))
    response = answer(under.api, "POST", "/api/agents/agent101/resume", token="tok-ops")
    assert response.status == 409
    assert response.body == {"error": "resume refused: agent agent101 is logged_out",
                             "id": "agent-action-refused"}


def test_unknown_agent_and_pause_reason_are_400(under_test: ApiUnderTest) -> None:
    """An agent not in agents.yaml, or a pause reason not in routing.yaml, is 400 with the
    message the API always gave; the router is not asked."""
    unknown = answer(under_test.api, "POST", "/api/agents/agent999/login", token="tok-ops")
    assert (unknown.status, unknown.body) == (
        400, {"error": "unknown agent 'agent999'", "id": "unknown-agent"})
    reason = answer(under_test.api, "POST", "/api/agents/agent101/pause?reason=nap",
                    token="tok-ops")
    assert reason.status == 400 and reason.body["id"] == "bad-request"
    assert reason.body["error"].startswith("unknown pause reason 'nap'; one of [")
    assert under_test.router.actions == []


def test_unknown_action_is_an_unknown_route(under_test: ApiUnderTest) -> None:
    """``POST /api/agents/agent101/dance`` is no endpoint (404), as it always was."""
    response = answer(under_test.api, "POST", "/api/agents/agent101/dance", token="tok-ops")
    assert response.status == 404
    assert response.body == {"error": "no such endpoint: POST /api/agents/agent101/dance",
                             "id": "not-found"}


def test_decisions(under_test: ApiUnderTest) -> None:
    """/api/decisions is the router's list of recent decisions, as it is."""
    under_test.router.decisions = [{"call_id": "c-1", "agent": "agent101",
                                    "instance": "hotline-1", "reason": "longest idle"}]
    response = answer(under_test.api, "GET", "/api/decisions", token="tok-ops")
    assert (response.status, response.body) == (200, under_test.router.decisions)
    conforms(Decisions, response.body)


def test_work_order_by_id_and_by_call(under_test: ApiUnderTest) -> None:
    """/api/workorders/<id> and /api/calls/<call_id>/workorder answer the order's
    ``to_dict()``; a missing one is 404 ``workorder-not-found`` with the old message."""
    order = sample_orders()["1"].to_dict()
    by_id = answer(under_test.api, "GET", "/api/workorders/1", token="tok-ops")
    by_call = answer(under_test.api, "GET", "/api/calls/c-1/workorder", token="tok-ops")
    assert by_id.status == by_call.status == 200
    assert by_id.body == by_call.body == order
    conforms(WorkOrderAnswer, by_id.body)
    missing = answer(under_test.api, "GET", "/api/workorders/77", token="tok-ops")
    assert missing.body == {"error": "no work order 77", "id": "workorder-not-found"}
    missing_call = answer(under_test.api, "GET", "/api/calls/c-77/workorder", token="tok-ops")
    assert missing_call.body == {"error": "no work order for call c-77",
                                 "id": "workorder-not-found"}
    assert missing.status == missing_call.status == 404


def test_store_away_is_503_unavailable(routing_config: core.RoutingConfig) -> None:
    """A store or router that cannot reach Redis (ConnectionError) is 503 ``unavailable``,
    never a 500."""
    under = api_under_test(routing_config, store=FakeWorkOrders(down=True),
                           router=FakeRouter(routing_config, down=True))
    for method, path in (("GET", "/api/workorders/1"), ("GET", "/api/queues"),
                         ("GET", "/api/agents"), ("POST", "/api/agents/agent101/login")):
        response = answer(under.api, method, path, token="tok-ops")
        assert (response.status, response.body["id"]) == (503, "unavailable"), path


def test_openapi_document_describes_every_route(under_test: ApiUnderTest) -> None:
    """/api/openapi.json is OpenAPI 3.1 with every route of the table, its permission, its
    parameters from the pydantic schemas, bearer security on every non-public route, and
    every referenced schema present."""
    response = answer(under_test.api, "GET", "/api/openapi.json")
    doc = response.body
    conforms(OpenAPIDocument, doc)
    assert doc["openapi"] == "3.1.0"
    operations = {(m.upper(), p): op for p, ops in doc["paths"].items() for m, op in ops.items()}
    for route in under_test.api.table.routes:
        op = operations[(route.method, route.openapi_path)]
        assert op["x-permission"] == route.permission.value
        assert (op["security"] == []) == (route.permission.value == "public")
    act = operations[("POST", "/api/agents/{agent_id}/{action}")]
    params = {p["name"]: p for p in act["parameters"]}
    assert params["action"]["schema"]["enum"] == ["login", "logout", "pause", "resume"]
    assert params["agent_id"]["in"] == "path" and "pattern" in params["agent_id"]["schema"]
    assert params["reason"]["in"] == "query" and not params["reason"]["required"]
    assert "requestBody" in act and {"401", "403", "409", "413", "415"} <= set(act["responses"])
    schemas = doc["components"]["schemas"]
    text = str(doc)
    for name in schemas:
        assert f"#/components/schemas/{name}" in text
    refs = {part.split("'")[0] for part in text.split("#/components/schemas/")[1:]}
    assert refs <= set(schemas)
